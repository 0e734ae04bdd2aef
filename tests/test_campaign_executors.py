"""Executors (serial, local process pool, dask.distributed) and the campaign progress reporter.

The pool and the Dask cluster are real: worker processes started with spawn, a
LocalCluster of 2 worker processes on 127.0.0.1 (one per module).  The task
functions are in hstcal_core.campaign._selftest so workers can import them; each
records its process id and start/end time, which prove where and in what order
work ran.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import threading
import time

import pytest

from hstcal_core.campaign import _selftest as st
from hstcal_core.campaign.executors import (
    Completion,
    DaskExecutor,
    DependencyFailed,
    Executor,
    ProcessExecutor,
    RemoteTraceback,
    SerialExecutor,
    WorkerLost,
    make_executor,
)
from hstcal_core.campaign.progress import Progress, format_seconds
from hstcal_core.errors import ConfigError
from hstcal_core.tasks import Task, order_tasks

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def process_executor():
    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def dask_executor():
    with DaskExecutor(local_workers=2) as executor:
        yield executor


@pytest.fixture(params=["serial", "process", "dask"])
def executor(request) -> Executor:
    if request.param == "serial":
        return SerialExecutor()
    return request.getfixturevalue(f"{request.param}_executor")


@pytest.fixture(params=["process", "dask"])
def parallel_executor(request) -> Executor:
    return request.getfixturevalue(f"{request.param}_executor")


def by_key(completions: list[Completion]) -> dict[str, Completion]:
    keys = [c.key for c in completions]
    assert len(keys) == len(set(keys)), f"a task was reported twice: {keys}"
    return {c.key: c for c in completions}


def record(done: Completion) -> dict:
    assert done.error is None, done.error
    return done.output.records[0]


# ---------------------------------------------------------------- results and dependencies


def test_results_dependency_outputs_and_order(executor):
    tasks = [
        Task("m/a", st.sum_deps, {"value": 1, "seconds": 0.2}),
        Task("m/b", st.sum_deps, {"value": 10, "seconds": 0.1}, deps=("m/a",)),
        Task("m/c", st.sum_deps, {"value": 100}, deps=("m/a",)),
        Task("m/d", st.sum_deps, {"value": 1000}, deps=("m/b", "m/c")),
        Task("m/e", st.sleep_and_return, {"value": "e"}, deps=("m/d",)),
        Task("m/solo", st.return_pid),
    ]
    done = by_key(list(executor.run(tasks)))

    assert set(done) == {t.key for t in tasks}
    assert all(c.ok and c.worker for c in done.values())
    assert [done[k].output.value for k in ("m/a", "m/b", "m/c", "m/d")] == [1, 11, 101, 1112]
    assert record(done["m/e"])["deps"] == {"m/d": 1112}  # exactly its own dependency's output
    assert record(done["m/d"])["deps"] == {"m/b": 11, "m/c": 101}
    for task in tasks:
        for dep in task.deps:
            assert record(done[task.key])["start"] >= record(done[dep])["end"], (task.key, dep)
    if isinstance(executor, SerialExecutor):
        assert done["m/solo"].output.value == os.getpid()
        assert [c.key for c in executor.run(tasks)] == [t.key for t in order_tasks(tasks)]
    else:
        assert done["m/solo"].output.value != os.getpid()


def test_failure_dooms_dependents_but_not_independent_tasks(executor):
    tasks = [
        Task("f/bad", st.raise_error, {"message": "bias level out of range"}),
        Task("f/child", st.sum_deps, {"value": 1}, deps=("f/bad",)),
        Task("f/grandchild", st.sum_deps, {"value": 2}, deps=("f/child",)),
        Task("f/ok1", st.sleep_and_return, {"seconds": 0.1, "value": 1}),
        Task("f/ok2", st.sum_deps, {"value": 2}, deps=("f/ok1",)),
    ]
    done = by_key(list(executor.run(tasks)))

    assert set(done) == {t.key for t in tasks}
    bad = done["f/bad"]
    assert isinstance(bad.error, st.SelftestError)
    assert "bias level out of range" in str(bad.error)
    assert bad.output is None and bad.worker  # it ran somewhere
    if not isinstance(executor, SerialExecutor):
        assert isinstance(bad.error.__cause__, RemoteTraceback)
        assert "raise_error" in str(bad.error.__cause__)  # the worker's traceback travels along

    child = done["f/child"].error
    assert isinstance(child, DependencyFailed)
    assert (child.key, child.dependency, child.failed_key) == ("f/child", "f/bad", "f/bad")
    assert "'f/bad' failed" in str(child) and "bias level out of range" in str(child)
    grandchild = done["f/grandchild"].error
    assert isinstance(grandchild, DependencyFailed)
    assert (grandchild.dependency, grandchild.failed_key) == ("f/child", "f/bad")
    assert done["f/child"].worker == "" and done["f/grandchild"].output is None

    assert done["f/ok1"].ok and done["f/ok2"].ok and done["f/ok2"].output.value == 3


def test_task_returning_something_else_is_an_error(executor):
    done = by_key(list(executor.run([Task("x/pid", os.getpid)])))
    assert isinstance(done["x/pid"].error, TypeError)
    assert "not a TaskOutput" in str(done["x/pid"].error)


def test_bad_plans_are_rejected(executor):
    with pytest.raises(ValueError, match="duplicate task key"):
        executor.run([Task("k", st.write_nothing), Task("k", st.write_nothing)])
    with pytest.raises(ValueError, match="unknown"):
        executor.run([Task("k", st.write_nothing, deps=("nowhere",))])
    with pytest.raises(ValueError, match="cycle"):
        executor.run([Task("p", st.write_nothing, deps=("q",)), Task("q", st.write_nothing, deps=("p",))])


def test_lazy_stream_is_read_as_needed_and_late_dependents_get_outputs(executor):
    pulled: list[str] = []

    def feed():
        for i in range(6):
            for task in (Task(f"c{i}/base", st.sum_deps, {"value": i, "seconds": 0.05}),
                         Task(f"c{i}/week", st.sum_deps, {"value": 100}, deps=(f"c{i}/base",))):
                pulled.append(task.key)
                yield task
        pulled.append("bad")
        yield Task("bad", st.write_nothing, deps=("never-came",))

    completions = []
    pulled_at_first = None
    for done in executor.run(feed()):
        if pulled_at_first is None:
            pulled_at_first = len(pulled)
        completions.append(done)  # holds outputs, as the campaign driver does
    done = by_key(completions)

    assert len(done) == 13
    assert [done[f"c{i}/week"].output.value for i in range(6)] == [100 + i for i in range(6)]
    assert isinstance(done["bad"].error, ValueError) and "unknown" in str(done["bad"].error)
    assert pulled_at_first < len(pulled), "the whole stream was read before the first task finished"


def test_lazy_stream_failures(executor):
    def feed():
        yield Task("s/bad", st.raise_error)
        yield Task("s/ok", st.sleep_and_return, {"seconds": 0.2})
        yield Task("s/late", st.write_nothing, deps=("s/bad",))  # arrives after s/bad failed

    done = by_key(list(executor.run(feed())))
    assert isinstance(done["s/late"].error, DependencyFailed) and done["s/late"].error.dependency == "s/bad"
    assert done["s/ok"].ok

    def duplicated():
        yield Task("s/dup", st.write_nothing)
        yield Task("s/dup", st.write_nothing)

    with pytest.raises(ValueError, match="duplicate task key 's/dup'"):
        list(executor.run(duplicated()))


def test_lazy_dependent_after_its_output_was_dropped_is_a_clear_error():
    def feed():
        yield Task("drop/a", st.sum_deps, {"value": 1})
        yield Task("drop/x", st.write_nothing)
        yield Task("drop/b", st.sum_deps, {"value": 1}, deps=("drop/a",))

    errors = {}
    for done in SerialExecutor().run(feed()):
        errors[done.key] = done.error
        del done  # keeps no output
    assert errors["drop/a"] is None
    assert isinstance(errors["drop/b"], RuntimeError) and "already released" in str(errors["drop/b"])


def test_abandoned_run_leaves_the_executor_usable(parallel_executor):
    tasks = [Task(f"gone/{i}", st.sleep_and_return, {"seconds": 0.1 * (i % 3)}) for i in range(12)]
    for done in parallel_executor.run(tasks):
        assert done.ok
        break
    done = by_key(list(parallel_executor.run([Task("gone/after", st.sum_deps, {"value": 7})])))
    assert done["gone/after"].output.value == 7


def test_completions_come_in_finishing_order(parallel_executor):
    tasks = [Task("race/slow", st.sleep_and_return, {"seconds": 1.0}),
             Task("race/fast", st.sleep_and_return, {"seconds": 0.0})]
    assert [done.key for done in parallel_executor.run(tasks)] == ["race/fast", "race/slow"]


def test_run_can_be_called_for_several_batches(executor):
    for batch in range(2):  # same keys again: a retry in a later batch must run afresh
        tasks = [Task("again/a", st.sum_deps, {"value": batch}),
                 Task("again/b", st.sum_deps, {"value": 10}, deps=("again/a",))]
        done = by_key(list(executor.run(tasks)))
        assert done["again/b"].output.value == 10 + batch


# ---------------------------------------------------------------- parallelism and bounds


def test_work_spreads_over_worker_processes(parallel_executor):
    tasks = [Task(f"spread/{i}", st.sleep_and_return, {"seconds": 0.4, "value": i}) for i in range(4)]
    done = by_key(list(parallel_executor.run(tasks)))

    pids = {record(c)["pid"] for c in done.values()}
    assert len(pids) >= 2 and os.getpid() not in pids
    assert len({c.worker for c in done.values()}) >= 2
    starts = sorted(record(c)["start"] for c in done.values())
    ends = sorted(record(c)["end"] for c in done.values())
    assert starts[1] < ends[0], "no two tasks ever ran at the same time"


def test_in_flight_bound_is_respected(parallel_executor, monkeypatch):
    bound = parallel_executor.max_in_flight
    assert bound == 4  # 2 per worker × 2 workers
    submitted = 0
    reported = 0
    worst = 0
    real_submit = parallel_executor._submit

    def counting_submit(task, inputs):
        nonlocal submitted, worst
        submitted += 1
        worst = max(worst, submitted - reported)
        return real_submit(task, inputs)

    monkeypatch.setattr(parallel_executor, "_submit", counting_submit)
    tasks = [Task(f"bound/{i}", st.sleep_and_return, {"seconds": 0.05}) for i in range(16)]
    for done in parallel_executor.run(tasks):
        assert done.ok
        reported += 1

    assert submitted == reported == 16
    assert worst == bound, f"at most {bound} tasks may be in flight, saw {worst}"
    assert parallel_executor.peak_in_flight == bound


def test_explicit_in_flight_bound():
    assert ProcessExecutor(3).max_in_flight == 6
    assert ProcessExecutor(3, max_in_flight=5).max_in_flight == 5
    with pytest.raises(ConfigError, match="max_in_flight"):
        ProcessExecutor(3, max_in_flight=0)


# ---------------------------------------------------------------- process pool failures


def test_broken_pool_reports_lost_tasks_and_restarts():
    tasks = [Task("oom/victim", st.die_abruptly),
             Task("oom/after", st.return_pid),
             Task("oom/later", st.sleep_and_return, {"value": 5}, deps=("oom/after",))]
    with ProcessExecutor(1, max_in_flight=1) as executor:
        done = by_key(list(executor.run(tasks)))
        assert executor.pool_restarts == 1

    lost = done["oom/victim"].error
    assert isinstance(lost, WorkerLost)
    assert "oom/victim" in str(lost) and "out-of-memory" in str(lost)
    assert done["oom/after"].ok and done["oom/later"].output.value == 5
    assert record(done["oom/later"])["deps"] == {"oom/after": done["oom/after"].output.value}


def test_die_abruptly_refuses_to_end_the_driver():
    done = by_key(list(SerialExecutor().run([Task("suicide", st.die_abruptly)])))
    assert isinstance(done["suicide"].error, st.SelftestError)


def _live(executor: ProcessExecutor):
    return list(executor._pool._processes.values())


def test_ctrl_c_while_waiting_cancels_and_stops_workers():
    tasks = [Task("int/quick", st.write_nothing), Task("int/long", st.sleep_and_return, {"seconds": 60})]
    executor = ProcessExecutor(1)
    processes = []
    timer = None
    with pytest.raises(KeyboardInterrupt):
        for _ in executor.run(tasks):
            processes = _live(executor)
            # a real SIGINT, delivered while the driver waits for the long task
            timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
    interrupted = time.monotonic()
    timer.join()
    assert processes and not any(p.is_alive() for p in processes)
    assert time.monotonic() - interrupted < 5
    with pytest.raises(RuntimeError, match="closed"):
        executor.run(tasks)


def test_ctrl_c_in_the_driver_loop_stops_workers_on_exit():
    tasks = [Task("int2/quick", st.write_nothing), Task("int2/long", st.sleep_and_return, {"seconds": 60})]
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ProcessExecutor(1) as executor:
        for _ in executor.run(tasks):
            processes = _live(executor)
            raise KeyboardInterrupt
    assert not any(p.is_alive() for p in processes)
    assert time.monotonic() - started < 20  # not the 60 s of the long task


# ---------------------------------------------------------------- dask specifics


def test_connect_to_a_running_scheduler(dask_executor):
    address = dask_executor.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    with DaskExecutor(scheduler=address) as remote:
        assert remote.workers == 2
        result = st.check_executor(remote, sleepers=4, seconds=0.3, min_workers=2)
        assert result.ok, result.problems
        assert result.workers <= set(dask_executor._client.nthreads())
    # the cluster belongs to someone else: still running after that client left
    assert by_key(list(dask_executor.run([Task("still/up", st.return_pid)])))["still/up"].ok


def test_unreachable_scheduler_is_a_config_error_quickly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"Dask scheduler at {address}"):
        DaskExecutor(scheduler=address, connect_timeout=0.5)
    assert time.monotonic() - started < 3
    with pytest.raises(ConfigError, match="not a Dask scheduler address"):
        DaskExecutor(scheduler="tcp://nowhere:notaport")


def test_dask_executor_arguments():
    with pytest.raises(ConfigError, match="not both"):
        DaskExecutor(scheduler="tcp://127.0.0.1:1", local_workers=2)
    with pytest.raises(ConfigError, match="needs a scheduler"):
        DaskExecutor()
    with pytest.raises(ConfigError, match="at least 1 worker"):
        DaskExecutor(local_workers=0)


# ---------------------------------------------------------------- make_executor


def test_make_executor_rules(monkeypatch, dask_executor):
    assert isinstance(make_executor(workers=0), SerialExecutor)
    with make_executor(workers=3) as executor:
        assert isinstance(executor, ProcessExecutor) and executor.workers == 3
    with make_executor() as executor:  # the CPUs this process may use
        assert isinstance(executor, ProcessExecutor) and executor.workers >= 1
    with pytest.raises(ConfigError, match="workers"):
        make_executor(workers=-1)
    with pytest.raises(ConfigError, match="not both"):
        make_executor(scheduler="tcp://127.0.0.1:8786", dask_local=2)
    with make_executor(workers=5, scheduler=dask_executor.scheduler_address) as executor:
        assert isinstance(executor, DaskExecutor) and executor.workers == 2

    made = []
    monkeypatch.setattr("hstcal_core.campaign.executors.DaskExecutor",
                        lambda **kwargs: made.append(kwargs) or SerialExecutor())
    make_executor(dask_local=3)
    assert made == [{"local_workers": 3}]


def test_selftest_passes_on_the_serial_executor():
    result = st.check_executor(SerialExecutor(), sleepers=2, seconds=0.0)
    assert result.ok, result.problems
    assert result.pids == {os.getpid()}


# ---------------------------------------------------------------- progress


def test_progress_bar_shows_chunks_tasks_and_eta():
    stream = io.StringIO()
    with Progress(3, enabled=True, stream=stream) as progress:
        progress.add_tasks(4)
        progress.task_done(4)
        progress.chunk_done("2005-03/stis_ccd", "done")
        progress.add_tasks(2)
        progress.task_done(2)
        progress.chunk_done("2005-04/stis_ccd", "failed")
        progress.chunk_done("2005-05/stis_ccd", "done")
    text = stream.getvalue()
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "3/3 chunks" in last and "tasks 6/6" in last and "failed 1" in last
    assert "1/3 chunks" in text and "ETA" in text


def test_progress_logs_one_line_per_chunk_without_a_bar(caplog):
    stream = io.StringIO()
    caplog.set_level(logging.INFO, logger="hstcal_core.campaign.progress")
    with Progress(2, total_tasks=10, stream=stream) as progress:  # StringIO is no terminal
        assert not progress.enabled
        progress.task_done(5)
        progress.chunk_done("2005-03/stis_ccd", "done")
        progress.task_done(5)
        progress.chunk_done("2005-04/stis_ccd", "failed")
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records if r.name == "hstcal_core.campaign.progress"]
    assert len(lines) == 2
    assert lines[0].startswith("chunk 2005-03/stis_ccd done: 1/2 chunks, 5/10 tasks")
    assert "ETA" in lines[0] and "|" not in lines[0] and "#" not in lines[0]
    assert lines[1].startswith("chunk 2005-04/stis_ccd failed: 2/2 chunks, 10/10 tasks")
    assert lines[1].endswith("ETA 00:00")


def test_progress_eta():
    progress = Progress(4, total_tasks=100, enabled=False)
    assert progress.eta() is None
    progress._started -= 10.0
    progress.task_done(25)
    assert progress.eta() == pytest.approx(30.0, rel=0.05)
    growing = Progress(4, enabled=False)
    growing._started -= 10.0
    growing.add_tasks(50)
    growing.task_done(50)
    assert growing.eta() is None  # a growing task total says nothing yet
    growing.chunk_done("a")
    assert growing.eta() == pytest.approx(30.0, rel=0.05)
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "01:05" and format_seconds(None) == "?"
