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

Modules: :mod:`.results` (what is reported), :mod:`.worker` (running one task where
it lands), :mod:`.plan` (dependency bookkeeping), :mod:`.base` (the interface, the
serial executor and the pooled scheduling loop), :mod:`.process`,
:mod:`.dask_executor` and :mod:`.factory` (:func:`make_executor`).
"""

from __future__ import annotations

# the module constants stay reachable where they always were (``as``: a deliberate re-export)
from .base import IN_FLIGHT_PER_WORKER as IN_FLIGHT_PER_WORKER
from .base import LOOKAHEAD_PER_WORKER as LOOKAHEAD_PER_WORKER
from .base import Executor, SerialExecutor
from .dask_executor import DaskExecutor
from .factory import make_executor
from .process import ProcessExecutor
from .results import Completion, DependencyFailed, RemoteTraceback, WorkerLost

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
