"""hstcal plugin for HST/COS: registers the FUV and NUV detectors.

The detector constants live in :mod:`hstcal_cos.detectors`.  What each detector asks
the archive for (the ``query`` hook) is the table in :mod:`hstcal_cos.query`.  TIME-TAG
exposures (:class:`hstcal_core.timetag.events.TimeTagInput`) are read by the
``calibrate`` hook into event lists (:mod:`hstcal_cos.timetag`: corrtag, and FUV rawtag
registered on the x1d by :mod:`hstcal_cos.rawtag`); ``hstcal simulate --kind timetag``
writes synthetic corrtags/rawtags with their truth (:mod:`hstcal_cos.simulate_timetag`).
"""

from __future__ import annotations

from functools import partial

from hstcal_core import hookimpl
from hstcal_core.registry import Registrar
from hstcal_core.timetag.events import TimeTagInput

from .detectors import DETECTORS
from .query import query

__all__ = ["DETECTORS", "register_detectors", "query", "calibrate"]

_NAMES = {det.name for det in DETECTORS}


def _simulator(detector: str, out_dir, **kwargs):
    from .simulate_timetag import simulate

    return simulate(out_dir, detector=detector, **kwargs)


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register every COS detector: stages lightcurve and composite, TIME-TAG simulator."""
    for det in DETECTORS:
        register.detector(det, stages=("lightcurve", "composite"),
                          simulator=partial(_simulator, det.detector))


@hookimpl
def calibrate(detector, exposure, options):
    """TIME-TAG exposure → :class:`~hstcal_core.timetag.events.EventList` (None otherwise)."""
    if detector.name not in _NAMES or not detector.extra.get("timetag") \
            or not isinstance(exposure, TimeTagInput):
        return None
    from .timetag import read_cos_timetag

    return read_cos_timetag(detector.detector, exposure, options)
