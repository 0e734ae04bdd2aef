"""Units of work that executors run: :class:`Task` and its :class:`TaskOutput`.

A stage may split its work into tasks (``Stage.plan``) so a campaign can spread
one chunk over many workers; tasks name the tasks they depend on and receive
their outputs.  A task function must be importable at module level (it is
pickled to worker processes) and must only write under the staging directory it
is given: the driver alone moves products into the stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Task", "TaskOutput", "call_task", "run_serially", "order_tasks", "merge_outputs"]


@dataclass
class TaskOutput:
    """What one task produced.

    Attributes
    ----------
    products : list of Path
        Files written (under the task's staging directory).
    processed : list of str
        Input files used successfully.
    failures : list of (str, str)
        Inputs or products that failed, with the reason.
    skipped : list of (str, str)
        Inputs deliberately left out, with the reason.
    records : list of dict
        Rows for the driver to store (manifest entries, measurements, ...).
    """

    products: list[Path] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    value: Any = None


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(**kwargs)``, or ``fn(**kwargs, deps={key: TaskOutput})``.

    ``deps`` names tasks (of the same plan) that must finish first.
    """

    key: str
    fn: Callable[..., TaskOutput]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    deps: tuple[str, ...] = ()


def call_task(task: Task, deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """Run one task in this process."""
    if task.deps:
        return task.fn(**task.kwargs, deps={k: deps[k] for k in task.deps})
    return task.fn(**task.kwargs)


def order_tasks(tasks: Iterable[Task]) -> list[Task]:
    """Tasks in an order where every dependency comes first (stable otherwise).

    Raises
    ------
    ValueError
        On a duplicate key, an unknown dependency or a cycle.
    """
    tasks = list(tasks)
    by_key: dict[str, Task] = {}
    for t in tasks:
        if t.key in by_key:
            raise ValueError(f"duplicate task key {t.key!r}")
        by_key[t.key] = t
    for t in tasks:
        missing = [d for d in t.deps if d not in by_key]
        if missing:
            raise ValueError(f"task {t.key!r} depends on unknown task(s) {missing}")
    done: set[str] = set()
    ordered: list[Task] = []
    pending = tasks
    while pending:
        ready = [t for t in pending if all(d in done for d in t.deps)]
        if not ready:
            raise ValueError(f"dependency cycle among {[t.key for t in pending]}")
        ordered.extend(ready)
        done.update(t.key for t in ready)
        pending = [t for t in pending if t.key not in done]
    return ordered


def run_serially(tasks: Iterable[Task]) -> dict[str, TaskOutput]:
    """Run a plan in this process, dependencies first."""
    outputs: dict[str, TaskOutput] = {}
    for task in order_tasks(tasks):
        outputs[task.key] = call_task(task, outputs)
    return outputs


def merge_outputs(outputs: Mapping[str, TaskOutput]) -> TaskOutput:
    """All outputs of a plan as one (lists concatenated in task order)."""
    merged = TaskOutput()
    for out in outputs.values():
        merged.products.extend(out.products)
        merged.processed.extend(out.processed)
        merged.failures.extend(out.failures)
        merged.skipped.extend(out.skipped)
        merged.records.extend(out.records)
    return merged
