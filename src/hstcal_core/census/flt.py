"""Calibrated FLT/FLC darks of the CCD imagers (ACS/WFC, ACS/HRC, WFC3/UVIS) for the census.

What HSTcosmicrays (Miles et al. 2021, ``pipeline/process/process.py``) did with
``acstools.acsrej`` and ``wfc3tools.wf3rej``, shared by the ACS and WFC3 plugins (which
keep only their parameters, :data:`CRSTATS_DEFAULTS` tables and hook wiring):

* **Inputs** are calibrated FLT/FLC darks.  ``check_for_artifact`` dropped exposures
  with EXPTIME < 0.1 s, with a long QUALCOMn comment or with DQ == 2 pixels, but it
  returns as soon as it reads SUBARRAY (every ACS/WFC3 file has it): every subarray is
  dropped and every full frame passes unchecked.  Here the filters run on full frames
  and subarrays alike: EXPTIME < 0.1 s and a non-blank QUALCOM1-3 (FLT primary or SPT)
  are an :class:`~hstcal_core.errors.InputError` naming the reason (the stage records
  the exposure as rejected); Reed-Solomon/fill pixels (acsdq.h/wf3dq.h bits 1 and 2)
  only leave those pixels out of the CR detection, the rest of the frame counts.
* **Units**: FLTs in COUNTS are converted to electrons with the per-amplifier
  ATODGN<amp> (the detector's CCDTAB values when a header has none); ELECTRONS is left
  alone.  ``ATODGAIN = 1`` and ``READNSE`` (mean READNSE<amp>, e⁻) are set in the
  calibrated primary header for the combination's noise model.
* **Rejection**: acsrej/wf3rej semantics through the core's combination
  (:func:`hstcal_core.combine.combine_exposures`) plus three rules of our own,
  :func:`census_masks`.

Not a dark (TARGNAME/IMAGETYP), a raw (BLEVCORR=PERFORM) or a MAMA (the ACS/SBC) are
InputErrors with a clear message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..combine import combine_exposures, read_crrejtab, select_crrejtab_row
from ..detectors import Detector
from ..errors import InputError
from ..images import CombinedImage, Exposure, ImSet
from ..options import Options
from ..stages import check_header_detector

__all__ = ["FILL_DQ", "MIN_EXPTIME_S", "check_census_input", "calibrate_census",
           "census_reject_crs", "census_masks", "gain_image", "quality_comments", "is_dark",
           "check_artifacts"]

log = logging.getLogger(__name__)

#: acsdq.h / wf3dq.h: 1 Reed-Solomon decoding error, 2 data replaced by fill value (the
#: streaks HSTcosmicrays' ``check_for_artifact`` looked for as DQ == 2).
FILL_DQ = 1 | 2
#: HSTcosmicrays ``check_for_artifact``: shorter exposures are mislabelled darks.
MIN_EXPTIME_S = 0.1

_AMPS = "ABCD"


# --------------------------------------------------------------------------- checks
def quality_comments(exposure: Exposure) -> list[str]:
    """Non-blank QUALCOM1-3 of the exposure's primary header and of its SPT/SHM companion.

    HSTcosmicrays rejected comments longer than 30 characters; the quality comments are
    only written when the data assessment found a problem, so any comment rejects here.
    """
    from .stage import companion

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


def check_artifacts(exposure: Exposure) -> None:
    """HSTcosmicrays' ``check_for_artifact`` on every frame: EXPTIME ≥ 0.1 s and no
    quality comment (primary or SPT/SHM), else :class:`InputError` naming the file."""
    exptime = float(exposure.key("EXPTIME", 0.0) or 0.0)
    if exptime < MIN_EXPTIME_S:
        raise InputError(exposure.path, f"EXPTIME {exptime} s < {MIN_EXPTIME_S} s: too short "
                                        f"to be a usable dark (HSTcosmicrays' artifact filter)")
    comments = quality_comments(exposure)
    if comments:
        raise InputError(exposure.path, "bad data quality: QUALCOM says " + " / ".join(
            repr(c) for c in comments))


def is_dark(exposure: Exposure, detector: Detector) -> bool:
    """TARGNAME DARK* (the archive's crdark selection) or IMAGETYP DARK."""
    target = str(exposure.key("TARGNAME", "") or "").strip().upper()
    kind = str(exposure.key(str(detector.extra.get("frame_keyword", "IMAGETYP")), "")
               or "").strip().upper()
    imagetyp = str(exposure.key("IMAGETYP", "") or "").strip().upper()
    return target.startswith("DARK") or "DARK" in (kind, imagetyp)


def check_census_input(detector: Detector, exposure: Exposure, *,
                       require_dark: bool = True, calibrated_by: str = "calacs/calwf3") -> None:
    """Raise :class:`InputError` (naming the file) unless the exposure is a usable dark.

    Checks, in order: instrument and detector (the SBC is a MAMA: no read-out, no CR
    pairs), a dark, EXPTIME ≥ 0.1 s, no quality comment, a calibrated (FLT/FLC) file.
    """
    path = exposure.path
    inst = str(exposure.key("INSTRUME", "") or "").strip().upper()
    det = str(exposure.key("DETECTOR", "") or "").strip().upper()
    if inst == detector.instrument.upper() and det in ("SBC", "FUV-MAMA", "NUV-MAMA"):
        raise InputError(path, f"is {inst}/{det}, a MAMA photon-counting detector: no CCD "
                               f"read-out and no cosmic-ray pairs, not supported by the "
                               f"cosmic-ray census ({detector.name} is a CCD)")
    check_header_detector(path, exposure.primary, detector)
    if require_dark and not is_dark(exposure, detector):
        target = str(exposure.key("TARGNAME", "") or "?").strip()
        kind = str(exposure.key("IMAGETYP", "") or "?").strip()
        raise InputError(path, f"not a dark (TARGNAME={target}, IMAGETYP={kind}): the "
                               f"cosmic-ray census uses dark frames only")
    check_artifacts(exposure)
    blevcorr = str(exposure.key("BLEVCORR", "") or "").strip().upper()
    if blevcorr == "PERFORM" or "_raw" in path.name.lower():
        raise InputError(path, "is a raw file (BLEVCORR=PERFORM): the census reads "
                               f"calibrated FLT/FLC darks ({calibrated_by} output)")


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


def _imset_amps(exposure: Exposure, imset: ImSet, detector: Detector) -> list[str]:
    ccdamp = [a for a in str(exposure.key("CCDAMP", "") or "").strip().upper() if a in _AMPS]
    chip_keyword = detector.extra.get("chip_keyword")
    chip = imset.header.get(chip_keyword) if chip_keyword else None
    on_chip = dict(detector.extra.get("chip_amps", {})).get(int(chip)) if chip else None
    if on_chip:
        amps = [a for a in on_chip if a in ccdamp] or list(on_chip)
    else:
        amps = ccdamp
    if not amps:
        amps = [detector.amplifier(detector.gains[0]).name]
    return amps


def gain_image(exposure: Exposure, imset: ImSet, detector: Detector,
               keyword: str = "ATODGN", attribute: str = "gain") -> np.ndarray:
    """Per-pixel amplifier constant (gain e⁻/DN, or read noise with ``READNSE``).

    Two amplifiers on one chip split it at its middle column: the array's middle for a
    full frame, the physical middle (``x - LTV1``) for a subarray (one amplifier
    normally reads a subarray, which then needs no split).
    """
    amps = _imset_amps(exposure, imset, detector)
    values = [_amp_value(exposure, detector, keyword, a, attribute) for a in amps]
    ny, nx = imset.shape
    if len(values) == 1:
        return np.full((ny, nx), values[0], np.float32)
    columns = np.arange(nx)
    if bool(exposure.key("SUBARRAY", False)):
        chip_nx = int(tuple(detector.extra.get("chip_shape", detector.shape))[1])
        ltv1 = float(imset.header.get("LTV1", 0.0) or 0.0)
        left = (columns - ltv1) < chip_nx // 2
    else:
        left = columns < nx // 2
    row = np.where(left, values[0], values[-1]).astype(np.float32)
    return np.broadcast_to(row, (ny, nx)).copy()


def calibrate_census(detector: Detector, exposure: Exposure, options: Options | None, *,
                     calibrated_by: str = "calacs/calwf3") -> Exposure:
    """A new exposure in electrons (ATODGAIN=1, READNSE in e⁻), ready for
    :func:`census_reject_crs`.

    Raises
    ------
    InputError
        From :func:`check_census_input`.
    """
    require = True if options is None else options.get("require_dark")
    check_census_input(detector, exposure, require_dark=require is not False,
                       calibrated_by=calibrated_by)
    primary = exposure.primary.copy()
    exptime = float(exposure.key("EXPTIME", 0.0) or 0.0)
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
        # calacs keeps these in the primary header only; the combination reads them per imset
        for key in ("EXPTIME", "EXPSTART", "EXPEND"):
            if key not in header and key in primary:
                header[key] = primary[key]
        noise.append(float(np.mean(gain_image(exposure, imset, detector, "READNSE",
                                              "read_noise"))))
        # sci, err and dq are shared with the input where unchanged (nothing here mutates them)
        imsets.append(ImSet(sci=sci, err=err, dq=imset.dq, header=header))
    primary["ATODGAIN"] = (1.0, "data in electrons (census calibration)")
    primary["READNSE"] = (float(np.mean(noise)) if noise else 0.0,
                          "mean read noise of the amplifiers, e-")
    primary.add_history(f"hstcal census calibration: electrons, EXPTIME {exptime} s checked")
    return Exposure(path=exposure.path, primary=primary, imsets=tuple(imsets))


# --------------------------------------------------------------------------- rejection
def _badinpdq(options: Options, n_imsets: int, mean_exptime: float) -> int:
    value = options.get("badinpdq")
    if value is None:
        table = options.get("crrejtab")
        if table:
            row = select_crrejtab_row(read_crrejtab(table), n_imsets, mean_exptime, table)
            value = row.params.badinpdq
        else:
            value = 0
    return int(value)


def census_reject_crs(detector: Detector, exposures: Sequence[Exposure], options: Options,
                      *, fill_bits: int = FILL_DQ) -> CombinedImage:
    """acsrej/wf3rej-style combination with the census rules of :func:`census_masks`.

    ``badinpdq`` always includes ``fill_bits`` (Reed-Solomon / fill pixels never take
    part in the rejection).
    """
    imsets = [i for e in exposures for i in e.imsets if i.header.get("IMSET_OK", True) is not False]
    mean_exptime = float(np.mean([i.exptime for i in imsets])) if imsets else 0.0
    badinpdq = _badinpdq(options, len(imsets), mean_exptime) | int(fill_bits)
    options = options.replace(badinpdq=badinpdq)
    combined = combine_exposures(detector, exposures, options,
                                 temperature_keyword=detector.extra.get("temperature_keyword"))
    return census_masks(combined, imsets, badinpdq=badinpdq,
                        scale_by_exptime=bool(options.get("scale_by_exptime", True)),
                        initgues=str(combined.parameters.get("initgues", "median")),
                        overwrite=True)  # ours: no full-frame copies of it


def _flagged_pixels(dqs: Sequence[np.ndarray], bits: int) -> np.ndarray:
    """Flat indices of the pixels where any of ``dqs`` has one of ``bits``, computed in
    the arrays' own integer type when ``bits`` fits it (no int64 full frames)."""
    dqs = [np.asarray(d) for d in dqs]
    kind = np.result_type(*dqs)
    if np.issubdtype(kind, np.integer) and 0 <= bits <= np.iinfo(kind).max:
        found = np.array(dqs[0], dtype=kind, copy=True)
        for d in dqs[1:]:
            found |= d
        found &= kind.type(bits)
    else:
        found = np.bitwise_or.reduce([d.astype(np.int64) for d in dqs]) & int(bits)
    return np.flatnonzero(found)


def census_masks(combined: CombinedImage, imsets: Sequence[ImSet], *, badinpdq: int,
                 scale_by_exptime: bool = True, initgues: str = "median",
                 crflag: int = 8192, overwrite: bool = False) -> CombinedImage:
    """Per-exposure CR masks a census can label, from an ocrreject-style combination.

    Three rules on top of the combination (acsrej/wf3rej flag ``|deviation|``, which suit
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
       acsrej/wf3rej build their median from good pixels only; the core's median uses every
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
    overwrite : bool
        Change ``combined``'s masks, sci, err and dq arrays in place instead of copying
        them (for a caller that made ``combined`` and drops it).

    Returns
    -------
    CombinedImage
        A copy with the new masks (and, for a pair, ``sci``/``err``/``dq`` where one
        image is now clean) and ``n_rejected``.
    """
    def own(array, dtype=None):
        # C order: the rules below write through flat views (reshape(-1))
        if overwrite:
            array = np.asarray(array, dtype)
            if array.flags.c_contiguous and array.flags.writeable:
                return array
        return np.array(array, dtype, copy=True, order="C")

    masks = own(combined.masks, bool)
    n = masks.shape[0]
    if len(imsets) != n:
        raise ValueError(f"{len(imsets)} imsets for {n} masks")
    flat_masks = masks.reshape(n, -1)  # a view; the rules below touch flagged pixels only
    if n == 2:
        flat_masks[:, _flagged_pixels([i.dq for i in imsets], badinpdq)] = False
    else:
        for k, imset in enumerate(imsets):
            flat_masks[k, _flagged_pixels([imset.dq], badinpdq)] = False
    sci, err, dq = combined.sci, combined.err, combined.dq
    flat = np.flatnonzero(masks.any(axis=0))
    if flat.size:
        exptimes = np.array([i.exptime for i in imsets], dtype=np.float64)
        efac = exptimes if scale_by_exptime and np.all(exptimes > 0) else np.ones(n)
        sky = np.asarray(combined.sky if len(combined.sky) == n else np.zeros(n), np.float64)
        values = np.stack([(np.asarray(i.sci).reshape(-1)[flat] - sky[k]) / efac[k]
                           for k, i in enumerate(imsets)])
        pair = n == 2 and initgues == "median"
        flagged = np.ones((n, flat.size), bool) if pair else flat_masks[:, flat]
        for k in range(n):
            lowest_other = np.delete(values, k, axis=0).min(axis=0)
            flagged[k] &= values[k] > lowest_other
        flat_masks[:, flat] = flagged
        if pair:
            one = flagged.sum(axis=0) == 1
            clean = np.where(flagged[0], 1, 0)[one]
            where = flat[one]
            total = float(efac.sum())
            errs = np.stack([np.asarray(i.err).reshape(-1)[where] / efac[k]
                             for k, i in enumerate(imsets)])
            sci = own(sci, np.float32)
            err = own(err, np.float32)
            dq = own(dq)
            sci.reshape(-1)[where] = values[clean, one] * total + sky.sum()
            err.reshape(-1)[where] = errs[clean, np.arange(where.size)] * total
            # one image is used there now: not "rejected in every input"
            dq.reshape(-1)[where] &= dq.dtype.type(~crflag & 0xFFFF)
    return replace(combined, masks=masks, sci=sci, err=err, dq=dq,
                   n_rejected=int(np.count_nonzero(masks)),
                   parameters={**combined.parameters, "badinpdq": int(badinpdq),
                               "census_rules": "positive deviations, pair assignment, "
                                               "bad pixels"})
