"""Tiny task functions for checking an executor end to end, and the check itself.

The functions live at module level so spawned worker processes (a process pool, a
Dask worker) can import them by name.  They write nothing to disk.  Each records
where and when it ran in ``TaskOutput.records`` (process id, host, start and end on
``time.monotonic``, which on Linux is one clock for every process of the machine),
so a test or the benchmark can prove that work ran on several processes and that a
dependent started only after its dependencies ended.

:func:`check_executor` runs a small diamond-shaped plan plus a row of sleeping
tasks on any executor and says what went wrong; ``hstcal`` and the benchmarks use
it to check a cluster before a long campaign.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..tasks import Task, TaskOutput

if TYPE_CHECKING:  # pragma: no cover
    from .executors import Completion, Executor

__all__ = [
    "SelftestError",
    "SelftestResult",
    "check_executor",
    "die_abruptly",
    "raise_error",
    "return_pid",
    "selftest_tasks",
    "sleep_and_return",
    "sum_deps",
    "write_nothing",
]


class SelftestError(RuntimeError):
    """The failure :func:`raise_error` raises on purpose."""


def _where(start: float, deps: Mapping[str, TaskOutput] | None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start": start,
        "end": time.monotonic(),
        "deps": {} if deps is None else {key: out.value for key, out in deps.items()},
    }


def sleep_and_return(*, seconds: float = 0.0, value: Any = None,
                     deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """Sleep ``seconds`` and return ``value``; the record names the process and the times."""
    start = time.monotonic()
    if seconds > 0:
        time.sleep(seconds)
    return TaskOutput(value=value, records=[_where(start, deps)])


def sum_deps(*, value: float = 0, seconds: float = 0.0,
             deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """``value`` plus the ``value`` of every dependency's output."""
    start = time.monotonic()
    if seconds > 0:
        time.sleep(seconds)
    total = value + sum(out.value for out in (deps or {}).values())
    return TaskOutput(value=total, records=[_where(start, deps)])


def raise_error(*, message: str = "selftest failure on purpose",
                deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """Raise :class:`SelftestError` with ``message``."""
    raise SelftestError(message)


def return_pid(*, deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """The id of the process that ran the task."""
    return TaskOutput(value=os.getpid())


def write_nothing(**_: Any) -> TaskOutput:
    """Accept anything, produce an empty output."""
    return TaskOutput()


def die_abruptly(*, exit_code: int = 137, deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """End the worker process at once, as the out-of-memory killer would.

    Refuses (raises :class:`SelftestError`) in a process that has no parent
    process, i.e. the driver itself under the serial executor.
    """
    if multiprocessing.parent_process() is None:
        raise SelftestError("die_abruptly refuses to end the driver process (serial executor)")
    os._exit(exit_code)


@dataclass
class SelftestResult:
    """What :func:`check_executor` found.

    Attributes
    ----------
    ok : bool
        No problem found.
    problems : list of str
        Each problem in words.
    workers : set of str
        ``Completion.worker`` of every task that ran.
    pids : set of int
        Process ids that ran a task.
    wall_seconds : float
        Time for the whole check.
    """

    problems: list[str] = field(default_factory=list)
    workers: set[str] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def selftest_tasks(*, sleepers: int = 4, seconds: float = 0.2, prefix: str = "selftest") -> list[Task]:
    """A diamond ``a → (b, c) → d`` summing values, plus ``sleepers`` independent sleeps.

    ``d`` must come out as ``4 + b + c = 4 + (2 + 1) + (3 + 1) = 11``.
    """
    tasks = [
        Task(f"{prefix}/a", sum_deps, {"value": 1, "seconds": seconds / 2}),
        Task(f"{prefix}/b", sum_deps, {"value": 2}, deps=(f"{prefix}/a",)),
        Task(f"{prefix}/c", sum_deps, {"value": 3}, deps=(f"{prefix}/a",)),
        Task(f"{prefix}/d", sum_deps, {"value": 4}, deps=(f"{prefix}/b", f"{prefix}/c")),
    ]
    tasks += [Task(f"{prefix}/sleep{i}", sleep_and_return, {"seconds": seconds, "value": i})
              for i in range(sleepers)]
    return tasks


def check_executor(executor: Executor, *, sleepers: int = 4, seconds: float = 0.2,
                   min_workers: int = 1) -> SelftestResult:
    """Run :func:`selftest_tasks` on ``executor`` and check the results.

    Parameters
    ----------
    executor : Executor
        An open executor; it stays open.
    sleepers, seconds : int, float
        Independent sleeping tasks and how long each sleeps.
    min_workers : int
        Fewest distinct worker processes that must have run a task.

    Returns
    -------
    SelftestResult
    """
    result = SelftestResult()
    tasks = selftest_tasks(sleepers=sleepers, seconds=seconds)
    started = time.monotonic()
    completions: dict[str, Completion] = {c.task.key: c for c in executor.run(tasks)}
    result.wall_seconds = time.monotonic() - started
    for task in tasks:
        done = completions.get(task.key)
        if done is None:
            result.problems.append(f"{task.key}: never reported")
        elif done.error is not None:
            result.problems.append(f"{task.key}: {type(done.error).__name__}: {done.error}")
        else:
            result.workers.add(done.worker)
            result.pids.update(r["pid"] for r in done.output.records)
    if result.problems:
        return result
    d = completions["selftest/d"].output
    if d.value != 11:
        result.problems.append(f"selftest/d: sum of dependency values is {d.value}, expected 11")
    for task in tasks:
        record = completions[task.key].output.records[0]
        for dep in task.deps:
            dep_record = completions[dep].output.records[0]
            # monotonic clocks compare only within one machine
            if dep_record["host"] == record["host"] and record["start"] < dep_record["end"]:
                result.problems.append(f"{task.key} started before its dependency {dep} ended")
    if len(result.pids) < min_workers:
        result.problems.append(f"tasks ran on {len(result.pids)} process(es), expected at least {min_workers}")
    return result
