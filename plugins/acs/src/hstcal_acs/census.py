"""ACS/WFC and ACS/HRC darks for the cosmic-ray census: input checks, units, CR masks.

What HSTcosmicrays (Miles et al. 2021, ``pipeline/process/process.py``) did with
``acstools.acsrej``, on the hooks:

* **Inputs** are calibrated FLT/FLC darks.  ``check_for_artifact`` dropped exposures
  with EXPTIME < 0.1 s, with a long QUALCOMn comment or with DQ == 2 pixels, but it
  returns as soon as it reads SUBARRAY (every ACS file has it): every subarray is
  dropped and every full frame passes unchecked.  Here the filters run on full frames
  and subarrays alike:
  EXPTIME < 0.1 s and a non-blank QUALCOM1-3 (FLT primary or SPT) are an
  :class:`~hstcal_core.errors.InputError` naming the reason (the stage records the
  exposure as rejected); Reed-Solomon/fill pixels (acsdq.h bits 1 and 2) only leave
  those pixels out of the CR detection (see below), the rest of the frame counts.
* **Units**: FLTs in COUNTS (calacs before 2012) are converted to electrons with the
  per-amplifier ATODGN<amp> (the detector's CCDTAB values when a header has none);
  ELECTRONS is left alone.  ``ATODGAIN = 1`` and ``READNSE`` (mean READNSE<amp>, e⁻)
  are set in the calibrated primary header for the combination's noise model.
* **Rejection**: acsrej semantics through the core's combination
  (:func:`hstcal_core.combine.combine_exposures`) with the census parameters
  (:data:`CRSTATS_DEFAULTS`), plus three rules of our own, :func:`census_masks`.

Not a dark (TARGNAME/IMAGETYP), a raw (BLEVCORR=PERFORM) or the SBC (a MAMA) are
InputErrors with a clear message.
"""

from __future__ import annotations

from hstcal_core.census.flt import (
    FILL_DQ,
    MIN_EXPTIME_S,
    calibrate_census,
    census_masks,
    census_reject_crs,
    check_census_input,
    gain_image,
    quality_comments,
)
from hstcal_core.options import Param, as_bool

__all__ = ["CRSTATS_DEFAULTS", "CENSUS_PARAMS", "FILL_DQ", "MIN_EXPTIME_S",
           "check_census_input", "calibrate_census", "census_reject_crs", "census_masks",
           "gain_image", "quality_comments"]

# Census rejection parameters.  Sources:
# * crsigmas 6,5,4, initgues median, skysub mode: HSTcosmicrays process.py ACS()
#   (acsrej(..., crsigmas='6,5,4', initgues='med', skysub='mode')).
# * crradius 2.1, crthresh 0.5555: the CRREJTABs HSTcosmicrays passed to acsrej,
#   29p1548cj_crr.fits (WFC, CRTHRESH 0.5555) and n4e12510j_crr.fits (HRC, 0.555556),
#   every row; in ../shared/data/hst/reference_tables.
# * badinpdq 35: those tables' BADINPDQ 39 (1+2+4+32) without 4, because acsrej_loop.c
#   treats bad detector pixels (4) as good when IMAGETYP is DARK or BIAS (hstcal
#   git issue #373); bits 1 and 2 are always added (census_reject_crs).
# * scalense 0 (the tables say 30 %): SCALENSE models multiplicative errors of an
#   illuminated scene (flat field, pointing), which a dark does not have, and acsrej
#   evaluates it on the initial guess: for a pair that guess is the mean, which holds
#   half of the cosmic ray, so at crsigma s a CR of charge q is found only if
#   q/2 > s·0.30·q/2, i.e. never for s ≥ 3.4.  HSTcosmicrays combined up to 30 darks
#   per call, whose median is clean; the census here works on pairs.
CRSTATS_DEFAULTS: dict[str, object] = {
    "crsigmas": (6.0, 5.0, 4.0),
    "initgues": "median",
    "skysub": "mode",
    "crradius": 2.1,
    "crthresh": 0.5555,
    "scalense": 0.0,
    "badinpdq": 35,
}

CENSUS_PARAMS: tuple[Param, ...] = (
    Param("require_dark", as_bool, True,
          "reject inputs that are not darks (TARGNAME DARK* or IMAGETYP DARK)"),
)
