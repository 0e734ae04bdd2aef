"""Exceptions raised by hstcal, each naming what went wrong and where."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "HstcalError",
    "InputError",
    "ConfigError",
    "PluginError",
    "DuplicateDetectorError",
    "UnknownDetectorError",
    "StageNotSupportedError",
    "NoImplementationError",
    "ArchiveError",
]


class HstcalError(Exception):
    """Base class of every error hstcal raises on purpose."""


class InputError(HstcalError):
    """An input file (or list of inputs) cannot be used.

    Parameters
    ----------
    path : str or Path or None
        The offending file; ``None`` when the problem is the list itself.
    problem : str
        What is wrong with it, in words an astronomer can act on.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ConfigError(HstcalError):
    """A configuration key or value is invalid; the message names the key."""


class PluginError(HstcalError):
    """A plugin is broken or misbehaves."""


class DuplicateDetectorError(PluginError):
    """Two distributions register the same detector name."""


class UnknownDetectorError(HstcalError):
    """No loaded plugin registers the requested detector."""


class StageNotSupportedError(HstcalError):
    """The detector's plugin does not provide the requested stage."""


class NoImplementationError(HstcalError):
    """No plugin answered a hook for a detector."""


class ArchiveError(HstcalError):
    """An archive could not answer a query or deliver a file; the message names the file
    (or the query), the URL and the last problem seen."""
