"""Example hstcal plugin: the template third-party authors copy.

It registers one new detector, ``example_cam`` (see :mod:`hstcal_example.detectors`),
says it supports the ``crreject`` stage, and implements the one hook that stage
needs from it: ``calibrate``, which subtracts a constant bias level read from the
header.  The combination itself comes from the core's generic ``reject_crs``.

The module is found through the entry point in ``pyproject.toml``::

    [project.entry-points."hstcal.plugins"]
    example = "hstcal_example"
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

# Plugins import hookimpl (and everything else) from hstcal_core, never from pluggy.
from hstcal_core import Detector, Exposure, InputError, Options, hookimpl
from hstcal_core.registry import Registrar

from .detectors import DETECTORS, EXAMPLE_CAM

__all__ = ["DETECTORS", "EXAMPLE_CAM", "register_detectors", "calibrate"]


@hookimpl
def register_detectors(register: Registrar) -> None:
    """Tell hstcal which detectors this plugin serves and which stages they support."""
    register.detector(EXAMPLE_CAM, stages=("crreject",))


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
