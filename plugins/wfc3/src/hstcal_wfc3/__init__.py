"""hstcal plugin for HST/WFC3: registers the UVIS and IR detectors.

The detector constants live in :mod:`hstcal_wfc3.detectors`.  What each detector asks
the archive for (the ``query`` hook) is the table in :mod:`hstcal_wfc3.query`.

WFC3/IR (issue 4, cosmic-ray census): ``calibrate`` splits the MULTIACCUM ramp of an
IMA into read-to-read increments in time order and ``reject_crs`` finds the cosmic-ray
jumps between consecutive reads (:mod:`hstcal_wfc3.ir`); the IR detector supports the
``crstats`` stage, reads IMAs with :func:`hstcal_wfc3.ir.read_ima` and simulates ramps
with :mod:`hstcal_wfc3.simulate`.

WFC3/UVIS (issue 4, cosmic-ray census): the ``crstats`` stage on FLT/FLC darks with
wf3rej semantics, its hooks and simulator in :mod:`hstcal_wfc3.uvis` and
:mod:`hstcal_wfc3.simulate_uvis`.  Other stages raise
:class:`hstcal_core.StageNotSupportedError` naming this distribution (hstcal-wfc3).
"""

from __future__ import annotations

from hstcal_core import CombinedImage, Detector, Exposure, Options, hookimpl
from hstcal_core.registry import Registrar

from .detectors import DETECTORS, WFC3_IR
from .ir import IR_PARAMS, calibrate_ima, read_ima, reject_ramp_crs
from .query import query

# --- WFC3/UVIS cosmic-ray census (issue 4): hooks named apart via pluggy's specname ---
from .uvis import calibrate_uvis_hook, register_uvis, reject_crs_uvis_hook  # noqa: F401

__all__ = ["DETECTORS", "register_detectors", "query", "calibrate", "reject_crs"]


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Register every WFC3 detector; IR with the ``crstats`` stage, its reader and simulator."""
    for det in DETECTORS:
        if det.name == WFC3_IR.name:
            # a ramp is rejected on its own reads: one exposure per rejection group
            register.detector(det, stages={"crstats": IR_PARAMS, "drizzle": ()},
                              defaults={"crstats": {"grouping": "single"}},
                              simulator=_simulate_ir, reader=read_ima)
        else:
            register_uvis(register)  # UVIS census block below (hstcal_wfc3.uvis)


def _simulate_ir(out_dir, **kwargs):
    """``hstcal simulate --instrument wfc3_ir``: dark ramps (IMA) with known cosmic rays."""
    from .simulate import simulate_ir_darks

    return simulate_ir_darks(out_dir, **kwargs)


@hookimpl
def calibrate(detector: Detector, exposure: Exposure, options: Options) -> Exposure | None:
    """WFC3/IR: the IMA's reads as read-to-read increments in electrons, time order."""
    if detector.name != WFC3_IR.name:
        return None
    return calibrate_ima(detector, exposure, options)


@hookimpl
def reject_crs(detector: Detector, exposures, options: Options) -> CombinedImage | None:
    """WFC3/IR: cosmic-ray jumps between consecutive reads, one mask per increment."""
    if detector.name != WFC3_IR.name:
        return None
    return reject_ramp_crs(detector, exposures, options)
