"""Campaign configuration: a YAML file (like HSTcosmicrays' ``pipeline_config.yaml``) or keywords.

Example::

    name: stis-2005q1
    start: 2005-01-01          # first day
    end: 2005-04-01            # first day after (exclusive)
    chunking: anneal           # month (default) | anneal
    anneal_table: anneals.yml  # required for chunking: anneal
    archive:
      kind: local              # local (default, offline) | mast
      root: archive/           # local: the directory tree to index
      server: https://mast.stsci.edu   # mast: the MAST server
      cloud: false             # mast: fetch from the public HST copy on AWS
      retries: 4               # mast: download attempts after the first, with
      backoff: 2.0             #   doubling waits from this many seconds
    database: campaign.sqlite  # a path (SQLite) or a SQLAlchemy URL (postgresql://...)
    out: products/             # FITS products
    store: products/census.h5  # the cosmic-ray census store (default: out/census.h5)
    scratch: scratch/          # downloads, deleted once their chunk is stored
    keep_downloads: false
    executor: {workers: 2}     # or {scheduler: tcp://host:8786} or {dask_local: 4}
    detectors:
      stis_ccd:
        stages: [anneal]
        purposes: [bias, dark]             # default: what the stages declare
        criteria: {proposals: ["10017"]}   # passed to the plugin's query hook
        params: {crsigmas: [6, 5, 4]}      # stage parameters

Relative paths are relative to the YAML file.  Site settings missing from the file
come from ``HSTCAL_DATABASE``, ``HSTCAL_ARCHIVE``, ``HSTCAL_MAST_SERVER`` and
``HSTCAL_DOWNLOAD_DIR``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["ArchiveSettings", "ExecutorSettings", "DetectorJob", "CampaignConfig",
           "load_campaign_config", "campaign_config"]

_TOP_KEYS = {"name", "start", "end", "chunking", "anneal_table", "archive", "database", "out",
             "scratch", "keep_downloads", "executor", "detectors", "store"}
_ARCHIVE_KEYS = {"kind", "root", "server", "cloud", "retries", "backoff", "index"}
_EXECUTOR_KEYS = {"workers", "scheduler", "dask_local"}
_JOB_KEYS = {"stages", "purposes", "criteria", "params"}


@dataclass(frozen=True)
class ArchiveSettings:
    """Where exposures come from: ``kind`` local (``root``) or mast (``server``, ``cloud``)."""

    kind: str = "local"
    root: Path | None = None
    server: str = "https://mast.stsci.edu"
    cloud: bool = False
    retries: int = 4
    backoff: float = 2.0
    index: bool = True


@dataclass(frozen=True)
class ExecutorSettings:
    """How tasks run: a local process pool (``workers``) or dask.distributed."""

    workers: int | None = None
    scheduler: str | None = None
    dask_local: int | None = None


@dataclass(frozen=True)
class DetectorJob:
    """The stages to run for one detector, the query overrides and stage parameters.

    ``purposes`` (``query`` hook purposes, e.g. ``("dark",)``) replaces the stages' own.
    """

    detector: str
    stages: tuple[str, ...]
    purposes: tuple[str, ...] = ()
    criteria: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign definition (see the module docstring for the YAML form)."""

    name: str
    start: dt.date
    end: dt.date
    detectors: tuple[DetectorJob, ...]
    out: Path
    database: str
    scratch: Path
    archive: ArchiveSettings = ArchiveSettings()
    chunking: str = "month"
    anneal_table: Path | None = None
    keep_downloads: bool = False
    executor: ExecutorSettings = ExecutorSettings()
    store: Path | None = None

    def fingerprint(self) -> str:
        """Hash of what decides the products (not where they go or how they run)."""
        data = {"start": str(self.start), "end": str(self.end), "chunking": self.chunking,
                "anneal_table": str(self.anneal_table),
                "detectors": [asdict(j) for j in self.detectors]}
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _date(value: Any, key: str, origin: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{origin}: '{key}' must be a date YYYY-MM-DD, got {value!r}") from None


def _unknown(keys, allowed, where: str, origin: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise ConfigError(f"{origin}: unknown key(s) {extra} in {where}; valid: {sorted(allowed)}")


def _mapping(value: Any, key: str, origin: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{origin}: '{key}' must be a mapping, got {type(value).__name__}")
    return dict(value)


def _float(value: Any, key: str, origin: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: '{key}' must be a number, got {value!r}") from None
    if x < 0:
        raise ConfigError(f"{origin}: '{key}' must be >= 0, got {x}")
    return x


def _int_or_none(value: Any, key: str, origin: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: '{key}' must be an integer, got {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{origin}: '{key}' must be >= {minimum}, got {n}")
    return n


def campaign_config(data: Mapping[str, Any], *, base: Path | None = None,
                    origin: str = "campaign") -> CampaignConfig:
    """Validate a campaign mapping (errors name the key) and resolve paths against ``base``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: top level must be a mapping")
    _unknown(data, _TOP_KEYS, "the campaign", origin)
    base = Path(base or Path.cwd())

    def path(value: Any) -> Path:
        p = Path(os.path.expandvars(str(value))).expanduser()
        return p if p.is_absolute() else (base / p)

    for key in ("name", "start", "end", "detectors"):
        if data.get(key) in (None, "", {}):
            raise ConfigError(f"{origin}: '{key}' is required")
    name = str(data["name"])
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"{origin}: 'name' {name!r} may only hold letters, digits, - _ .")
    start, end = _date(data["start"], "start", origin), _date(data["end"], "end", origin)
    if end <= start:
        raise ConfigError(f"{origin}: 'end' ({end}) must be after 'start' ({start})")

    chunking = str(data.get("chunking", "month"))
    if chunking not in ("month", "anneal"):
        raise ConfigError(f"{origin}: 'chunking' must be 'month' or 'anneal', got {chunking!r}")
    anneal_table = path(data["anneal_table"]) if data.get("anneal_table") else None
    if chunking == "anneal" and anneal_table is None:
        raise ConfigError(f"{origin}: chunking 'anneal' needs 'anneal_table'")

    arch = _mapping(data.get("archive"), "archive", origin)
    _unknown(arch, _ARCHIVE_KEYS, "'archive'", origin)
    kind = str(arch.get("kind", "local"))
    if kind not in ("local", "mast"):
        raise ConfigError(f"{origin}: archive 'kind' must be 'local' or 'mast', got {kind!r}")
    root = arch.get("root", os.environ.get("HSTCAL_ARCHIVE"))
    if kind == "local" and not root:
        raise ConfigError(f"{origin}: a local archive needs archive 'root' (or HSTCAL_ARCHIVE)")
    archive = ArchiveSettings(
        kind=kind, root=path(root) if root else None,
        server=str(arch.get("server", os.environ.get("HSTCAL_MAST_SERVER",
                                                     "https://mast.stsci.edu"))).rstrip("/"),
        cloud=bool(arch.get("cloud", False)),
        retries=_int_or_none(arch.get("retries", 4), "archive.retries", origin) or 0,
        backoff=_float(arch.get("backoff", 2.0), "archive.backoff", origin),
        index=bool(arch.get("index", True)))

    out = path(data.get("out", "products"))
    database = data.get("database", os.environ.get("HSTCAL_DATABASE"))
    if database is None:
        database = f"sqlite:///{(out / 'campaign.sqlite').resolve()}"
    elif "://" not in str(database):
        database = f"sqlite:///{path(database).resolve()}"
    scratch = data.get("scratch", os.environ.get("HSTCAL_DOWNLOAD_DIR"))
    scratch = path(scratch) if scratch else out / ".scratch"

    ex = _mapping(data.get("executor"), "executor", origin)
    _unknown(ex, _EXECUTOR_KEYS, "'executor'", origin)
    executor = ExecutorSettings(
        workers=_int_or_none(ex.get("workers"), "executor.workers", origin),
        scheduler=str(ex["scheduler"]) if ex.get("scheduler") else None,
        dask_local=_int_or_none(ex.get("dask_local"), "executor.dask_local", origin, 1))
    if executor.scheduler and executor.dask_local:
        raise ConfigError(f"{origin}: executor takes 'scheduler' or 'dask_local', not both")

    jobs_data = data["detectors"]
    if isinstance(jobs_data, list):  # [{detector: x, stages: [...]}, ...]
        jobs_data = {j.get("detector"): {k: v for k, v in j.items() if k != "detector"}
                     for j in jobs_data if isinstance(j, Mapping)}
    jobs_data = _mapping(jobs_data, "detectors", origin)
    jobs = []
    for det, spec in jobs_data.items():
        spec = _mapping(spec, f"detectors.{det}", origin)
        _unknown(spec, _JOB_KEYS, f"'detectors.{det}'", origin)
        stages = spec.get("stages")
        if isinstance(stages, str):
            stages = [stages]
        if not stages:
            raise ConfigError(f"{origin}: detectors.{det} needs 'stages'")
        jobs.append(DetectorJob(
            detector=str(det), stages=tuple(str(s) for s in stages),
            purposes=tuple(str(p) for p in ([spec["purposes"]] if isinstance(
                spec.get("purposes"), str) else spec.get("purposes") or ())),
            criteria=_mapping(spec.get("criteria"), f"detectors.{det}.criteria", origin),
            params=_mapping(spec.get("params"), f"detectors.{det}.params", origin)))

    return CampaignConfig(name=name, start=start, end=end, detectors=tuple(jobs), out=out,
                          database=str(database), scratch=scratch, archive=archive,
                          chunking=chunking, anneal_table=anneal_table,
                          keep_downloads=bool(data.get("keep_downloads", False)),
                          executor=executor,
                          store=path(data["store"]) if data.get("store") else out / "census.h5")


def load_campaign_config(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign YAML file (``safe_load``); errors name the file and key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read campaign file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return campaign_config(data or {}, base=path.resolve().parent, origin=str(path))
