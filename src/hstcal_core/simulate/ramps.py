"""Synthetic MULTIACCUM dark ramps (calwf3/calnica IMA files) with known cosmic rays.

A detector-agnostic writer for the cosmic-ray census of HST's IR detectors: a plugin
describes its detector once (:class:`RampLayout`) and its sample sequence (the reads'
SAMPTIMEs), and gets IMAs as its pipeline writes them after ZOFFCORR/UNITCORR: NSAMP
SCI/ERR/DQ/SAMP/TIME imsets, **newest read first** (EXTVER 1 is the last read, EXTVER
NSAMP the zeroth read at SAMPTIME 0, stored as zeros), each SCI in the requested BUNIT
(``ELECTRONS``, ``COUNTS`` = electrons over the gain, either one ``/S``: the average
rate since the zeroth read), with the layout's reference border around the science
pixels.

The signal, per science pixel and interval between reads:

* dark current plus hot pixels (a fraction of pixels with a log-uniform 0.5–50 e⁻/s,
  left unflagged in DQ so the Poisson term is exercised), Poisson-drawn per interval;
* cosmic rays from :func:`~hstcal_core.simulate.make_cosmic_rays` at ``cr_rate``
  cm⁻² s⁻¹ over the interval's duration, each landing in one interval and kept by
  every later read;
* read noise: each read gets Gaussian noise of RN/√2 (HST's tables quote RN for a
  read pair), and every read has the zeroth read's noise subtracted as ZOFFCORR does.

Truth, beside the files: ``truth.json`` (per file: rootname, sample times, and per
cosmic ray its increment — the 0-based index of the time-ordered read-to-read
interval it landed in — pixel count, charge and centroid) and ``truth.npz`` (every
deposit: ``dep_cr``, ``dep_y``, ``dep_x``, ``dep_e``; per CR ``cr_file``,
``cr_increment``, ``cr_charge_e``; hot pixels), coordinates in the science array
that ``calibrate`` returns.  Each IMA has an ``_spt.fits`` companion carrying HST's
orbit when :mod:`hstcal_core.algorithms.orbit` is available.

:func:`score_ramp_jumps` scores one exposure's jump masks (``reject_crs`` output)
against that truth, for any MULTIACCUM plugin's tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..detectors import Detector
from ..errors import ConfigError
from ..fitsio import atomic_path, write_atomic
from .cosmic_rays import make_cosmic_rays, render
from .defects import make_hot_pixels

__all__ = ["RampLayout", "check_ramp_arguments", "score_ramp_jumps", "simulate_ramp_darks"]

_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)
_TRUTH_ARRAYS = ("dep_cr", "dep_y", "dep_x", "dep_e", "cr_file", "cr_increment",
                 "cr_charge_e", "hot_file", "hot_y", "hot_x", "hot_rate")


@dataclass(frozen=True)
class RampLayout:
    """One MULTIACCUM detector's files: geometry, constants and header cards.

    Attributes
    ----------
    detector : Detector
        Its name goes into the truth, its pixel pitch sizes the cosmic rays.
    science_shape : tuple of int
        The science array (without the reference border).
    gain, read_noise : float or ndarray
        e⁻/DN and the read-pair noise (e⁻), scalars or one value per science pixel.
    root_prefix : str
        ROOTNAMEs are ``<prefix><seed % 100:02d><index:03d>q``.
    instrument : mapping
        Primary cards after TELESCOP (``INSTRUME`` and ``DETECTOR`` or ``CAMERA``).
    aperture : str
        APERTURE.
    setup : mapping
        Primary cards after NSAMP (subarray geometry, ADCGAIN).
    calibration : mapping
        Primary cards after TIME-OBS (gains, calibration switches).
    history : str
        The primary header's HISTORY line.
    spt_instrument : mapping
        SPT cards after TELESCOP.
    name_keywords : tuple of str
        Keywords of every SCI header holding the rootname (calwf3 writes ROOTNAME and
        EXPNAME, calnica EXPNAME).
    sci_cards : mapping
        SCI cards after BUNIT (a subarray's LTV1/LTV2).
    reference_border : int
        Reference pixels around the science array on every side.
    constant_samp_time : bool
        SAMP/TIME as data-less constant arrays (NPIX1/2, PIXVALUE), as calwf3 writes
        them; else full arrays, as calnica does.
    """

    detector: Detector
    science_shape: tuple[int, int]
    gain: float | np.ndarray
    read_noise: float | np.ndarray
    root_prefix: str
    instrument: Mapping[str, Any]
    aperture: str
    history: str
    setup: Mapping[str, Any] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)
    spt_instrument: Mapping[str, Any] = field(default_factory=dict)
    name_keywords: tuple[str, ...] = ("EXPNAME",)
    sci_cards: Mapping[str, Any] = field(default_factory=dict)
    reference_border: int = 0
    constant_samp_time: bool = False

    @property
    def raw_shape(self) -> tuple[int, int]:
        """The reads' shape: the science array and the reference border."""
        return tuple(int(s) + 2 * self.reference_border for s in self.science_shape)

    def raw(self, values: float | np.ndarray) -> float | np.ndarray:
        """A per-science-pixel constant extended over the reference border."""
        if np.ndim(values) == 0:
            return values
        return np.pad(values, self.reference_border, mode="edge")


def check_ramp_arguments(detector: Detector, bunits: tuple[str, ...], *, unknown: Mapping,
                         kind: str, gain: float | None, binning: str | None,
                         bunit: str) -> str:
    """Check the arguments every ramp simulator shares; return BUNIT normalised.

    Raises
    ------
    ConfigError
        An unknown argument, a kind other than ``"dark"``, a gain the detector does not
        have, a binning other than 1x1, or a BUNIT not in ``bunits``, naming it.
    """
    if unknown:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unknown)}")
    if kind != "dark":
        raise ConfigError(f"{detector.name} simulates kind='dark' only, got {kind!r}")
    if gain is not None and float(gain) not in detector.gains:
        raise ConfigError(f"{detector.name} gain must be one of {list(detector.gains)}, "
                          f"got {gain!r}")
    if binning not in (None, "1x1"):
        raise ConfigError(f"{detector.name} is never binned; binning must be 1x1, "
                          f"got {binning!r}")
    bunit = str(bunit).strip().upper()
    if bunit not in bunits:
        raise ConfigError(f"bunit must be one of {bunits}, got {bunit!r}")
    return bunit


def simulate_ramp_darks(out_dir, layout: RampLayout, times: np.ndarray, *, samp_seq: str,
                        bunit: str, count: int, seed: int, start_mjd: float,
                        cadence_days: float, cr_rate: float, dark_e_per_s: float,
                        hot_fraction: float) -> dict:
    """Write ``count`` dark IMAs (and SPT companions) with known cosmic rays.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    layout : RampLayout
        The detector's files.
    times : ndarray
        SAMPTIME of each read, zeroth read first (at 0), increasing.
    samp_seq, bunit : str
        SAMP_SEQ and the (checked, upper-case) BUNIT of the SCI arrays.
    count, seed : int
        Number of exposures and the random seed.
    start_mjd, cadence_days : float
        EXPSTART of the first exposure and the spacing of the others.
    cr_rate, dark_e_per_s, hot_fraction : float
        Cosmic-ray flux (cm⁻² s⁻¹), dark current and the fraction of hot pixels.

    Returns
    -------
    dict
        The content of ``truth.json`` plus ``"truth_npz"``, the path of the deposits.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth: dict = {"detector": layout.detector.name, "seed": int(seed), "bunit": bunit,
                   "samp_seq": str(samp_seq).upper(), "nsamp": len(times),
                   "science_shape": list(layout.science_shape), "cr_rate": float(cr_rate),
                   "dark_e_per_s": float(dark_e_per_s), "files": [], "exposures": []}
    arrays: dict[str, list] = {k: [] for k in _TRUTH_ARRAYS}
    cr_base = 0
    for index in range(int(count)):
        root = f"{layout.root_prefix}{int(seed) % 100:02d}{index:03d}q"
        expstart = float(start_mjd) + index * float(cadence_days)
        reads, crs_rows, cr_base = _ramp_reads(layout, times, cr_rate, dark_e_per_s,
                                               hot_fraction, rng, arrays, index, cr_base)
        _write_ima(out / f"{root}_ima.fits", layout, root, expstart, times, reads, bunit,
                   samp_seq)
        _write_spt(out / f"{root}_spt.fits", layout, root, expstart)
        truth["files"].append(str(out / f"{root}_ima.fits"))
        truth["exposures"].append({"rootname": root, "file": f"{root}_ima.fits",
                                   "expstart_mjd": expstart,
                                   "sample_times": [float(t) for t in times],
                                   "n_crs": len(crs_rows), "crs": crs_rows})
    npz_path = out / "truth.npz"
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{k: _concat(v, k) for k, v in arrays.items()})
    with atomic_path(out / "truth.json") as tmp:
        tmp.write_text(json.dumps(truth, indent=1))
    return {**truth, "truth_npz": str(npz_path)}


def _rounded(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None  # a CR with no deposit


def _concat(parts: list, key: str) -> np.ndarray:
    dtype = np.float32 if key in ("dep_e", "cr_charge_e", "hot_rate") else np.int32
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _ramp_reads(layout: RampLayout, times: np.ndarray, cr_rate: float, dark_e_per_s: float,
                hot_fraction: float, rng: np.random.Generator, arrays: dict, index: int,
                cr_base: int) -> tuple[list[np.ndarray], list[dict], int]:
    """The reads of one exposure in time order (electrons, raw shape) and its CR rows."""
    sci_shape, raw_shape = tuple(layout.science_shape), layout.raw_shape
    border = layout.reference_border
    inner = (slice(border, raw_shape[0] - border), slice(border, raw_shape[1] - border))
    dark = np.full(sci_shape, dark_e_per_s, np.float64)
    hot = make_hot_pixels(sci_shape, hot_fraction, rng, low=0.5, high=50.0)
    dark[hot.y, hot.x] += hot.excess
    arrays["hot_file"].append(np.full(hot.y.size, index))
    arrays["hot_y"].append(hot.y)
    arrays["hot_x"].append(hot.x)
    arrays["hot_rate"].append(dark[hot.y, hot.x])

    single_rn = layout.raw(layout.read_noise / np.sqrt(2.0))
    zero_noise = rng.normal(0.0, 1.0, raw_shape) * single_rn
    cumulative = np.zeros(sci_shape, np.float64)
    reads = [np.zeros(raw_shape, np.float64)]  # ZOFFCORR: the zeroth read minus itself
    crs_rows = []
    for k, dt in enumerate(np.diff(times)):
        crs = make_cosmic_rays(sci_shape, float(dt), cr_rate, layout.detector.pixel_pitch_um,
                               rng)
        cumulative += rng.poisson(dark * dt) + render(crs)
        read = rng.normal(0.0, 1.0, raw_shape) * single_rn - zero_noise
        read[inner] += cumulative
        reads.append(read)
        totals, pixels, summary = crs.total_charge_e, crs.n_pixels, crs.summary()
        for i in range(crs.n_crs):
            crs_rows.append({"id": cr_base + i, "increment": k, "n_pixels": int(pixels[i]),
                             "charge_e": round(float(totals[i]), 2),
                             "y": _rounded(summary["y"][i]), "x": _rounded(summary["x"][i])})
        arrays["dep_cr"].append(crs.cr_id + cr_base)
        arrays["dep_y"].append(crs.y)
        arrays["dep_x"].append(crs.x)
        arrays["dep_e"].append(crs.charge_e)
        arrays["cr_file"].append(np.full(crs.n_crs, index))
        arrays["cr_increment"].append(np.full(crs.n_crs, k))
        arrays["cr_charge_e"].append(totals)
        cr_base += crs.n_crs
    return reads, crs_rows, cr_base


def _write_ima(path: Path, layout: RampLayout, root: str, expstart: float, times: np.ndarray,
               reads: list[np.ndarray], bunit: str, samp_seq: str) -> None:
    raw_shape = layout.raw_shape
    raw_gain, raw_rn = layout.raw(layout.gain), layout.raw(layout.read_noise)
    hdus = [fits.PrimaryHDU(header=_primary(layout, root, expstart, times, samp_seq))]
    for ver, k in enumerate(range(len(times) - 1, -1, -1), start=1):  # newest first
        values = reads[k]
        err = np.sqrt(raw_rn**2 + np.maximum(values, 0))
        if bunit.startswith("COUNTS"):
            values, err = values / raw_gain, err / raw_gain
        if bunit.endswith("/S"):
            scale = 1.0 / times[k] if times[k] > 0 else 0.0
            values, err = values * scale, err * scale
        header = fits.Header()
        for key in layout.name_keywords:
            header[key] = root
        header["BUNIT"] = bunit
        for key, value in layout.sci_cards.items():
            header[key] = value
        header["SAMPNUM"] = (k, "MULTIACCUM sample number")
        header["SAMPTIME"] = (float(times[k]), "total integration time (sec)")
        header["DELTATIM"] = (float(times[k] - times[k - 1]) if k else 0.0,
                              "integration time of this sample (sec)")
        header["ROUTTIME"] = (expstart + times[k] / 86400.0, "UT time of array readout (MJD)")
        hdus.append(fits.ImageHDU(values.astype(np.float32), header=header, name="SCI", ver=ver))
        hdus.append(fits.ImageHDU(err.astype(np.float32), name="ERR", ver=ver))
        hdus.append(fits.ImageHDU(np.zeros(raw_shape, np.int16), name="DQ", ver=ver))
        hdus.extend(_samp_time(layout, ver, k + 1, times[k]))
    write_atomic(fits.HDUList(hdus), path)


def _samp_time(layout: RampLayout, ver: int, sample: int, samptime: float) -> list:
    shape = layout.raw_shape
    if not layout.constant_samp_time:
        return [fits.ImageHDU(np.full(shape, sample, np.int16), name="SAMP", ver=ver),
                fits.ImageHDU(np.full(shape, samptime, np.float32), name="TIME", ver=ver)]
    hdus = []
    for name, value, unit in (("SAMP", sample, "SAMPLES"), ("TIME", samptime, "SECONDS")):
        hdu = fits.ImageHDU(name=name, ver=ver)
        hdu.header["BUNIT"] = unit
        hdu.header["NPIX1"], hdu.header["NPIX2"] = shape[1], shape[0]
        hdu.header["PIXVALUE"] = (float(value), "values of pixels in constant array")
        hdus.append(hdu)
    return hdus


def _primary(layout: RampLayout, root: str, expstart: float, times: np.ndarray,
             samp_seq: str) -> fits.Header:
    exptime = float(times[-1])
    start = _MJD0 + timedelta(days=expstart)
    h = fits.Header()
    h["TELESCOP"] = "HST"
    for key, value in layout.instrument.items():
        h[key] = value
    h["ROOTNAME"] = root
    h["FILENAME"] = f"{root}_ima.fits"
    h["FILETYPE"] = "SCI"
    h["IMAGETYP"] = "DARK"
    h["OBSTYPE"] = "IMAGING"
    h["OBSMODE"] = "MULTIACCUM"
    h["TARGNAME"] = "DARK"
    h["PROPOSID"] = 99999
    h["APERTURE"] = layout.aperture
    h["FILTER"] = "BLANK"
    h["SAMP_SEQ"] = str(samp_seq).upper()
    h["NSAMP"] = len(times)
    for key, value in layout.setup.items():
        h[key] = value
    h["EXPTIME"] = (exptime, "exposure duration (seconds)--calculated")
    h["EXPSTART"] = (expstart, "exposure start time (Modified Julian Date)")
    h["EXPEND"] = (expstart + exptime / 86400.0, "exposure end time (Modified Julian Date)")
    h["DATE-OBS"] = start.strftime("%Y-%m-%d")
    h["TIME-OBS"] = start.strftime("%H:%M:%S")
    for key, value in layout.calibration.items():
        h[key] = value
    h.add_history(layout.history)
    return h


def _write_spt(path: Path, layout: RampLayout, root: str, expstart: float) -> None:
    """SPT companion: ROOTNAME/INSTRUME/FILETYPE and, when the core provides them, the
    orbital elements HST had at the start of the exposure."""
    header = fits.Header()
    header["TELESCOP"] = "HST"
    for key, value in layout.spt_instrument.items():
        header[key] = value
    header["ROOTNAME"] = root
    header["FILETYPE"] = "SPT"
    header["TARGNAME"] = "DARK"
    for key, value in _orbit_cards(expstart).items():
        header[key] = value
    write_atomic(fits.HDUList([fits.PrimaryHDU(header=header)]), path)


def _orbit_cards(epoch_mjd: float) -> dict:
    """``{keyword: (value, comment)}`` of a plausible HST orbit at ``epoch_mjd`` (the core's
    reference elements moved to that epoch), or ``{}`` without the core's orbit module."""
    try:
        from ..algorithms.orbit import (
            ORBIT_KEYWORDS,
            REFERENCE_ELEMENTS,
            elements_at_epoch,
            orbit_keywords,
        )
    except ImportError:  # an hstcal-core without hstcal_core.algorithms.orbit
        return {}
    values = orbit_keywords(elements_at_epoch(REFERENCE_ELEMENTS, epoch_mjd))
    return {key: (value, ORBIT_KEYWORDS.get(key, "")) for key, value in values.items()}


# --------------------------------------------------------------------------- scoring
def score_ramp_jumps(truth_npz, file_index: int, calibrated, combined, *,
                     truth_pixel_e: float) -> dict[str, Any]:
    """Score the jump masks of one simulated exposure against its truth.

    A *truth pixel* is a deposit of at least ``truth_pixel_e``; a cosmic ray with ≥ 3
    of them is *countable*, and *found* when ≥ 50 % of them are flagged in the
    increment it landed in.  A flagged object (8-connected, per increment) is *false*
    when none of its pixels holds charge of a cosmic ray of that increment.  A found
    cosmic ray's measured charge is the jump above the pixel's steady signal
    (increment − clean rate × Δt) over its flagged pixels.

    Parameters
    ----------
    truth_npz : path
        The simulator's ``truth.npz``.
    file_index : int
        The exposure's index in the simulator's ``files``.
    calibrated : Exposure
        ``calibrate`` output: its increments, with DELTATIM.
    combined : CombinedImage
        ``reject_crs`` output for that exposure alone (one mask per increment).
    truth_pixel_e : float
        Deposit that makes a truth pixel (e.g. 5 × the read-pair noise).

    Returns
    -------
    dict
        ``countable``, ``found``, ``completeness``, ``objects``, ``false``,
        ``false_big`` (false objects of ≥ 3 pixels), ``energy_ratio`` (per found CR,
        measured / true charge of its flagged pixels), ``energy_sum_ratio``,
        ``captured`` (true charge flagged / total true charge of the found CRs), and
        the exposure's deposits: ``increment``, ``dep_cr``, ``y``, ``x``, ``big``
        (a truth pixel).
    """
    from scipy import ndimage

    with np.load(truth_npz) as t:
        cr_file, cr_increment = t["cr_file"], t["cr_increment"]
        cr_charge = t["cr_charge_e"]
        keep = np.isin(t["dep_cr"], np.flatnonzero(cr_file == file_index))
        dep_cr, y, x, e = (t[k][keep] for k in ("dep_cr", "dep_y", "dep_x", "dep_e"))
    increment = cr_increment[dep_cr]
    n_cr = cr_increment.size
    masks = combined.masks
    flagged = masks[increment, y, x]
    big = e >= truth_pixel_e
    n_truth = np.bincount(dep_cr[big], minlength=n_cr)
    n_hit = np.bincount(dep_cr[big], weights=flagged[big], minlength=n_cr)
    countable = (cr_file == file_index) & (n_truth >= 3)
    found = countable & (n_hit >= 0.5 * n_truth)

    charged = np.zeros(masks.shape, bool)
    charged[increment, y, x] = True
    n_objects = n_false = n_false_big = 0
    for k, mask in enumerate(masks):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        real = ndimage.maximum(charged[k], labels, index) > 0
        size = ndimage.sum_labels(np.ones(mask.shape), labels, index)
        n_objects += n
        n_false += int(np.count_nonzero(~real))
        n_false_big += int(np.count_nonzero(~real & (size >= 3)))

    increments = np.stack([i.sci for i in calibrated.imsets]).astype(np.float64)
    dt = np.array([float(i.header["DELTATIM"]) for i in calibrated.imsets])
    rate = combined.sci / combined.texptime
    jump = increments[increment, y, x] - rate[y, x] * dt[increment]
    measured = np.bincount(dep_cr, weights=np.where(flagged, jump, 0), minlength=n_cr)
    true_flagged = np.bincount(dep_cr, weights=np.where(flagged, e, 0), minlength=n_cr)
    return {"countable": int(countable.sum()), "found": int(found.sum()),
            "completeness": found.sum() / max(countable.sum(), 1),
            "objects": n_objects, "false": n_false, "false_big": n_false_big,
            "energy_ratio": measured[found] / true_flagged[found],
            "energy_sum_ratio": measured[found].sum() / true_flagged[found].sum(),
            "captured": true_flagged[found].sum() / cr_charge[found].sum(),
            "increment": increment, "dep_cr": dep_cr, "y": y, "x": x, "big": big}
