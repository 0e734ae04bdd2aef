"""Reading the cosmic-ray census store: exposures, CRs, pixels and orbit, by selection.

Every function opens the store read-only for one read (rolling back a crashed
writer's journal first, when allowed), sees committed rows only (:mod:`.schema`)
and closes it again.  :mod:`.store` re-exports these names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from ..errors import ConfigError
from .records import CR_COLUMNS, ExposureRecord
from .schema import (
    _CR_DTYPES,
    _CR_INDEX,
    _ORBIT,
    _WCS_TEXT_KEYS,
    EXPOSURE_DTYPE,
    WCS_KEYS,
    StoreError,
    _check_schema,
    _committed,
    _open_reader,
)

__all__ = [
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

# Reads merge CR ranges separated by fewer rows than this into one slice.
_MAX_GAP_ROWS = 4096


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
