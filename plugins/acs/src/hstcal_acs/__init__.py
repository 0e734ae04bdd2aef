"""hstcal plugin for HST/ACS: registers the WFC and HRC detectors.

The detector constants live in :mod:`hstcal_acs.detectors`.  Stages are added in
later work; until then the detectors are registered with no stages, and asking
for one raises :class:`hstcal_core.StageNotSupportedError` naming this
distribution (hstcal-acs).  What each detector asks the archive for (the ``query``
hook) is the table in :mod:`hstcal_acs.query`.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.registry import Registrar

from .detectors import DETECTORS
from .query import query

__all__ = ["DETECTORS", "register_detectors", "query"]


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register every ACS detector, with no stages yet."""
    for det in DETECTORS:
        register.detector(det, stages=())
