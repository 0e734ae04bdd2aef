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

The checks, units and mask rules are shared with ACS in :mod:`hstcal_core.census.flt`;
this module holds WFC3/UVIS's parameters and hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from hstcal_core import hookimpl
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
from hstcal_core.detectors import Detector
from hstcal_core.images import CombinedImage, Exposure
from hstcal_core.options import Options, Param, as_bool

from .detectors import WFC3_UVIS

__all__ = ["CRSTATS_DEFAULTS", "UVIS_PARAMS", "FILL_DQ", "MIN_EXPTIME_S", "register_uvis",
           "check_census_input", "calibrate_uvis", "reject_uvis_crs", "census_masks",
           "gain_image", "quality_comments", "calibrate_uvis_hook", "reject_crs_uvis_hook"]

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


def register_uvis(register) -> None:
    """Register WFC3/UVIS with the ``crstats`` stage, its defaults and a dark simulator."""
    register.detector(WFC3_UVIS, stages={"crstats": UVIS_PARAMS, "drizzle": ()},
                      defaults={"crstats": dict(CRSTATS_DEFAULTS)}, simulator=_simulate_uvis)


def _simulate_uvis(out_dir, **kwargs):
    """``hstcal simulate --instrument wfc3_uvis``: FLT dark pairs with known cosmic rays."""
    from .simulate_uvis import simulate_uvis_darks

    return simulate_uvis_darks(out_dir, **kwargs)


def calibrate_uvis(detector: Detector, exposure: Exposure, options: Options | None) -> Exposure:
    """A new exposure in electrons (ATODGAIN=1, READNSE in e⁻), after the checks."""
    return calibrate_census(detector, exposure, options, calibrated_by="calwf3")


def reject_uvis_crs(detector: Detector, exposures: Sequence[Exposure], options: Options,
                    *, fill_bits: int = FILL_DQ) -> CombinedImage:
    """wf3rej-style combination; ``badinpdq`` always includes ``fill_bits``."""
    return census_reject_crs(detector, exposures, options, fill_bits=fill_bits)


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
