"""The campaign driver: chunks → archive query → fetch → tasks on workers → stores.

Workers compute; this driver alone writes the stores.  A chunk's products are
staged under ``out/.staging/<chunk id>/`` by its tasks, then moved into place with
``os.replace`` and recorded, together with its exposures and the ``done`` status,
in one database transaction.  A kill at any moment therefore leaves the stores as
before the chunk or as after it; the next run redoes unfinished chunks (staged
files are discarded, downloads already complete are reused) and ends exactly as an
uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive.base import Archive, Dataset, QueryCriteria
from ..errors import ConfigError, HstcalError, InputError
from ..options import resolve_options
from ..registry import Registry, get_registry
from ..stages import Stage, StageContext, stage, stage_params
from ..tasks import Task, TaskOutput, merge_outputs
from .chunks import Chunk, active_windows, anneal_chunks, month_chunks
from .config import CampaignConfig, campaign_config, load_campaign_config
from .lock import StoreLock
from .state import DONE, FAILED, INACTIVE, PENDING, RUNNING, CampaignState, ChunkRow, ExposureOutcome

__all__ = ["Campaign", "CampaignReport", "run_stage_task", "open_archive"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- worker side
def run_stage_task(*, stage_name: str, detector: str, inputs: Sequence[str], out: str,
                   params: Mapping[str, Any]) -> TaskOutput:
    """Run a whole stage on some inputs in a worker (stages without their own plan).

    An input the stage rejects (:class:`InputError`) becomes a failure of the output,
    not an exception, so the chunk goes on.
    """
    from ..stages import run_stage

    try:
        result = run_stage(stage_name, detector=detector, inputs=list(inputs), out=out, **params)
    except InputError as exc:
        where = str(exc.path) if exc.path is not None else f"{stage_name} {detector}"
        return TaskOutput(failures=[(where, exc.problem)])
    failed = {k for k, _ in result.failures} | {k for k, _ in result.skipped}
    return TaskOutput(products=list(result.products),
                      processed=[p for p in inputs if p not in failed],
                      failures=list(result.failures), skipped=list(result.skipped))


def call_namespaced(*, fn, kwargs: Mapping[str, Any], prefix: str,
                    deps: Mapping[str, TaskOutput] | None = None) -> TaskOutput:
    """Call a stage's task function with its own dependency keys (the prefix removed)."""
    if deps is None:
        return fn(**kwargs)
    return fn(**kwargs, deps={k[len(prefix):]: v for k, v in deps.items()})


def _namespaced(task: Task, prefix: str) -> Task:
    """The task under a key unique in the whole campaign (chunk id prefix)."""
    return Task(prefix + task.key, call_namespaced,
                {"fn": task.fn, "kwargs": task.kwargs, "prefix": prefix},
                tuple(prefix + d for d in task.deps))


# --------------------------------------------------------------------------- archive
def open_archive(config: CampaignConfig, engine) -> Archive:
    """The archive backend a campaign names (local index or MAST)."""
    settings = config.archive
    if settings.kind == "local":
        from ..archive.local import LocalArchive

        if settings.root is None or not Path(settings.root).is_dir():
            raise ConfigError(f"archive root {settings.root} is not a directory")
        return LocalArchive(settings.root, engine)
    from ..archive.mast import MastArchive

    return MastArchive(server=settings.server, cloud=settings.cloud, retries=settings.retries,
                       backoff=settings.backoff)


# --------------------------------------------------------------------------- report
@dataclass
class CampaignReport:
    """What one :meth:`Campaign.run` did."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_retried: list[tuple[str, str]] = field(default_factory=list)
    already_done: int = 0
    inactive: int = 0
    processed: int = 0
    rejected: int = 0
    products: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_retried

    def summary(self) -> str:
        text = (f"{len(self.done)} chunk(s) done, {len(self.failed)} failed, "
                f"{self.already_done} already done, {self.inactive} inactive; "
                f"{self.processed} exposure(s) processed, {self.rejected} rejected, "
                f"{self.products} product(s) in {self.seconds:.1f} s")
        if self.not_retried:
            text += (f"; {len(self.not_retried)} failed chunk(s) from earlier runs not retried "
                     f"(use --retry-failed)")
        return text


@dataclass
class _Prepared:
    row: ChunkRow
    ctx: StageContext
    stage: Stage
    tasks: list[Task]
    outcomes: list[ExposureOutcome]
    rootnames: dict[str, str]
    staging: Path
    dest: Path
    scratch: Path | None
    outputs: dict[str, TaskOutput] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


# --------------------------------------------------------------------------- campaign
class Campaign:
    """Stages over date chunks of an archive, resumable, on local processes or Dask.

    Parameters
    ----------
    config : CampaignConfig, optional
        A validated configuration; otherwise built from ``**settings`` (the same keys
        as the YAML file, e.g. ``name=``, ``start=``, ``end=``, ``archive={"root": ...}``,
        ``detectors={"stis_ccd": {"stages": ["anneal"]}}``).
    registry : Registry, optional
        Plugins to use (default: the installed ones).

    Examples
    --------
    >>> c = Campaign.from_yaml("stis.yaml")            # doctest: +SKIP
    >>> report = c.run(workers=4)                        # doctest: +SKIP
    >>> [row.status for row in c.status()]               # doctest: +SKIP
    """

    def __init__(self, config: CampaignConfig | None = None, *,
                 registry: Registry | None = None, **settings: Any):
        if config is None:
            config = campaign_config(settings, origin="Campaign()")
        elif settings:
            raise ConfigError("give Campaign a config or keyword settings, not both")
        self.config = config
        self.registry = registry or get_registry()
        self._jobs = {j.detector: j for j in config.detectors}
        self._validate()

    @classmethod
    def from_yaml(cls, path: str | Path, *, registry: Registry | None = None) -> "Campaign":
        """Load a campaign YAML file (see :mod:`hstcal_core.campaign.config`)."""
        return cls(load_campaign_config(path), registry=registry)

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        cfg = self.config
        for job in cfg.detectors:
            entry = self.registry.entry(job.detector)
            declared: set[str] = set()
            for name in job.stages:
                st = stage(name)
                entry.require_stage(name)
                purposes = job.purposes or st.purposes
                if not purposes:
                    raise ConfigError(f"stage '{name}' declares no archive purposes: give "
                                      f"detectors.{job.detector}.purposes (e.g. [dark])")
                if name == "anneal" and cfg.chunking != "anneal":
                    raise ConfigError("stage 'anneal' builds whole anneal months: use "
                                      "'chunking: anneal' (with 'anneal_table')")
                declared |= {p.name for p in stage_params(st, entry)}
                for purpose in purposes:
                    self._criteria(job.detector, purpose)  # the plugin must answer now
            unknown = sorted(set(job.params) - declared)
            if unknown:
                raise ConfigError(f"detectors.{job.detector}.params: unknown parameter(s) "
                                  f"{unknown}; valid for stages {list(job.stages)}: "
                                  f"{sorted(declared)}")

    def _criteria(self, detector: str, purpose: str) -> QueryCriteria:
        job = self._jobs[detector]
        entry = self.registry.entry(detector)
        answer = self.registry.hooks.query(detector=entry.detector,
                                           criteria={"purpose": purpose, **job.criteria})
        if answer is None:
            raise ConfigError(f"no plugin answers the query hook for {detector} "
                              f"(purpose '{purpose}')")
        return answer

    # ------------------------------------------------------------------ chunks
    def chunks(self) -> list[Chunk]:
        """The campaign's calendar (before inactive windows)."""
        cfg = self.config
        if cfg.chunking == "anneal":
            from ..reffiles.anneal import read_anneal_table

            return anneal_chunks(read_anneal_table(cfg.anneal_table), cfg.start, cfg.end)
        return month_chunks(cfg.start, cfg.end)

    def _units(self):
        for chunk in self.chunks():
            for job in self.config.detectors:
                det = self.registry.entry(job.detector).detector
                inactive = not active_windows(chunk, det.inactive)
                for name in job.stages:
                    yield (job.detector, name, chunk.key, chunk.start_mjd, chunk.end_mjd, inactive)

    def _connect(self):
        from ..db import connect

        return connect(self.config.database)

    def status(self) -> list[ChunkRow]:
        """Every chunk's state; chunks no run has reached yet are listed as pending/inactive.

        Only reads chunk rows, so it is safe while a run holds the lock.
        """
        state = CampaignState(self._connect(), self.config.name, self.config.fingerprint())
        known = {r.unit: r for r in state.chunks()}
        rows = []
        for det, st, key, start, end, inactive in self._units():
            rows.append(known.pop((det, st, key), None) or ChunkRow(
                -1, det, st, key, start, end, INACTIVE if inactive else PENDING, None, (), 0,
                0, 0, 0))
        rows.extend(known.values())  # chunks of an earlier, wider configuration
        return sorted(rows, key=lambda r: (r.start_mjd, r.detector, r.stage))

    def exposures(self) -> list[dict]:
        """Every exposure outcome recorded so far (processed / rejected with reason)."""
        return CampaignState(self._connect(), self.config.name,
                             self.config.fingerprint()).exposures()

    # ------------------------------------------------------------------ run
    def run(self, *, workers: int | None = None, scheduler: str | None = None,
            dask_local: int | None = None, retry_failed: bool = False,
            keep_downloads: bool | None = None, progress: bool | None = None) -> CampaignReport:
        """Run every chunk not yet done; returns a :class:`CampaignReport`.

        Parameters
        ----------
        workers : int, optional
            Local worker processes (0: run in this process).  Default: the config's, else
            the number of CPUs.
        scheduler : str, optional
            Address of a running dask.distributed scheduler (``tcp://host:8786``).
        dask_local : int, optional
            Start a local Dask cluster with this many worker processes.
        retry_failed : bool
            Also rerun chunks that failed in earlier runs.
        keep_downloads : bool, optional
            Keep scratch downloads after their chunk is stored.
        progress : bool, optional
            Force the progress bar on/off (default: only on a terminal).
        """
        from .executors import make_executor
        from .progress import Progress

        cfg = self.config
        t0 = time.monotonic()
        keep = cfg.keep_downloads if keep_downloads is None else keep_downloads
        ex = cfg.executor
        if scheduler is None and dask_local is None and workers is None:
            workers, scheduler, dask_local = ex.workers, ex.scheduler, ex.dask_local
        engine = self._connect()
        cfg.out.mkdir(parents=True, exist_ok=True)
        report = CampaignReport()
        self._run_token = f"{os.getpid()}-{time.time_ns()}"
        with StoreLock(cfg.out, cfg.name, engine):
            state = CampaignState(engine, cfg.name, cfg.fingerprint())
            if state.previous_fingerprint != state.fingerprint:
                log.warning("campaign %s: its configuration changed since chunks were done; "
                            "done chunks are kept (use a new name to rebuild them)", cfg.name)
                state.accept_fingerprint()
            state.ensure_chunks(self._units())
            rows = state.chunks()
            self._cleanup(rows, keep)
            todo = []
            for row in rows:
                if row.status == DONE:
                    report.already_done += 1
                elif row.status == INACTIVE:
                    report.inactive += 1
                elif row.status == FAILED and not retry_failed:
                    report.not_retried.append(("/".join(row.unit), row.error or ""))
                elif row.status in (PENDING, RUNNING, FAILED):
                    todo.append(row)
            log.info("campaign %s: %d chunk(s) to run, %d done, %d inactive", cfg.name,
                     len(todo), report.already_done, report.inactive)
            if todo:
                archive = open_archive(cfg, engine)
                if cfg.archive.kind == "local" and cfg.archive.index:
                    archive.index()
                with make_executor(workers=workers, scheduler=scheduler,
                                   dask_local=dask_local) as executor, \
                        Progress(len(todo), enabled=progress) as bar:
                    self._drive(state, archive, executor, todo, report, keep, bar)
        report.seconds = time.monotonic() - t0
        log.info("campaign %s: %s", cfg.name, report.summary())
        return report

    def _cleanup(self, rows: Sequence[ChunkRow], keep: bool) -> None:
        """Discard staging left by a killed run; drop downloads of chunks already stored."""
        shutil.rmtree(self.config.out / ".staging", ignore_errors=True)
        if keep:
            return
        for row in rows:
            if row.status == DONE:
                shutil.rmtree(self._scratch(row), ignore_errors=True)

    def _scratch(self, row: ChunkRow) -> Path:
        return self.config.scratch / _safe(self.config.name) / _safe(row.chunk) / row.detector

    # ------------------------------------------------------------------ driver loop
    def _drive(self, state, archive, executor, todo, report, keep, bar) -> None:
        """Stream chunks to the executor: a chunk is prepared (queried, downloaded) only when
        the workers have room for its tasks, and stored the moment its last task ends."""
        prepared: dict[int, _Prepared] = {}

        def feed() -> Iterator[Task]:
            for row in todo:
                state.mark_running(row.id)
                try:
                    prep = self._prepare(row, archive)
                except HstcalError as exc:
                    self._fail(state, row, f"{type(exc).__name__}: {exc}", report, bar)
                    continue
                if not prep.tasks:
                    self._store(state, prep, report, bar, keep, archive)
                    continue
                prepared[row.id] = prep
                bar.add_tasks(len(prep.tasks))
                yield from prep.tasks

        for done in executor.run(feed()):
            cid = int(done.task.key.split(":", 1)[0])
            prep = prepared[cid]
            if done.error is not None:
                prep.errors[done.task.key] = done.error
                log.error("%s: task %s failed: %s", "/".join(prep.row.unit), done.task.key,
                          done.error)
            else:
                prep.outputs[done.task.key] = done.output
            bar.task_done()
            if len(prep.outputs) + len(prep.errors) == len(prep.tasks):
                del prepared[cid]
                if prep.errors:
                    shutil.rmtree(prep.staging, ignore_errors=True)
                    text = "; ".join(f"{k.split(':', 1)[1]}: {type(e).__name__}: {e}"
                                     for k, e in prep.errors.items())
                    self._fail(state, prep.row, text, report, bar)
                else:
                    self._store(state, prep, report, bar, keep, archive)

    def _fail(self, state, row: ChunkRow, error: str, report, bar) -> None:
        unit = "/".join(row.unit)
        log.error("chunk %s failed: %s", unit, error)
        state.mark_failed(row.id, error)
        report.failed.append((unit, error))
        bar.chunk_done(unit, FAILED)

    # ------------------------------------------------------------------ prepare
    def _prepare(self, row: ChunkRow, archive: Archive) -> _Prepared:
        cfg = self.config
        job = self._jobs[row.detector]
        entry = self.registry.entry(row.detector)
        st = stage(row.stage)
        windows = active_windows(Chunk(row.chunk, row.start_mjd, row.end_mjd),
                                 entry.detector.inactive)
        found: dict[str, tuple[Dataset, QueryCriteria]] = {}
        for purpose in job.purposes or st.purposes:
            criteria = self._criteria(row.detector, purpose)
            for lo, hi in windows:
                for ds in archive.query(criteria.between(lo, hi)):
                    found.setdefault(ds.rootname, (ds, criteria))
        scratch = None if archive.local else self._scratch(row)
        outcomes: list[ExposureOutcome] = []
        inputs: list[Path] = []
        rootnames: dict[str, str] = {}
        for root in sorted(found, key=lambda r: (found[r][0].start_mjd, r)):
            ds, criteria = found[root]
            missing = [t for t in criteria.file_types if ds.file(t) is None]
            if missing:
                outcomes.append(ExposureOutcome(root, None, "rejected",
                                                f"the archive has no {'/'.join(missing)} file"))
                continue
            # A failed fetch (archive down, file changed since indexing) fails the chunk,
            # so a later run retries it: it says nothing about the exposure itself.
            paths = archive.fetch(ds, scratch) if scratch else archive.fetch(ds, Path("."))
            primary = Path(paths[criteria.file_types[0]])
            if criteria.header and not archive.local:
                from ..fitsio import read_headers

                try:
                    why = criteria.header_mismatch(read_headers(primary)[0])
                except InputError as exc:
                    why = exc.problem
                if why:
                    outcomes.append(ExposureOutcome(root, str(primary), "rejected", why))
                    continue
            inputs.append(primary)
            rootnames[str(primary)] = root
        log.info("%s: %d exposure(s) to process, %d rejected before processing",
                 "/".join(row.unit), len(inputs), len(outcomes))

        # One staging tree per run: a worker orphaned by a killed driver can only write
        # into its own run's tree, which no later run ever moves into the stores.
        staging = cfg.out / ".staging" / self._run_token / str(row.id)
        shutil.rmtree(staging, ignore_errors=True)
        dest = cfg.out / row.detector / row.stage
        params = dict(job.params)
        declared = {p.name for p in stage_params(st, entry)}
        params = {k: v for k, v in params.items() if k in declared}
        if "anneal_table" in declared and cfg.anneal_table and "anneal_table" not in params:
            params["anneal_table"] = str(cfg.anneal_table)
        if "store" in declared:  # the driver appends each chunk as one batch (finish)
            params["store"] = str(cfg.store)
            params["store_batch"] = "/".join(row.unit)
        options = resolve_options(stage_params(st, entry),
                                  plugin_defaults=entry.defaults.get(st.name, {}),
                                  config=params, config_origin=f"{cfg.name}: detectors."
                                                               f"{row.detector}.params")
        if st.needs_out == "dir":
            out = staging
        else:
            out = staging / _safe(row.chunk)
        ctx = StageContext(registry=self.registry, entry=entry, stage=st, inputs=inputs,
                           options=options, out=out)
        tasks: list[Task] = []
        if inputs:
            if st.plan is not None:
                planned = st.plan(ctx)
            elif st.needs_out == "dir":
                planned = [Task("all", run_stage_task, dict(
                    stage_name=st.name, detector=row.detector, inputs=[str(p) for p in inputs],
                    out=str(out), params=options.to_dict()))]
            elif st.name == "calibrate":
                planned = [Task(rootnames[str(p)], run_stage_task, dict(
                    stage_name=st.name, detector=row.detector, inputs=[str(p)],
                    out=str(out / f"{rootnames[str(p)]}_{st.name}.fits"),
                    params=options.to_dict())) for p in inputs]
            else:
                planned = [Task("all", run_stage_task, dict(
                    stage_name=st.name, detector=row.detector, inputs=[str(p) for p in inputs],
                    out=str(out / f"{row.detector}_{_safe(row.chunk)}_{st.name}.fits"),
                    params=options.to_dict()))]
            tasks = [_namespaced(t, f"{row.id}:") for t in planned]
        return _Prepared(row, ctx, st, tasks, outcomes, rootnames, staging, dest, scratch)

    # ------------------------------------------------------------------ store
    def _store(self, state, prep: _Prepared, report, bar, keep: bool, archive) -> None:
        """Move staged products into place, then record the chunk in one transaction."""
        unit = "/".join(prep.row.unit)
        outputs = {k.split(":", 1)[1]: v for k, v in prep.outputs.items()}
        if prep.stage.finish is not None and outputs:
            result = prep.stage.finish(prep.ctx, outputs)
            failures, skipped = list(result.failures), list(result.skipped)
        else:
            merged = merge_outputs(outputs)
            failures, skipped = merged.failures, merged.skipped
        moved = _move_tree(prep.staging, prep.dest)
        outcomes = list(prep.outcomes)
        bad = {}
        for what, why in failures + skipped:
            bad.setdefault(what, why)
        problems = []
        for what, why in failures + skipped:
            if what not in prep.rootnames:
                problems.append(f"{what}: {why}")
        for path, root in prep.rootnames.items():
            if path in bad:
                outcomes.append(ExposureOutcome(root, path, "rejected", bad[path]))
            else:
                outcomes.append(ExposureOutcome(root, path, "processed"))
        rel = [str(p.relative_to(self.config.out)) for p in moved]
        state.mark_done(prep.row.id, outcomes, rel, problems)
        shutil.rmtree(prep.staging, ignore_errors=True)
        if prep.scratch is not None and not keep:
            shutil.rmtree(prep.scratch, ignore_errors=True)
        n_rej = sum(o.status == "rejected" for o in outcomes)
        report.done.append(unit)
        report.processed += len(outcomes) - n_rej
        report.rejected += n_rej
        report.products += len(moved)
        bar.chunk_done(unit, DONE)
        log.info("chunk %s stored: %d product(s), %d exposure(s) processed, %d rejected",
                 unit, len(moved), len(outcomes) - n_rej, n_rej)


def _move_tree(src: Path, dest: Path) -> list[Path]:
    """``os.replace`` every file under ``src`` to the same relative path under ``dest``."""
    moved = []
    if not src.exists():
        return moved
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an interrupted atomic write of a worker
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(target)
    return moved
