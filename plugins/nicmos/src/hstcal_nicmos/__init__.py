"""hstcal plugin for HST/NICMOS: registers the NIC1, NIC2 and NIC3 detectors.

The detector constants live in :mod:`hstcal_nicmos.detectors`.  What each detector asks
the archive for (the ``query`` hook) is the table in :mod:`hstcal_nicmos.query`.

Cosmic-ray census (issue 4): ``calibrate`` splits the MULTIACCUM ramp of an IMA into
read-to-read increments in time order and ``reject_crs`` finds the cosmic-ray jumps
between consecutive reads (:mod:`hstcal_nicmos.ramps`).  Every camera supports the
``crstats`` stage, reads IMAs with :func:`hstcal_nicmos.ramps.read_ima` and simulates
dark ramps with :mod:`hstcal_nicmos.simulate`.
"""

from __future__ import annotations

from functools import partial

from hstcal_core import CombinedImage, Detector, Exposure, Options, hookimpl
from hstcal_core.registry import Registrar

from .detectors import DETECTORS
from .query import query
from .ramps import IR_PARAMS, calibrate_ima, read_ima, reject_ramp_crs

__all__ = ["DETECTORS", "register_detectors", "query", "calibrate", "reject_crs"]

_NAMES = frozenset(det.name for det in DETECTORS)


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register every NICMOS camera with the ``crstats`` stage, its reader and simulator."""
    for det in DETECTORS:
        # a ramp is rejected on its own reads: one exposure per rejection group
        register.detector(det, stages={"crstats": IR_PARAMS},
                          defaults={"crstats": {"grouping": "single"}},
                          simulator=partial(_simulate, det.extra["camera"]), reader=read_ima)


def _simulate(camera: int, out_dir, **kwargs):
    """``hstcal simulate --instrument nicmos_nic<camera>``: dark ramps with known cosmic rays."""
    from .simulate import simulate_nicmos_darks

    return simulate_nicmos_darks(out_dir, camera=camera, **kwargs)


@hookimpl
def calibrate(detector: Detector, exposure: Exposure, options: Options) -> Exposure | None:
    """NICMOS: the IMA's reads as read-to-read increments in electrons, time order."""
    if detector.name not in _NAMES:
        return None
    return calibrate_ima(detector, exposure, options)


@hookimpl
def reject_crs(detector: Detector, exposures, options: Options) -> CombinedImage | None:
    """NICMOS: cosmic-ray jumps between consecutive reads, one mask per increment."""
    if detector.name not in _NAMES:
        return None
    return reject_ramp_crs(detector, exposures, options)
