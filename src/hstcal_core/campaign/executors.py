"""Executors: run tasks in this process, on a local process pool, or on dask.distributed.

A campaign driver hands an executor the tasks of many chunks and learns of every
task the moment it finishes::

    with make_executor(workers=8) as executor:
        for done in executor.run(tasks):
            ...  # done.task, done.output, done.error, done.worker

``run`` submits a task only once all its dependencies finished without error and
gives it their outputs (``deps={key: TaskOutput}``, see :mod:`hstcal_core.tasks`);
a task whose dependency failed is reported with :class:`DependencyFailed` and never
runs.  Only a few tasks per worker are in flight at any time, so a campaign of 10⁵
exposures does not flood the pool or the scheduler, and a lazy stream of tasks
(a generator that prepares chunk after chunk) is read only as far as needed to keep
the workers busy.  Workers compute; the driver alone writes the stores.

Use an executor as a context manager: leaving the block, normally or by an
exception such as Ctrl-C's KeyboardInterrupt, cancels pending tasks and stops the
workers, terminating busy ones.
"""

from __future__ import annotations

import abc
import concurrent.futures
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import time
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, HstcalError
from ..tasks import Task, TaskOutput, call_task, order_tasks

__all__ = [
    "Completion",
    "DaskExecutor",
    "DependencyFailed",
    "Executor",
    "ProcessExecutor",
    "RemoteTraceback",
    "SerialExecutor",
    "WorkerLost",
    "make_executor",
]

logger = logging.getLogger(__name__)

#: Tasks kept in flight per worker slot: enough that a worker never waits for the
#: driver to hand it the next task, few enough that cancelling on Ctrl-C is quick.
IN_FLIGHT_PER_WORKER = 2

#: While tasks run, read ahead in a lazy stream at most this many tasks per
#: in-flight slot that still wait for their dependencies.
LOOKAHEAD_PER_WORKER = 8

_END = object()


# ---------------------------------------------------------------- results and errors


@dataclass(frozen=True)
class Completion:
    """One finished task, as :meth:`Executor.run` reports it.

    Attributes
    ----------
    task : Task
        The task.
    output : TaskOutput or None
        What it produced; ``None`` when it failed or did not run.
    error : BaseException or None
        Why it failed: the exception the task raised (with the worker's traceback
        as its ``__cause__``), :class:`WorkerLost`, or :class:`DependencyFailed`
        when it never ran.
    worker : str
        Who ran it: ``"pid:1234"`` for a local process, the worker's address for
        Dask; ``""`` when that is unknown or the task never ran.
    """

    task: Task
    output: TaskOutput | None
    error: BaseException | None
    worker: str

    @property
    def key(self) -> str:
        """The task's key."""
        return self.task.key

    @property
    def ok(self) -> bool:
        """The task ran and raised nothing."""
        return self.error is None


class DependencyFailed(HstcalError):
    """A task was not run because a task it depends on failed.

    Parameters
    ----------
    key : str
        The task that was not run.
    dependency : str
        Its dependency that failed (or was itself not run).
    cause : BaseException
        The dependency's error.

    Attributes
    ----------
    failed_key : str
        The task whose own failure started the chain (``dependency`` itself unless
        that was not run either).
    root_error : BaseException
        That task's error.
    """

    def __init__(self, key: str, dependency: str, cause: BaseException):
        super().__init__(key, dependency, cause)
        self.key = key
        self.dependency = dependency
        self.cause = cause
        if isinstance(cause, DependencyFailed):
            self.failed_key, self.root_error = cause.failed_key, cause.root_error
        else:
            self.failed_key, self.root_error = dependency, cause

    def __str__(self) -> str:
        why = f"{type(self.root_error).__name__}: {self.root_error}"
        if self.failed_key != self.dependency:
            return (f"task {self.key!r} was not run: its dependency {self.dependency!r} was not run "
                    f"because {self.failed_key!r} failed ({why})")
        return f"task {self.key!r} was not run: its dependency {self.dependency!r} failed ({why})"


class WorkerLost(HstcalError):
    """A task was lost with the worker process that held it.

    A process-pool worker that dies abruptly (killed by the out-of-memory killer,
    a segmentation fault, ``os._exit``) takes with it every task that was running
    or queued in the pool; each is reported with this error.
    """

    def __init__(self, key: str, detail: str = ""):
        super().__init__(key, detail)
        self.key = key
        self.detail = detail

    def __str__(self) -> str:
        text = (f"task {self.key!r} was lost: a worker process died abruptly while the task was running "
                f"or queued in the pool (killed by a signal — often the out-of-memory killer — or exited); "
                f"the pool is restarted for the remaining tasks")
        return f"{text} [{self.detail}]" if self.detail else text


class RemoteTraceback(Exception):
    """The traceback, as text, of an error raised in a worker (set as the error's ``__cause__``)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------- worker side


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


# ---------------------------------------------------------------- dependency bookkeeping


class _Plan:
    """Tasks as they arrive: which are ready, which wait, which are doomed, whose outputs to keep.

    Outputs are held strongly while a known dependent still has to be submitted;
    after that only weakly, for a dependent that arrives later in a lazily consumed
    stream (the campaign driver holds a chunk's outputs until its last task is
    done, so a late task of the same chunk still finds them).
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.tasks: dict[str, Task] = {}  # added and not yet resolved
        self.dependents: dict[str, list[str]] = {}  # unfinished key -> keys waiting for it
        self.waiting: dict[str, int] = {}  # key -> dependencies not yet finished
        self.consumers: dict[str, int] = {}  # key -> known dependents not yet submitted
        self.outputs: dict[str, TaskOutput] = {}
        self.kept: weakref.WeakValueDictionary[str, TaskOutput] = weakref.WeakValueDictionary()
        self.succeeded: set[str] = set()
        self.errors: dict[str, BaseException] = {}
        self.ready: deque[Task] = deque()

    def add(self, task: Task) -> list[Completion]:
        """Take ``task``; return completions it produces at once (a dependency already failed)."""
        key = task.key
        if key in self.seen:
            raise ValueError(f"duplicate task key {key!r}")
        self.seen.add(key)
        self.tasks[key] = task
        deps = list(dict.fromkeys(task.deps))
        failed = next((dep for dep in deps if dep in self.errors), None)
        if failed is not None:
            return self._doom(task, failed, self.errors[failed], counted=False)
        lost = [dep for dep in deps if dep in self.succeeded and dep not in self.outputs and dep not in self.kept]
        if lost:
            error = RuntimeError(
                f"task {key!r} cannot run: the output of its dependency {lost[0]!r} was already released; "
                f"yield a task's dependents while its output is still held (e.g. before the chunk is committed)")
            self.tasks.pop(key)
            self.errors[key] = error
            return [Completion(task, None, error, "")]
        unmet = 0
        for dep in deps:
            self.consumers[dep] = self.consumers.get(dep, 0) + 1
            if dep in self.succeeded:
                if dep not in self.outputs:
                    self.outputs[dep] = self.kept[dep]
            else:
                self.dependents.setdefault(dep, []).append(key)
                unmet += 1
        if unmet:
            self.waiting[key] = unmet
        else:
            self.ready.append(task)
        return []

    def inputs_for(self, task: Task) -> dict[str, TaskOutput]:
        """The outputs ``task`` needs, at its submission."""
        inputs = {dep: self.outputs[dep] for dep in task.deps}
        self._release(task)
        return inputs

    def _release(self, task: Task) -> None:
        for dep in dict.fromkeys(task.deps):
            left = self.consumers.get(dep, 0) - 1
            if left > 0:
                self.consumers[dep] = left
                continue
            self.consumers.pop(dep, None)
            output = self.outputs.pop(dep, None)
            if output is not None:
                self._keep(dep, output)

    def _keep(self, key: str, output: TaskOutput) -> None:
        try:
            self.kept[key] = output
        except TypeError:  # an object that cannot be weakly referenced: keep no copy
            pass

    def _doom(self, task: Task, dependency: str, cause: BaseException, counted: bool = True) -> list[Completion]:
        """Fail ``task`` and everything waiting for it; ``counted``: ``task`` was added as a consumer."""
        self.tasks.pop(task.key, None)
        self.waiting.pop(task.key, None)
        if counted:
            self._release_unmet(task)
        first = Completion(task, None, DependencyFailed(task.key, dependency, cause), "")
        self.errors[task.key] = first.error
        doomed = [first]
        failed = deque([first])
        while failed:
            parent = failed.popleft()
            for key in self.dependents.pop(parent.key, []):
                child_task = self.tasks.pop(key, None)
                if child_task is None:  # already doomed through another dependency
                    continue
                self.waiting.pop(key, None)
                self._release_unmet(child_task)
                child = Completion(child_task, None, DependencyFailed(key, parent.key, parent.error), "")
                self.errors[key] = child.error
                doomed.append(child)
                failed.append(child)
        return doomed

    def _release_unmet(self, task: Task) -> None:
        # a doomed task no longer needs the outputs of its finished dependencies
        for dep in dict.fromkeys(task.deps):
            if dep in self.consumers:
                self.consumers[dep] -= 1
                if self.consumers[dep] == 0:
                    del self.consumers[dep]
                    output = self.outputs.pop(dep, None)
                    if output is not None:
                        self._keep(dep, output)

    def finish(self, done: Completion) -> list[Completion]:
        """Record ``done``; return the completions of the dependents it dooms."""
        key = done.key
        self.tasks.pop(key, None)
        if done.error is not None:
            self.errors[key] = done.error
            doomed: list[Completion] = []
            for child_key in self.dependents.pop(key, []):
                child_task = self.tasks.get(child_key)
                if child_task is not None:
                    doomed += self._doom(child_task, key, done.error)
            return doomed
        self.succeeded.add(key)
        if self.consumers.get(key):
            self.outputs[key] = done.output
        else:
            self._keep(key, done.output)
        for child_key in self.dependents.pop(key, []):
            if child_key not in self.waiting:
                continue
            self.waiting[child_key] -= 1
            if self.waiting[child_key] == 0:
                del self.waiting[child_key]
                self.ready.append(self.tasks[child_key])
        return []

    def stuck(self) -> list[Completion]:
        """After the last task arrived and nothing runs: the tasks that can never run."""
        stuck = []
        for key in list(self.waiting):
            task = self.tasks.pop(key)
            unknown = [dep for dep in task.deps if dep not in self.seen]
            if unknown:
                why = f"it depends on unknown task(s) {unknown}"
            else:
                blocked = [d for d in task.deps if d not in self.succeeded]
                why = (f"it waits for task(s) {blocked} that can never run "
                       f"(a dependency cycle, or they wait for unknown tasks)")
            stuck.append(Completion(task, None, ValueError(f"task {key!r} cannot run: {why}"), ""))
        self.waiting.clear()
        return stuck


def _stream(tasks: Iterable[Task]) -> tuple[Iterator[Task], bool]:
    """``(iterator, eager)``: a collection is checked and ordered at once, anything else read lazily."""
    if isinstance(tasks, Collection):
        return iter(order_tasks(tasks)), True
    return iter(tasks), False


# ---------------------------------------------------------------- executors


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


# ---------------------------------------------------------------- local process pool


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


# ---------------------------------------------------------------- dask.distributed


def _check_reachable(address: str, timeout: float) -> None:
    """Raise ConfigError unless a TCP connection to a tcp:// or tls:// ``address`` opens.

    Checked before creating the Client: a Client that fails to connect still tries
    to close itself when garbage-collected and then times out a second time.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"scheduler: {address!r} is not a Dask scheduler address ({exc})") from exc
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"scheduler: cannot reach the Dask scheduler at {address} within {timeout:g} s "
                          f"({exc}); is it running and is the address right?") from exc


class DaskExecutor(_PooledExecutor):
    """Runs tasks on a dask.distributed cluster: an existing one, or a local one it starts.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, ``"tcp://host:port"``.
    local_workers : int, optional
        Start a ``LocalCluster`` of this many worker processes on 127.0.0.1 instead,
        and close it with the executor.
    threads_per_worker : int
        Threads per worker of a local cluster.  1: the numba kernels are
        multi-threaded themselves, and one thread per process keeps memory use
        predictable.
    max_in_flight : int, optional
        Most tasks submitted at once; default ``in_flight_per_worker × `` the
        cluster's worker threads (looked up again every few seconds, so a cluster
        that scales gets more).
    in_flight_per_worker : int
        See ``max_in_flight``.
    connect_timeout : float
        Seconds to wait for the scheduler.
    dashboard : bool
        Serve the local cluster's dashboard on a free port (``dashboard_link``).
    shutdown_timeout : float
        Seconds allowed for closing the client and the local cluster.

    Raises
    ------
    ConfigError
        Both or neither of ``scheduler`` and ``local_workers``; an unreachable
        scheduler (the message names the address).

    Notes
    -----
    The driver gathers every output (it must report it anyway) and passes a
    dependent its dependencies' outputs as values, not as Dask futures.  Outputs
    are small (paths under a staging directory, records), so sending one back
    costs little, and no result stays pinned on a worker: if a worker dies, Dask
    has nothing to recompute behind the driver's back — a task the driver already
    reported, and perhaps committed, never runs twice.  Dask cannot interrupt a
    task already running in a worker thread: cancelling stops pending tasks only;
    closing a local cluster stops its worker processes.
    """

    _NTHREADS_REFRESH = 5.0

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None,
                 threads_per_worker: int = 1, *, max_in_flight: int | None = None,
                 in_flight_per_worker: int = IN_FLIGHT_PER_WORKER, connect_timeout: float = 10.0,
                 dashboard: bool = False, shutdown_timeout: float = 10.0):
        if scheduler is not None and local_workers is not None:
            raise ConfigError("give either a Dask scheduler address or a number of local Dask workers, not both")
        if scheduler is None and local_workers is None:
            raise ConfigError("DaskExecutor needs a scheduler address (scheduler=) or local_workers=")
        if local_workers is not None and (not isinstance(local_workers, int) or local_workers < 1):
            raise ConfigError(f"dask_local: a local Dask cluster needs at least 1 worker, got {local_workers!r}")
        if not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ConfigError(f"threads_per_worker: must be at least 1, got {threads_per_worker!r}")
        super().__init__(max_in_flight=max_in_flight, in_flight_per_worker=in_flight_per_worker)
        # imported here: process-pool workers and serial runs never need dask
        import distributed

        self._distributed = distributed
        self.shutdown_timeout = shutdown_timeout
        self._cluster = None
        if scheduler is not None:
            _check_reachable(scheduler, connect_timeout)
            try:
                self._client = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"scheduler: cannot connect to the Dask scheduler at {scheduler} within "
                                  f"{connect_timeout:g} s ({exc})") from exc
        else:
            self._cluster = distributed.LocalCluster(
                n_workers=local_workers, threads_per_worker=threads_per_worker, processes=True,
                host="127.0.0.1", dashboard_address=":0" if dashboard else None)
            try:
                self._client = distributed.Client(self._cluster, set_as_default=False)
            except BaseException:
                self._cluster.close()
                raise
        # Dask keys must not repeat while the scheduler remembers them; one token per
        # executor and a counter keep a task re-run in a later batch distinct.
        self._token = uuid.uuid4().hex[:8]
        self._submitted = 0
        self._live: dict[str, Any] = {}
        self._as_completed = None
        self._nthreads: tuple[float, int] | None = None
        logger.info("Dask executor on %s", self.scheduler_address)

    def __repr__(self) -> str:
        where = "closed" if self._closed else self.scheduler_address
        return f"DaskExecutor({where})"

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address, e.g. ``"tcp://127.0.0.1:40311"``."""
        return self._client.scheduler.address

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's URL, when one is served."""
        try:
            return self._client.dashboard_link
        except Exception:
            return None

    @property
    def workers(self) -> int:
        now = time.monotonic()
        if self._nthreads is None or now - self._nthreads[0] > self._NTHREADS_REFRESH:
            slots = sum(self._client.nthreads().values())
            if slots == 0:
                logger.warning("the Dask scheduler at %s has no workers (yet)", self.scheduler_address)
            self._nthreads = (now, slots)
        return self._nthreads[1]

    def _schedule(self, stream: Iterator[Task], eager: bool) -> Iterator[Completion]:
        self._as_completed = self._distributed.as_completed(
            loop=self._client.loop, with_results=True, raise_errors=False)
        try:
            yield from super()._schedule(stream, eager)
        finally:
            self._as_completed = None

    def _submit(self, task: Task, inputs: dict[str, TaskOutput]) -> Hashable:
        self._submitted += 1
        future = self._client.submit(_execute, task, inputs, key=f"{task.key}-{self._token}-{self._submitted}",
                                     pure=False)
        self._live[future.key] = future
        self._as_completed.add(future)
        return future.key

    def _wait(self, in_flight: Mapping[Hashable, Task]) -> list[tuple[Hashable, Any]]:
        pairs = []
        for future, result in self._as_completed.next_batch(block=True):
            if future.key in in_flight:
                pairs.append((future.key, (future, result)))
        return pairs

    def _complete(self, task: Task, payload: Any) -> Completion:
        future, result = payload
        self._live.pop(future.key, None)
        status = future.status
        future.release()
        if status == "finished":
            return _completion(task, result)
        if status == "error":  # raised outside the task's own code, e.g. KilledWorker
            _, exc, tb = result
            return Completion(task, None, exc.with_traceback(tb), "")
        if isinstance(result, BaseException):  # cancelled
            return Completion(task, None, result, "")
        return Completion(task, None, RuntimeError(f"task {task.key!r} ended with Dask status {status!r}"), "")

    def _cancel(self, tickets: list[Hashable]) -> None:
        futures = [self._live.pop(key) for key in tickets if key in self._live]
        if futures and self._client is not None:
            try:
                self._client.cancel(futures)
            except Exception as exc:  # a lost scheduler must not hide the reason we cancel
                logger.warning("could not cancel %d Dask task(s): %s", len(futures), exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # close() also runs while another exception propagates (Ctrl-C, a lost
        # scheduler): report trouble here in the log rather than hide that exception
        try:
            self._cancel(list(self._live))
            self._client.close(timeout=self.shutdown_timeout)
        except Exception as exc:
            logger.warning("closing the Dask client failed: %s", exc)
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=self.shutdown_timeout)
            except Exception as exc:
                logger.warning("closing the local Dask cluster failed: %s", exc)


# ---------------------------------------------------------------- choosing one


def _default_workers() -> int:
    # the CPUs this process may use (a batch job's share), not the machine's
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def make_executor(workers: int | None = None, scheduler: str | None = None,
                  dask_local: int | None = None) -> Executor:
    """The executor the command-line options ask for.

    Parameters
    ----------
    workers : int, optional
        Local worker processes; ``0`` runs everything in this process
        (:class:`SerialExecutor`); default: the CPUs available to this process.
        Ignored when ``scheduler`` or ``dask_local`` is given.
    scheduler : str, optional
        Run on the Dask cluster whose scheduler is at this address.
    dask_local : int, optional
        Run on a local Dask cluster of this many worker processes.

    Returns
    -------
    Executor

    Raises
    ------
    ConfigError
        Both ``scheduler`` and ``dask_local``; a negative ``workers``; an
        unreachable scheduler.
    """
    if scheduler is not None and dask_local is not None:
        raise ConfigError("give either a Dask scheduler address (--scheduler) or a local Dask cluster "
                          "(--dask-local), not both")
    if scheduler is not None:
        return DaskExecutor(scheduler=scheduler)
    if dask_local is not None:
        return DaskExecutor(local_workers=dask_local)
    if workers is None:
        workers = _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers: must be 0 (run in this process) or a number of worker processes, "
                          f"got {workers!r}")
    if workers == 0:
        return SerialExecutor()
    return ProcessExecutor(workers)
