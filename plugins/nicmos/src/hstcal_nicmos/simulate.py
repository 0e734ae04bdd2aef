"""Synthetic NICMOS dark ramps (calnica IMA files) with known cosmic rays.

Each exposure is written as calnica writes an IMA (NICMOS Data Handbook ch. 2): NSAMP
SCI/ERR/DQ/SAMP/TIME imsets of 256×256 pixels, **newest read first** (EXTVER 1 the last
read, EXTVER NSAMP the zeroth read at SAMPTIME 0, stored as zeros after ZOFFCORR), each
SCI the average rate since the zeroth read in ``COUNTS/S`` as in the real
``HST_NICMOS.fits`` header (or, with ``bunit=``, ``COUNTS``, ``ELECTRONS`` or
``ELECTRONS/S``).  Counts are electrons over the camera's NICMOS IHB Table 7.1 gain,
which is also written as ADCGAIN.

Signal per pixel and interval between reads: dark current (0.3 e⁻/s, NICMOS IHB Table
7.1) plus unflagged hot pixels (log-uniform 0.5–50 e⁻/s), Poisson-drawn; cosmic rays
from the core generator (:func:`hstcal_core.simulate.make_cosmic_rays`, 40 µm pixels,
``cr_rate`` cm⁻² s⁻¹ over the interval), each landing in one interval; read noise of
RN/√2 per read (Table 7.1 quotes RN for a read pair) with the zeroth read's noise
subtracted from every read.  Amplifier glow, shading and the bias "pedestal" of real
NICMOS ramps are not modelled.

Sample sequences (NICMOS IHB ch. 8, approximately): ``SPARS<s>`` reads at 0.203 s then
every ``s`` seconds; ``STEP<s>`` reads at 0.303 and 0.606 s, doubles from 1 s up to
``s`` and then reads every ``s`` seconds (``STEP32`` with NSAMP 10 ends at 64 s after a
32 s step, as the real N4HK12010 header: SAMPTIME 63.96, DELTATIM 32.0).

Truth, beside the files: ``truth.json`` and ``truth.npz`` with the layout of
:mod:`hstcal_wfc3.simulate` (per CR: the 0-based increment it landed in, pixels,
charge; every deposit), coordinates in the 256×256 array.  Each IMA has an
``_spt.fits`` companion.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core import ConfigError
from hstcal_core.fitsio import atomic_path, write_atomic
from hstcal_core.simulate import HST_CR_RATE, make_cosmic_rays, make_hot_pixels, render

from .detectors import DETECTORS

__all__ = ["simulate_nicmos_darks", "sample_sequence", "BUNITS"]

BUNITS = ("COUNTS/S", "COUNTS", "ELECTRONS", "ELECTRONS/S")
_FIRST_READ_S = 0.203  # one read of the array, the shortest MULTIACCUM spacing
_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)
_CAMERAS = {int(det.extra["camera"]): det for det in DETECTORS}


def sample_sequence(samp_seq: str, nsamp: int) -> np.ndarray:
    """SAMPTIME of each read (zeroth read first, at 0), for SPARS<s> or STEP<s>.

    Raises
    ------
    ValueError
        Unknown sequence name or NSAMP outside 2..26.
    """
    if not 2 <= int(nsamp) <= 26:
        raise ValueError(f"nsamp must be within 2..26 (NICMOS MULTIACCUM), got {nsamp!r}")
    name = str(samp_seq).strip().upper()
    kind, step = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
    if kind not in ("SPARS", "STEP") or not step:
        raise ValueError(f"samp_seq must be SPARS<s> or STEP<s> (e.g. STEP64), got {samp_seq!r}")
    step_s = float(step)
    times = [0.0]
    if kind == "SPARS":
        times.append(_FIRST_READ_S)
        while len(times) < int(nsamp):
            times.append(times[-1] + step_s)
        return np.asarray(times)
    times += [0.303, 0.606]
    t = 1.0
    while len(times) < int(nsamp):
        times.append(t)
        t = t * 2.0 if t * 2.0 <= step_s else t + step_s
    return np.asarray(times[: int(nsamp)])


def simulate_nicmos_darks(out_dir, *, camera: int = 2, kind: str = "dark", count: int = 1,
                          seed: int = 0, start_mjd: float = 52800.0, cadence_days: float = 1.0,
                          samp_seq: str = "STEP64", nsamp: int = 16, bunit: str = "COUNTS/S",
                          cr_rate: float = HST_CR_RATE, dark_e_per_s: float | None = None,
                          hot_fraction: float = 0.001, gain: float | None = None,
                          binning: str | None = None, **unknown) -> dict:
    """Write ``count`` NICMOS dark IMAs (and SPT companions) with known cosmic rays.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    camera : int
        1, 2 or 3.
    kind : str
        Only ``"dark"``.
    count, seed : int
        Number of exposures and the random seed.
    start_mjd, cadence_days : float
        EXPSTART of the first exposure and the spacing of the others.
    samp_seq, nsamp : str, int
        Sample sequence and reads including the zeroth.
    bunit : str
        BUNIT of the SCI arrays, one of :data:`BUNITS`.
    cr_rate : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_e_per_s : float, optional
        Dark current; the camera's 0.3 e⁻/s by default.
    hot_fraction : float
        Fraction of hot pixels.
    gain, binning
        Accepted for ``hstcal simulate``; only the camera's gain and 1x1 exist.

    Returns
    -------
    dict
        The content of ``truth.json`` plus ``"truth_npz"``, the path of the deposits.

    Raises
    ------
    ConfigError
        An unknown argument or an invalid value, naming it.
    """
    if int(camera) not in _CAMERAS:
        raise ConfigError(f"camera must be 1, 2 or 3, got {camera!r}")
    det = _CAMERAS[int(camera)]
    if unknown:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unknown)}")
    if kind != "dark":
        raise ConfigError(f"{det.name} simulates kind='dark' only, got {kind!r}")
    if gain is not None and float(gain) not in det.gains:
        raise ConfigError(f"{det.name} gain must be one of {list(det.gains)}, got {gain!r}")
    if binning not in (None, "1x1"):
        raise ConfigError(f"{det.name} is never binned; binning must be 1x1, got {binning!r}")
    bunit = str(bunit).strip().upper()
    if bunit not in BUNITS:
        raise ConfigError(f"bunit must be one of {BUNITS}, got {bunit!r}")
    dark_rate = float(det.extra["dark_current_e_per_s"] if dark_e_per_s is None else dark_e_per_s)
    try:
        times = sample_sequence(samp_seq, nsamp)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth: dict = {"detector": det.name, "seed": int(seed), "bunit": bunit,
                   "samp_seq": str(samp_seq).upper(), "nsamp": int(nsamp),
                   "science_shape": list(det.shape), "cr_rate": float(cr_rate),
                   "dark_e_per_s": dark_rate, "files": [], "exposures": []}
    arrays: dict[str, list] = {k: [] for k in ("dep_cr", "dep_y", "dep_x", "dep_e", "cr_file",
                                               "cr_increment", "cr_charge_e", "hot_file",
                                               "hot_y", "hot_x", "hot_rate")}
    cr_base = 0
    for index in range(int(count)):
        root = f"n{int(camera)}s{int(seed) % 100:02d}{index:03d}q"
        expstart = float(start_mjd) + index * float(cadence_days)
        exposure, cr_base = _one_exposure(out, det, root, expstart, times, bunit, samp_seq,
                                          cr_rate, dark_rate, hot_fraction, rng, arrays, index,
                                          cr_base)
        truth["files"].append(str(out / f"{root}_ima.fits"))
        truth["exposures"].append(exposure)
    npz_path = out / "truth.npz"
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{k: _concat(v, k) for k, v in arrays.items()})
    with atomic_path(out / "truth.json") as tmp:
        tmp.write_text(json.dumps(truth, indent=1))
    return {**truth, "truth_npz": str(npz_path)}


def _concat(parts: list, key: str) -> np.ndarray:
    dtype = np.float32 if key in ("dep_e", "cr_charge_e", "hot_rate") else np.int32
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _rounded(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None  # a CR with no deposit


def _one_exposure(out: Path, det, root: str, expstart: float, times: np.ndarray, bunit: str,
                  samp_seq: str, cr_rate: float, dark_rate: float, hot_fraction: float,
                  rng: np.random.Generator, arrays: dict, index: int,
                  cr_base: int) -> tuple[dict, int]:
    shape = tuple(det.shape)
    amp = det.amplifier(det.gains[0])
    dark = np.full(shape, dark_rate, np.float64)
    hot = make_hot_pixels(shape, hot_fraction, rng, low=0.5, high=50.0)
    dark[hot.y, hot.x] += hot.excess
    arrays["hot_file"].append(np.full(hot.y.size, index))
    arrays["hot_y"].append(hot.y)
    arrays["hot_x"].append(hot.x)
    arrays["hot_rate"].append(dark[hot.y, hot.x])

    single_rn = amp.read_noise / np.sqrt(2.0)
    zero_noise = rng.normal(0.0, single_rn, shape)
    cumulative = np.zeros(shape, np.float64)
    reads = [np.zeros(shape, np.float64)]  # ZOFFCORR: the zeroth read minus itself
    crs_rows = []
    for k, dt in enumerate(np.diff(times)):
        crs = make_cosmic_rays(shape, float(dt), cr_rate, det.pixel_pitch_um, rng)
        cumulative += rng.poisson(dark * dt) + render(crs)
        reads.append(cumulative + rng.normal(0.0, single_rn, shape) - zero_noise)
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

    hdus = [fits.PrimaryHDU(header=_primary(det, root, expstart, times, samp_seq, amp.gain))]
    for ver, k in enumerate(range(len(times) - 1, -1, -1), start=1):  # newest first
        values = reads[k]
        err = np.sqrt(amp.read_noise**2 + np.maximum(values, 0))
        if bunit.startswith("COUNTS"):
            values, err = values / amp.gain, err / amp.gain
        if bunit.endswith("/S"):
            scale = 1.0 / times[k] if times[k] > 0 else 0.0
            values, err = values * scale, err * scale
        header = fits.Header()
        header["EXPNAME"] = root
        header["BUNIT"] = bunit
        header["SAMPNUM"] = (k, "MULTIACCUM sample number")
        header["SAMPTIME"] = (float(times[k]), "total integration time (sec)")
        header["DELTATIM"] = (float(times[k] - times[k - 1]) if k else 0.0,
                              "integration time of this sample (sec)")
        header["ROUTTIME"] = (expstart + times[k] / 86400.0, "UT time of array readout (MJD)")
        hdus.append(fits.ImageHDU(values.astype(np.float32), header=header, name="SCI", ver=ver))
        hdus.append(fits.ImageHDU(err.astype(np.float32), name="ERR", ver=ver))
        hdus.append(fits.ImageHDU(np.zeros(shape, np.int16), name="DQ", ver=ver))
        hdus.append(fits.ImageHDU(np.full(shape, k + 1, np.int16), name="SAMP", ver=ver))
        hdus.append(fits.ImageHDU(np.full(shape, times[k], np.float32), name="TIME", ver=ver))
    write_atomic(fits.HDUList(hdus), out / f"{root}_ima.fits")
    _write_spt(out / f"{root}_spt.fits", det, root, expstart)
    exposure = {"rootname": root, "file": f"{root}_ima.fits", "expstart_mjd": expstart,
                "sample_times": [float(t) for t in times], "n_crs": len(crs_rows),
                "crs": crs_rows}
    return exposure, cr_base


def _primary(det, root: str, expstart: float, times: np.ndarray, samp_seq: str,
             gain: float) -> fits.Header:
    exptime = float(times[-1])
    start = _MJD0 + timedelta(days=expstart)
    h = fits.Header()
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "NICMOS"
    h["CAMERA"] = int(det.extra["camera"])
    h["ROOTNAME"] = root
    h["FILENAME"] = f"{root}_ima.fits"
    h["FILETYPE"] = "SCI"
    h["IMAGETYP"] = "DARK"
    h["OBSTYPE"] = "IMAGING"
    h["OBSMODE"] = "MULTIACCUM"
    h["TARGNAME"] = "DARK"
    h["PROPOSID"] = 99999
    h["APERTURE"] = f"{det.extra['aperture_prefix']}"
    h["FILTER"] = "BLANK"
    h["SAMP_SEQ"] = str(samp_seq).upper()
    h["NSAMP"] = len(times)
    h["ADCGAIN"] = (gain, "A-to-D gain (e-/ADU), NICMOS IHB Table 7.1")
    h["EXPTIME"] = (exptime, "exposure duration (seconds)--calculated")
    h["EXPSTART"] = (expstart, "exposure start time (Modified Julian Date)")
    h["EXPEND"] = (expstart + exptime / 86400.0, "exposure end time (Modified Julian Date)")
    h["DATE-OBS"] = start.strftime("%Y-%m-%d")
    h["TIME-OBS"] = start.strftime("%H:%M:%S")
    for step in ("ZSIGCORR", "ZOFFCORR", "MASKCORR", "BIASCORR", "NOISCALC", "NLINCORR",
                 "DARKCORR", "UNITCORR"):
        h[step] = "COMPLETE"
    h["CRIDCALC"] = "OMIT"
    h.add_history("Synthetic NICMOS dark ramp written by hstcal_nicmos.simulate")
    return h


def _write_spt(path: Path, det, root: str, expstart: float) -> None:
    """SPT companion: ROOTNAME/INSTRUME/FILETYPE and, when the core provides them, the
    orbital elements HST had at the start of the exposure."""
    header = fits.Header()
    header["TELESCOP"] = "HST"
    header["INSTRUME"] = "NICMOS"
    header["CAMERA"] = int(det.extra["camera"])
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
        from hstcal_core.algorithms.orbit import (
            ORBIT_KEYWORDS,
            REFERENCE_ELEMENTS,
            elements_at_epoch,
            orbit_keywords,
        )
    except ImportError:  # an hstcal-core without hstcal_core.algorithms.orbit
        return {}
    values = orbit_keywords(elements_at_epoch(REFERENCE_ELEMENTS, epoch_mjd))
    return {key: (value, ORBIT_KEYWORDS.get(key, "")) for key, value in values.items()}
