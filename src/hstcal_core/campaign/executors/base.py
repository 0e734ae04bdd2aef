"""The :class:`Executor` interface, the in-process :class:`SerialExecutor`, and the scheduling loop
shared by the pooled executors (:mod:`.process`, :mod:`.dask_executor`)."""

from __future__ import annotations

import abc
import logging
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

from ...errors import ConfigError
from ...tasks import Task, TaskOutput
from .plan import _Plan, _stream
from .results import Completion
from .worker import _completion, _execute

__all__ = ["IN_FLIGHT_PER_WORKER", "LOOKAHEAD_PER_WORKER", "Executor", "SerialExecutor"]

logger = logging.getLogger(__name__)

#: Tasks kept in flight per worker slot: enough that a worker never waits for the
#: driver to hand it the next task, few enough that cancelling on Ctrl-C is quick.
IN_FLIGHT_PER_WORKER = 2

#: While tasks run, read ahead in a lazy stream at most this many tasks per
#: in-flight slot that still wait for their dependencies.
LOOKAHEAD_PER_WORKER = 8

_END = object()


class Executor(abc.ABC):
    """Runs tasks and reports each as it finishes; a context manager.

    :meth:`run` may be called once per batch, any number of times, until
    :meth:`close`.
    """

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """Tasks that can run at once (processes, or Dask worker threads)."""

    @abc.abstractmethod
    def run(self, tasks: Iterable[Task]) -> Iterator[Completion]:
        """Run ``tasks``; yield a :class:`Completion` for each, in the order they finish.

        Parameters
        ----------
        tasks : iterable of Task
            One batch: keys unique, every dependency in the batch.  A collection
            (list, tuple, ...) is checked and ordered at once; any other iterable,
            such as a generator that prepares chunks on demand, is read lazily, only
            as far as needed to keep the workers busy.  In a lazy stream a
            dependency should come before its dependents, and its dependents must
            come while the caller still holds its output (executors keep outputs
            only while a known dependent waits for them).

        Returns
        -------
        iterator of Completion
            Exactly one per task.  A task runs only after all its dependencies
            finished without error, and receives their outputs; a task whose
            dependency failed is yielded with :class:`DependencyFailed` and not run.
            In a lazy stream, a task depending on a key that never came (or on a
            cycle) is yielded at the end with a ``ValueError``.

        Raises
        ------
        ValueError
            A duplicate key (a collection: also an unknown dependency or a cycle,
            raised by this call, before anything runs).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Cancel whatever is still pending, stop the workers, release resources.

        Never waits long: busy workers are terminated.  Idempotent.
        """


class SerialExecutor(Executor):
    """Runs every task in this process, one after the other, in a deterministic order.

    A collection runs in :func:`~hstcal_core.tasks.order_tasks` order; a lazy
    stream in the order it comes (a task that waits for a later dependency runs
    right after it).

    For ``--workers 0`` and for debugging: a task's exception keeps its own
    traceback, and a debugger can step into the task.
    """

    def __init__(self) -> None:
        self._closed = False

    def __repr__(self) -> str:
        return "SerialExecutor()"

    @property
    def workers(self) -> int:
        return 1

    def run(self, tasks: Iterable[Task]) -> Iterator[Completion]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        stream, _ = _stream(tasks)
        return self._run(stream)

    def _run(self, stream: Iterator[Task]) -> Iterator[Completion]:
        plan = _Plan()
        for task in stream:
            yield from plan.add(task)
            while plan.ready:
                ready = plan.ready.popleft()
                done = _completion(ready, _execute(ready, plan.inputs_for(ready), remote=False))
                doomed = plan.finish(done)
                yield done
                yield from doomed
        yield from plan.stuck()

    def close(self) -> None:
        self._closed = True


class _PooledExecutor(Executor):
    """The scheduling loop shared by the process-pool and Dask executors.

    Subclasses submit one task (``_submit``), wait for some to finish (``_wait``),
    turn a finished one into a :class:`Completion` (``_complete``) and cancel
    (``_cancel``).
    """

    def __init__(self, *, max_in_flight: int | None, in_flight_per_worker: int):
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"max_in_flight: must be at least 1, got {max_in_flight}")
        if in_flight_per_worker < 1:
            raise ConfigError(f"in_flight_per_worker: must be at least 1, got {in_flight_per_worker}")
        self._max_in_flight = max_in_flight
        self._in_flight_per_worker = in_flight_per_worker
        self._closed = False
        #: Most tasks submitted and not yet reported at any moment of the last run.
        self.peak_in_flight = 0

    @property
    def max_in_flight(self) -> int:
        """Most tasks submitted at once: ``in_flight_per_worker × workers`` unless given."""
        if self._max_in_flight is not None:
            return self._max_in_flight
        return max(self._in_flight_per_worker, self._in_flight_per_worker * self.workers)

    def run(self, tasks: Iterable[Task]) -> Iterator[Completion]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        stream, eager = _stream(tasks)
        return self._schedule(stream, eager)

    def _schedule(self, stream: Iterator[Task], eager: bool) -> Iterator[Completion]:
        plan = _Plan()
        in_flight: dict[Hashable, Task] = {}
        self.peak_in_flight = 0
        exhausted = False
        if eager:  # a collection: every dependent is known before anything runs
            for task in stream:
                plan.add(task)
            exhausted = True
        logger.info("running %s task(s) on %r, at most %d in flight",
                    len(plan.seen) if eager else "a stream of", self, self.max_in_flight)
        try:
            while True:
                bound = self.max_in_flight
                while len(in_flight) < bound:
                    if plan.ready:
                        task = plan.ready.popleft()
                        inputs = plan.inputs_for(task)
                        try:
                            ticket = self._submit(task, inputs)
                        except Exception as exc:  # e.g. arguments that cannot be pickled
                            logger.error("cannot submit task %r: %s", task.key, exc)
                            failed = Completion(task, None, exc, "")
                            doomed = plan.finish(failed)
                            yield failed
                            yield from doomed
                            continue
                        in_flight[ticket] = task
                        self.peak_in_flight = max(self.peak_in_flight, len(in_flight))
                        continue
                    # Read the stream only as far as needed to fill the free slots: the
                    # campaign driver prepares (and downloads) a chunk when its tasks are read.
                    if exhausted or (in_flight and len(plan.waiting) >= LOOKAHEAD_PER_WORKER * bound):
                        break
                    task = next(stream, _END)
                    if task is _END:
                        exhausted = True
                        break
                    yield from plan.add(task)
                if not in_flight:
                    if plan.ready or not exhausted:
                        continue
                    yield from plan.stuck()
                    return
                for ticket, payload in self._wait(in_flight):
                    task = in_flight.pop(ticket)
                    done = self._complete(task, payload)
                    if done.error is not None:
                        logger.debug("task %r failed on %s: %s", task.key, done.worker or "?", done.error)
                    doomed = plan.finish(done)
                    yield done
                    yield from doomed
        except KeyboardInterrupt:
            logger.warning("interrupted: cancelling %d task(s) in flight and stopping %r", len(in_flight), self)
            self._cancel(list(in_flight))
            self.close()
            raise
        except BaseException:  # GeneratorExit when the caller stops early, or a bug
            if in_flight:
                logger.debug("run abandoned: cancelling %d task(s) in flight", len(in_flight))
                self._cancel(list(in_flight))
            raise

    @abc.abstractmethod
    def _submit(self, task: Task, inputs: dict[str, TaskOutput]) -> Hashable:
        """Start ``task``; return a ticket identifying it."""

    @abc.abstractmethod
    def _wait(self, in_flight: Mapping[Hashable, Task]) -> list[tuple[Hashable, Any]]:
        """Block until at least one ticket finished; return ``(ticket, payload)`` pairs."""

    @abc.abstractmethod
    def _complete(self, task: Task, payload: Any) -> Completion:
        """The completion of a finished task."""

    @abc.abstractmethod
    def _cancel(self, tickets: list[Hashable]) -> None:
        """Cancel these tickets where still possible."""
