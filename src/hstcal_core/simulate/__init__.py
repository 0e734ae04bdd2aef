"""Synthetic detector data: detector-agnostic kernels (arrays in, arrays out).

Instrument plugins build their raw-file simulators from these pieces and return
the files together with the truth that went into them (STYLE.md, "Synthetic data
is a public, composable API with a seed").  Every function takes a
``numpy.random.Generator`` (or a seed for :func:`numpy.random.default_rng`) and
never touches the global random state.

Cosmic rays
    :func:`make_cosmic_rays` → :class:`CosmicRays` (sparse deposits + one row per CR),
    :func:`render` (dense e⁻ image), :func:`rebin` (on-chip binning).
Defects
    :func:`make_hot_pixels`, :func:`make_hot_columns` (log-uniform excess),
    :func:`make_fixed_pattern` (zero-mean bias-like structure).

Files for a registered detector
    :func:`simulate_detector` runs the simulator its plugin registered
    (``hstcal simulate`` on the command line).
"""

from __future__ import annotations

from .cosmic_rays import DETECTABLE_E, HST_CR_RATE, CosmicRays, make_cosmic_rays, rebin, render
from .defects import (
    HotColumns,
    HotPixels,
    log_uniform,
    make_fixed_pattern,
    make_hot_columns,
    make_hot_pixels,
)

__all__ = [
    "simulate_detector",
    "CosmicRays",
    "make_cosmic_rays",
    "render",
    "rebin",
    "DETECTABLE_E",
    "HST_CR_RATE",
    "HotPixels",
    "HotColumns",
    "make_hot_pixels",
    "make_hot_columns",
    "make_fixed_pattern",
    "log_uniform",
]



def simulate_detector(detector: str, out_dir, **kwargs):
    """Write synthetic raw files for a registered detector and return their truth.

    Parameters
    ----------
    detector : str
        Registered detector name, e.g. ``"stis_ccd"``.
    out_dir : path
        Output directory.
    **kwargs
        The simulator's arguments (for ``stis_ccd``: ``kind``, ``count``, ``seed``,
        ``gain``, ``binning``, ``start_mjd``, ...).

    Raises
    ------
    StageNotSupportedError
        If the detector's plugin registered no simulator.
    """
    from ..errors import StageNotSupportedError
    from ..registry import get_registry

    entry = get_registry().entry(detector)
    if entry.simulator is None:
        raise StageNotSupportedError(
            f"simulation is not supported by plugin {entry.distribution} for detector {detector}")
    return entry.simulator(out_dir, **kwargs)
