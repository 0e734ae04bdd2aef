"""pytest fixtures for hstcal and for plugin authors (registered as a ``pytest11`` plugin).

* ``shared_data`` — the real HST files in ``../shared/data`` (tests skip, with the
  reason, when that directory is absent); override with ``HSTCAL_SHARED_DATA``.
* ``hstcal_registry`` — a freshly built registry of the installed plugins.
* ``fresh_registry`` — a registry holding only the core built-ins, to which a test
  adds plugins with ``registry.add_plugin(module, name)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["find_shared_data", "shared_data", "hstcal_registry", "fresh_registry"]


def find_shared_data(start: Path | None = None) -> Path | None:
    """Locate ``shared/data`` next to the project root (or via HSTCAL_SHARED_DATA)."""
    env = os.environ.get("HSTCAL_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    here = (start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        candidate = base.parent / "shared" / "data"
        if (base / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data(pytestconfig) -> Path:
    """Path of ``../shared/data``; skips the test when it is not available."""
    path = find_shared_data(Path(str(pytestconfig.rootpath)))
    if path is None:
        pytest.skip("real HST data not available: ../shared/data is absent "
                    "(set HSTCAL_SHARED_DATA to point at it)")
    return path


@pytest.fixture
def hstcal_registry():
    """A registry freshly built from the installed entry points."""
    from .registry import build_registry

    return build_registry()


@pytest.fixture
def fresh_registry():
    """A registry with only the core built-ins loaded."""
    from . import builtin
    from .registry import Registry

    registry = Registry()
    registry.add_plugin(builtin, "core", distribution="hstcal-core")
    return registry
