"""Example hstcal plugin: the template third-party authors copy.

It registers one new detector, ``example_cam`` (see :mod:`hstcal_example.detectors`),
says it supports the ``crreject`` stage, and implements the one hook that stage
needs from it: ``calibrate``, which subtracts a constant bias level read from the
header.  The combination itself comes from the core's generic ``reject_crs``.  It also
answers ``query``, which tells a campaign what to fetch from an archive.

The module is found through the entry point in ``pyproject.toml``::

    [project.entry-points."hstcal.plugins"]
    example = "hstcal_example"
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

# Plugins import hookimpl (and everything else) from hstcal_core, never from pluggy.
from hstcal_core import Detector, Exposure, InputError, Options, hookimpl
from hstcal_core.archive.base import QueryCriteria, criteria_for
from hstcal_core.registry import Registrar

from .detectors import DETECTORS, EXAMPLE_CAM

__all__ = ["DETECTORS", "EXAMPLE_CAM", "QUERY_TABLE", "register_detectors", "query",
           "calibrate"]

# What each purpose fetches (made up, like the detector), in MAST's vocabulary: the
# QueryCriteria fields other than detector and purpose.  A real plugin cites its sources.
QUERY_TABLE = {
    "bias": dict(intent="calibration", instrument_name=("EXAMPLE/CAM",),
                 target_name=("BIAS",), exptime=(0.0, 0.0), file_types=("RAW",)),
    "dark": dict(intent="calibration", instrument_name=("EXAMPLE/CAM",),
                 target_name=("DARK",), exptime=(1.0, 3600.0), file_types=("RAW", "SPT")),
}


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Tell hstcal which detectors this plugin serves and which stages they support."""
    register.detector(EXAMPLE_CAM, stages=("crreject",), simulator=_simulator)


def _simulator(out_dir, **kwargs):
    """``hstcal simulate --instrument example_cam``: darks with known cosmic rays."""
    from .simulate import simulate

    return simulate(out_dir, **kwargs)


@hookimpl
def query(detector: Detector, criteria) -> QueryCriteria | None:
    """What to fetch from an archive for ``criteria["purpose"]``.

    ``criteria_for`` applies the caller's overrides (``proposals``, ``exptime``,
    ``target_name``, ``file_types``) to the table's defaults, and raises ``ConfigError``
    naming the detector and the supported purposes for a purpose not in the table.
    """
    if detector.name != EXAMPLE_CAM.name:
        return None
    return criteria_for(detector, criteria, QUERY_TABLE)


@hookimpl
def calibrate(detector: Detector, exposure: Exposure, options: Options) -> Exposure | None:
    """Subtract the constant bias level in the header keyword BIASLEVL from every imset.

    Parameters
    ----------
    detector : Detector
        The detector the stage runs for; this plugin answers only for ``example_cam``.
    exposure : Exposure
        The raw exposure.  It is never modified: a new one is returned.
    options : Options
        The stage's typed parameters (``options.crsigmas``, ``options.bias``, ...);
        this simple calibration needs none of them.

    Returns
    -------
    Exposure or None
        The bias-subtracted exposure, or None for a detector this plugin does not
        serve, so that the hook call moves on to the plugin that does.
    """
    if detector.name != EXAMPLE_CAM.name:
        return None
    keyword = str(detector.extra["bias_keyword"])
    level = exposure.key(keyword)
    if level is None:
        raise InputError(exposure.path, f"has no {keyword} keyword: cannot subtract the bias")
    bias = np.float32(level)
    imsets = tuple(replace(imset, sci=imset.sci - bias) for imset in exposure.imsets)
    primary = exposure.primary.copy()
    primary["BIASCORR"] = ("COMPLETE", f"constant bias {float(bias)} DN subtracted")
    return replace(exposure, primary=primary, imsets=imsets)
