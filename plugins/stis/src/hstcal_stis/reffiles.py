"""STIS CCD superbias and superdark reference files (refstis v0.8.4 recipes).

* ``basebias`` (basejoint): each input CR-rejected alone, averaged weighted by
  NCOMBINE; hot columns (3σ, over all rows and the first 20 %) and hot pixels (5σ)
  replaced by the 3×15 median-filtered bias.
* ``refbias``: all imsets CR-rejected together and divided by NCOMBINE; hot pixels
  (5σ above the median-filtered bias) get DQ 16.  More than 120 imsets are split
  into two interleaved halves (by EXPSTART) and averaged, as refstis did.
* ``weekbias``: the week's combined bias supplies hot columns (5σ over the first
  25 % of rows), added onto the basebias.
* ``basedark`` / ``weekdark``: bias-subtracted, temperature-scaled darks combined,
  normalised to e⁻/s by TEXPTIME/ATODGAIN; hot pixels (5σ and ≥ 0.1 e⁻/s) DQ 16.

Header keywords follow what CRDS certify checks for STIS BIASFILE/DARKFILE.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
from astropy.io import fits

from hstcal_core.errors import ConfigError, InputError
from hstcal_core.images import CombinedImage, Exposure, Product
from hstcal_core.options import Options
from hstcal_core.reffiles import headers as crds
from hstcal_core.reffiles.superbias import (
    HOT_PIXEL,
    make_basebias,
    make_weekbias,
    refbias_hot_pixels,
    weighted_mean,
)
from hstcal_core.reffiles.superdark import basedark_hot_pixels, make_weekdark

__all__ = ["BIAS_KINDS", "DARK_KINDS", "build_reffile_stis", "PERIOD_MODES"]

log = logging.getLogger(__name__)

BIAS_KINDS = ("basebias", "refbias", "weekbias")
DARK_KINDS = ("basedark", "weekdark")
#: Reference-file cadence by gain (refstis ``separate_obs``): weekly / bi-weekly.
PERIOD_MODES = {"1": "WK", "4": "BIWK"}
_FREQUENCY = {"WK": "Weekly", "BIWK": "Bi-weekly"}
_EXT_KEYS = ("EXPTIME", "NCOMBINE", "EXPSTART", "EXPEND", "LTV1", "LTV2", "LTM1_1", "LTM2_2",
             "OCCDHTAV", "BUNIT")


# --------------------------------------------------------------------------- combination
def _combine_halves(inputs, exposures: Sequence[Exposure], options: Options,
                    max_imsets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float,
                                              CombinedImage]:
    """Mean bias (sum / NCOMBINE); > max_imsets: two interleaved halves averaged."""
    n_imsets = sum(len(e.imsets) for e in exposures)
    if n_imsets > max_imsets and len(exposures) >= 2:
        ordered = sorted(exposures, key=lambda e: float(e.imsets[0].header.get(
            "EXPSTART", e.key("TEXPSTRT", 0.0))))
        halves = [ordered[0::2], ordered[1::2]]
        log.info("%d imsets > %d: combining two interleaved halves of %d and %d files",
                 n_imsets, max_imsets, len(halves[0]), len(halves[1]))
        parts = [inputs.combine(h, options) for h in halves]
        means = [p.sci / p.ncombine for p in parts]
        errs = [p.err / p.ncombine for p in parts]
        sci = (means[0] + means[1]) / 2.0
        err = np.sqrt(errs[0].astype(np.float64) ** 2 + errs[1] ** 2) / 2.0
        dq = parts[0].dq | parts[1].dq
        ncombine = parts[0].ncombine + parts[1].ncombine
        return (sci.astype(np.float32), err.astype(np.float32), dq, ncombine,
                parts[0].texptime + parts[1].texptime, parts[0])
    combined = inputs.combine(exposures, options)
    n = combined.ncombine
    return (combined.sci / np.float32(n), combined.err / np.float32(n), combined.dq, n,
            combined.texptime, combined)


def _rate(combined: CombinedImage, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """DN sum → e⁻/s (refstis normalize_crj: divide by TEXPTIME/ATODGAIN)."""
    if combined.texptime <= 0:
        raise InputError(None, "darks have zero total exposure time; cannot normalise to e-/s")
    norm = combined.texptime / gain
    return (combined.sci / np.float32(norm)).astype(np.float32), \
        (combined.err / np.float32(abs(norm))).astype(np.float32)


def _reference_imset(inputs, name: str, shape, exposures: Sequence[Exposure]):
    try:
        ref = inputs.references[name]
    except KeyError:
        raise ConfigError(f"this reference file needs the '{name}' reference file") from None
    imset = ref.imsets[0]
    if imset.shape != tuple(shape):
        raise InputError(ref.path, f"{name} shape {imset.shape} differs from the inputs' "
                                   f"calibrated shape {tuple(shape)}")
    for key in ("BINAXIS1", "BINAXIS2"):
        if ref.key(key) is not None and int(ref.key(key)) != int(exposures[0].key(key)):
            raise InputError(ref.path, f"{name} has {key}={ref.key(key)}, inputs have "
                                       f"{exposures[0].key(key)}")
    return imset


# --------------------------------------------------------------------------- headers
def _useafter(options: Options, exposures: Sequence[Exposure]) -> str:
    value = options.get("useafter")
    if value is None:
        return crds.useafter(min(float(e.key("TEXPSTRT")) for e in exposures))
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return crds.useafter(float(text))
    try:
        crds.parse_useafter(text)
    except ValueError:
        raise ConfigError(f"parameter 'useafter': {text!r} is neither an MJD nor "
                          f"'Mon DD YYYY HH:MM:SS'") from None
    return text


def _primary_header(kind: str, exposures: Sequence[Exposure], options: Options,
                    ncombine: int, texptime: float) -> fits.Header:
    first = exposures[0].primary
    gain = int(first["CCDGAIN"])
    bin1, bin2 = int(first.get("BINAXIS1", 1)), int(first.get("BINAXIS2", 1))
    start = min(float(e.key("TEXPSTRT")) for e in exposures)
    end = max(float(e.key("TEXPEND", e.key("TEXPSTRT"))) for e in exposures)
    useafter = _useafter(options, exposures)
    is_bias = kind in BIAS_KINDS
    h = fits.Header()
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "STIS"
    h["DETECTOR"] = ("CCD", "detector in use: CCD")
    h["FILETYPE"] = "CCD BIAS IMAGE" if is_bias else "DARK IMAGE"
    if is_bias:
        h["CCDAMP"] = str(first.get("CCDAMP", "D")).strip()
        h["CCDGAIN"] = gain
        h["CCDOFFST"] = int(first.get("CCDOFFST", 3))
    else:
        h["CCDAMP"] = "ANY"
        h["CCDGAIN"] = -1
        h["CCDOFFST"] = -1
    h["BINAXIS1"] = bin1
    h["BINAXIS2"] = bin2
    h["OPT_ELEM"] = "ANY"
    h["APERTURE"] = "ANY"
    h["OBSTYPE"] = "ANY"
    h["USEAFTER"] = useafter
    h["PEDIGREE"] = crds.pedigree(start, end)
    frequency = "Baseline" if kind.startswith("base") else _FREQUENCY[PERIOD_MODES.get(str(gain), "WK")]
    binning = "" if (bin1, bin2) == (1, 1) else f" {bin1}x{bin2}"
    what = "bias" if is_bias else "dark"
    gain_text = f" gain={gain}" if is_bias else ""
    h["DESCRIP"] = crds.descrip(f"{frequency}{gain_text}{binning} {what} for STIS CCD data "
                                f"taken after {useafter[:11]}")
    h["NCOMBINE"] = (ncombine, "number of imsets combined")
    h["TEXPTIME"] = (texptime, "total exposure time of the inputs (s)")
    h["TEXPSTRT"] = start
    h["TEXPEND"] = end
    h["TASKNAME"] = kind.upper()
    if not is_bias:
        h["REF_TEMP"] = (18.0, "reference housing temperature (C)")
        h["DRK_VS_T"] = (0.07, "fractional dark change per degree C")
    proposals = sorted({str(e.key("PROPOSID")) for e in exposures if e.key("PROPOSID")})
    h.add_history(f"Super{what} ({kind}) combining {ncombine} {what} imsets taken in "
                  f"CCDGAIN={gain}, BINAXIS1={bin1}, BINAXIS2={bin2} mode.")
    if proposals:
        h.add_history(f"Input frames from proposal(s) {'/'.join(proposals)}.")
    h.add_history(_METHOD[kind])
    return h


_METHOD = {
    "basebias": "Method: overscan subtracted, each input CR-rejected (ocrreject algorithm), "
                "averaged weighted by NCOMBINE; hot columns (3 sigma, all rows and lowest 20%) "
                "and hot pixels (5 sigma) replaced by the 3x15 median-filtered bias.",
    "refbias": "Method: overscan subtracted, all imsets CR-rejected together and divided by "
               "NCOMBINE; pixels 5 sigma above the 3x15 median-filtered bias flagged DQ=16.",
    "weekbias": "Method: weekly combined bias; hot columns 5 sigma above the column profile "
                "of the lowest 25% of rows added onto the basebias and flagged DQ=16.",
    "basedark": "Method: bias subtracted, scaled to 18 C by 1/(1+0.07*(OCCDHTAV-18)), "
                "CR-rejected, normalised to e-/s; pixels 5 sigma and 0.1 e-/s above the "
                "mean flagged DQ=16.",
    "weekdark": "Method: weekly darks bias subtracted, temperature scaled, CR-rejected and "
                "normalised to e-/s; pixels above median+5 sigma are this week's hot pixels, "
                "added to the basedark (annealed pixels take its 5x5 median); hot pixels "
                ">= 0.1 e-/s above the basedark median flagged DQ=16.",
}


def _ext_headers(sci_header: fits.Header, ncombine: int, texptime: float, bunit: str):
    sci = sci_header.copy()
    sci["NCOMBINE"] = ncombine
    sci["EXPTIME"] = texptime
    sci["BUNIT"] = bunit
    keep = fits.Header()
    for key in _EXT_KEYS:
        if key in sci:
            keep[key] = sci[key]
    return sci, keep.copy(), keep.copy()


# --------------------------------------------------------------------------- recipes
def build_reffile_stis(detector, kind: str, inputs, options: Options) -> Product:
    """Build one STIS CCD reference file from calibrated exposures."""
    exposures = list(inputs.exposures)
    if not exposures:
        raise InputError(None, f"{kind}: no input exposures")
    gain = float(exposures[0].key("ATODGAIN"))
    options = options.replace(scale_by_exptime=kind in DARK_KINDS)
    kernel = tuple(options.get("bias_filter", (3, 15)))
    max_imsets = int(options.get("max_imsets_per_combine", 120))

    if kind == "basebias":
        single = [e for e in exposures if len(e.imsets) < 2]
        if single:
            raise InputError(single[0].path, "basebias CR-rejects each input alone (refstis "
                                             "basejoint) and needs >= 2 imsets per file")
        parts = [inputs.combine([e], options) for e in exposures]
        mean, err, dq, total = weighted_mean([p.sci for p in parts], [p.err for p in parts],
                                             [p.dq for p in parts], [p.ncombine for p in parts])
        base = make_basebias(mean, kernel=kernel,
                             column_sigma=float(options.get("basebias_column_sigma", 3.0)),
                             column_yfracs=tuple(options.get("basebias_yfracs", (1.0, 0.2))),
                             pixel_sigma=float(options.get("basebias_pixel_sigma", 5.0)))
        sci, ncombine, texptime, header_src = base.sci, int(total), \
            float(sum(p.texptime for p in parts)), parts[0].header
        bunit = "COUNTS"
    elif kind in ("refbias", "weekbias"):
        sci, err, dq, ncombine, texptime, combined = _combine_halves(inputs, exposures, options,
                                                                     max_imsets)
        header_src = combined.header
        bunit = "COUNTS"
        if kind == "refbias":
            hot = refbias_hot_pixels(sci, kernel=kernel,
                                     nsigma=float(options.get("refbias_hot_sigma", 5.0)))
            dq = dq | np.where(hot, HOT_PIXEL, np.uint16(0))
        else:
            base = _reference_imset(inputs, "basebias", sci.shape, exposures)
            week = make_weekbias(sci, err, dq, base.sci, base.err, kernel=kernel,
                                 yfrac=float(options.get("weekbias_yfrac", 0.25)),
                                 nsigma=float(options.get("weekbias_column_sigma", 5.0)))
            sci, err, dq = week.sci, week.err, week.dq
    elif kind in DARK_KINDS:
        combined = inputs.combine(exposures, options)
        rate, err = _rate(combined, gain)
        dq, ncombine, texptime, header_src = combined.dq, combined.ncombine, \
            combined.texptime, combined.header
        bunit = "ELECTRONS/S"
        floor = float(options.get("dark_hot_floor", 0.1))
        nsigma = float(options.get("dark_hot_sigma", 5.0))
        if kind == "basedark":
            hot = basedark_hot_pixels(rate, nsigma=nsigma, floor=floor)
            sci, dq = rate, dq | np.where(hot, HOT_PIXEL, np.uint16(0))
        else:
            base = _reference_imset(inputs, "basedark", rate.shape, exposures)
            week = make_weekdark(rate, err, dq, base.sci, base.err, nsigma=nsigma, floor=floor,
                                 kernel=tuple(options.get("dark_filter", (5, 5))))
            sci, err, dq = week.sci, week.err, week.dq
    else:
        raise ConfigError(f"unknown STIS reference-file kind '{kind}'; "
                          f"known: {', '.join(BIAS_KINDS + DARK_KINDS)}")

    primary = _primary_header(kind, exposures, options, ncombine, texptime)
    sci_h, err_h, dq_h = _ext_headers(header_src, ncombine, texptime, bunit)
    return Product(primary=primary, sci=np.asarray(sci, np.float32),
                   err=np.asarray(err, np.float32), dq=np.asarray(dq, np.uint16),
                   sci_header=sci_h, err_header=err_h, dq_header=dq_h,
                   inputs=tuple(e.rootname for e in exposures), kind=kind)
