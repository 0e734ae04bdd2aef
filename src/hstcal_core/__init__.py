"""hstcal: one framework for HST calibration pipelines, extended by instrument plugins.

Public API
----------
hookimpl
    Marker for plugin hook implementations (``@hookimpl def calibrate(...)``).
Detector, Amplifier
    Detector constants registered by plugins.
Param, Options
    Declared run parameters and their resolved values.
simulate_detector
    Synthetic raw files with ground truth for a registered detector.
run_stage
    Run one stage: ``run_stage("weekbias", detector="stis_ccd", inputs=[...], basebias=..., out=...)``.
get_registry
    The loaded plugins and detectors.
"""

from __future__ import annotations

from .detectors import Amplifier, Detector
from .errors import (
    ConfigError,
    DuplicateDetectorError,
    HstcalError,
    InputError,
    NoImplementationError,
    PluginError,
    StageNotSupportedError,
    UnknownDetectorError,
)
from .images import CombinedImage, Exposure, ImSet, Product
from .markers import hookimpl
from .options import Options, Param
from .registry import get_registry, reset_registry
from .simulate import simulate_detector
from .stages import STAGES, ReffileInputs, StageResult, run_stage

__all__ = [
    "hookimpl",
    "Detector",
    "Amplifier",
    "Param",
    "Options",
    "run_stage",
    "get_registry",
    "reset_registry",
    "simulate_detector",
    "STAGES",
    "StageResult",
    "ReffileInputs",
    "Exposure",
    "ImSet",
    "CombinedImage",
    "Product",
    "HstcalError",
    "InputError",
    "ConfigError",
    "PluginError",
    "DuplicateDetectorError",
    "UnknownDetectorError",
    "StageNotSupportedError",
    "NoImplementationError",
    "__version__",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("hstcal-core")
except Exception:  # pragma: no cover - source tree without installation
    __version__ = "0+unknown"

