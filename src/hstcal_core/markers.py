"""The pluggy markers of the ``hstcal`` project (plugins import ``hookimpl`` from hstcal_core)."""

import pluggy

PROJECT = "hstcal"
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl"]
