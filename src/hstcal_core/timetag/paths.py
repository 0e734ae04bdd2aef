"""Untrusted header strings (TARGNAME, ...) turned into safe path components.

A target name comes from the observer's proposal: it may hold slashes, ``..``, NULs,
spaces or hundreds of characters.  It is never used in a path as is; it goes through
:func:`safe_component`, and every path built from it is checked with
:func:`within` before anything is written, moved or deleted.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["safe_component", "within", "require_within"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def safe_component(text: object, *, max_len: int = 64, lower: bool = False) -> str:
    """A single path component made from ``text``: only ``A-Za-z0-9_.+-``, no leading
    dot, at most ``max_len`` characters; ``"unknown"`` when nothing is left.

    Names that had to be changed or cut get a short hash of the original appended, so
    two different hostile names never collapse onto one directory.
    """
    raw = "" if text is None else str(text)
    cleaned = _UNSAFE.sub("_", raw.replace("\x00", "")).strip("_").lstrip(".")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if lower:
        cleaned = cleaned.lower()
    changed = cleaned != (raw.lower() if lower else raw)
    if not cleaned:
        cleaned, changed = "unknown", True
    if changed or len(cleaned) > max_len:
        tag = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned[:max(1, max_len - 9)]}_{tag}"
    return cleaned


def within(root: Path, path: Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies inside ``root``."""
    root = Path(root).resolve()
    try:
        Path(path).resolve().relative_to(root)
    except ValueError:
        return False
    return True


def require_within(root: Path, path: Path) -> Path:
    """``path`` if it lies inside ``root``; otherwise a ``ValueError`` naming both."""
    if not within(root, path):
        raise ValueError(f"refusing to touch {path}: it is outside the configured root {root}")
    return path
