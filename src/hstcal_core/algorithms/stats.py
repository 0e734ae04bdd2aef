"""Robust image statistics shared by the reference-file recipes."""

from __future__ import annotations

import numpy as np
from astropy.stats import sigma_clipped_stats
from scipy import ndimage

__all__ = ["clipped_stats", "median_smooth"]


def clipped_stats(image: np.ndarray, sigma: float, maxiters: int,
                  mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """Sigma-clipped (mean, median, std), as refstis computes them with astropy.

    Parameters
    ----------
    image : ndarray
        Values (any shape); non-finite values are ignored.
    sigma : float
        Clipping threshold in standard deviations.
    maxiters : int
        Maximum clipping iterations.
    mask : ndarray of bool, optional
        True where values must be ignored.
    """
    data = np.asarray(image, dtype=np.float64)
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= mask
    mean, median, std = sigma_clipped_stats(data, mask=bad, sigma=sigma, maxiters=maxiters)
    return float(mean), float(median), float(std)


def median_smooth(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Median filter of ``size`` = (rows, columns) with reflected edges.

    refstis mixes ``scipy.signal.medfilt`` (zero-padded: every edge pixel of a
    bias is dragged toward 0, so the edges read as hot) and ``ndimage.median_filter``
    (reflected).  We use the reflected filter everywhere so edges are not biased.
    """
    return ndimage.median_filter(np.asarray(image, dtype=np.float32), size=size, mode="reflect")
