"""WFC3/UVIS darks for the cosmic-ray census: input checks, units, CR masks.

What HSTcosmicrays (Miles et al. 2021, ``pipeline/process/process.py``) did with
``wfc3tools.wf3rej``, on the hooks:

* **Inputs** are calibrated FLT/FLC darks.  HSTcosmicrays' ``check_for_artifact``
  (EXPTIME < 0.1 s, a QUALCOMn comment longer than 30 characters, DQ == 2 pixels)
  returns as soon as it reads SUBARRAY: every subarray is dropped and every full frame
  passes unchecked.  Here the filters apply to full frames and subarrays alike.
  EXPTIME < 0.1 s and any non-blank QUALCOM1-3 (FLT primary or SPT) are an
  :class:`~hstcal_core.errors.InputError` with the reason (the stage records the
  exposure as rejected); Reed-Solomon/fill pixels (wf3dq.h bits 1 and 2) are only left
  out of the CR detection.
* **Units**: COUNTS are converted to electrons with ATODGN<amp> (the detector's CCDTAB
  values when the header has none); ELECTRONS (calwf3's FLT unit) is left alone.
* **Rejection**: wf3rej semantics through the core's combination with the census
  parameters (:data:`CRSTATS_DEFAULTS`) and the census mask rules of
  :func:`census_masks` (positive deviations only; a median pair flags both images;
  bad pixels in a pair).

The same rules exist for ACS in ``hstcal_acs.census``; plugins do not import each
other, so each carries its copy until the rules move into the core.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from hstcal_core import hookimpl
from hstcal_core.combine import combine_exposures, read_crrejtab, select_crrejtab_row
from hstcal_core.detectors import Detector
from hstcal_core.errors import InputError
from hstcal_core.images import CombinedImage, Exposure, ImSet
from hstcal_core.options import Options, Param, as_bool

from .detectors import WFC3_UVIS

__all__ = ["CRSTATS_DEFAULTS", "UVIS_PARAMS", "FILL_DQ", "MIN_EXPTIME_S", "register_uvis",
           "check_census_input", "calibrate_uvis", "reject_uvis_crs", "census_masks",
           "gain_image", "quality_comments", "calibrate_uvis_hook", "reject_crs_uvis_hook"]

log = logging.getLogger(__name__)

#: wf3dq.h: 1 Reed-Solomon decoding error, 2 data replaced by fill value.
FILL_DQ = 1 | 2
#: HSTcosmicrays ``check_for_artifact``.
MIN_EXPTIME_S = 0.1

# Census rejection parameters.  Sources:
# * crsigmas 8,6,4, initgues median, skysub mode: HSTcosmicrays process.py WFC3()
#   (wf3rej(..., crsigmas='8,6,4', initgues='med', skysub='mode')).
# * crradius 2.1, crthresh 0.5555, badinpdq 32575: the CRREJTAB HSTcosmicrays passed,
#   n9i1435li_crr.fits (UVIS, every row; ../shared/data/hst/reference_tables).  Unlike
#   acsrej, wf3rej (rej_loop.c) has no DARK/BIAS exception for bad pixels (4), so the
#   table's value stands; it already holds the fill bits 1 and 2.
# * scalense 0 (the table says 3 %): SCALENSE models multiplicative errors of an
#   illuminated scene, which a dark lacks, and wf3rej evaluates it on the initial guess,
#   which for a median pair is the mean holding half of each cosmic ray (see
#   hstcal_acs.census for the arithmetic).
CRSTATS_DEFAULTS: dict[str, object] = {
    "crsigmas": (8.0, 6.0, 4.0),
    "initgues": "median",
    "skysub": "mode",
    "crradius": 2.1,
    "crthresh": 0.5555,
    "scalense": 0.0,
    "badinpdq": 32575,
}

UVIS_PARAMS: tuple[Param, ...] = (
    Param("require_dark", as_bool, True,
          "reject inputs that are not darks (TARGNAME DARK* or IMAGETYP DARK)"),
)

_AMPS = "ABCD"


def register_uvis(register) -> None:
    """Register WFC3/UVIS with the ``crstats`` stage, its defaults and a dark simulator."""
    register.detector(WFC3_UVIS, stages={"crstats": UVIS_PARAMS},
                      defaults={"crstats": dict(CRSTATS_DEFAULTS)}, simulator=_simulate_uvis)


def _simulate_uvis(out_dir, **kwargs):
    """``hstcal simulate --instrument wfc3_uvis``: FLT dark pairs with known cosmic rays."""
    from .simulate_uvis import simulate_uvis_darks

    return simulate_uvis_darks(out_dir, **kwargs)


# --------------------------------------------------------------------------- checks
def quality_comments(exposure: Exposure) -> list[str]:
    """Non-blank QUALCOM1-3 of the exposure's primary header and of its SPT companion.

    HSTcosmicrays rejected comments longer than 30 characters; the quality comments are
    only written when the data assessment found a problem, so any comment rejects here.
    """
    from hstcal_core.census.stage import companion

    headers = [exposure.primary]
    spt = companion(exposure.path)
    if spt is not None:
        from astropy.io import fits

        try:
            headers.append(fits.getheader(spt, 0))
        except OSError as exc:
            log.warning("%s: cannot read its primary header (%s); QUALCOM not checked there",
                        spt, exc)
    comments = []
    for header in headers:
        for n in (1, 2, 3):
            text = str(header.get(f"QUALCOM{n}", "") or "").strip()
            if text and text not in comments:
                comments.append(text)
    return comments


def check_census_input(detector: Detector, exposure: Exposure, *,
                       require_dark: bool = True) -> None:
    """Raise :class:`InputError` (naming the file) unless the exposure is a usable dark.

    Checks, in order: instrument and detector, a dark, EXPTIME ≥ 0.1 s, no quality
    comment, a calibrated (FLT/FLC) file.
    """
    path = exposure.path
    inst = str(exposure.key("INSTRUME", "") or "").strip().upper()
    det = str(exposure.key("DETECTOR", "") or "").strip().upper()
    if inst != detector.instrument.upper() or det != detector.detector.upper():
        raise InputError(path, f"is INSTRUME={inst or '?'} DETECTOR={det or '?'}, not "
                               f"{detector.instrument}/{detector.detector} ({detector.name})")
    target = str(exposure.key("TARGNAME", "") or "").strip().upper()
    imagetyp = str(exposure.key("IMAGETYP", "") or "").strip().upper()
    if require_dark and not (target.startswith("DARK") or imagetyp == "DARK"):
        raise InputError(path, f"not a dark (TARGNAME={target or '?'}, IMAGETYP="
                               f"{imagetyp or '?'}): the cosmic-ray census uses dark frames only")
    exptime = float(exposure.key("EXPTIME", 0.0) or 0.0)
    if exptime < MIN_EXPTIME_S:
        raise InputError(path, f"EXPTIME {exptime} s < {MIN_EXPTIME_S} s: too short to be a "
                               f"usable dark (HSTcosmicrays' artifact filter)")
    comments = quality_comments(exposure)
    if comments:
        raise InputError(path, "bad data quality: QUALCOM says " + " / ".join(
            repr(c) for c in comments))
    blevcorr = str(exposure.key("BLEVCORR", "") or "").strip().upper()
    if blevcorr == "PERFORM" or "_raw" in path.name.lower():
        raise InputError(path, "is a raw file (BLEVCORR=PERFORM): the census reads "
                               "calibrated FLT/FLC darks (calwf3 output)")


# --------------------------------------------------------------------------- units
def _amp_value(exposure: Exposure, detector: Detector, keyword: str, amp: str,
               attribute: str) -> float:
    value = float(exposure.key(f"{keyword}{amp}", 0.0) or 0.0)
    if value > 0:
        return value
    setting = exposure.key(detector.gain_keyword)
    try:
        constants = detector.amplifier(float(setting) if setting is not None
                                       else detector.gains[0], amp)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(exposure.path, f"no {keyword}{amp} in the header and no CCDTAB "
                                        f"value for it: {exc}") from None
    return float(getattr(constants, attribute))


def gain_image(exposure: Exposure, imset: ImSet, detector: Detector,
               keyword: str = "ATODGN", attribute: str = "gain") -> np.ndarray:
    """Per-pixel amplifier constant (gain, or read noise with ``READNSE``).

    UVIS1 (CCDCHIP 1) is read by A (left) and B, UVIS2 by C and D (wf3rej get_nsegn);
    two amplifiers split a full frame at its middle column, a subarray at the physical
    middle (``x - LTV1``) of its chip.
    """
    ccdamp = [a for a in str(exposure.key("CCDAMP", "") or "").strip().upper() if a in _AMPS]
    chip = imset.header.get(str(detector.extra.get("chip_keyword", "CCDCHIP")))
    on_chip = dict(detector.extra.get("chip_amps", {})).get(int(chip)) if chip else None
    amps = ([a for a in on_chip if a in ccdamp] or list(on_chip)) if on_chip else ccdamp
    if not amps:
        amps = [detector.amplifier(detector.gains[0]).name]
    values = [_amp_value(exposure, detector, keyword, a, attribute) for a in amps]
    ny, nx = imset.shape
    if len(values) == 1:
        return np.full((ny, nx), values[0], np.float32)
    columns = np.arange(nx)
    if bool(exposure.key("SUBARRAY", False)):
        chip_nx = int(tuple(detector.extra.get("chip_shape", detector.shape))[1])
        left = (columns - float(imset.header.get("LTV1", 0.0) or 0.0)) < chip_nx // 2
    else:
        left = columns < nx // 2
    row = np.where(left, values[0], values[-1]).astype(np.float32)
    return np.broadcast_to(row, (ny, nx)).copy()


def calibrate_uvis(detector: Detector, exposure: Exposure, options: Options | None) -> Exposure:
    """A new exposure in electrons (ATODGAIN=1, READNSE in e⁻), after the checks."""
    require = True if options is None else options.get("require_dark")
    check_census_input(detector, exposure, require_dark=require is not False)
    primary = exposure.primary.copy()
    imsets, noise = [], []
    for imset in exposure.imsets:
        header = imset.header.copy()
        bunit = str(header.get("BUNIT", primary.get("BUNIT", "COUNTS")) or "COUNTS").upper()
        sci, err = imset.sci, imset.err
        if not bunit.startswith("ELECTRON"):
            gains = gain_image(exposure, imset, detector)
            sci = (sci * gains).astype(np.float32)
            err = (err * gains).astype(np.float32)
            header["BUNIT"] = ("ELECTRONS", f"converted from {bunit} with ATODGN<amp>")
        for key in ("EXPTIME", "EXPSTART", "EXPEND"):
            if key not in header and key in primary:
                header[key] = primary[key]
        noise.append(float(np.mean(gain_image(exposure, imset, detector, "READNSE",
                                              "read_noise"))))
        imsets.append(ImSet(sci=sci, err=err, dq=imset.dq.copy(), header=header))
    primary["ATODGAIN"] = (1.0, "data in electrons (census calibration)")
    primary["READNSE"] = (float(np.mean(noise)) if noise else 0.0,
                          "mean read noise of the amplifiers, e-")
    primary.add_history("hstcal census calibration: electrons, artifact filters passed")
    return Exposure(path=exposure.path, primary=primary, imsets=tuple(imsets))


# --------------------------------------------------------------------------- rejection
def reject_uvis_crs(detector: Detector, exposures: Sequence[Exposure], options: Options,
                    *, fill_bits: int = FILL_DQ) -> CombinedImage:
    """wf3rej-style combination; ``badinpdq`` always includes ``fill_bits``."""
    imsets = [i for e in exposures for i in e.imsets
              if i.header.get("IMSET_OK", True) is not False]
    badinpdq = options.get("badinpdq")
    if badinpdq is None and options.get("crrejtab"):
        table = options.get("crrejtab")
        mean_exptime = float(np.mean([i.exptime for i in imsets])) if imsets else 0.0
        badinpdq = select_crrejtab_row(read_crrejtab(table), len(imsets), mean_exptime,
                                       table).params.badinpdq
    badinpdq = int(badinpdq or 0) | int(fill_bits)
    options = options.replace(badinpdq=badinpdq)
    combined = combine_exposures(detector, exposures, options)
    return census_masks(combined, imsets, badinpdq=badinpdq,
                        scale_by_exptime=bool(options.get("scale_by_exptime", True)),
                        initgues=str(combined.parameters.get("initgues", "median")))


def census_masks(combined: CombinedImage, imsets: Sequence[ImSet], *, badinpdq: int,
                 scale_by_exptime: bool = True, initgues: str = "median",
                 crflag: int = 8192) -> CombinedImage:
    """Per-exposure CR masks a census can label, from an ocrreject-style combination.

    Three rules on top of the combination (wf3rej flags ``|deviation|``, which suits
    a combined image; a census labels each exposure's mask):

    1. **A cosmic ray only adds charge.**  A pixel stays flagged in an image only where
       that image's sky-subtracted, exposure-scaled value exceeds the lowest value of
       the other images there.  Otherwise the image was flagged because the others
       deviate (a median of three with cosmic rays in two of them).
    2. **A pair with a median guess.**  The median of two images is their mean, so a
       cosmic ray in one makes *both* deviate equally and both are flagged; rule 1
       then leaves it to the image with the larger value, and the combined image takes
       the other image's value there.
    3. **Bad input pixels** (``badinpdq``, which includes the Reed-Solomon/fill bits):
       wf3rej builds its median from good pixels only; the core's median uses every
       image, so in a pair a bad value in one image makes its partner deviate.  In a
       pair no pixel bad in either image is a CR; with three or more images a pixel
       bad in an image is not a CR of that image.

    Parameters
    ----------
    combined : CombinedImage
        Output of :func:`hstcal_core.combine.combine_exposures`.
    imsets : sequence of ImSet
        The combined imsets, in the order of ``combined.sources``.
    badinpdq : int
        DQ bits excluded from the rejection.
    scale_by_exptime : bool
        As in the combination (images scaled by EXPTIME).
    initgues : str
        The initial guess used (rule 2 applies to ``"median"``).
    crflag : int
        DQ bit of the combined image for "rejected in every input".

    Returns
    -------
    CombinedImage
        A copy with the new masks (and, for a pair, ``sci``/``err``/``dq`` where one
        image is now clean) and ``n_rejected``.
    """
    masks = np.array(combined.masks, dtype=bool, copy=True)
    n = masks.shape[0]
    if len(imsets) != n:
        raise ValueError(f"{len(imsets)} imsets for {n} masks")
    bad = np.stack([(np.asarray(i.dq).astype(np.int64) & int(badinpdq)) != 0 for i in imsets])
    masks &= ~bad.any(axis=0) if n == 2 else ~bad
    sci, err, dq = combined.sci, combined.err, combined.dq
    ys, xs = np.nonzero(masks.any(axis=0))
    if ys.size:
        exptimes = np.array([i.exptime for i in imsets], dtype=np.float64)
        efac = exptimes if scale_by_exptime and np.all(exptimes > 0) else np.ones(n)
        sky = np.asarray(combined.sky if len(combined.sky) == n else np.zeros(n), np.float64)
        values = np.stack([(np.asarray(i.sci)[ys, xs] - sky[k]) / efac[k]
                           for k, i in enumerate(imsets)])
        pair = n == 2 and initgues == "median"
        flagged = np.ones((n, ys.size), bool) if pair else masks[:, ys, xs]
        for k in range(n):
            lowest_other = np.delete(values, k, axis=0).min(axis=0)
            flagged[k] &= values[k] > lowest_other
        masks[:, ys, xs] = flagged
        if pair:
            one = flagged.sum(axis=0) == 1
            clean = np.where(flagged[0], 1, 0)[one]
            py, px = ys[one], xs[one]
            total = float(efac.sum())
            errs = np.stack([np.asarray(i.err)[py, px] / efac[k] for k, i in enumerate(imsets)])
            sci = np.array(sci, np.float32, copy=True)
            err = np.array(err, np.float32, copy=True)
            dq = np.array(dq, copy=True)
            sci[py, px] = values[clean, one] * total + sky.sum()
            err[py, px] = errs[clean, np.arange(py.size)] * total
            # one image is used there now: not "rejected in every input"
            dq[py, px] &= dq.dtype.type(~crflag & 0xFFFF)
    return replace(combined, masks=masks, sci=sci, err=err, dq=dq,
                   n_rejected=int(np.count_nonzero(masks)),
                   parameters={**combined.parameters, "badinpdq": int(badinpdq),
                               "census_rules": "positive deviations, pair assignment, "
                                               "bad pixels"})



# --------------------------------------------------------------------------- hooks
# Named apart from the IR implementations in hstcal_wfc3/__init__.py (pluggy's
# ``specname``), so both live in one plugin module without touching each other.
@hookimpl(specname="calibrate")
def calibrate_uvis_hook(detector, exposure, options):
    """WFC3/UVIS census calibration of an FLT/FLC dark (checks, electrons)."""
    if detector.name != WFC3_UVIS.name:
        return None
    return calibrate_uvis(detector, exposure, options)


@hookimpl(specname="reject_crs")
def reject_crs_uvis_hook(detector, exposures, options):
    """WFC3/UVIS: wf3rej-style rejection with the census mask rules."""
    if detector.name != WFC3_UVIS.name:
        return None
    return reject_uvis_crs(detector, exposures, options)
