"""The cosmic-ray census store: one HDF5 file holding every CR of every dark.

This module is the writer (:class:`CensusStore`: creating a store, appending batches
through the commit log, rolling back what a crashed writer left).  The layout and the
commit log are described in :mod:`.schema`; the read API (:func:`read_exposures`,
:func:`read_crs`, :func:`iter_crs`, :func:`summary`, ...) lives in :mod:`.read` and is
re-exported here.

One writer at a time (HDF5 locks the file); readers open it read-only when no
writer has it open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import ConfigError, InputError
from ..fitsio import atomic_path
from .journal import JournaledFile, LockedError, journal_path, recover
from .read import (
    _runs,  # noqa: F401  (re-exported: tests import it from here)
    iter_crs,
    iter_orbit,
    read_crs,
    read_exposures,
    read_orbit,
    read_pixels,
    read_record,
    summary,
    to_mjd,
)
from .records import CR_COLUMNS, ExposureRecord
from .schema import (
    _BUSY,
    _CACHE_BYTES,
    _CR_DTYPES,
    _CR_INDEX,
    _LIBVER,
    _ORBIT,
    _WCS_TEXT_KEYS,
    BATCH_DTYPE,
    EXPOSURE_DTYPE,
    SCHEMA_VERSION,
    WCS_KEYS,
    StoreError,
    _check_schema,
    _committed,
    _Counts,
    _open_reader,
    _recover,
)

__all__ = [
    "BATCH_DTYPE",
    "EXPOSURE_DTYPE",
    "SCHEMA_VERSION",
    "WCS_KEYS",
    "CensusStore",
    "StoreError",
    "batch_key",
    "iter_crs",
    "iter_orbit",
    "read_crs",
    "read_exposures",
    "read_orbit",
    "read_pixels",
    "read_record",
    "summary",
    "to_mjd",
]

log = logging.getLogger(__name__)

# Which commit-log count governs each dataset's length.
_TABLES = {"n_exposures": ["exposures"],
           "n_crs": [f"crs/{c}" for c in (*_CR_DTYPES, *_CR_INDEX)],
           "n_pixels": ["pixels/index"],
           "n_orbit": [f"orbit/{c}" for c in _ORBIT]}
# Rows per chunk: ~0.5 MB of float64 each, under the 8 MB chunk cache set on open.
_CHUNK_ROWS = {"exposures": 1024, "crs": 65536, "pixels": 131072, "orbit": 16384,
               "batches": 256}
# A writer keeps at most this many CRs of a batch in memory while appending.
_WRITE_BLOCK_CRS = 1 << 18


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _software_version() -> str:
    from .. import __version__
    return __version__


def _encode(text: str, width: int, what: str) -> bytes:
    raw = str(text).encode("utf-8")
    if len(raw) > width:
        raise StoreError(f"{what} {text!r} is longer than the {width} bytes the schema holds")
    return raw


def batch_key(batch: str) -> str:
    """The key stored for ``batch``: itself if it fits 64 UTF-8 bytes, else a digest.

    ``"sha256:"`` + 57 hex digits of its SHA-256, so long keys (a list of rootnames)
    stay unique and a rerun with the same key still finds its commit.
    """
    raw = str(batch).encode("utf-8")
    if len(raw) <= 64:
        return str(batch)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:57]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _new_store(path: Path, compression: str) -> None:
    """Create an empty store atomically (built under a temporary name, then renamed)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=_LIBVER) as f:
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["created_by"] = f"hstcal-core {_software_version()}"
        f.attrs["created"] = _now()

        def make(name: str, dtype: np.dtype, chunk: int) -> None:
            opts: dict[str, Any] = {"compression": compression, "shuffle": True,
                                    "fletcher32": True}
            if compression == "gzip":
                opts["compression_opts"] = 4
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                             chunks=(chunk,), **opts)

        make("exposures", EXPOSURE_DTYPE, _CHUNK_ROWS["exposures"])
        for name, dtype in {**_CR_DTYPES, **_CR_INDEX}.items():
            make(f"crs/{name}", dtype, _CHUNK_ROWS["crs"])
        make("pixels/index", np.dtype("<i8"), _CHUNK_ROWS["pixels"])
        for name, dtype in _ORBIT.items():
            make(f"orbit/{name}", dtype, _CHUNK_ROWS["orbit"])
        make("batches", BATCH_DTYPE, _CHUNK_ROWS["batches"])
        for name, text in CR_COLUMNS.items():
            f["crs"][name].attrs["description"] = text
    log.info("%s: new census store (schema %s)", path, SCHEMA_VERSION)


class CensusStore:
    """The census HDF5 file, opened for appending batches of :class:`ExposureRecord`.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.
    mode : {"a", "r+", "w", "r"}
        ``"a"`` creates the file if needed, ``"r+"`` requires it, ``"w"`` starts a new
        one (replacing it), ``"r"`` only reads.  Opening rolls back what a crashed
        writer left (see :attr:`rolled_back`).
    compression : {"gzip", "lzf"}
        Filter for new files (gzip is readable by every HDF5 tool; lzf only by h5py).
    durable : bool
        ``fsync`` the rollback journal before each in-place write and the file at each
        commit, so a commit also survives a power cut, not only a killed process.

    Notes
    -----
    A writer goes through :class:`~hstcal_core.census.journal.JournaledFile`: every
    byte HDF5 overwrites is first saved to ``<store>-journal``, and each commit
    deletes the journal.  A writer killed at any moment therefore leaves the store
    exactly as its last commit, once the journal is rolled back (by the next writer,
    or by the next reader).  Inside that, data rows are written before the
    ``/batches`` row that commits them, so even a file damaged outside this class
    keeps its committed rows (:meth:`_roll_back` drops the rest).  HDF5 locks the file
    against concurrent use; one writer at a time.
    """

    def __init__(self, path: str | Path, mode: str = "a", *, compression: str = "gzip",
                 durable: bool = True) -> None:
        if mode not in ("a", "r+", "w", "r"):
            raise ConfigError(f"CensusStore mode {mode!r}: use 'a', 'r+', 'w' or 'r'")
        if compression not in ("gzip", "lzf"):
            raise ConfigError(f"CensusStore compression {compression!r}: use 'gzip' or 'lzf'")
        self.path = Path(path)
        self.mode = mode
        self.durable = durable
        #: What opening rolled back: ``"journal"`` (1) if a crashed writer's journal was
        #: undone, else rows per dataset beyond the last commit (see :meth:`_roll_back`).
        self.rolled_back: dict[str, int] = {}
        self._journaled: JournaledFile | None = None
        if mode == "r":
            self._file = _open_reader(self.path)
        else:
            self._file = self._open_writer(compression)
        try:
            _check_schema(self._file, self.path)
            if mode != "r":
                self._roll_back()
            self._load_state()
        except BaseException:
            self._file.close()
            if self._journaled is not None:
                self._journaled.close()
            raise

    def _load_state(self) -> None:
        self._counts, n_batches = _committed(self._file)
        keys = self._file["batches"].fields("batch")[:n_batches]
        self._batches = {k.decode(): i for i, k in enumerate(keys)}

    def _open_writer(self, compression: str) -> h5py.File:
        if self.mode == "r+" and not self.path.is_file():
            raise InputError(self.path, "no census store here")
        try:
            if self.mode == "w" or not self.path.exists():
                if self.path.exists():
                    # Refuse to replace a store a live writer holds; roll back a stale
                    # journal, which must never be applied to the new file.
                    JournaledFile(self.path, durable=False).close()
                _recover(self.path)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _new_store(self.path, compression)
            had_journal = journal_path(self.path).exists()
            self._journaled = JournaledFile(self.path, durable=self.durable)
        except LockedError:
            raise InputError(self.path, f"the census store is being written; {_BUSY}") \
                from None
        if had_journal:
            self.rolled_back["journal"] = 1
        try:
            return h5py.File(self._journaled, "r+", libver=_LIBVER, rdcc_nbytes=_CACHE_BYTES)
        except BaseException:
            self._journaled.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> CensusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (everything committed is already on disk)."""
        if self._file.id.valid:
            self._file.close()
        if self._journaled is not None and not self._journaled.closed:
            self._journaled.commit()  # what HDF5 wrote while closing; rows are unchanged
            self._journaled.close()

    # -- what is stored ------------------------------------------------------------------
    @property
    def batches(self) -> list[str]:
        """Committed batch keys, in commit order."""
        return sorted(self._batches, key=self._batches.__getitem__)

    def has_batch(self, batch: str) -> bool:
        """Whether ``batch`` is committed."""
        return batch_key(batch) in self._batches

    @property
    def n_exposures(self) -> int:
        """Committed exposures."""
        return self._counts.n_exposures

    @property
    def n_crs(self) -> int:
        """Committed cosmic rays."""
        return self._counts.n_crs

    # -- writing -------------------------------------------------------------------------
    def append(self, records: Sequence[ExposureRecord], batch: str, *,
               replace: bool = False) -> int:
        """Append the records of one batch atomically; return how many were added.

        Parameters
        ----------
        records : sequence of ExposureRecord
            All the exposures of the batch (may be empty: the batch is still committed).
        batch : str
            The batch key (a campaign chunk/stage key).  Keys longer than 64 UTF-8
            bytes are stored as their digest (:func:`batch_key`).
        replace : bool
            When the batch is already committed, replace it.  Only the most recent
            batch can be replaced (older rows would have to be rewritten).

        Returns
        -------
        int
            Exposures appended; 0 when ``batch`` is already committed and ``replace``
            is false, which makes a rerun after a crash between this commit and the
            caller's own bookkeeping a harmless no-op.
        """
        if self.mode == "r":
            raise StoreError(f"{self.path}: opened read-only")
        if not batch:
            raise StoreError(f"{self.path}: the batch key must not be empty")
        batch = batch_key(batch)
        key = batch.encode("utf-8")
        if batch in self._batches and not replace:
            log.info("%s: batch %s already committed; nothing appended", self.path, batch)
            return 0
        records = list(records)
        for rec in records:
            _check_record(rec, f"{self.path}: record {rec.rootname!r}")
        start = self._counts
        try:
            if batch in self._batches:
                self._uncommit_last(batch)
                start = self._counts
            rows = self._exposure_rows(records, key)
            counts = self._write_rows(records, rows, start)
            self._flush()
            self._commit(key, counts, len(records))
        except BaseException:
            # A failed write (full disk, bad value, Ctrl-C), not a crash: put the file
            # back as it was at the last commit, replaced batch included.
            self._abort()
            raise
        self._counts = counts
        self._batches[batch] = len(self._batches)
        log.info("%s: committed batch %s (%d exposures, %d CRs)", self.path, batch,
                 len(records), counts.n_crs - start.n_crs)
        return len(records)

    def _exposure_rows(self, records: list[ExposureRecord], key: bytes) -> np.ndarray:
        """Validate every record and build the /exposures rows (before writing anything)."""
        rows = np.zeros(len(records), EXPOSURE_DTYPE)
        cr_start, orbit_start = self._counts.n_crs, self._counts.n_orbit
        for i, rec in enumerate(records):
            what = f"{self.path}: record {rec.rootname!r}"
            n = len(np.asarray(rec.crs["energy_e"]))
            n_orbit = len(np.asarray(rec.orbit_mjd))
            row = rows[i]  # a view: assignments land in rows
            row["exposure_id"] = self._counts.next_exposure_id + i
            row["rootname"] = _encode(rec.rootname, 16, f"{what}: rootname")
            row["detector"] = _encode(rec.detector, 32, f"{what}: detector")
            for name in ("start_mjd", "end_mjd", "exptime", "integration_time", "area_cm2",
                         "rate"):
                row[name] = float(getattr(rec, name))
            for name in ("n_cr", "n_cut_small", "n_cut_large"):
                row[name] = int(getattr(rec, name))
            row["cr_start"], row["cr_count"] = cr_start, n
            row["orbit_start"], row["orbit_count"] = orbit_start, n_orbit
            cr_start += n
            orbit_start += n_orbit
            row["batch"] = key
            row["version"] = _encode(rec.meta.get("version", _software_version()), 32,
                                     f"{what}: meta['version']")
            extra = {}
            for name in WCS_KEYS:
                row[name] = math.nan
            for name, value in rec.wcs.items():
                if name in WCS_KEYS and isinstance(value, (int, float, np.number)) \
                        and not math.isnan(value):
                    row[name] = float(value)
                elif name in _WCS_TEXT_KEYS and isinstance(value, str) \
                        and len(value.encode()) <= 24:
                    row[name] = value.encode()
                else:
                    extra[name] = value
            try:
                row["wcs_extra"] = json.dumps(extra, default=_json_default)
                row["meta"] = json.dumps(rec.meta, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise StoreError(f"{what}: wcs/meta cannot be stored as JSON ({exc})") from None
        return rows

    def _write_rows(self, records: list[ExposureRecord], rows: np.ndarray,
                    start: _Counts) -> _Counts:
        f = self._file
        n_crs = int(rows["cr_count"].sum())
        n_orbit = int(rows["orbit_count"].sum())
        n_pixels = sum(len(np.asarray(r.pixel_index)) for r in records)
        end = _Counts(start.n_exposures + len(records), start.n_crs + n_crs,
                      start.n_pixels + n_pixels, start.n_orbit + n_orbit,
                      start.next_exposure_id + len(records))
        for field_name, paths in _TABLES.items():
            for name in paths:
                f[name].resize((getattr(end, field_name),))
        f["exposures"][start.n_exposures:end.n_exposures] = rows
        cr_at, pixel_at, orbit_at = start.n_crs, start.n_pixels, start.n_orbit
        for block in _blocks(records, _WRITE_BLOCK_CRS):
            ids = rows["exposure_id"][block.start:block.stop]
            recs = records[block]
            counts = rows["cr_count"][block.start:block.stop]
            n = int(counts.sum())
            crs = {c: np.concatenate([np.asarray(r.crs[c]) for r in recs] or [np.zeros(0)])
                   .astype(dtype, casting="same_kind") for c, dtype in _CR_DTYPES.items()}
            pixel_counts = np.concatenate(
                [np.diff(np.asarray(r.pixel_offsets, np.int64)) for r in recs]
                or [np.zeros(0, np.int64)])
            pixel_index = np.concatenate([np.asarray(r.pixel_index, np.int64) for r in recs]
                                         or [np.zeros(0, np.int64)])
            crs["exposure_id"] = np.repeat(ids, counts)
            crs["pixel_count"] = pixel_counts
            crs["pixel_start"] = pixel_at + np.concatenate(
                [[0], np.cumsum(pixel_counts)[:-1]]).astype(np.int64) if n else pixel_counts
            for name, values in crs.items():
                f["crs"][name][cr_at:cr_at + n] = values
            f["pixels/index"][pixel_at:pixel_at + len(pixel_index)] = pixel_index
            orbit_counts = rows["orbit_count"][block.start:block.stop]
            m = int(orbit_counts.sum())
            orbit = {"exposure_id": np.repeat(ids, orbit_counts)}
            for name, attr in (("mjd", "orbit_mjd"), ("latitude", "latitude"),
                               ("longitude", "longitude"), ("altitude_km", "altitude_km")):
                orbit[name] = np.concatenate([np.asarray(getattr(r, attr), np.float64)
                                              for r in recs] or [np.zeros(0)])
            for name, values in orbit.items():
                f["orbit"][name][orbit_at:orbit_at + m] = values
            cr_at += n
            pixel_at += len(pixel_index)
            orbit_at += m
        return end

    def _commit(self, key: bytes, counts: _Counts, added: int) -> None:
        batches = self._file["batches"]
        n = batches.shape[0]
        row = np.zeros(1, BATCH_DTYPE)
        row["batch"] = key
        for name in ("n_exposures", "n_crs", "n_pixels", "n_orbit", "next_exposure_id"):
            row[name] = getattr(counts, name)
        row["added_exposures"] = added
        row["committed"] = _now().encode()
        row["version"] = _encode(_software_version(), 32, "software version")
        batches.resize((n + 1,))
        batches[n] = row[0]
        self._checkpoint()

    def _abort(self) -> None:
        """Undo everything since the last commit through the journal, and reopen."""
        try:
            self._file.close()
        except Exception:  # the original error matters more; the journal undoes it all
            log.exception("%s: closing after a failed append", self.path)
        self._journaled.close()
        recover(self.path)
        self._journaled = JournaledFile(self.path, durable=self.durable)
        self._file = h5py.File(self._journaled, "r+", libver=_LIBVER,
                               rdcc_nbytes=_CACHE_BYTES)
        self._load_state()
        log.warning("%s: a failed append was rolled back to the last commit", self.path)

    def _uncommit_last(self, batch: str) -> None:
        """Drop the most recent batch: shrink the commit log first, then its rows."""
        if self.batches[-1] != batch:
            raise StoreError(f"{self.path}: batch {batch!r} is not the most recent one; only "
                             "the last committed batch can be replaced")
        # No checkpoint until the new rows are committed: a crash in between rolls the
        # journal back to the store *with* the old batch.
        _, n_valid = _committed(self._file)
        self._file["batches"].resize((n_valid - 1,))
        del self._batches[batch]
        self._counts, _ = _committed(self._file)
        self._truncate(self._counts)
        log.info("%s: removed batch %s to replace it", self.path, batch)

    def _flush(self) -> None:
        self._file.flush()

    def _checkpoint(self) -> None:
        """Flush and commit the journal: the present content is what a crash returns to."""
        self._file.flush()
        if self._journaled is not None:
            self._journaled.commit()

    # -- recovery ------------------------------------------------------------------------
    def _roll_back(self) -> None:
        counts, n_valid = _committed(self._file)
        batches = self._file["batches"]
        if batches.shape[0] > n_valid:
            self.rolled_back["batches"] = batches.shape[0] - n_valid
            batches.resize((n_valid,))
        self.rolled_back.update(self._truncate(counts))
        self._checkpoint()
        if set(self.rolled_back) - {"journal"}:
            log.warning("%s: rolled back rows of an interrupted append: %s", self.path,
                        ", ".join(f"{k} {v}" for k, v in sorted(self.rolled_back.items())))

    def _truncate(self, counts: _Counts) -> dict[str, int]:
        dropped = {}
        for field_name, paths in _TABLES.items():
            keep = getattr(counts, field_name)
            for name in paths:
                ds = self._file[name]
                if ds.shape[0] < keep:
                    raise StoreError(f"{self.path}: {name} has {ds.shape[0]} rows but the "
                                     f"commit log records {keep}: the file is damaged")
                if ds.shape[0] > keep:
                    dropped[name] = ds.shape[0] - keep
                    ds.resize((keep,))
        return dropped


def _check_record(rec: ExposureRecord, what: str) -> int:
    """The record's CR count after checking its arrays agree; errors name the array."""
    missing = [c for c in CR_COLUMNS if c not in rec.crs]
    extra = [c for c in rec.crs if c not in CR_COLUMNS]
    if missing or extra:
        raise StoreError(f"{what}: crs columns missing {missing} / unknown {extra}")
    lengths = {c: len(np.asarray(rec.crs[c])) for c in CR_COLUMNS}
    n = lengths["energy_e"]
    if any(v != n for v in lengths.values()):
        raise StoreError(f"{what}: crs columns differ in length {lengths}")
    offsets = np.asarray(rec.pixel_offsets, np.int64)
    if len(offsets) != n + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) \
            or offsets[-1] != len(np.asarray(rec.pixel_index)):
        raise StoreError(f"{what}: pixel_offsets must rise from 0 to len(pixel_index) with "
                         f"n+1 = {n + 1} entries")
    orbit = [len(np.asarray(a)) for a in (rec.orbit_mjd, rec.latitude, rec.longitude,
                                          rec.altitude_km)]
    if len(set(orbit)) != 1:
        raise StoreError(f"{what}: orbit_mjd/latitude/longitude/altitude_km lengths {orbit} "
                         "differ")
    return n


def _blocks(records: list[ExposureRecord], max_crs: int) -> Iterator[slice]:
    start, total = 0, 0
    for i, rec in enumerate(records):
        total += len(np.asarray(rec.crs["energy_e"]))
        if total >= max_crs:
            yield slice(start, i + 1)
            start, total = i + 1, 0
    if start < len(records):
        yield slice(start, len(records))
