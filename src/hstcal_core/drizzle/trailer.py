"""The trailer ``<root>.tra``: the whole run in one text file, as runastrodriz writes it.

:class:`Trailer` is a context manager that, for the duration of a run, sends to one file

* every record of ``hstcal_core`` (our own steps, decisions and failures),
* every record of the libraries doing the work (``drizzlepac``, ``stwcs``,
  ``tweakwcs``, ``photutils``) — kept out of the console while the run lasts, as
  runastrodriz keeps them in its trailer — and
* what those libraries *print* (AstroDrizzle reports its steps and parameters on
  stdout): :meth:`Trailer.capture_stdout` wraps their calls.

The file is written under the run's scratch directory and moved into the output
directory by the stage (so a trailer exists even when the run fails, and says why).
Trailer names follow runastrodriz: ``<root>_asn.fits`` and ``<root>_raw.fits`` give
``<root>.tra``; any other input drops its last ``_suffix``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

__all__ = ["LIBRARY_LOGGERS", "Trailer", "trailer_root"]

#: Loggers of the libraries the drizzle stage drives.
LIBRARY_LOGGERS = ("drizzlepac", "stwcs", "tweakwcs", "photutils", "stsci")
_OWN_LOGGER = "hstcal_core"
_STDOUT_LOGGER = "hstcal_core.drizzle.stdout"


def trailer_root(path: str | Path) -> str:
    """runastrodriz's trailer root of an input file name (lower case)."""
    name = Path(path).name.lower()
    for marker in ("_raw", "_asn"):
        if marker in name:
            return name[:name.find(marker)]
    stem = name[:-len(".fits")] if name.endswith(".fits") else name.rsplit(".", 1)[0]
    index = stem.rfind("_")
    return stem[:index] if index > 0 else stem


class _LineWriter(io.TextIOBase):
    """A text stream that logs each complete line (what a library prints)."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._buffer.strip():
            self._logger.info("%s", self._buffer.rstrip())
        self._buffer = ""


class Trailer:
    """Collect a run's log into ``path`` (see the module docstring).

    Parameters
    ----------
    path : path
        The trailer file; created (truncated) on entry.
    level : int
        Lowest level written (INFO, as runastrodriz).
    """

    def __init__(self, path: str | Path, level: int = logging.INFO):
        self.path = Path(path)
        self.level = level
        self._handler: logging.FileHandler | None = None
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.path, mode="w", encoding="utf-8")
        handler.setLevel(self.level)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)-8s] %(name)s: "
                                               "%(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
        self._handler = handler
        own = logging.getLogger(_OWN_LOGGER)
        self._saved.append((own, own.level, own.propagate))
        if own.getEffectiveLevel() > self.level:
            own.setLevel(self.level)
        own.addHandler(handler)
        for name in LIBRARY_LOGGERS + (_STDOUT_LOGGER,):
            lib = logging.getLogger(name)
            self._saved.append((lib, lib.level, lib.propagate))
            lib.setLevel(self.level)
            lib.propagate = False  # their chatter goes to the trailer, not the console
            lib.addHandler(handler)
        own.info("trailer %s opened %s", self.path.name,
                 time.strftime("%Y-%m-%d %H:%M:%S %Z"))
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger(_OWN_LOGGER).info("trailer closed %s",
                                            time.strftime("%Y-%m-%d %H:%M:%S %Z"))
        for logger, level, propagate in reversed(self._saved):
            if self._handler in logger.handlers:
                logger.removeHandler(self._handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()
        if self._handler is not None:
            self._handler.close()
            self._handler = None

    @staticmethod
    @contextlib.contextmanager
    def capture_stdout() -> Iterator[None]:
        """Send what the block prints to the trailer (line by line) instead of stdout."""
        writer = _LineWriter(logging.getLogger(_STDOUT_LOGGER))
        with contextlib.redirect_stdout(writer):
            try:
                yield
            finally:
                writer.flush()
