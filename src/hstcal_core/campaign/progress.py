"""How far a campaign got: a tqdm bar on a terminal, INFO log lines elsewhere.

A campaign reports chunks (anneal months) as they are stored or fail, and tasks
(exposures) as they finish::

    with Progress(total_chunks=len(todo)) as progress:
        progress.add_tasks(len(plan))         # when a chunk's tasks are known
        progress.task_done()                  # per finished task
        progress.chunk_done("2005-03/stis_ccd", "done")

On a terminal this draws one bar of chunks with the task count, elapsed time and
ETA; in a batch job (output to a file or pipe) it logs one line per chunk instead,
so logs hold no bar characters.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from typing import TextIO

__all__ = ["Progress", "format_seconds"]

logger = logging.getLogger(__name__)

#: Statuses of a chunk that went as planned; others are counted on the bar.
_GOOD = frozenset({"done", "ok", "stored"})

#: Least seconds between redraws caused by task completions alone.
_TASK_REFRESH = 0.5


def format_seconds(seconds: float | None) -> str:
    """``H:MM:SS`` (or ``MM:SS`` under an hour); ``"?"`` for ``None``."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Progress of one campaign run.

    Parameters
    ----------
    total_chunks : int
        Chunks this run will handle.
    total_tasks : int, optional
        Tasks of all those chunks, when known in advance; otherwise the total grows
        with :meth:`add_tasks`.
    enabled : bool, optional
        Draw a tqdm bar (True) or log INFO lines (False); default: a bar only when
        ``stream`` is a terminal.
    stream : text stream, optional
        Where the bar goes; default ``sys.stderr`` (looked up when called, so
        redirections made after import apply).
    desc : str
        Label in front of the bar.

    Notes
    -----
    The ETA comes from tasks when ``total_tasks`` was given (tasks are many and
    similar, so their rate extrapolates well), otherwise from finished chunks
    (a total that grows as chunks are planned would promise too early an end).
    """

    def __init__(self, total_chunks: int, total_tasks: int | None = None, *, enabled: bool | None = None,
                 stream: TextIO | None = None, desc: str = "campaign"):
        if total_chunks < 0:
            raise ValueError(f"total_chunks: must not be negative, got {total_chunks}")
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream) if enabled is None else bool(enabled)
        self.total_chunks = total_chunks
        self.total_tasks = total_tasks
        self._tasks_fixed = total_tasks is not None
        self.chunks_done = 0
        self.tasks_done = 0
        self.statuses: Counter[str] = Counter()
        self.last_chunk: str | None = None
        self._started = time.monotonic()
        self._last_refresh = 0.0
        self._closed = False
        self._bar = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total_chunks, desc=desc, file=self.stream, leave=True,
                             bar_format="{desc}: {n_fmt}/{total_fmt} chunks |{bar}| [{elapsed}{postfix}]",
                             dynamic_ncols=True)
            self._bar.set_postfix_str(self._summary(), refresh=True)

    # -------------------------------------------------------------- reporting
    def add_tasks(self, n: int) -> None:
        """``n`` more tasks are planned (a chunk's tasks became known)."""
        if self._tasks_fixed:
            return
        self.total_tasks = (self.total_tasks or 0) + n
        self._task_refresh()

    def task_done(self, n: int = 1) -> None:
        """``n`` tasks finished (successfully or not)."""
        self.tasks_done += n
        self._task_refresh()

    def chunk_done(self, name: str, status: str = "done") -> None:
        """Chunk ``name`` is finished, with ``status`` ("done", "failed", ...)."""
        self.chunks_done += 1
        self.statuses[status] += 1
        self.last_chunk = name
        if self._bar is not None:
            self._bar.set_postfix_str(self._summary(), refresh=False)
            self._bar.update(1)
            self._bar.refresh()
            self._last_refresh = time.monotonic()
        else:
            logger.info("chunk %s %s: %d/%d chunks, %s tasks, elapsed %s, ETA %s", name, status,
                        self.chunks_done, self.total_chunks, self._tasks_text(),
                        format_seconds(self.elapsed), format_seconds(self.eta()))

    # -------------------------------------------------------------- numbers
    @property
    def elapsed(self) -> float:
        """Seconds since this object was made."""
        return time.monotonic() - self._started

    def eta(self) -> float | None:
        """Estimated seconds left; ``None`` until there is something to extrapolate."""
        if self._tasks_fixed and self.total_tasks and self.tasks_done:
            return self.elapsed * max(0, self.total_tasks - self.tasks_done) / self.tasks_done
        if self.chunks_done:
            return self.elapsed * max(0, self.total_chunks - self.chunks_done) / self.chunks_done
        return None

    def _tasks_text(self) -> str:
        total = "?" if self.total_tasks is None else str(self.total_tasks)
        return f"{self.tasks_done}/{total}"

    def _summary(self) -> str:
        # follows tqdm's own elapsed time on the bar
        parts = [f"tasks {self._tasks_text()}"]
        parts += [f"{status} {count}" for status, count in sorted(self.statuses.items()) if status not in _GOOD]
        parts.append(f"ETA {format_seconds(self.eta())}")
        return ", ".join(parts)

    def _task_refresh(self) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now - self._last_refresh >= _TASK_REFRESH:
            self._bar.set_postfix_str(self._summary(), refresh=True)
            self._last_refresh = now

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Draw the final state and release the bar (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.set_postfix_str(self._summary(), refresh=False)
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
