"""Dependency bookkeeping: which tasks are ready, which wait, which are doomed, whose outputs to keep."""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Collection, Iterable, Iterator

from ...tasks import Task, TaskOutput, order_tasks
from .results import Completion, DependencyFailed


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
