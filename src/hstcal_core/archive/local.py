"""The local archive: a directory tree of HST files, indexed in the database (the offline default).

:class:`LocalArchive` walks a directory for FITS files named as HST names them
(``<rootname>_<type>.fits[.gz]``), reads each file's headers once with
:func:`~hstcal_core.archive.headers.describe_file` and keeps what it learnt in
the ``archive_files`` table of :data:`hstcal_core.db.metadata`.  Re-indexing is
incremental: a file whose size and modification time are unchanged is not read
again.  Queries are answered from the index in SQL, so choosing a month of
STIS darks among a million files takes milliseconds, and :meth:`LocalArchive.fetch`
hands back the files where they lie (never copied, never modified).

One indexer per database at a time; readers (queries, campaigns) may run alongside it.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..db import metadata
from ..errors import ConfigError, InputError
from .base import ArchiveFile, Dataset, QueryCriteria, match_name
from .headers import FITS_SUFFIXES, describe_file, file_checksum, split_name

__all__ = ["ArchiveStats", "IndexReport", "LocalArchive", "archive_files"]

log = logging.getLogger(__name__)

archive_files = sa.Table(
    "archive_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False, unique=True),
    sa.Column("root", sa.String(1024), nullable=False),
    sa.Column("rootname", sa.String(64), nullable=False),
    sa.Column("file_type", sa.String(32), nullable=False),
    sa.Column("instrument", sa.String(16), nullable=False, default=""),
    sa.Column("detector", sa.String(16), nullable=False, default=""),
    sa.Column("instrument_name", sa.String(32), nullable=False, default=""),
    sa.Column("target", sa.String(68), nullable=False, default=""),
    sa.Column("intent", sa.String(16), nullable=False, default=""),
    sa.Column("obstype", sa.String(16), nullable=False, default=""),
    sa.Column("proposal", sa.String(16), nullable=False, default=""),
    sa.Column("start_mjd", sa.Float(precision=53)),
    sa.Column("end_mjd", sa.Float(precision=53)),
    sa.Column("exptime", sa.Float(precision=53)),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("checksum", sa.String(80)),
    sa.Column("header", sa.JSON, nullable=False, default=dict),
    sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_archive_files_instrument_start", "instrument_name", "start_mjd"),
    sa.Index("ix_archive_files_rootname", "rootname"),
    # for instrument-name patterns (ACS/*), which the composite index cannot serve
    sa.Index("ix_archive_files_start", "start_mjd"),
)

# Columns a query needs; mtime and indexing time stay in the database.
_QUERY_COLUMNS = ("path", "rootname", "file_type", "instrument_name", "target", "intent",
                  "proposal", "start_mjd", "end_mjd", "exptime", "size", "checksum", "header")

# Warnings astropy gives for files whose bytes stop short or do not add up: corrupt, not indexed.
_CORRUPT_HINTS = ("truncated", "corrupt", "not multiple of 2880")


@dataclass
class IndexReport:
    """What one :meth:`LocalArchive.index` run did.

    Attributes
    ----------
    root : str
        The archive directory indexed.
    added, updated, removed, unchanged : int
        Files newly indexed, re-read because their size or modification time
        changed, whose rows were deleted (file gone, or now unreadable), and
        left alone.
    bad : list of (str, str)
        ``(path, reason)`` of files that could not be read; they are not indexed.
    seconds : float
        Wall-clock duration of the run.
    """

    root: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def indexed(self) -> int:
        """Files in the index for this root after the run."""
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        """One line: ``3 added, 1 updated, 0 removed, 10 unchanged, 1 bad``."""
        return (f"{self.added} added, {self.updated} updated, {self.removed} removed, "
                f"{self.unchanged} unchanged, {len(self.bad)} bad")


@dataclass(frozen=True)
class ArchiveStats:
    """Summary of an index: file counts per instrument name and file type, and the time span.

    ``start_mjd``/``end_mjd`` are the earliest exposure start and latest exposure
    end (None for an empty index); ``by_instrument_name`` counts files by their
    own ``instrument_name`` (SPT files carry no DETECTOR, so ``STIS`` appears
    beside ``STIS/CCD``).
    """

    roots: tuple[str, ...]
    files: int
    datasets: int
    total_bytes: int
    by_instrument_name: dict[str, int]
    by_file_type: dict[str, int]
    start_mjd: float | None
    end_mjd: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"roots": list(self.roots), "files": self.files, "datasets": self.datasets,
                "total_bytes": self.total_bytes, "by_instrument_name": self.by_instrument_name,
                "by_file_type": self.by_file_type, "start_mjd": self.start_mjd,
                "end_mjd": self.end_mjd}


class LocalArchive:
    """A directory of HST files answering :class:`~hstcal_core.archive.base.QueryCriteria` offline.

    Parameters
    ----------
    root : str, Path or None
        The archive directory.  ``None`` means every root indexed in the database
        (for :meth:`query` and :meth:`stats`; :meth:`index` needs a directory).
    engine : sqlalchemy.Engine
        Database holding the index (see :func:`hstcal_core.db.connect`); the
        ``archive_files`` table is created if missing.
    batch_size : int
        Files written per transaction while indexing.

    Notes
    -----
    Implements the :class:`~hstcal_core.archive.base.Archive` protocol
    (``name = "local"``, ``local = True``): fetched paths are the archive's own
    files, which callers must never delete or modify.
    """

    name = "local"
    local = True

    def __init__(self, root: str | Path | None, engine: sa.Engine, *, batch_size: int = 500):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.root: Path | None = None if root is None else Path(root).expanduser().resolve()
        self.engine = engine
        self.batch_size = int(batch_size)
        try:
            metadata.create_all(engine, tables=[archive_files], checkfirst=True)
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"cannot open database {engine.url!r}: {exc.orig}") from None

    def __repr__(self) -> str:
        return f"LocalArchive({str(self.root)!r}, {self.engine.url!r})"

    # ------------------------------------------------------------------ indexing
    def index(self, *, checksums: bool = True) -> IndexReport:
        """Bring the index of :attr:`root` up to date with the files on disk.

        Files with unchanged ``(size, mtime_ns)`` are not read; new and changed
        files are read (headers, and an MD5 checksum when ``checksums``); rows of
        files that disappeared, or that became unreadable, are deleted.  Each
        batch of :attr:`batch_size` files is one transaction, so an interrupted
        run loses at most one batch and a rerun completes it.  Hidden
        directories (``.hstcal``, ``.git``) are not walked.

        Parameters
        ----------
        checksums : bool
            Compute ``md5:`` checksums of new and changed files (reads every byte).

        Returns
        -------
        IndexReport
            Counts of added, updated, removed and unchanged files, and the
            unreadable ones with their reasons.

        Raises
        ------
        InputError
            When the root is not an existing directory.
        """
        root = self._require_root()
        began = time.perf_counter()
        report = IndexReport(root=str(root))
        known = self._known_files(root)
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        pending_counts = {"added": 0, "updated": 0}
        now = datetime.now(timezone.utc)

        def flush() -> None:
            if rows:
                self._write(rows)
                report.added += pending_counts["added"]
                report.updated += pending_counts["updated"]
                rows.clear()
                pending_counts.update(added=0, updated=0)

        for count, path in enumerate(self._walk(root), 1):
            key = str(path)
            try:
                stat = path.stat()
            except OSError as exc:  # vanished between listing and stat
                report.bad.append((key, f"cannot stat: {exc.strerror or exc}"))
                continue
            previous = known.get(key)
            if previous == (stat.st_size, stat.st_mtime_ns):
                seen.add(key)
                report.unchanged += 1
                continue
            try:
                row = self._read(path, stat, root=root, checksums=checksums, now=now)
            except Exception as exc:  # noqa: BLE001 - report any unreadable file, walk on
                reason = (exc.problem if isinstance(exc, InputError)
                          else f"{type(exc).__name__}: {exc}")
                log.warning("%s: not indexed: %s", key, reason)
                report.bad.append((key, reason))
                continue
            seen.add(key)
            rows.append(row)
            pending_counts["updated" if previous is not None else "added"] += 1
            if len(rows) >= self.batch_size:
                flush()
            if count % 5000 == 0:
                log.info("%s: %d files walked", root, count)
        flush()

        gone = sorted(set(known) - seen)
        for start in range(0, len(gone), self.batch_size):
            batch = gone[start:start + self.batch_size]
            with self.engine.begin() as conn:
                conn.execute(sa.delete(archive_files).where(archive_files.c.path.in_(batch)))
            report.removed += len(batch)
        report.seconds = time.perf_counter() - began
        log.info("indexed %s: %s (%.1f s)", root, report.summary(), report.seconds)
        return report

    def _require_root(self) -> Path:
        if self.root is None:
            raise ConfigError("indexing needs an archive directory (root=None given)")
        if not self.root.is_dir():
            raise InputError(self.root, "archive directory does not exist")
        return self.root

    def _known_files(self, root: Path) -> dict[str, tuple[int, int]]:
        query = (sa.select(archive_files.c.path, archive_files.c.size, archive_files.c.mtime_ns)
                 .where(archive_files.c.root == str(root)))
        with self.engine.connect() as conn:
            return {path: (size, mtime_ns) for path, size, mtime_ns in conn.execute(query)}

    @staticmethod
    def _walk(root: Path) -> Iterator[Path]:
        """FITS files under ``root`` named ``<rootname>_<type><suffix>``, in a stable order."""

        def on_error(exc: OSError) -> None:
            log.warning("%s: cannot list directory: %s", exc.filename, exc.strerror)

        for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.lower().endswith(FITS_SUFFIXES) and split_name(name) is not None:
                    yield Path(dirpath, name)

    @staticmethod
    def _read(path: Path, stat: os.stat_result, *, root: Path, checksums: bool,
              now: datetime) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            facts = describe_file(path)
        for warning in caught:
            message = str(warning.message)
            if any(hint in message.lower() for hint in _CORRUPT_HINTS):
                raise InputError(path, f"corrupt FITS file ({message.splitlines()[0]})")
            log.debug("%s: %s", path, message)
        return {
            "path": str(path),
            "root": str(root),
            "rootname": facts["rootname"],
            "file_type": facts["file_type"].upper(),
            "instrument": facts["instrument"],
            "detector": facts["detector"],
            "instrument_name": facts["instrument_name"].upper(),
            "target": facts["target"].upper(),
            "intent": facts["intent"].lower(),
            "obstype": facts["obstype"],
            "proposal": str(facts["proposal"]),
            "start_mjd": facts["start_mjd"],
            "end_mjd": facts["end_mjd"],
            "exptime": facts["exptime"],
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "checksum": file_checksum(path) if checksums else None,
            "header": dict(facts["header"]),
            "indexed_at": now,
        }

    def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        # Delete by path, whatever root owned it, so re-indexing under a nested or
        # re-spelled root moves the row instead of breaking the unique constraint.
        with self.engine.begin() as conn:
            conn.execute(sa.delete(archive_files)
                         .where(archive_files.c.path.in_([r["path"] for r in rows])))
            conn.execute(sa.insert(archive_files), list(rows))

    # ------------------------------------------------------------------ queries
    def query(self, criteria: QueryCriteria) -> list[Dataset]:
        """The indexed exposures matching ``criteria``, sorted by start MJD then rootname.

        A dataset is one rootname.  Its descriptive fields (instrument name,
        target, times, exposure time, proposal, intent) come from its first file
        of ``criteria.file_types`` that has an exposure start time (RAW, FLT, ...:
        SPT files have neither times nor DETECTOR), else from another indexed file
        of the exposure that has one.  The filters test those fields:
        instrument-name and target patterns (:func:`match_name`), intent,
        inclusive exposure-time range, start in ``[start, end)``, proposals, and
        :attr:`QueryCriteria.header` equalities against the stored header of the
        primary (first) file type (or, when it is missing, the descriptive file).

        ``files`` holds only the wanted file types, in ``criteria.file_types``
        order.  A dataset that lacks some of them is still returned, with the
        files it has, so the caller can reject it with a reason; exposures with
        none of the wanted files are not returned.

        The SQL narrows the rows with every filter it can express (equalities,
        ``LIKE`` for simple patterns, ranges); the exact rules above are then
        applied in Python to the few rows left.
        """
        wanted = tuple(t.upper() for t in criteria.file_types)
        if not wanted:
            raise ConfigError("criteria.file_types is empty: name at least one file type (RAW)")
        t = archive_files
        scope = [] if self.root is None else [t.c.root == str(self.root)]
        candidates = sa.select(t.c.rootname).where(*scope, *_sql_filters(criteria)).distinct()
        columns = [t.c[name] for name in _QUERY_COLUMNS]
        statement = (sa.select(*columns)
                     .where(*scope, t.c.rootname.in_(candidates))
                     .order_by(t.c.rootname, t.c.path))
        by_rootname: dict[str, list[sa.Row]] = defaultdict(list)
        with self.engine.connect() as conn:
            for row in conn.execute(statement):
                by_rootname[row.rootname].append(row)

        datasets = []
        for rootname, rows in by_rootname.items():
            dataset = _dataset(rootname, rows, wanted, criteria)
            if dataset is not None:
                datasets.append(dataset)
        datasets.sort(key=lambda d: (math.inf if math.isnan(d.start_mjd) else d.start_mjd,
                                     d.rootname))
        log.debug("local archive %s: %d dataset(s) for %s", self.root, len(datasets), criteria)
        return datasets

    def fetch(self, dataset: Dataset, scratch: Path) -> dict[str, Path]:
        """The dataset's files where they lie in the archive (``scratch`` is not used).

        Raises
        ------
        InputError
            When a file vanished or its size differs from the indexed size; the
            message names the file and says to re-index.
        """
        paths = {}
        for f in dataset.files:
            path = Path(f.location)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise InputError(path, "vanished from the local archive since it was indexed; "
                                       "run `hstcal archive index` again") from None
            if f.size is not None and size != f.size:
                raise InputError(path, f"changed since it was indexed (size {size} bytes, "
                                       f"indexed {f.size}); run `hstcal archive index` again")
            paths[f.file_type] = path
        return paths

    # ------------------------------------------------------------------ summary
    def stats(self) -> ArchiveStats:
        """Counts of indexed files per instrument name and file type, and the time span."""
        t = archive_files
        scope = [] if self.root is None else [t.c.root == str(self.root)]
        with self.engine.connect() as conn:
            files, datasets, total, first, last = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(t.c.rootname)),
                          sa.func.coalesce(sa.func.sum(t.c.size), 0),
                          sa.func.min(t.c.start_mjd),
                          sa.func.max(sa.func.coalesce(t.c.end_mjd, t.c.start_mjd)))
                .where(*scope)).one()
            by_name = dict(conn.execute(
                sa.select(t.c.instrument_name, sa.func.count()).where(*scope)
                .group_by(t.c.instrument_name).order_by(t.c.instrument_name)).all())
            by_type = dict(conn.execute(
                sa.select(t.c.file_type, sa.func.count()).where(*scope)
                .group_by(t.c.file_type).order_by(t.c.file_type)).all())
            roots = tuple(conn.execute(
                sa.select(t.c.root).where(*scope).distinct().order_by(t.c.root)).scalars())
        return ArchiveStats(roots=roots, files=files, datasets=datasets, total_bytes=int(total),
                            by_instrument_name=by_name, by_file_type=by_type,
                            start_mjd=first, end_mjd=last)


# ---------------------------------------------------------------------- query helpers
def _like(pattern: str) -> str | None:
    """SQL LIKE form of a :func:`match_name` pattern (None when it has ``[...]`` classes)."""
    if "[" in pattern:
        return None
    escaped = pattern.replace("\\", "\\\\").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _name_filter(column: sa.Column, patterns: Iterable[str]) -> sa.ColumnElement | None:
    """A necessary SQL condition for :func:`match_name` (values are stored upper case)."""
    clauses = []
    for raw in patterns:
        pattern = raw.strip().upper()
        if not any(c in pattern for c in "*%?["):
            clauses.append(column == pattern)
            continue
        like = _like(pattern)
        if like is None:
            return None  # a character class: leave the whole field to Python
        clauses.append(column.like(like, escape="\\"))
    return sa.or_(*clauses) if clauses else None


def _sql_filters(criteria: QueryCriteria) -> list[sa.ColumnElement]:
    t = archive_files
    filters = []
    for column, patterns in ((t.c.instrument_name, criteria.instrument_name),
                             (t.c.target, criteria.target_name)):
        clause = _name_filter(column, patterns) if patterns else None
        if clause is not None:
            filters.append(clause)
    if criteria.intent:
        filters.append(t.c.intent == criteria.intent.strip().lower())
    if criteria.exptime is not None:
        low, high = criteria.exptime
        filters.append(t.c.exptime.between(float(low), float(high)))
    if criteria.time is not None:
        start, end = criteria.time
        if math.isfinite(start):
            filters.append(t.c.start_mjd >= float(start))
        else:
            filters.append(t.c.start_mjd.is_not(None))
        if math.isfinite(end):
            filters.append(t.c.start_mjd < float(end))
    if criteria.proposals:
        filters.append(t.c.proposal.in_([str(p).strip() for p in criteria.proposals]))
    return filters


def _dataset(rootname: str, rows: list[sa.Row], wanted: tuple[str, ...],
             criteria: QueryCriteria) -> Dataset | None:
    """One rootname's :class:`Dataset`, or None when it fails the criteria."""
    files: dict[str, sa.Row] = {}
    for row in rows:  # ordered by path: the first copy of a duplicated file type wins
        if row.file_type in wanted:
            if row.file_type in files:
                log.warning("%s: %s is indexed twice (%s and %s); using the first",
                            rootname, row.file_type, files[row.file_type].path, row.path)
                continue
            files[row.file_type] = row
    if not files:
        return None
    timed_wanted = [files[t] for t in wanted if t in files and files[t].start_mjd is not None]
    timed_other = sorted((r for r in rows if r.file_type not in wanted and r.start_mjd is not None),
                         key=lambda r: (r.file_type, r.path))
    describing = (timed_wanted or timed_other or [files[t] for t in wanted if t in files])[0]
    if not _passes(describing, criteria):
        return None
    primary = files.get(wanted[0], describing)
    if criteria.header and criteria.header_mismatch(primary.header or {}) is not None:
        return None
    return Dataset(
        rootname=rootname,
        instrument_name=describing.instrument_name,
        target=describing.target,
        start_mjd=_or_nan(describing.start_mjd),
        end_mjd=_or_nan(describing.end_mjd),
        exptime=_or_nan(describing.exptime),
        files=tuple(ArchiveFile(file_type=t, name=Path(files[t].path).name,
                                location=files[t].path, size=files[t].size,
                                checksum=files[t].checksum)
                    for t in wanted if t in files),
        proposal=describing.proposal,
    )


def _passes(row: sa.Row, criteria: QueryCriteria) -> bool:
    if not match_name(row.instrument_name, criteria.instrument_name):
        return False
    if criteria.intent and row.intent != criteria.intent.strip().lower():
        return False
    if criteria.target_name and not match_name(row.target, criteria.target_name):
        return False
    if criteria.exptime is not None:
        low, high = criteria.exptime
        if row.exptime is None or not low <= row.exptime <= high:
            return False
    if criteria.time is not None:
        start, end = criteria.time
        if row.start_mjd is None or not start <= row.start_mjd < end:
            return False
    return not criteria.proposals or row.proposal in {str(p).strip() for p in criteria.proposals}


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
