"""Run tasks on a dask.distributed cluster (``distributed`` is imported only when one is used)."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from ...errors import ConfigError
from ...tasks import Task, TaskOutput
from .base import IN_FLIGHT_PER_WORKER, _PooledExecutor
from .results import Completion
from .worker import _completion, _execute

__all__ = ["DaskExecutor"]

logger = logging.getLogger(__name__)


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
