"""hstcal plugin for HST/ACS: registers the WFC and HRC detectors.

The detector constants live in :mod:`hstcal_acs.detectors`.  Both CCDs take part in the
cosmic-ray census (stage ``crstats``, issue 4): :mod:`hstcal_acs.census` checks and
converts the FLT darks (``calibrate``) and rejects cosmic rays with acsrej semantics
(``reject_crs``); :mod:`hstcal_acs.simulate` writes synthetic darks with their truth.
Asking for any other stage raises :class:`hstcal_core.StageNotSupportedError` naming
this distribution (hstcal-acs).  What each detector asks the archive for (the ``query``
hook) is the table in :mod:`hstcal_acs.query`.  The SBC (a MAMA) is not registered.
"""

from __future__ import annotations

from functools import partial

from hstcal_core import hookimpl
from hstcal_core.registry import Registrar

from .census import CENSUS_PARAMS, CRSTATS_DEFAULTS, calibrate_census, census_reject_crs
from .detectors import ACS_HRC, ACS_WFC, DETECTORS
from .query import query

__all__ = ["DETECTORS", "register_detectors", "query", "calibrate", "reject_crs"]

_CENSUS = (ACS_WFC.name, ACS_HRC.name)


def _simulator(detector, out_dir, **kwargs):
    from .simulate import simulate

    return simulate(out_dir, detector=detector, **kwargs)


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register WFC and HRC with the cosmic-ray census stage and a dark simulator."""
    for det in DETECTORS:
        register.detector(det, stages={"crstats": CENSUS_PARAMS, "drizzle": ()},
                          defaults={"crstats": dict(CRSTATS_DEFAULTS)},
                          simulator=partial(_simulator, det))


@hookimpl
def calibrate(detector, exposure, options):
    """Census calibration of an FLT dark: checks and electrons (:mod:`hstcal_acs.census`)."""
    if detector.name not in _CENSUS:
        return None
    return calibrate_census(detector, exposure, options)


@hookimpl
def reject_crs(detector, exposures, options):
    """acsrej-style rejection with the census mask rules (:func:`census_reject_crs`)."""
    if detector.name not in _CENSUS:
        return None
    return census_reject_crs(detector, exposures, options)
