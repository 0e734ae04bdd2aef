"""The core's own plugin: generic implementations every detector gets unless its
plugin overrides them (registered ``trylast``, as pytest registers its essentials)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .combine import combine_exposures
from .markers import hookimpl

__all__ = ["reject_crs", "label"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@hookimpl(trylast=True)
def reject_crs(detector, exposures, options):
    """ocrreject-style combination for any imaging detector (see hstcal_core.combine)."""
    return combine_exposures(detector, exposures, options,
                             temperature_keyword=detector.extra.get("temperature_keyword"))


@hookimpl(trylast=True)
def label(detector, image, mask, options):
    """8-connected components of ``mask`` (scipy.ndimage.label)."""
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=_EIGHT_CONNECTED)
    return labels.astype(np.int32, copy=False), int(n)
