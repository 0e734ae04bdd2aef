"""STIS CCD basic calibration (calstis basic2d subset), pure numpy.

Steps, in calstis order (hstcal ``pkg/stis/lib/cs1``):

* DQICORR: raw DN above the gain's saturation level → DQ 256; optional BPIXTAB.
* BLEVCORR: overscan fit and trim (:mod:`hstcal_core.algorithms.overscan`, geometry
  from :mod:`hstcal_stis.geometry`); frames without overscan get the CCDTAB bias.
* ERR init (donoise.c): ``sqrt(max(SCI,0)·g + RN²)/g`` DN, minimum RN/g.
* BIASCORR (dobias.c): subtract superbias × NCOMBINE, errors in quadrature, DQ OR-ed.
* Dark temperature scaling (refstis, STIS TIR 2004-01): darks taken after
  MJD 52091.0 (side-2 electronics) are multiplied by ``1/(1 + 0.07·(OCCDHTAV − 18))``.

The input :class:`~hstcal_core.images.Exposure` is never modified.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core.algorithms.overscan import subtract_overscan
from hstcal_core.detectors import Detector
from hstcal_core.errors import ConfigError, InputError
from hstcal_core.fitsio import read_exposure
from hstcal_core.images import Exposure, ImSet
from hstcal_core.options import Options
from hstcal_core.stages import check_detector

from .geometry import overscan_regions

__all__ = ["calibrate_ccd", "temperature_factor", "resolve_reference_path", "read_bpixtab"]

log = logging.getLogger(__name__)

SATURATED = np.uint16(256)


def resolve_reference_path(value: str | os.PathLike) -> Path:
    """Resolve ``oref$name`` through the ``oref`` environment variable (CDBS convention)."""
    text = str(value)
    if "$" in text:
        prefix, name = text.split("$", 1)
        base = os.environ.get(prefix) or os.environ.get(prefix.upper())
        if not base:
            raise ConfigError(f"reference path {text!r}: environment variable '{prefix}' is not set")
        return Path(base) / name
    return Path(text)


def temperature_factor(occdhtav: float, *, reference: float = 18.0,
                       coefficient: float = 0.07) -> float:
    """Dark-current scaling to the reference housing temperature (refstis apply_dark_correction)."""
    return 1.0 / (1.0 + coefficient * (occdhtav - reference))


@lru_cache(maxsize=8)
def _cached_reference(path: str, mtime: float) -> Exposure:
    return read_exposure(path)


def _load_bias(value: str, exposure: Exposure, detector: Detector) -> Exposure:
    path = resolve_reference_path(value)
    if not path.exists():
        raise InputError(path, "superbias (BIASFILE) does not exist")
    bias = _cached_reference(str(path.resolve()), path.stat().st_mtime)
    check_detector(bias, detector)
    for key in ("CCDGAIN", "BINAXIS1", "BINAXIS2"):
        want, have = exposure.key(key), bias.key(key)
        if have is not None and want is not None and int(have) not in (-1, int(want)):
            raise InputError(path, f"superbias has {key}={have} but {exposure.path.name} "
                                   f"has {key}={want}")
    return bias


def read_bpixtab(path: str | os.PathLike) -> np.ndarray:
    """Rows (PIX1, PIX2, LENGTH, AXIS, VALUE) of a STIS bad-pixel table (1-based pixels)."""
    p = resolve_reference_path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            t = hdul[1].data
            cols = [np.asarray(t[c], dtype=np.int64) for c in ("PIX1", "PIX2", "LENGTH", "AXIS", "VALUE")]
    except (OSError, KeyError, IndexError) as exc:
        raise InputError(p, f"not a usable BPIXTAB ({type(exc).__name__}: {exc})") from None
    return np.stack(cols, axis=1)


def _apply_bpixtab(dq: np.ndarray, header: fits.Header, table: np.ndarray) -> np.ndarray:
    """Flag BPIXTAB entries, mapped from reference pixels through LTM/LTV (dodqi.c)."""
    ltm1 = float(header.get("LTM1_1", 1.0))
    ltm2 = float(header.get("LTM2_2", 1.0))
    ltv1 = float(header.get("LTV1", 0.0))
    ltv2 = float(header.get("LTV2", 0.0))
    ny, nx = dq.shape
    out = dq.copy()
    for pix1, pix2, length, axis, value in table:
        steps = np.arange(length)
        xs = pix1 + steps * (axis == 1)
        ys = pix2 + steps * (axis == 2)
        ix = np.floor(ltm1 * xs + ltv1 - 0.5).astype(np.int64)
        iy = np.floor(ltm2 * ys + ltv2 - 0.5).astype(np.int64)
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out[iy[ok], ix[ok]] |= np.uint16(value)
    return out


def _noise(sci: np.ndarray, gain: float, read_noise: float) -> np.ndarray:
    electrons = np.maximum(sci, 0.0) * gain
    return (np.sqrt(electrons + read_noise * read_noise) / gain).astype(np.float32)


def _scale_temperature(options: Options, exposure: Exposure) -> bool:
    mode = options.get("temperature_scaling", "auto")
    if mode == "never":
        return False
    if mode == "always":
        return True
    return str(exposure.primary.get("TARGNAME", "")).strip().upper() == "DARK"


def calibrate_ccd(detector: Detector, exposure: Exposure, options: Options) -> Exposure:
    """basic2d for one STIS CCD exposure; returns a new, trimmed Exposure in DN."""
    primary = exposure.primary.copy()
    path = exposure.path
    try:
        gain_setting = int(primary["CCDGAIN"])
    except (KeyError, ValueError):
        raise InputError(path, "CCDGAIN missing or invalid in the primary header") from None
    amp_name = str(primary.get("CCDAMP", "D")).strip().upper() or "D"
    try:
        amp = detector.amplifier(gain_setting, amp_name[:1])
    except KeyError as exc:
        raise InputError(path, str(exc.args[0])) from None
    atodgain = float(primary.get("ATODGAIN", 0.0) or 0.0) or amp.gain
    readnse = float(primary.get("READNSE", 0.0) or 0.0) or amp.read_noise
    primary["ATODGAIN"] = (atodgain, "calibration gain (e-/DN), CCD table")
    primary["READNSE"] = (readnse, "read noise (e-), CCD table")
    binx = int(primary.get("BINAXIS1", 1))
    biny = int(primary.get("BINAXIS2", 1))
    sdqflags = int(primary.get("SDQFLAGS", detector.extra.get("sdqflags_default", 31743)))
    saturate = float(detector.saturation_dn.get(gain_setting, 65535.0))
    do_blev = bool(options.get("blevcorr", True)) and \
        str(primary.get("BLEVCORR", "PERFORM")).strip().upper() != "COMPLETE"
    bias = _load_bias(options["bias"], exposure, detector) if options.get("bias") else None
    bpix = read_bpixtab(options["bpixtab"]) if options.get("bpixtab") else None
    scale_t = _scale_temperature(options, exposure)
    side2_start = float(detector.extra.get("side2_start_mjd", 52091.0))
    texpstrt = float(primary.get("TEXPSTRT", 0.0) or 0.0)

    imsets = []
    for ver, imset in enumerate(exposure.imsets, start=1):
        header = imset.header.copy()
        raw = imset.sci
        dq = imset.dq | np.where(raw > saturate, SATURATED, np.uint16(0))
        ny, nx = raw.shape
        regions = overscan_regions(ny, nx, binx, biny, amp_name) if do_blev else None
        if regions is not None:
            sci, dq, fit = subtract_overscan(
                raw, dq, regions, sdqflags=sdqflags, default_bias=amp.bias,
                drift=bool(options.get("blev_drift", True)),
                clip=float(detector.extra.get("blev_clip", 5.0)))
            y0, x0 = regions.trim_rows[0], regions.trim_cols[0]
            for key, shift in (("LTV1", x0), ("LTV2", y0), ("CRPIX1", x0), ("CRPIX2", y0)):
                if key in header or key.startswith("LTV"):
                    header[key] = float(header.get(key, 0.0)) - shift
            header["MEANBLEV"] = (fit.mean_level, "mean of bias levels subtracted (DN)")
            err = _noise(sci, atodgain, readnse)
        elif do_blev:
            log.warning("%s[SCI,%d]: %dx%d is too small for BLEVCORR; CCD-table bias %.1f DN "
                        "subtracted", path.name, ver, ny, nx, amp.bias)
            sci = raw.astype(np.float32) - np.float32(amp.bias)
            header["MEANBLEV"] = (amp.bias, "CCD-table bias subtracted (no overscan)")
            err = _noise(sci, atodgain, readnse)
        else:
            sci = raw.astype(np.float32, copy=True)
            err = imset.err if np.any(imset.err) else _noise(sci, atodgain, readnse)
        if bpix is not None:
            dq = _apply_bpixtab(dq, header, bpix)
        if bias is not None:
            ref = bias.imsets[0]
            if ref.shape != sci.shape:
                raise InputError(bias.path, f"superbias shape {ref.shape} differs from the "
                                            f"calibrated {path.name}[SCI,{ver}] {sci.shape}")
            ncombine = float(header.get("NCOMBINE", 1) or 1)
            sci = sci - ref.sci * np.float32(ncombine)
            err = np.sqrt(err.astype(np.float64) ** 2 + (ref.err * ncombine) ** 2).astype(np.float32)
            dq = dq | ref.dq
        if scale_t and texpstrt > side2_start:
            occd = float(header.get(detector.extra.get("temperature_keyword", "OCCDHTAV"), -1.0))
            if occd > -100 and occd != -1.0:
                factor = temperature_factor(
                    occd, reference=float(detector.extra["dark_reference_temperature"]),
                    coefficient=float(detector.extra["dark_temperature_coefficient"]))
                sci = sci * np.float32(factor)
                err = err * np.float32(abs(factor))
                header["TEMPFACT"] = (factor, "dark temperature scaling factor applied")
        imsets.append(ImSet(sci=sci.astype(np.float32, copy=False), err=err, dq=dq.astype(np.uint16),
                            header=header))

    primary["DQICORR"] = "COMPLETE"
    if do_blev:
        primary["BLEVCORR"] = "COMPLETE"
    if bias is not None:
        primary["BIASCORR"] = "COMPLETE"
        primary["BIASFILE"] = Path(options["bias"]).name
    if scale_t and texpstrt > side2_start:
        primary["TEMPCORR"] = "COMPLETE"
    return replace(exposure, primary=primary, imsets=tuple(imsets))
