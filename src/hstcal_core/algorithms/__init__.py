"""Detector-agnostic kernels: arrays in, arrays out; no FITS, no paths, no globals."""

from .crreject import CRRejectParams, CRRejectResult, crreject, histogram_mode, sky_mode
from .overscan import OverscanFit, OverscanRegions, fit_line, subtract_overscan
from .stats import clipped_stats, median_smooth

__all__ = [
    "CRRejectParams",
    "CRRejectResult",
    "crreject",
    "histogram_mode",
    "sky_mode",
    "OverscanFit",
    "OverscanRegions",
    "fit_line",
    "subtract_overscan",
    "clipped_stats",
    "median_smooth",
]
