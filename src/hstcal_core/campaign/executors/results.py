"""What an executor reports: a :class:`Completion` per task, and the errors particular to executors."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import HstcalError
from ...tasks import Task, TaskOutput

__all__ = ["Completion", "DependencyFailed", "RemoteTraceback", "WorkerLost"]


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
