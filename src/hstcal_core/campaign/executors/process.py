"""Run tasks on a pool of local worker processes."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import time
from collections.abc import Hashable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ...errors import ConfigError
from ...tasks import Task, TaskOutput
from .base import IN_FLIGHT_PER_WORKER, _PooledExecutor
from .results import Completion, WorkerLost
from .worker import _completion, _execute, _ignore_sigint

__all__ = ["ProcessExecutor"]

logger = logging.getLogger(__name__)


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor, grace: float) -> None:
    """Shut ``pool`` down; terminate workers still alive after ``grace`` seconds."""
    # Python 3.11 has no public handle on the worker processes (3.14 adds
    # terminate_workers); they are needed to stop a worker stuck in a task.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    alive = [p for p in processes if p.is_alive()]
    if alive:
        logger.warning("terminating %d busy worker process(es): %s", len(alive),
                       ", ".join(str(p.pid) for p in alive))
        for process in alive:
            process.terminate()
        for process in alive:
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(2.0)
    if manager is not None:
        manager.join(5.0)


class ProcessExecutor(_PooledExecutor):
    """Runs tasks on a pool of local worker processes, started with ``spawn``.

    ``spawn``, not ``fork``: numba's threading layer is not fork-safe, and a forked
    child would inherit the driver's open database and HDF5 handles.

    Parameters
    ----------
    workers : int
        Worker processes (at least 1).
    max_in_flight : int, optional
        Most tasks submitted at once; default ``in_flight_per_worker × workers``.
    in_flight_per_worker : int
        See ``max_in_flight``.
    max_tasks_per_child : int, optional
        Replace a worker after this many tasks (guards against slow memory leaks).
    shutdown_timeout : float
        Seconds :meth:`close` lets idle workers exit before terminating them.

    Notes
    -----
    A worker that dies (the out-of-memory killer, a crash in compiled code) breaks
    the whole pool: every task then running or queued is reported with
    :class:`WorkerLost` — the pool cannot say which one killed it — and a new pool
    runs the remaining tasks.
    """

    def __init__(self, workers: int, *, max_in_flight: int | None = None,
                 in_flight_per_worker: int = IN_FLIGHT_PER_WORKER, max_tasks_per_child: int | None = None,
                 shutdown_timeout: float = 10.0):
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers: a process pool needs at least 1 worker, got {workers!r}")
        super().__init__(max_in_flight=max_in_flight, in_flight_per_worker=in_flight_per_worker)
        self._workers = workers
        self._max_tasks_per_child = max_tasks_per_child
        self.shutdown_timeout = shutdown_timeout
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._broken = False
        self._live: dict[concurrent.futures.Future, int] = {}
        #: How many times a broken pool was replaced.
        self.pool_restarts = 0

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self._workers})"

    @property
    def workers(self) -> int:
        return self._workers

    def _start_pool(self) -> None:
        old = self._pool
        if old is not None:
            if self._broken:
                self.pool_restarts += 1
                logger.warning("the process pool broke (a worker died); "
                               "starting a new one for the remaining tasks")
            _stop_pool(old, grace=self.shutdown_timeout)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
            max_tasks_per_child=self._max_tasks_per_child,
        )
        self._generation += 1
        self._broken = False

    def _submit(self, task: Task, inputs: dict[str, TaskOutput]) -> Hashable:
        if self._pool is None or self._broken:
            self._start_pool()
        try:
            future = self._pool.submit(_execute, task, inputs)
        except BrokenProcessPool:
            self._broken = True
            self._start_pool()
            future = self._pool.submit(_execute, task, inputs)
        self._live[future] = self._generation
        if len(self._live) > 4 * self.max_in_flight:  # leftovers of abandoned runs
            self._live = {f: g for f, g in self._live.items() if not f.done()}
        return future

    def _wait(self, in_flight: Mapping[Hashable, Task]) -> list[tuple[Hashable, Any]]:
        done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
        return [(future, future) for future in in_flight if future in done]

    def _complete(self, task: Task, payload: Any) -> Completion:
        future: concurrent.futures.Future = payload
        generation = self._live.pop(future, None)
        if future.cancelled():
            cancelled = concurrent.futures.CancelledError(f"task {task.key!r} was cancelled")
            return Completion(task, None, cancelled, "")
        exc = future.exception()
        if exc is None:
            return _completion(task, future.result())
        if isinstance(exc, BrokenProcessPool):
            if generation == self._generation:
                self._broken = True
            lost = WorkerLost(task.key, str(exc))
            lost.__cause__ = exc
            logger.error("%s", lost)
            return Completion(task, None, lost, "")
        # the task's own errors come back inside _Outcome; this is the pool's
        # (e.g. an output that could not be pickled)
        return Completion(task, None, exc, "")

    def _cancel(self, tickets: list[Hashable]) -> None:
        for future in tickets:
            future.cancel()

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        busy = [f for f in self._live if not f.done()]
        for future in busy:
            future.cancel()
        self._live.clear()
        _stop_pool(pool, grace=0.0 if busy else self.shutdown_timeout)
