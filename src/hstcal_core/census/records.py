"""What the cosmic-ray census records: one :class:`ExposureRecord` per dark, with its CRs.

Workers build these (the ``crstats`` stage's tasks return them in
``TaskOutput.records``); the driver alone appends them to the HDF5 store
(:mod:`hstcal_core.census.store`).  Everything is plain numpy so records pickle
cheaply to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CR_COLUMNS", "ExposureRecord", "empty_crs"]

# Per-cosmic-ray columns (float64 unless noted), as `measure(kind="crstats")` returns them.
CR_COLUMNS: dict[str, str] = {
    "energy_e": "deposited charge over the CR's pixels and their 8-neighbours, electrons",
    "size_px": "number of pixels (int32)",
    "width_sigma": "sqrt((Ixx + Iyy) / 2), pixels ('size in sigmas')",
    "symmetry": "sqrt(((Ixx - Iyy)^2 + 4 Ixy^2) / (Ixx + Iyy)^2); 0 = round",
    "centroid_y": "charge-weighted row (0-based, in the imset's array)",
    "centroid_x": "charge-weighted column (0-based)",
    "ixx": "second moment along x, px^2",
    "iyy": "second moment along y, px^2",
    "ixy": "cross moment, px^2",
    "imset": "imset (chip or read) index within the exposure (int16)",
}


def empty_crs() -> dict[str, np.ndarray]:
    """Zero-length CR columns of the right dtypes."""
    out = {k: np.zeros(0, np.float64) for k in CR_COLUMNS}
    out["size_px"] = np.zeros(0, np.int32)
    out["imset"] = np.zeros(0, np.int16)
    return out


@dataclass
class ExposureRecord:
    """One dark's census entry.

    Attributes
    ----------
    rootname, detector : str
        The exposure and the registered detector name (``acs_wfc``).
    start_mjd, end_mjd : float
        Exposure start and end (float64 MJD).
    exptime, integration_time : float
        EXPTIME and the time CRs could hit: EXPTIME + FLASHDUR + readout time, s.
    area_cm2 : float
        Sensitive area the rate refers to.
    n_cr : int
        Cosmic rays kept (after the size cut).
    n_cut_small, n_cut_large : int
        Events removed by the size cut (1–2 px, and ≥ 1e5 px by default).
    rate : float
        n_cr / integration_time / area_cm2, CR s⁻¹ cm⁻².
    orbit_mjd, latitude, longitude, altitude_km : ndarray
        HST's geodetic position at one-minute intervals through the exposure.
    crs : dict of ndarray
        The :data:`CR_COLUMNS` per cosmic ray.
    pixel_offsets, pixel_index : ndarray
        Ragged pixel lists: CR ``i`` covers ``pixel_index[pixel_offsets[i]:pixel_offsets[i+1]]``,
        flat indices into its imset (int64; offsets have ``n_cr + 1`` entries).
    wcs : dict
        WCS keywords of the first imset (CRVAL1/2, CRPIX1/2, CD matrix, CTYPE) when present.
    meta : dict
        Anything else worth keeping (CCDAMP, gain, processing version, source file).
    """

    rootname: str
    detector: str
    start_mjd: float
    end_mjd: float
    exptime: float
    integration_time: float
    area_cm2: float
    n_cr: int
    n_cut_small: int
    n_cut_large: int
    rate: float
    orbit_mjd: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    altitude_km: np.ndarray
    crs: dict[str, np.ndarray]
    pixel_offsets: np.ndarray
    pixel_index: np.ndarray
    wcs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
