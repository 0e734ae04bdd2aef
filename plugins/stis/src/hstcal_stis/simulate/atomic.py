"""Write-then-rename, so an interrupted simulation never leaves half a file behind."""

from __future__ import annotations

import os
from pathlib import Path


class _atomic:
    """Yield a temporary path beside ``path``; rename it into place on success."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
