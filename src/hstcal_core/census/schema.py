"""The census store's on-disk layout, its commit log, and how a store file is opened.

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

What the writer (:mod:`.store`) and the readers (:mod:`.read`) share lives here, so
neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import HstcalError, InputError
from .journal import LockedError, journal_path, recover
from .records import empty_crs

__all__ = ["BATCH_DTYPE", "EXPOSURE_DTYPE", "SCHEMA_VERSION", "WCS_KEYS", "StoreError"]

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

