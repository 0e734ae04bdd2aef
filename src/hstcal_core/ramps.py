"""Glue between MULTIACCUM IMAs and the ramp kernel: increments in, jumps out.

HST's MULTIACCUM detectors (WFC3/IR, NICMOS) store one exposure as an IMA: one
SCI/ERR/DQ/SAMP/TIME imset per read, EXTVER 1 the *last* read, the zeroth read
(SAMPTIME 0) subtracted from every read by ZOFFCORR and stored as zeros (WFC3 Data
Handbook ch. 2, NICMOS Data Handbook ch. 2).  What differs between the detectors is
described once by a :class:`RampFormat` in each plugin; everything here is shared.

:func:`calibrate_ramp` turns an IMA into an :class:`~hstcal_core.Exposure` whose
imsets are the read-to-read **increments in time order**, in electrons:

* imset ``k`` (EXTVER ``k+1``) is read ``k+1`` minus read ``k`` after sorting the reads
  by SAMPTIME.  The first increment is read 1 itself (the zeroth read is zeros), with
  the read noise of a read pair like every other increment; charge that arrived before
  the zeroth read is in no increment, so a cosmic ray that landed then is not seen.
* units: a rate (``.../S``, the average since the zeroth read, after UNITCORR) is
  multiplied by SAMPTIME; counts (DN) by the format's gain; electrons are used as is.
* the format's reference border is trimmed; LTV1/2 and CRPIX1/2 shift with it.
* each increment's header: EXPTIME = DELTATIM = the interval, SAMPTIME = its end,
  SAMPBEG = its start, EXPSTART/EXPEND the interval in MJD, BUNIT = ELECTRONS,
  RAMPDIFF = T; ERR = ``sqrt(RN² + max(increment, 0))`` with RN the read-pair noise;
  DQ = the OR of both reads' DQ.  The primary header keeps every original keyword
  (one HISTORY line is added).

:func:`combine_ramps` runs :func:`hstcal_core.algorithms.ramps.detect_jumps` on each
exposure's increments; each CR mask belongs to the increment in which the cosmic ray
landed, as calwf3 CRCORR / calnica CRIDCALC flag jumps inside their ramp fit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .algorithms.ramps import (
    detect_jumps,
    increment_error,
    parse_bunit,
    ramp_increments,
    time_order,
)
from .detectors import Detector
from .errors import InputError
from .fitsio import read_exposure
from .images import CombinedImage, Exposure, ImSet
from .options import Options, Param

__all__ = [
    "RAMP_PARAMS",
    "PixelConstant",
    "RampFormat",
    "calibrate_ramp",
    "combine_ramps",
    "read_ima",
    "sample_times",
]

log = logging.getLogger(__name__)

RAMP_PARAMS: tuple[Param, ...] = (
    Param("ir_jump_sigma", float, 5.0,
          "IR ramps: a read-to-read increment above its expected value by this many sigma "
          "is a cosmic ray"),
    Param("ir_neighbor_sigma", float, 3.0,
          "IR ramps: threshold (sigma) for the 8 neighbours of a jump in the same increment"),
)

#: ``(exposure, detector, science header, science shape) -> value``: a scalar, or one
#: value per pixel of the (trimmed) science array the header describes.
PixelConstant = Callable[[Exposure, Detector, fits.Header, tuple[int, int]], float | np.ndarray]


@dataclass(frozen=True)
class RampFormat:
    """What differs between the IMAs of two MULTIACCUM detectors.

    Attributes
    ----------
    gain : PixelConstant
        e⁻/DN of each science pixel, for reads in counts.
    read_noise : PixelConstant
        Noise of a read pair, e⁻, of each science pixel.
    reference_border : int
        Reference pixels trimmed from every side of the reads (WFC3/IR 5, NICMOS 0).
    check_deltatim : bool
        Log reads whose DELTATIM disagrees with their SAMPTIME step.
    samptime_writer : str
        Who writes SAMPTIME on every read, for the error naming a read without it
        (``"calnica writes"``).
    processed_products : str
        The single-image products a file of one imset probably is (``"_cal/_mos"``).
    obsmode_note : str
        Appended to the error for an OBSMODE other than MULTIACCUM.
    describe_keywords : tuple of str
        Primary keywords quoted when a file has no SCI extension.
    """

    gain: PixelConstant
    read_noise: PixelConstant
    reference_border: int = 0
    check_deltatim: bool = False
    samptime_writer: str = "the pipeline writes"
    processed_products: str = "_cal/_mos"
    obsmode_note: str = ""
    describe_keywords: tuple[str, ...] = ("NSAMP",)


# --------------------------------------------------------------------------- reading
def read_ima(path: str | Path, fmt: RampFormat) -> Exposure:
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
        raise InputError(path, _not_ima(primary, exc.problem, fmt)) from None


def _not_ima(primary: fits.Header, problem: str, fmt: RampFormat) -> str:
    obsmode = str(primary.get("OBSMODE", "?")).strip()
    described = ", ".join(f"{key}={primary.get(key, '?')}" for key in fmt.describe_keywords)
    return (f"{problem}: a {primary.get('INSTRUME', '?')} {obsmode} file ({described}) with "
            f"the image in its primary array, i.e. a processed single-image product; cosmic "
            f"rays are found between the reads of the _ima file (one SCI/ERR/DQ/SAMP/TIME "
            f"imset per read)")


def sample_times(exposure: Exposure, fmt: RampFormat) -> np.ndarray:
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
        raise InputError(path, f"OBSMODE={obsmode}: not a MULTIACCUM ramp{fmt.obsmode_note}")
    if any(i.header.get("RAMPDIFF", False) for i in exposure.imsets):
        raise InputError(path, "already split into read-to-read increments (RAMPDIFF=T); "
                               "calibrate takes the IMA itself")
    n = len(exposure.imsets)
    nsamp = exposure.primary.get("NSAMP")
    if n < 2:
        raise InputError(path, f"has {n} SCI imset but a MULTIACCUM _ima holds one per read "
                               f"(NSAMP={nsamp if nsamp is not None else '?'}): this is a "
                               f"processed single-image product ({fmt.processed_products}) "
                               f"whose reads are already fitted, not a ramp")
    if nsamp is not None and int(nsamp) != n:
        raise InputError(path, f"NSAMP={int(nsamp)} but the file holds {n} SCI imsets: "
                               f"not a complete MULTIACCUM _ima")
    times = []
    for ver, imset in enumerate(exposure.imsets, start=1):
        if "SAMPTIME" not in imset.header:
            raise InputError(path, f"SCI,{ver} has no SAMPTIME keyword: not a MULTIACCUM "
                                   f"_ima ({fmt.samptime_writer} SAMPTIME on every read)")
        times.append(float(imset.header["SAMPTIME"]))
    return np.asarray(times)


def _trim(array: np.ndarray, border: int) -> np.ndarray:
    return array[..., border:array.shape[-2] - border, border:array.shape[-1] - border]


def _trimmed_header(header: fits.Header, border: int) -> fits.Header:
    out = header.copy()
    if border:
        for key in ("LTV1", "LTV2", "CRPIX1", "CRPIX2"):
            if key in out:
                out[key] = float(out[key]) - border
    return out


# --------------------------------------------------------------------------- calibrate
def calibrate_ramp(detector: Detector, exposure: Exposure, fmt: RampFormat) -> Exposure:
    """Split an IMA into read-to-read increments in electrons (module docstring).

    Raises
    ------
    InputError
        Not a MULTIACCUM IMA, an unknown BUNIT, or sample times that repeat.
    """
    from .stages import check_header_detector

    check_header_detector(exposure.path, exposure.primary, detector)
    path = exposure.path
    times = sample_times(exposure, fmt)
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
    border = int(fmt.reference_border)
    shape = reads[0].shape
    if border and min(shape) <= 2 * border:
        raise InputError(path, f"SCI arrays of {shape} cannot hold a {border}-pixel "
                               f"reference border")
    header0 = _trimmed_header(reads[-1].header, border)
    sci_shape = tuple(int(s) - 2 * border for s in shape)
    gain = 1.0 if in_electrons else fmt.gain(exposure, detector, header0, sci_shape)
    read_noise = fmt.read_noise(exposure, detector, header0, sci_shape)

    cube = _trim(np.stack([r.sci for r in reads]), border)
    dq = _trim(np.stack([r.dq for r in reads]), border)
    split = ramp_increments(cube, times[order], dq=dq, rate_units=is_rate, scale=gain)
    del cube
    if fmt.check_deltatim:
        _check_deltatim(path, reads, split.intervals)
    err = increment_error(split.increments, read_noise)

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
    trimmed = f", {border}-px reference border trimmed" if border else ""
    primary = exposure.primary.copy()
    primary.add_history(f"hstcal: MULTIACCUM ramp of {len(reads)} reads split into "
                        f"{split.n} read-to-read increments (electrons, time order{trimmed})")
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
def combine_ramps(detector: Detector, exposures, options: Options, *, cr_flag: int,
                  bad_dq: int, read_noise) -> CombinedImage:
    """Find the jumps of each exposure's increments (:func:`calibrate_ramp` output).

    Parameters
    ----------
    detector, exposures, options
        As the ``reject_crs`` hook (options ``ir_jump_sigma``, ``ir_neighbor_sigma``,
        ``badinpdq``).
    cr_flag : int
        DQ bit set in the combined DQ where a jump was found.
    bad_dq : int
        DQ bits of increments never used, unless ``badinpdq`` says otherwise.
    read_noise : callable
        ``read_noise(exposure, detector)``: the read-pair noise of its increments, e⁻, a
        scalar or a map of their shape.

    Returns
    -------
    CombinedImage
        ``masks`` one per increment, in the order of ``sources`` = ``(rootname, k)``
        with ``k`` the 1-based increment (EXTVER); ``sci`` the clean accumulated charge
        (rate × ramp duration, e⁻) summed over the exposures, ``err`` its 1σ, ``dq`` the
        OR of every increment's DQ plus ``cr_flag`` where a jump was found;
        ``texptime`` the summed ramp durations.

    Raises
    ------
    InputError
        No exposures, an exposure that is not split into increments, shapes that differ.
    """
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
