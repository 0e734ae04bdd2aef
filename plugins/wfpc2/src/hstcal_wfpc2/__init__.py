"""hstcal plugin for HST/WFPC2: registers the PC1, WF2, WF3 and WF4 detectors.

The detector constants live in :mod:`hstcal_wfpc2.detectors`.  Each chip is its own
detector with the cosmic-ray census stage ``crstats`` (issue 4): a reader that takes
that chip out of a c0 file in MEF, waiver-FITS or GEIS layout (:mod:`hstcal_wfpc2.reader`),
``calibrate`` (checks, electrons) and ``reject_crs`` by thresholding each frame alone
(:mod:`hstcal_wfpc2.census`), and a simulator (:mod:`hstcal_wfpc2.simulate`).  Other
stages raise :class:`hstcal_core.StageNotSupportedError` naming this distribution
(hstcal-wfpc2).  What each detector asks the archive for (the ``query`` hook) is the
table in :mod:`hstcal_wfpc2.query`.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.registry import Registrar

from .census import CENSUS_PARAMS, CRSTATS_DEFAULTS, calibrate_census, threshold_reject_crs
from .detectors import DETECTORS
from .query import query
from .reader import chip_reader

__all__ = ["DETECTORS", "register_detectors", "query", "calibrate", "reject_crs"]

_CHIPS = frozenset(d.name for d in DETECTORS)


def _simulator(out_dir, **kwargs):
    from .simulate import simulate

    return simulate(out_dir, **kwargs)


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register the four chips with ``crstats``, a one-chip reader and the simulator."""
    for det in DETECTORS:
        register.detector(det, stages={"crstats": CENSUS_PARAMS, "drizzle": ()},
                          defaults={"crstats": dict(CRSTATS_DEFAULTS)},
                          simulator=_simulator, reader=chip_reader(det))


@hookimpl
def calibrate(detector, exposure, options):
    """Census calibration of one chip of a c0 dark (:func:`calibrate_census`)."""
    if detector.name not in _CHIPS:
        return None
    return calibrate_census(detector, exposure, options)


@hookimpl
def reject_crs(detector, exposures, options):
    """No pair needed: each frame thresholded alone (:func:`threshold_reject_crs`)."""
    if detector.name not in _CHIPS:
        return None
    return threshold_reject_crs(detector, exposures, options)
