"""WFC3/IR MULTIACCUM ramps: split an IMA into increments, find cosmic-ray jumps.

``calibrate`` turns the IMA of one exposure (calwf3's intermediate product: one
SCI/ERR/DQ/SAMP/TIME imset per read, EXTVER 1 the *last* read, WFC3 Data Handbook
ch. 2) into an :class:`~hstcal_core.Exposure` whose imsets are the read-to-read
**increments in time order**, in electrons:

* imset ``k`` (EXTVER ``k+1``) is read ``k+1`` minus read ``k`` after sorting the reads
  by SAMPTIME.  The first increment starts at the zeroth read (SAMPTIME 0), which
  calwf3 has already subtracted from every read (ZOFFCORR) and stores as zeros: the
  first increment is therefore read 1 itself, with the read noise of a read pair like
  every other increment.  The signal that arrived before the zeroth read (ZSIGCORR's
  estimate) is not in any increment, so a cosmic ray that landed before the zeroth
  read is not seen — as in calwf3.
* units: BUNIT ``ELECTRONS/S`` or ``COUNTS/S`` (calwf3 after UNITCORR: the average rate
  since the zeroth read, calwf3 UNITCORR, WFC3 DHB ch. 3) is multiplied by SAMPTIME; ``COUNTS`` (DN) by
  the quadrant's ATODGN{A..D} (calwf3 ``noiscalc``: amp B lower-left, C lower-right,
  A upper-left, D upper-right).
* the 5-pixel reference border is trimmed (the science array is 1014×1014, or the
  subarray's inner part); LTV1/2 and CRPIX1/2 shift by 5 as calwf3 does for the FLT.
* each increment's header: EXPTIME = DELTATIM = the interval, SAMPTIME = its end,
  SAMPBEG = its start, EXPSTART/EXPEND = the interval in MJD, BUNIT = ELECTRONS,
  RAMPDIFF = T.  ERR = ``sqrt(READNSE² + max(increment, 0))`` (READNSE{A..D} is the noise
  of a read pair, WFC3 IHB ch. 5, IR detector); DQ = the OR of both reads' DQ.  The primary header
  keeps every original keyword (one HISTORY line is added).

``reject_crs`` then runs :func:`hstcal_core.algorithms.ramps.detect_jumps` on each
exposure's increments; each CR mask belongs to the increment (the read) in which the
cosmic ray landed.  HSTcosmicrays left WFC3/IR as NotImplemented; calwf3 CRCORR flags
jumps (DQ 8192) inside its ramp fit (WFC3 DHB ch. 3), which is what this mirrors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core import (
    CombinedImage,
    Detector,
    Exposure,
    ImSet,
    InputError,
    Options,
    Param,
)
from hstcal_core.algorithms.ramps import (
    detect_jumps,
    increment_error,
    parse_bunit,
    ramp_increments,
    time_order,
)
from hstcal_core.fitsio import read_exposure

__all__ = ["IR_PARAMS", "CR_FLAG", "BAD_DQ", "calibrate_ima", "reject_ramp_crs", "combine_ramps",
           "read_ima", "quadrant_map", "amp_constants", "sample_times"]

log = logging.getLogger(__name__)

#: wf3dq.h: "cosmic ray found in up-the-ramp fit" (set in the combined DQ where a jump was).
CR_FLAG = 8192
#: Increments never used or flagged (wf3dq.h): bad detector pixel 4, deviant zero read 8,
#: unstable 32 (telegraph pixels jump by themselves), bad reference pixel 128, saturated 256.
BAD_DQ = 4 | 8 | 32 | 128 | 256

IR_PARAMS: tuple[Param, ...] = (
    Param("ir_jump_sigma", float, 5.0,
          "IR ramps: a read-to-read increment above its expected value by this many sigma "
          "is a cosmic ray"),
    Param("ir_neighbor_sigma", float, 3.0,
          "IR ramps: threshold (sigma) for the 8 neighbours of a jump in the same increment"),
)

_AMPS = "ABCD"


# --------------------------------------------------------------------------- reading
def read_ima(path: str | Path) -> Exposure:
    """Read an IMA (``read_exposure``), explaining what a file lacking SCI extensions is."""
    try:
        return read_exposure(path)
    except InputError as exc:
        if "no SCI extension" not in exc.problem:
            raise
        try:
            primary = fits.getheader(path, 0)
        except OSError:
            raise exc from None
        raise InputError(path, _not_ima(primary, exc.problem)) from None


def _not_ima(primary: fits.Header, problem: str) -> str:
    obsmode = str(primary.get("OBSMODE", "?")).strip()
    nsamp = primary.get("NSAMP", "?")
    return (f"{problem}: a {primary.get('INSTRUME', '?')} {obsmode} file (NSAMP={nsamp}) with "
            f"the image in its primary array, i.e. a processed single-image product; cosmic "
            f"rays are found between the reads of the _ima file (one SCI/ERR/DQ/SAMP/TIME "
            f"imset per read)")


# --------------------------------------------------------------------------- helpers
def sample_times(exposure: Exposure) -> np.ndarray:
    """SAMPTIME of every imset (file order).

    Raises
    ------
    InputError
        If the file is not a MULTIACCUM ramp: one imset, a SCI header without SAMPTIME,
        NSAMP disagreeing with the number of imsets, or increments already split.
    """
    path = exposure.path
    obsmode = str(exposure.primary.get("OBSMODE", "MULTIACCUM")).strip().upper()
    if obsmode != "MULTIACCUM":
        raise InputError(path, f"OBSMODE={obsmode}: not a MULTIACCUM ramp")
    n = len(exposure.imsets)
    if any(i.header.get("RAMPDIFF", False) for i in exposure.imsets):
        raise InputError(path, "already split into read-to-read increments (RAMPDIFF=T); "
                               "calibrate takes the IMA itself")
    nsamp = exposure.primary.get("NSAMP")
    if n < 2:
        raise InputError(path, f"has {n} SCI imset but a MULTIACCUM _ima holds one per read "
                               f"(NSAMP={nsamp if nsamp is not None else '?'}): this is a "
                               f"processed single-image product (_flt/_cal/_mos) whose reads "
                               f"are already fitted, not a ramp")
    if nsamp is not None and int(nsamp) != n:
        raise InputError(path, f"NSAMP={int(nsamp)} but the file holds {n} SCI imsets: "
                               f"not a complete MULTIACCUM _ima")
    times = []
    for ver, imset in enumerate(exposure.imsets, start=1):
        if "SAMPTIME" not in imset.header:
            raise InputError(path, f"SCI,{ver} has no SAMPTIME keyword: not a MULTIACCUM "
                                   f"_ima (calwf3/calnica write SAMPTIME on every read)")
        times.append(float(imset.header["SAMPTIME"]))
    return np.asarray(times)


def quadrant_map(header: fits.Header, shape: tuple[int, int], values: dict[str, float],
                 science_shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel value of each amplifier's quadrant for a (trimmed) science array.

    ``header`` is the trimmed SCI header: array index = science-grid coordinate + LTV
    (the 1014×1014 grid; a subarray's LTV locates it).  Quadrant boundaries are the
    grid's middle row and column; B lower-left, C lower-right, A upper-left, D
    upper-right (calwf3 ``noiscalc``).
    """
    ny, nx = shape
    ltv1 = float(header.get("LTV1", 0.0))
    ltv2 = float(header.get("LTV2", 0.0))
    col = np.arange(nx) - ltv1
    row = np.arange(ny) - ltv2
    left = (col < science_shape[1] / 2)[None, :]
    lower = (row < science_shape[0] / 2)[:, None]
    return np.where(lower, np.where(left, values["B"], values["C"]),
                    np.where(left, values["A"], values["D"])).astype(np.float32)


def amp_constants(primary: fits.Header, detector: Detector) -> tuple[dict, dict]:
    """``({amp: gain}, {amp: read noise})``: ATODGN*/READNSE* or the detector's constants."""
    setting = primary.get(detector.gain_keyword, detector.gains[0])
    try:
        amps = {a.name: a for a in detector.amplifiers[float(setting)]}
    except (KeyError, TypeError, ValueError):
        amps = {a.name: a for a in detector.amplifiers[detector.gains[0]]}
    gains, noise = {}, {}
    for amp in _AMPS:
        g = float(primary.get(f"ATODGN{amp}", 0.0) or 0.0)
        r = float(primary.get(f"READNSE{amp}", 0.0) or 0.0)
        gains[amp] = g if g > 0 else amps[amp].gain
        noise[amp] = r if r > 0 else amps[amp].read_noise
    return gains, noise


def _trim(array: np.ndarray, border: int) -> np.ndarray:
    return array[..., border:array.shape[-2] - border, border:array.shape[-1] - border]


def _trimmed_header(header: fits.Header, border: int) -> fits.Header:
    out = header.copy()
    for key in ("LTV1", "LTV2", "CRPIX1", "CRPIX2"):
        if key in out:
            out[key] = float(out[key]) - border
    return out


# --------------------------------------------------------------------------- calibrate
def calibrate_ima(detector: Detector, exposure: Exposure, options: Options) -> Exposure:
    """Split a WFC3/IR IMA into read-to-read increments in electrons (module docstring).

    Raises
    ------
    InputError
        Not a MULTIACCUM IMA, an unknown BUNIT, or sample times that repeat.
    """
    path = exposure.path
    times = sample_times(exposure)
    try:
        order = time_order(times)
    except ValueError as exc:
        raise InputError(path, f"SAMPTIME: {exc}") from None
    reads = [exposure.imsets[i] for i in order]
    if any(r.shape != reads[0].shape for r in reads):
        raise InputError(path, "reads of different shapes")
    bunit = reads[-1].header.get("BUNIT", exposure.primary.get("BUNIT", "COUNTS"))
    try:
        is_rate, in_electrons = parse_bunit(bunit)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    border = int(detector.extra.get("reference_pixels", 0))
    shape = reads[0].shape
    if border and min(shape) <= 2 * border:
        raise InputError(path, f"SCI arrays of {shape} cannot hold a {border}-pixel "
                               f"reference border")
    header0 = _trimmed_header(reads[-1].header, border)
    sci_shape = tuple(int(s) - 2 * border for s in shape)
    gains, noise = amp_constants(exposure.primary, detector)
    grid = tuple(detector.shape)
    gain_map = 1.0 if in_electrons else quadrant_map(header0, sci_shape, gains, grid)
    rn_map = quadrant_map(header0, sci_shape, noise, grid)

    cube = _trim(np.stack([r.sci for r in reads]), border)
    dq = _trim(np.stack([r.dq for r in reads]), border)
    split = ramp_increments(cube, times[order], dq=dq, rate_units=is_rate, scale=gain_map)
    del cube
    _check_deltatim(path, reads, split.intervals)
    err = increment_error(split.increments, rn_map)

    start_mjd = float(exposure.primary.get("EXPSTART", 0.0) or 0.0)
    imsets = []
    for k in range(split.n):
        end = reads[k + 1].header
        hdr = _trimmed_header(end, border)
        hdr["EXTVER"] = k + 1
        hdr["BUNIT"] = ("ELECTRONS", "read-to-read increment, electrons")
        hdr["EXPTIME"] = (float(split.intervals[k]), "duration of this increment (s)")
        hdr["DELTATIM"] = (float(split.intervals[k]), "integration time of this increment (s)")
        hdr["SAMPBEG"] = (float(split.start_times[k]), "SAMPTIME of the increment's first read")
        hdr["SAMPTIME"] = (float(split.end_times[k]), "SAMPTIME of the increment's last read")
        hdr["SAMPNUM"] = int(end.get("SAMPNUM", order[k + 1]))
        if start_mjd > 0:
            hdr["EXPSTART"] = (start_mjd + split.start_times[k] / 86400.0, "increment start (MJD)")
            hdr["EXPEND"] = (start_mjd + split.end_times[k] / 86400.0, "increment end (MJD)")
        hdr["RAMPDIFF"] = (True, "imset is a read-to-read increment (hstcal)")
        imsets.append(ImSet(sci=split.increments[k], err=err[k], dq=split.dq[k], header=hdr))
    primary = exposure.primary.copy()
    primary.add_history(f"hstcal: MULTIACCUM ramp of {len(reads)} reads split into "
                        f"{split.n} read-to-read increments (electrons, time order, "
                        f"{border}-px reference border trimmed)")
    log.debug("%s: %d reads -> %d increments (BUNIT %s)", path.name, len(reads), split.n, bunit)
    return Exposure(path=path, primary=primary, imsets=tuple(imsets))


def _check_deltatim(path: Path, reads, intervals: np.ndarray) -> None:
    """DELTATIM of each read should equal its SAMPTIME step; a mismatch is logged."""
    for k, dt in enumerate(intervals, start=1):
        stated = reads[k].header.get("DELTATIM")
        if stated is not None and abs(float(stated) - dt) > 1e-3 + 1e-3 * dt:
            log.warning("%s: read at SAMPTIME %.4f s has DELTATIM %.4f s but follows the "
                        "previous read by %.4f s; the SAMPTIME difference is used",
                        path.name, reads[k].header.get("SAMPTIME"), float(stated), dt)


# --------------------------------------------------------------------------- reject_crs
def reject_ramp_crs(detector: Detector, exposures, options: Options) -> CombinedImage:
    """Find the jumps of each exposure's increments (:func:`calibrate_ima` output).

    Returns a :class:`~hstcal_core.CombinedImage`: ``masks`` one per increment, in the
    order of ``sources`` = ``(rootname, k)`` with ``k`` the 1-based increment (EXTVER);
    ``sci`` the clean accumulated charge (rate × ramp duration, e⁻) summed over the
    exposures, ``err`` its 1σ, ``dq`` the OR of every increment's DQ plus 8192 where a
    jump was found; ``texptime`` the summed ramp durations.

    Raises
    ------
    InputError
        No exposures, an exposure that is not split into increments, shapes that differ.
    """
    return combine_ramps(detector, exposures, options, cr_flag=CR_FLAG, bad_dq=BAD_DQ,
                         read_noise=_read_noise)


def _read_noise(exposure: Exposure, detector: Detector) -> np.ndarray:
    _, noise = amp_constants(exposure.primary, detector)
    first = exposure.imsets[0]
    return quadrant_map(first.header, first.shape, noise, tuple(detector.shape))


def combine_ramps(detector: Detector, exposures, options: Options, *, cr_flag: int,
                  bad_dq: int, read_noise) -> CombinedImage:
    """Jump detection per exposure and the combined product (see :func:`reject_ramp_crs`)."""
    exposures = list(exposures)
    if not exposures:
        raise InputError(None, "cosmic-ray rejection: no input exposures")
    nsigma = float(options.get("ir_jump_sigma") or 5.0)
    neighbor = float(options.get("ir_neighbor_sigma") or 3.0)
    badinpdq = options.get("badinpdq")
    badbits = int(bad_dq if badinpdq is None else badinpdq)
    shape = exposures[0].imsets[0].shape if exposures[0].imsets else None
    sci = err2 = dq_all = None
    masks, sources, total_time, n_flagged = [], [], 0.0, 0
    for exp in exposures:
        if not exp.imsets or not all(i.header.get("RAMPDIFF", False) for i in exp.imsets):
            raise InputError(exp.path, "imsets are not read-to-read increments (RAMPDIFF); "
                                       "run calibrate on the IMA first")
        if any(i.shape != shape for i in exp.imsets):
            raise InputError(exp.path, f"increments of shape {exp.imsets[0].shape} differ from "
                                       f"the first input's {shape}")
        increments = np.stack([i.sci for i in exp.imsets])
        dq = np.stack([i.dq for i in exp.imsets])
        intervals = np.array([float(i.header.get("DELTATIM", i.exptime)) for i in exp.imsets])
        try:
            jumps = detect_jumps(increments, intervals, read_noise(exp, detector),
                                 nsigma=nsigma, neighbor_sigma=neighbor,
                                 bad=(dq & np.uint16(badbits)) != 0)
        except ValueError as exc:
            raise InputError(exp.path, f"jump detection: {exc}") from None
        duration = float(intervals.sum())
        accumulated = jumps.rate.astype(np.float64) * duration
        sigma = jumps.rate_err.astype(np.float64) * duration
        flags = np.bitwise_or.reduce(dq, axis=0) | np.where(jumps.mask.any(axis=0),
                                                           np.uint16(cr_flag), np.uint16(0))
        sci = accumulated if sci is None else sci + accumulated
        err2 = sigma**2 if err2 is None else err2 + sigma**2
        dq_all = flags if dq_all is None else dq_all | flags
        masks.extend(jumps.mask)
        sources.extend((exp.rootname, k) for k in range(1, len(exp.imsets) + 1))
        total_time += duration
        n_flagged += jumps.n_flagged
        log.debug("%s: %d increments, %d jump pixels in %d passes", exp.path.name,
                  len(exp.imsets), jumps.n_flagged, jumps.iterations)
    parameters = {"method": "two-point difference (ramps)", "ir_jump_sigma": nsigma,
                  "ir_neighbor_sigma": neighbor, "badinpdq": badbits}
    primary = exposures[0].primary.copy()
    primary["TEXPTIME"] = (total_time, "total duration of the ramps (s)")
    primary.add_history(f"hstcal: up-the-ramp jumps in {len(masks)} increments: {parameters}")
    header = exposures[0].imsets[0].header.copy()
    header["EXPTIME"] = total_time
    header["BUNIT"] = "ELECTRONS"
    header["NCOMBINE"] = (len(masks), "number of increments combined")
    for key in ("RAMPDIFF", "SAMPBEG", "DELTATIM"):
        header.remove(key, ignore_missing=True)
    return CombinedImage(sci=sci.astype(np.float32), err=np.sqrt(err2).astype(np.float32),
                         dq=dq_all.astype(np.uint16), masks=np.asarray(masks, dtype=bool),
                         sources=tuple(sources), texptime=total_time, ncombine=len(masks),
                         primary=primary, header=header, parameters=parameters,
                         n_rejected=n_flagged)
