"""The worker side: run one task where it landed and wrap what happened so it can travel back."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass

from ...tasks import Task, TaskOutput, call_task
from .results import Completion, RemoteTraceback


@dataclass
class _Outcome:
    """What a worker sends back: the output or the error, and who ran it."""

    output: TaskOutput | None
    error: BaseException | None
    worker: str
    traceback: str | None = None


def _worker_name() -> str:
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return distributed.get_worker().address
        except ValueError:  # not inside a Dask worker
            pass
    return f"pid:{os.getpid()}"


def _picklable(exc: BaseException) -> BaseException:
    # An exception that cannot cross the process boundary would otherwise turn into
    # an opaque pickling error; keep at least its type name and message.
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
    return exc


def _execute(task: Task, deps: Mapping[str, TaskOutput], remote: bool = True) -> _Outcome:
    """Run one task where this is called (worker or driver) and wrap what happened."""
    worker = _worker_name()
    try:
        output = call_task(task, deps)
        if not isinstance(output, TaskOutput):
            name = getattr(task.fn, "__qualname__", repr(task.fn))
            raise TypeError(f"task {task.key!r}: {name} returned {type(output).__name__}, not a TaskOutput")
    except Exception as exc:
        if not remote:
            return _Outcome(None, exc, worker)
        return _Outcome(None, _picklable(exc), worker, traceback.format_exc())
    return _Outcome(output, None, worker)


def _completion(task: Task, outcome: _Outcome) -> Completion:
    error = outcome.error
    if error is not None and outcome.traceback:
        error.__cause__ = RemoteTraceback(outcome.traceback)
    return Completion(task, outcome.output, error, outcome.worker)


def _ignore_sigint() -> None:
    # Ctrl-C reaches every process of the terminal's process group; the driver alone
    # decides what happens (cancel, stop the pool), so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """Exit this worker when the driver that started it dies.

    A driver killed with SIGKILL cannot stop its pool, and idle pool workers do not
    always notice (they wait on a queue whose other end may still be open in a
    sibling), so each worker watches its parent pid and leaves when it changes.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="hstcal-exit-with-parent", daemon=True).start()
