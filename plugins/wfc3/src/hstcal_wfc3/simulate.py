"""Synthetic WFC3/IR dark ramps (calwf3 IMA files) with known cosmic rays.

Each exposure is written as calwf3 writes an IMA after ZOFFCORR/UNITCORR (WFC3 Data
Handbook ch. 2-3): NSAMP SCI/ERR/DQ/SAMP/TIME imsets, **newest read first** (EXTVER 1
is the last read, EXTVER NSAMP the zeroth read at SAMPTIME 0, stored as zeros), each
SCI the average rate since the zeroth read in ``ELECTRONS/S`` (or, with ``bunit=``,
cumulative ``ELECTRONS``, ``COUNTS`` = DN through ATODGN{A..D}, or ``COUNTS/S``), with
the 5-pixel reference border around the science pixels (full frame 1024×1024, or a
centred ``SQ<n>SUB`` subarray of n+10 pixels, like the real ``iccz11q4q_ima``).

The signal, per science pixel and interval between reads:

* dark current (0.05 e⁻/s, WFC3 IHB ch. 5, IR dark current) plus hot pixels (a fraction of pixels with
  a log-uniform 0.5–50 e⁻/s, left unflagged in DQ so the Poisson term is exercised),
  Poisson-drawn per interval;
* cosmic rays from the core generator (:func:`hstcal_core.simulate.make_cosmic_rays`,
  18 µm pixels, ``cr_rate`` cm⁻² s⁻¹ over the interval's duration), each landing in
  one interval and kept by every later read;
* read noise: each read gets Gaussian noise of READNSE/√2 (READNSE{A..D}, per quadrant,
  is the noise of a read pair), and every read has the zeroth read's noise subtracted
  as ZOFFCORR does.

Sample sequences (WFC3 IHB ch. 7, approximately): ``RAPID`` reads every frame time,
``SPARS<s>`` reads once at the frame time and then every ``s`` seconds.  The frame time
(one read of the array) is 2.932 s full frame and 0.853 / 0.278 / 0.113 / 0.061 s for
the 512 / 256 / 128 / 64 subarrays (0.2778 s in the real SQ256SUB IMA).

Truth, beside the files: ``truth.json`` (per file: rootname, sample times, and per
cosmic ray its increment — the 0-based index of the time-ordered read-to-read
interval it landed in — pixel count, charge and centroid) and ``truth.npz`` (every
deposit: ``dep_cr``, ``dep_y``, ``dep_x``, ``dep_e``; per CR ``cr_file``,
``cr_increment``, ``cr_charge_e``; hot pixels), coordinates in the trimmed science
array that ``calibrate`` returns.  Each IMA has an ``_spt.fits`` companion.
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

from .detectors import WFC3_IR
from .ir import quadrant_map

__all__ = ["simulate_ir_darks", "sample_sequence", "FRAME_TIME_S", "BUNITS"]

#: Time of one read of the array (RAPID spacing), s, by science size.
FRAME_TIME_S = {1014: 2.932, 512: 0.853, 256: 0.278, 128: 0.113, 64: 0.061}
BUNITS = ("ELECTRONS/S", "ELECTRONS", "COUNTS", "COUNTS/S")
DARK_E_PER_S = 0.05
_SUBTYPE = {1014: "FULLIMAG", 512: "SQ512SUB", 256: "SQ256SUB", 128: "SQ128SUB", 64: "SQ64SUB"}
_APERTURE = {1014: "IR", 512: "IRSUB512", 256: "IRSUB256", 128: "IRSUB128", 64: "IRSUB64"}
_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)


def sample_sequence(samp_seq: str, nsamp: int, frame_time: float) -> np.ndarray:
    """SAMPTIME of each read (zeroth read first, at 0), for RAPID or SPARS<s>.

    Raises
    ------
    ValueError
        Unknown sequence name or NSAMP outside 2..16.
    """
    if not 2 <= int(nsamp) <= 16:
        raise ValueError(f"nsamp must be within 2..16 (WFC3/IR ramps), got {nsamp!r}")
    name = str(samp_seq).strip().upper()
    k = np.arange(int(nsamp), dtype=np.float64)
    if name == "RAPID":
        return k * frame_time
    if name.startswith("SPARS") and name[5:].isdigit():
        step = float(name[5:])
        return np.where(k == 0, 0.0, frame_time + np.maximum(k - 1, 0) * step)
    raise ValueError(f"samp_seq must be RAPID or SPARS<seconds> (e.g. SPARS25), got {samp_seq!r}")


def simulate_ir_darks(out_dir, *, kind: str = "dark", count: int = 1, seed: int = 0,
                      start_mjd: float = 55800.0, cadence_days: float = 1.0,
                      samp_seq: str = "SPARS25", nsamp: int = 16, subarray: int | None = None,
                      bunit: str = "ELECTRONS/S", cr_rate: float = HST_CR_RATE,
                      dark_e_per_s: float = DARK_E_PER_S, hot_fraction: float = 0.001,
                      gain: float | None = None, binning: str | None = None,
                      **unknown) -> dict:
    """Write ``count`` WFC3/IR dark IMAs (and SPT companions) with known cosmic rays.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    kind : str
        Only ``"dark"``.
    count, seed : int
        Number of exposures and the random seed.
    start_mjd, cadence_days : float
        EXPSTART of the first exposure and the spacing of the others.
    samp_seq, nsamp : str, int
        Sample sequence (``RAPID`` or ``SPARS<s>``) and reads including the zeroth.
    subarray : int, optional
        Science size of a centred square subarray (512, 256, 128, 64); full frame if None.
    bunit : str
        BUNIT of the SCI arrays, one of :data:`BUNITS`.
    cr_rate : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_e_per_s, hot_fraction : float
        Dark current and the fraction of hot pixels.
    gain, binning
        Accepted for ``hstcal simulate``; only 2.5 and 1x1 exist.

    Returns
    -------
    dict
        The content of ``truth.json`` plus ``"truth_npz"``, the path of the deposits.

    Raises
    ------
    ConfigError
        An unknown argument or an invalid value, naming it.
    """
    if unknown:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unknown)}")
    if kind != "dark":
        raise ConfigError(f"wfc3_ir simulates kind='dark' only, got {kind!r}")
    if gain is not None and float(gain) not in WFC3_IR.gains:
        raise ConfigError(f"wfc3_ir gain must be one of {list(WFC3_IR.gains)}, got {gain!r}")
    if binning not in (None, "1x1"):
        raise ConfigError(f"wfc3_ir is never binned; binning must be 1x1, got {binning!r}")
    bunit = str(bunit).strip().upper()
    if bunit not in BUNITS:
        raise ConfigError(f"bunit must be one of {BUNITS}, got {bunit!r}")
    size = WFC3_IR.shape[0] if subarray is None else int(subarray)
    if size not in FRAME_TIME_S:
        raise ConfigError(f"subarray must be one of {sorted(s for s in FRAME_TIME_S if s < 1014)} "
                         f"or None (full frame), got {subarray!r}")
    try:
        times = sample_sequence(samp_seq, nsamp, FRAME_TIME_S[size])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    truth: dict = {"detector": WFC3_IR.name, "seed": int(seed), "bunit": bunit,
                   "samp_seq": str(samp_seq).upper(), "nsamp": int(nsamp),
                   "science_shape": [size, size], "cr_rate": float(cr_rate),
                   "dark_e_per_s": float(dark_e_per_s), "files": [], "exposures": []}
    arrays: dict[str, list] = {k: [] for k in ("dep_cr", "dep_y", "dep_x", "dep_e", "cr_file",
                                               "cr_increment", "cr_charge_e", "hot_file",
                                               "hot_y", "hot_x", "hot_rate")}
    n_cr_total = 0
    for index in range(int(count)):
        root = f"ixs{int(seed) % 100:02d}{index:03d}q"
        expstart = float(start_mjd) + index * float(cadence_days)
        exposure, n_cr_total = _one_exposure(out, root, expstart, times, size, bunit, samp_seq,
                                             cr_rate, dark_e_per_s, hot_fraction, rng,
                                             arrays, index, n_cr_total)
        truth["files"].append(str(out / f"{root}_ima.fits"))
        truth["exposures"].append(exposure)
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


def _one_exposure(out: Path, root: str, expstart: float, times: np.ndarray, size: int,
                  bunit: str, samp_seq: str, cr_rate: float, dark_e_per_s: float,
                  hot_fraction: float, rng: np.random.Generator, arrays: dict, index: int,
                  cr_base: int) -> tuple[dict, int]:
    border = int(WFC3_IR.extra["reference_pixels"])
    sci_shape = (size, size)
    raw_shape = (size + 2 * border, size + 2 * border)
    ltv = float(border - (WFC3_IR.shape[0] - size) // 2)
    amps = {a.name: a for a in WFC3_IR.amplifiers[2.5]}
    grid_header = fits.Header({"LTV1": ltv - border, "LTV2": ltv - border})
    gain_map = quadrant_map(grid_header, sci_shape, {k: a.gain for k, a in amps.items()},
                            WFC3_IR.shape)
    rn_map = quadrant_map(grid_header, sci_shape, {k: a.read_noise for k, a in amps.items()},
                          WFC3_IR.shape)

    dark = np.full(sci_shape, dark_e_per_s, np.float64)
    hot = make_hot_pixels(sci_shape, hot_fraction, rng, low=0.5, high=50.0)
    dark[hot.y, hot.x] += hot.excess
    arrays["hot_file"].append(np.full(hot.y.size, index))
    arrays["hot_y"].append(hot.y)
    arrays["hot_x"].append(hot.x)
    arrays["hot_rate"].append(dark[hot.y, hot.x])

    intervals = np.diff(times)
    cumulative = np.zeros(sci_shape, np.float64)
    single_rn = rn_map / np.sqrt(2.0)
    zero_noise = rng.normal(0.0, 1.0, raw_shape) * np.pad(single_rn, border, mode="edge")
    reads = [np.zeros(raw_shape, np.float64)]  # ZOFFCORR: the zeroth read minus itself
    crs_rows = []
    for k, dt in enumerate(intervals):
        crs = make_cosmic_rays(sci_shape, float(dt), cr_rate, WFC3_IR.pixel_pitch_um, rng)
        cumulative += rng.poisson(dark * dt) + render(crs)
        noise = rng.normal(0.0, 1.0, raw_shape) * np.pad(single_rn, border, mode="edge")
        read = noise - zero_noise
        read[border:-border, border:-border] += cumulative
        reads.append(read)
        totals, pixels = crs.total_charge_e, crs.n_pixels
        summary = crs.summary()
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

    raw_gain = np.pad(gain_map, border, mode="edge")
    raw_rn = np.pad(rn_map, border, mode="edge")
    primary = _primary(root, expstart, times, size, samp_seq, amps)
    hdus = [fits.PrimaryHDU(header=primary)]
    for ver, k in enumerate(range(len(times) - 1, -1, -1), start=1):  # newest first
        electrons = reads[k]
        err = np.sqrt(raw_rn**2 + np.maximum(electrons, 0))
        if bunit.startswith("COUNTS"):
            electrons, err = electrons / raw_gain, err / raw_gain
        if bunit.endswith("/S"):
            scale = 1.0 / times[k] if times[k] > 0 else 0.0
            electrons, err = electrons * scale, err * scale
        header = fits.Header()
        header["ROOTNAME"] = root
        header["EXPNAME"] = root
        header["BUNIT"] = bunit
        header["LTV1"], header["LTV2"] = ltv, ltv
        header["SAMPNUM"] = (k, "MULTIACCUM sample number")
        header["SAMPTIME"] = (float(times[k]), "total integration time (sec)")
        header["DELTATIM"] = (float(times[k] - times[k - 1]) if k else 0.0,
                              "integration time of this sample (sec)")
        header["ROUTTIME"] = (expstart + times[k] / 86400.0, "UT time of array readout (MJD)")
        hdus.append(fits.ImageHDU(electrons.astype(np.float32), header=header, name="SCI", ver=ver))
        hdus.append(fits.ImageHDU(err.astype(np.float32), name="ERR", ver=ver))
        hdus.append(fits.ImageHDU(np.zeros(raw_shape, np.int16), name="DQ", ver=ver))
        for name, value, unit in (("SAMP", k + 1, "SAMPLES"), ("TIME", times[k], "SECONDS")):
            hdu = fits.ImageHDU(name=name, ver=ver)
            hdu.header["BUNIT"] = unit
            hdu.header["NPIX1"], hdu.header["NPIX2"] = raw_shape[1], raw_shape[0]
            hdu.header["PIXVALUE"] = (float(value), "values of pixels in constant array")
            hdus.append(hdu)
    write_atomic(fits.HDUList(hdus), out / f"{root}_ima.fits")
    _write_spt(out / f"{root}_spt.fits", root, expstart)
    exposure = {"rootname": root, "file": f"{root}_ima.fits", "expstart_mjd": expstart,
                "sample_times": [float(t) for t in times], "n_crs": len(crs_rows),
                "crs": crs_rows}
    return exposure, cr_base


def _primary(root: str, expstart: float, times: np.ndarray, size: int, samp_seq: str,
             amps: dict) -> fits.Header:
    exptime = float(times[-1])
    start = _MJD0 + timedelta(days=expstart)
    h = fits.Header()
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "WFC3"
    h["DETECTOR"] = "IR"
    h["ROOTNAME"] = root
    h["FILENAME"] = f"{root}_ima.fits"
    h["FILETYPE"] = "SCI"
    h["IMAGETYP"] = "DARK"
    h["OBSTYPE"] = "IMAGING"
    h["OBSMODE"] = "MULTIACCUM"
    h["TARGNAME"] = "DARK"
    h["PROPOSID"] = 99999
    h["APERTURE"] = _APERTURE[size]
    h["FILTER"] = "BLANK"
    h["SAMP_SEQ"] = str(samp_seq).upper()
    h["NSAMP"] = len(times)
    h["SUBARRAY"] = size != WFC3_IR.shape[0]
    h["SUBTYPE"] = _SUBTYPE[size]
    h["CENTERA1"], h["CENTERA2"] = 513, 513
    h["SIZAXIS1"] = h["SIZAXIS2"] = size + 2 * int(WFC3_IR.extra["reference_pixels"])
    h["EXPTIME"] = (exptime, "exposure duration (seconds)--calculated")
    h["EXPSTART"] = (expstart, "exposure start time (Modified Julian Date)")
    h["EXPEND"] = (expstart + exptime / 86400.0, "exposure end time (Modified Julian Date)")
    h["DATE-OBS"] = start.strftime("%Y-%m-%d")
    h["TIME-OBS"] = start.strftime("%H:%M:%S")
    h["CCDGAIN"] = 2.5
    for name, amp in amps.items():
        h[f"ATODGN{name}"] = amp.gain
    for name, amp in amps.items():
        h[f"READNSE{name}"] = amp.read_noise
    for step in ("DQICORR", "ZSIGCORR", "BLEVCORR", "ZOFFCORR", "NLINCORR", "DARKCORR",
                 "UNITCORR"):
        h[step] = "COMPLETE"
    h["CRCORR"] = "OMIT"
    h.add_history("Synthetic WFC3/IR dark ramp written by hstcal_wfc3.simulate")
    return h


def _write_spt(path: Path, root: str, expstart: float) -> None:
    """SPT companion: ROOTNAME/INSTRUME/FILETYPE and, when the core provides them, the
    orbital elements HST had at the start of the exposure."""
    header = fits.Header()
    header["TELESCOP"] = "HST"
    header["INSTRUME"] = "WFC3"
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
