"""NICMOS MULTIACCUM ramps: split an IMA into increments, find cosmic-ray jumps.

``calibrate`` turns calnica's IMA of one exposure (NICMOS Data Handbook ch. 2: one
SCI/ERR/DQ/SAMP/TIME imset per read, EXTVER 1 the *last* read, the zeroth read last)
into an :class:`~hstcal_core.Exposure` whose imsets are the read-to-read **increments
in time order**, in electrons:

* imset ``k`` (EXTVER ``k+1``) is read ``k+1`` minus read ``k`` after sorting the reads
  by SAMPTIME.  The first increment starts at the zeroth read, which calnica subtracts
  from every read (ZOFFCORR) and stores as zeros (SAMPTIME 0), so it is read 1 itself;
  charge that arrived before the zeroth read is in no increment (NICMOS Instrument
  Handbook ch. 8: the zeroth read follows the reset by ~0.2 s).
* units: ``COUNTS/S`` (calnica after UNITCORR: the average rate since the zeroth read)
  is multiplied by SAMPTIME; counts (DN) by the camera's gain.  The gain is the
  camera's measured value of NICMOS IHB Table 7.1 (5.4 / 5.4 / 6.5 e⁻/ADU), not the
  header's ADCGAIN, which is a commanded setting (5.0 in the 1998 NIC2 file of
  ``../shared/data``; see :mod:`hstcal_nicmos.detectors`).  ``ELECTRONS[/S]`` is used as is.
* each increment's header: EXPTIME = DELTATIM = the interval, SAMPTIME = its end,
  SAMPBEG = its start, EXPSTART/EXPEND the interval in MJD, BUNIT = ELECTRONS,
  RAMPDIFF = T; ERR = ``sqrt(RN² + max(increment, 0))`` with RN the Table 7.1 read noise
  (of a read pair); DQ = the OR of both reads' DQ.  The primary header keeps every
  original keyword (one HISTORY line is added).  There is no reference border.

``reject_crs`` runs :func:`hstcal_core.algorithms.ramps.detect_jumps` per exposure;
each mask belongs to the increment in which the cosmic ray landed, and DQ 512
("cosmic ray hit", calnica's CRIDCALC flag) marks pixels with a jump in the combined DQ.
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

__all__ = ["IR_PARAMS", "CR_FLAG", "BAD_DQ", "calibrate_ima", "reject_ramp_crs", "read_ima",
           "sample_times", "camera_gain", "camera_read_noise"]

log = logging.getLogger(__name__)

#: calnica DQ "cosmic ray hit" (NQUAL10).
CR_FLAG = 512
#: Increments never used or flagged: Reed-Solomon 1, defective 32, saturated 64,
#: missing 128, bad pixel 256 (calnica NQUAL keywords).
BAD_DQ = 1 | 32 | 64 | 128 | 256

IR_PARAMS: tuple[Param, ...] = (
    Param("ir_jump_sigma", float, 5.0,
          "IR ramps: a read-to-read increment above its expected value by this many sigma "
          "is a cosmic ray"),
    Param("ir_neighbor_sigma", float, 3.0,
          "IR ramps: threshold (sigma) for the 8 neighbours of a jump in the same increment"),
)


def camera_gain(detector: Detector) -> float:
    """The camera's measured gain, e⁻/ADU (NICMOS IHB Table 7.1)."""
    return float(detector.amplifier(detector.gains[0]).gain)


def camera_read_noise(detector: Detector) -> float:
    """The camera's read noise of a read pair, e⁻ (NICMOS IHB Table 7.1)."""
    return float(detector.amplifier(detector.gains[0]).read_noise)


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
        obsmode = str(primary.get("OBSMODE", "?")).strip()
        raise InputError(path, f"{exc.problem}: a {primary.get('INSTRUME', '?')} {obsmode} "
                               f"file (SAMP_SEQ={primary.get('SAMP_SEQ', '?')}, NSAMP="
                               f"{primary.get('NSAMP', '?')}) with the image in its primary "
                               f"array, i.e. a processed single-image product; cosmic rays "
                               f"are found between the reads of the _ima file (one "
                               f"SCI/ERR/DQ/SAMP/TIME imset per read)") from None


# --------------------------------------------------------------------------- calibrate
def sample_times(exposure: Exposure) -> np.ndarray:
    """SAMPTIME of every imset (file order).

    Raises
    ------
    InputError
        If the file is not a MULTIACCUM ramp (see :func:`calibrate_ima`).
    """
    path = exposure.path
    obsmode = str(exposure.primary.get("OBSMODE", "MULTIACCUM")).strip().upper()
    if obsmode != "MULTIACCUM":
        raise InputError(path, f"OBSMODE={obsmode}: not a MULTIACCUM ramp (ACCUM and "
                               f"BRIGHTOBJ exposures have no intermediate reads)")
    if any(i.header.get("RAMPDIFF", False) for i in exposure.imsets):
        raise InputError(path, "already split into read-to-read increments (RAMPDIFF=T); "
                               "calibrate takes the IMA itself")
    n = len(exposure.imsets)
    nsamp = exposure.primary.get("NSAMP")
    if n < 2:
        raise InputError(path, f"has {n} SCI imset but a MULTIACCUM _ima holds one per read "
                               f"(NSAMP={nsamp if nsamp is not None else '?'}): this is a "
                               f"processed single-image product (_cal/_mos) whose reads are "
                               f"already fitted, not a ramp")
    if nsamp is not None and int(nsamp) != n:
        raise InputError(path, f"NSAMP={int(nsamp)} but the file holds {n} SCI imsets: "
                               f"not a complete MULTIACCUM _ima")
    times = []
    for ver, imset in enumerate(exposure.imsets, start=1):
        if "SAMPTIME" not in imset.header:
            raise InputError(path, f"SCI,{ver} has no SAMPTIME keyword: not a MULTIACCUM "
                                   f"_ima (calnica writes SAMPTIME on every read)")
        times.append(float(imset.header["SAMPTIME"]))
    return np.asarray(times)


def calibrate_ima(detector: Detector, exposure: Exposure, options: Options) -> Exposure:
    """Split a NICMOS IMA into read-to-read increments in electrons (module docstring).

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
    gain = 1.0 if in_electrons else camera_gain(detector)
    header_gain = exposure.primary.get("ADCGAIN")
    if not in_electrons and header_gain is not None and abs(float(header_gain) - gain) > 0.05:
        log.info("%s: ADCGAIN=%s in the header; the camera's measured %.2f e-/ADU is used",
                 path.name, header_gain, gain)

    split = ramp_increments(np.stack([r.sci for r in reads]), times[order],
                            dq=np.stack([r.dq for r in reads]), rate_units=is_rate, scale=gain)
    err = increment_error(split.increments, camera_read_noise(detector))
    start_mjd = float(exposure.primary.get("EXPSTART", 0.0) or 0.0)
    imsets = []
    for k in range(split.n):
        end = reads[k + 1].header
        hdr = end.copy()
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
                        f"{split.n} read-to-read increments (electrons, time order)")
    return Exposure(path=path, primary=primary, imsets=tuple(imsets))


# --------------------------------------------------------------------------- reject_crs
def reject_ramp_crs(detector: Detector, exposures, options: Options) -> CombinedImage:
    """Find the jumps of each exposure's increments (:func:`calibrate_ima` output).

    Returns a :class:`~hstcal_core.CombinedImage`: ``masks`` one per increment, in the
    order of ``sources`` = ``(rootname, k)`` with ``k`` the 1-based increment (EXTVER);
    ``sci`` the clean accumulated charge (rate × ramp duration, e⁻) summed over the
    exposures, ``err`` its 1σ, ``dq`` the OR of every increment's DQ plus 512 where a
    jump was found; ``texptime`` the summed ramp durations.

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
    badbits = np.uint16(BAD_DQ if badinpdq is None else int(badinpdq))
    read_noise = camera_read_noise(detector)
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
        dq = np.stack([i.dq for i in exp.imsets])
        intervals = np.array([float(i.header.get("DELTATIM", i.exptime)) for i in exp.imsets])
        try:
            jumps = detect_jumps(np.stack([i.sci for i in exp.imsets]), intervals, read_noise,
                                 nsigma=nsigma, neighbor_sigma=neighbor, bad=(dq & badbits) != 0)
        except ValueError as exc:
            raise InputError(exp.path, f"jump detection: {exc}") from None
        duration = float(intervals.sum())
        accumulated = jumps.rate.astype(np.float64) * duration
        variance = (jumps.rate_err.astype(np.float64) * duration) ** 2
        flags = np.bitwise_or.reduce(dq, axis=0) | np.where(jumps.mask.any(axis=0),
                                                           np.uint16(CR_FLAG), np.uint16(0))
        sci = accumulated if sci is None else sci + accumulated
        err2 = variance if err2 is None else err2 + variance
        dq_all = flags if dq_all is None else dq_all | flags
        masks.extend(jumps.mask)
        sources.extend((exp.rootname, k) for k in range(1, len(exp.imsets) + 1))
        total_time += duration
        n_flagged += jumps.n_flagged
    parameters = {"method": "two-point difference (ramps)", "ir_jump_sigma": nsigma,
                  "ir_neighbor_sigma": neighbor, "badinpdq": int(badbits)}
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
