"""Choose the executor the command-line options ask for."""

from __future__ import annotations

import os

from ...errors import ConfigError
from .base import Executor

__all__ = ["make_executor"]


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
    # Looked up on the package when called, not bound at import: the executors are
    # named ``hstcal_core.campaign.executors.<Name>`` and replaced there in tests.
    from . import DaskExecutor, ProcessExecutor, SerialExecutor

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
