"""The cosmic-ray census store: one HDF5 file holding every CR of every dark.

Layout (schema ``1.0``; ``docs/census.md`` is the reference)::

    /                 attrs: schema_version, created_by, created
    /exposures        compound table, one row per ExposureRecord (EXPOSURE_DTYPE)
    /crs/<column>     one 1-D dataset per CR_COLUMNS entry, plus exposure_id,
                      pixel_start, pixel_count
    /pixels/index     int64 flat pixel indices, ragged through pixel_start/pixel_count
    /orbit/<column>   exposure_id, mjd, latitude, longitude, altitude_km
    /batches          the commit log (BATCH_DTYPE): one row per committed batch with
                      the row counts of every table after it

Every dataset is 1-D, chunked, compressed and appendable.  Rows are *committed* by
the ``/batches`` row written after them: rows beyond the last committed counts are
an interrupted append, which readers ignore and writers truncate on open.

One writer at a time (HDF5 locks the file); readers open it read-only when no
writer has it open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from ..errors import ConfigError, HstcalError, InputError
from ..fitsio import atomic_path
from .journal import JournaledFile, LockedError, journal_path, recover
from .records import CR_COLUMNS, ExposureRecord, empty_crs

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

SCHEMA_VERSION = "1.0"

#: Numeric WCS keywords kept as exposure columns (NaN when absent).
WCS_KEYS = ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")
_WCS_TEXT_KEYS = ("CTYPE1", "CTYPE2")
_JSON = h5py.string_dtype("utf-8")

EXPOSURE_DTYPE = np.dtype(
    [("exposure_id", "<i8"), ("rootname", "S16"), ("detector", "S32"),
     ("start_mjd", "<f8"), ("end_mjd", "<f8"), ("exptime", "<f8"),
     ("integration_time", "<f8"), ("area_cm2", "<f8"), ("rate", "<f8"),
     ("n_cr", "<i8"), ("n_cut_small", "<i8"), ("n_cut_large", "<i8"),
     ("cr_start", "<i8"), ("cr_count", "<i8"), ("orbit_start", "<i8"), ("orbit_count", "<i8"),
     ("batch", "S64"), ("version", "S32")]
    + [(key, "<f8") for key in WCS_KEYS]
    + [(key, "S24") for key in _WCS_TEXT_KEYS]
    + [("wcs_extra", _JSON), ("meta", _JSON)])

BATCH_DTYPE = np.dtype(
    [("batch", "S64"), ("n_exposures", "<i8"), ("n_crs", "<i8"), ("n_pixels", "<i8"),
     ("n_orbit", "<i8"), ("next_exposure_id", "<i8"), ("added_exposures", "<i8"),
     ("committed", "S32"), ("version", "S32")])

_CR_DTYPES = {name: array.dtype for name, array in empty_crs().items()}
_CR_INDEX = {"exposure_id": np.dtype("<i8"), "pixel_start": np.dtype("<i8"),
             "pixel_count": np.dtype("<i8")}
_ORBIT = {"exposure_id": np.dtype("<i8"), "mjd": np.dtype("<f8"),
          "latitude": np.dtype("<f8"), "longitude": np.dtype("<f8"),
          "altitude_km": np.dtype("<f8")}
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
# Reads merge CR ranges separated by fewer rows than this into one slice.
_MAX_GAP_ROWS = 4096
# The HDF5 1.8 file format: a version-2 superblock with checksummed metadata, readable
# by every HDF5 since 1.8.  Not libver="latest": its version-3 superblock carries an
# "open for write" flag that a killed writer leaves set, after which HDF5 refuses the
# file (even read-only) until `h5clear -s` is run.
_LIBVER = ("v108", "v108")
_CACHE_BYTES = 8 << 20


class StoreError(HstcalError):
    """The census store is damaged or a request cannot be honoured; names the file."""


@dataclass(frozen=True)
class _Counts:
    n_exposures: int = 0
    n_crs: int = 0
    n_pixels: int = 0
    n_orbit: int = 0
    next_exposure_id: int = 0


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


def _committed(f: h5py.File) -> tuple[_Counts, int]:
    """Counts after the last valid commit, and the number of valid /batches rows.

    A /batches row whose key is empty is a resize that was never written (a crash
    inside the commit itself): it and anything after it are not commits.
    """
    batches = f["batches"]
    n = batches.shape[0]
    if n == 0:
        return _Counts(), 0
    keys = batches.fields("batch")[:]
    valid = n
    while valid and not keys[valid - 1]:
        valid -= 1
    if valid == 0:
        return _Counts(), 0
    row = batches[valid - 1]
    return _Counts(int(row["n_exposures"]), int(row["n_crs"]), int(row["n_pixels"]),
                   int(row["n_orbit"]), int(row["next_exposure_id"])), valid


def _check_schema(f: h5py.File, path: Path) -> None:
    version = f.attrs.get("schema_version")
    if version is None or "exposures" not in f or "batches" not in f:
        raise InputError(path, "not a cosmic-ray census store (no schema_version / tables)")
    if isinstance(version, bytes):
        version = version.decode()
    if str(version).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(path, f"census schema {version} is not readable by this version "
                               f"(reads {SCHEMA_VERSION.split('.')[0]}.x)")


_BUSY = "is a writer (a running campaign) holding it open?"


def _recover(path: Path) -> None:
    """Roll back a crashed writer's journal, or say why that cannot be done now."""
    try:
        recover(path)
    except LockedError:
        raise InputError(path, f"the census store is being written; {_BUSY}") from None
    except PermissionError as exc:
        raise InputError(path, f"a crashed writer left {journal_path(path).name}; it must be "
                               f"rolled back by someone allowed to write the store ({exc})"
                         ) from None


def _open_reader(path: str | Path) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no census store here")
    _recover(path)
    try:
        return h5py.File(path, "r", libver=_LIBVER, rdcc_nbytes=_CACHE_BYTES)
    except OSError as exc:
        raise InputError(path, f"cannot open the census store ({exc}); {_BUSY}") from None


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


# -- reading -------------------------------------------------------------------------------

def to_mjd(value: float | str | datetime | None, name: str = "date") -> float | None:
    """An MJD from a float, an ISO date/time string (UTC) or a datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.number)):
        return float(value)
    from astropy.time import Time
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    try:
        return float(Time(value, scale="utc").mjd)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} {value!r} is neither an MJD nor an ISO date "
                          "(YYYY-MM-DD[THH:MM:SS])") from None


def _selected(f: h5py.File, detector: str | Sequence[str] | None, start: Any,
              end: Any) -> np.ndarray:
    """Committed /exposures row numbers matching the filters."""
    counts, _ = _committed(f)
    n = counts.n_exposures
    if n == 0:
        return np.zeros(0, np.int64)
    cols = f["exposures"].fields(["detector", "start_mjd"])[:n]
    keep = np.ones(n, bool)
    if detector is not None:
        names = [detector] if isinstance(detector, str) else list(detector)
        keep &= np.isin(cols["detector"], [d.encode() for d in names])
    lo, hi = to_mjd(start, "start"), to_mjd(end, "end")
    if lo is not None:
        keep &= cols["start_mjd"] >= lo
    if hi is not None:
        keep &= cols["start_mjd"] < hi
    return np.flatnonzero(keep)


def _exposure_table(rows: np.ndarray) -> Table:
    table = Table()
    for name in EXPOSURE_DTYPE.names:
        values = rows[name]
        if values.dtype.kind == "S":
            values = np.char.decode(values, "utf-8")
        elif values.dtype.kind == "O":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values],
                              dtype=str if len(values) else "U2")
        table[name] = values
    return table


def read_exposures(path: str | Path, detector: str | Sequence[str] | None = None,
                   start: float | str | None = None, end: float | str | None = None) -> Table:
    """The committed exposures, optionally of some detectors and starting in ``[start, end)``.

    Parameters
    ----------
    path : str or Path
        The census store.
    detector : str or sequence of str, optional
        Registered detector name(s).
    start, end : float or str, optional
        MJD or ISO date (UTC); an exposure is kept when ``start <= start_mjd < end``.

    Returns
    -------
    astropy.table.Table
        One row per exposure with the :data:`EXPOSURE_DTYPE` columns (text decoded;
        ``meta`` and ``wcs_extra`` are JSON strings).  ``.to_pandas()`` works.
    """
    with _reader(path) as f:
        rows = _selected(f, detector, start, end)
        data = f["exposures"][:rows[-1] + 1][rows] if len(rows) else \
            np.zeros(0, EXPOSURE_DTYPE)
    return _exposure_table(data)


def _runs(starts: np.ndarray, counts: np.ndarray, max_gap: int = _MAX_GAP_ROWS
          ) -> list[tuple[int, int]]:
    """Merge row ranges ``[start, start+count)`` into few ``(begin, end)`` slices.

    Ranges closer than ``max_gap`` rows are merged (the gap is read and dropped),
    so many small exposures cost one read while a narrow selection never reads far
    outside itself.
    """
    order = np.argsort(starts, kind="stable")
    runs: list[tuple[int, int]] = []
    for s, c in zip(starts[order].tolist(), counts[order].tolist()):
        if c == 0:
            continue
        if runs and s - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], max(runs[-1][1], s + c))
        else:
            runs.append((s, s + c))
    return runs


def _iter_rows(path: str | Path, table: str, names: Sequence[str],
               detector: str | Sequence[str] | None, start: Any, end: Any,
               block_rows: int) -> Iterator[dict[str, np.ndarray]]:
    """Stream rows of ``/crs`` or ``/orbit`` belonging to the selected exposures."""
    first, count = {"crs": ("cr_start", "cr_count"),
                    "orbit": ("orbit_start", "orbit_count")}[table]
    with _reader(path) as f:
        rows = _selected(f, detector, start, end)
        if not len(rows):
            return
        ranges = f["exposures"].fields(["exposure_id", first, count])[:rows[-1] + 1][rows]
        selected = np.sort(ranges["exposure_id"])
        group = f[table]
        for begin, stop in _runs(ranges[first], ranges[count]):
            for lo in range(begin, stop, block_rows):
                hi = min(lo + block_rows, stop)
                ids = group["exposure_id"][lo:hi]
                # Rows of gaps merged into the read belong to other exposures.
                keep = np.isin(ids, selected)
                block = {"exposure_id": ids[keep]}
                for name in names:
                    if name != "exposure_id":
                        block[name] = group[name][lo:hi][keep]
                yield block


def iter_crs(path: str | Path, detector: str | Sequence[str] | None = None,
             start: float | str | None = None, end: float | str | None = None,
             columns: Sequence[str] | None = None, block_rows: int = 1 << 20
             ) -> Iterator[dict[str, np.ndarray]]:
    """Stream the CRs of the selected exposures as dicts of column arrays.

    Reads only the row ranges of the selected exposures (``cr_start``/``cr_count``),
    at most ``block_rows`` rows at a time, so a report over the whole mission needs
    memory for one block, not for the table.  Every block carries ``exposure_id``
    besides ``columns`` (default: all of :data:`CR_COLUMNS`).
    """
    names = _cr_columns(columns, path)
    yield from _iter_rows(path, "crs", names, detector, start, end, block_rows)


def iter_orbit(path: str | Path, detector: str | Sequence[str] | None = None,
               start: float | str | None = None, end: float | str | None = None,
               block_rows: int = 1 << 20) -> Iterator[dict[str, np.ndarray]]:
    """Stream the orbit samples (``exposure_id, mjd, latitude, longitude, altitude_km``)
    of the selected exposures, like :func:`iter_crs`."""
    yield from _iter_rows(path, "orbit", list(_ORBIT), detector, start, end, block_rows)


def _cr_columns(columns: Sequence[str] | None, path: str | Path) -> list[str]:
    available = [*CR_COLUMNS, *_CR_INDEX]
    if columns is None:
        return list(CR_COLUMNS)
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ConfigError(f"{path}: unknown CR column(s) {unknown}; available: {available}")
    return list(columns)


def read_crs(path: str | Path, detector: str | Sequence[str] | None = None,
             start: float | str | None = None, end: float | str | None = None,
             columns: Sequence[str] | None = None) -> Table:
    """The CRs of the selected exposures, joined with their exposure.

    Parameters
    ----------
    path, detector, start, end
        As :func:`read_exposures`.
    columns : sequence of str, optional
        CR columns wanted (default: all of :data:`CR_COLUMNS`; ``pixel_start`` and
        ``pixel_count`` may be asked for too).

    Returns
    -------
    astropy.table.Table
        ``exposure_id, rootname, detector, start_mjd`` then the columns, one row per CR,
        in store order.
    """
    names = _cr_columns(columns, path)
    exposures = read_exposures(path, detector, start, end)
    parts = list(iter_crs(path, detector, start, end, names))
    data = {c: np.concatenate([p[c] for p in parts]) if parts else
            np.zeros(0, {**_CR_DTYPES, **_CR_INDEX}[c]) for c in ["exposure_id", *names]}
    where = np.searchsorted(np.asarray(exposures["exposure_id"]), data["exposure_id"])
    table = Table()
    table["exposure_id"] = data["exposure_id"]
    for name in ("rootname", "detector", "start_mjd"):
        column = np.asarray(exposures[name])
        table[name] = column[where] if len(column) else column[:0]
    for name in names:
        if name != "exposure_id":
            table[name] = data[name]
    return table


def _exposure_row(f: h5py.File, exposure_id: int, path: str | Path) -> np.void:
    counts, _ = _committed(f)
    ids = f["exposures"].fields("exposure_id")[:counts.n_exposures]
    i = int(np.searchsorted(ids, exposure_id))
    if i >= len(ids) or ids[i] != exposure_id:
        raise StoreError(f"{path}: no exposure with id {exposure_id}")
    return f["exposures"][i]


def read_pixels(path: str | Path, exposure_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The ragged pixel lists of one exposure's CRs, as in :class:`ExposureRecord`.

    Returns
    -------
    pixel_offsets, pixel_index : ndarray
        CR ``i`` covers ``pixel_index[pixel_offsets[i]:pixel_offsets[i+1]]`` (flat
        indices into its imset); ``np.split(pixel_index, pixel_offsets[1:-1])`` gives
        one array per CR.
    """
    with _reader(path) as f:
        row = _exposure_row(f, exposure_id, path)
        lo, n = int(row["cr_start"]), int(row["cr_count"])
        counts = f["crs/pixel_count"][lo:lo + n]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        first = int(f["crs/pixel_start"][lo]) if n else 0
        index = f["pixels/index"][first:first + int(offsets[-1])]
    return offsets, index


def read_orbit(path: str | Path, exposure_id: int) -> Table:
    """HST's position through one exposure: ``mjd, latitude, longitude, altitude_km``."""
    with _reader(path) as f:
        row = _exposure_row(f, exposure_id, path)
        lo, n = int(row["orbit_start"]), int(row["orbit_count"])
        return Table({name: f["orbit"][name][lo:lo + n]
                      for name in ("mjd", "latitude", "longitude", "altitude_km")})


def read_record(path: str | Path, exposure_id: int) -> ExposureRecord:
    """Rebuild the :class:`ExposureRecord` of one stored exposure (the inverse of append).

    WCS entries stored as NaN (or an empty CTYPE) are taken as absent.
    """
    with _reader(path) as f:
        row = _exposure_row(f, exposure_id, path)
        lo, n = int(row["cr_start"]), int(row["cr_count"])
        crs = {name: f["crs"][name][lo:lo + n] for name in _CR_DTYPES}
    offsets, index = read_pixels(path, exposure_id)
    orbit = read_orbit(path, exposure_id)
    wcs: dict[str, Any] = {k: float(row[k]) for k in WCS_KEYS if not math.isnan(row[k])}
    wcs.update({k: row[k].decode() for k in _WCS_TEXT_KEYS if row[k]})
    wcs.update(json.loads(_text(row["wcs_extra"])))
    return ExposureRecord(
        rootname=row["rootname"].decode(), detector=row["detector"].decode(),
        start_mjd=float(row["start_mjd"]), end_mjd=float(row["end_mjd"]),
        exptime=float(row["exptime"]), integration_time=float(row["integration_time"]),
        area_cm2=float(row["area_cm2"]), n_cr=int(row["n_cr"]),
        n_cut_small=int(row["n_cut_small"]), n_cut_large=int(row["n_cut_large"]),
        rate=float(row["rate"]), orbit_mjd=np.asarray(orbit["mjd"]),
        latitude=np.asarray(orbit["latitude"]), longitude=np.asarray(orbit["longitude"]),
        altitude_km=np.asarray(orbit["altitude_km"]), crs=crs, pixel_offsets=offsets,
        pixel_index=index, wcs=wcs, meta=json.loads(_text(row["meta"])))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def summary(path: str | Path) -> dict:
    """Counts per detector and the date span of a store (JSON-ready).

    Returns
    -------
    dict
        ``schema_version, created_by, created, exposures, crs, batches, start_mjd,
        end_mjd, start, end`` and ``detectors: {name: {exposures, crs, start_mjd,
        end_mjd, start, end, median_rate}}``; dates are MJD and ISO (UTC).
    """
    with _reader(path) as f:
        counts, n_batches = _committed(f)
        attrs = {k: _text(f.attrs[k]) for k in ("schema_version", "created_by", "created")
                 if k in f.attrs}
        cols = f["exposures"].fields(["detector", "start_mjd", "end_mjd", "cr_count",
                                      "rate"])[:counts.n_exposures]
    out: dict[str, Any] = {**attrs, "path": str(path), "exposures": counts.n_exposures,
                           "crs": counts.n_crs, "batches": n_batches, **_span(cols),
                           "detectors": {}}
    for name in sorted(set(cols["detector"].tolist())):
        sel = cols[cols["detector"] == name]
        out["detectors"][name.decode()] = {
            "exposures": len(sel), "crs": int(sel["cr_count"].sum()), **_span(sel),
            "median_rate": float(np.median(sel["rate"]))}
    return out


def _span(cols: np.ndarray) -> dict[str, Any]:
    if not len(cols):
        return {"start_mjd": None, "end_mjd": None, "start": None, "end": None}
    from astropy.time import Time
    lo, hi = float(cols["start_mjd"].min()), float(cols["end_mjd"].max())
    iso = Time([lo, hi], format="mjd", scale="utc").isot
    return {"start_mjd": lo, "end_mjd": hi, "start": str(iso[0])[:19], "end": str(iso[1])[:19]}


class _reader:
    """Open a store read-only for one read, checking its schema."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> h5py.File:
        self._file = _open_reader(self.path)
        try:
            _check_schema(self._file, self.path)
        except BaseException:
            self._file.close()
            raise
        return self._file

    def __exit__(self, *exc: object) -> None:
        self._file.close()
