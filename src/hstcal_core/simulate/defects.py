"""Detector defects and fixed patterns: hot pixels, hot columns, bias structure.

Detector-agnostic kernels: shapes, fractions and amplitudes in, arrays out.  The
units of an "excess" are the caller's (DN for a bias pattern, e⁻/s for dark
current).  A log-uniform excess is a simple stand-in for the steep hot-pixel
histograms of radiation-damaged HST CCDs: many warm pixels, few very hot ones
(STIS IHB §7.3.1; STIS ISR 2012-02 on the post-SM4 pixel distribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..images import image_shape

__all__ = [
    "HotPixels",
    "HotColumns",
    "make_hot_pixels",
    "make_hot_columns",
    "make_fixed_pattern",
    "log_uniform",
]


@dataclass(frozen=True, eq=False)
class HotPixels:
    """Pixels with an excess signal.

    :func:`make_hot_pixels` gives distinct pixels sorted by ``(y, x)``; other producers
    (e.g. binned truth) may repeat a position, and :meth:`image` sums repeats.

    Attributes
    ----------
    y, x : ndarray of int32
        Pixel coordinates.
    excess : ndarray of float64
        Excess signal of each pixel (caller's units).
    """

    y: np.ndarray
    x: np.ndarray
    excess: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)

    def image(self, shape: tuple[int, int]) -> np.ndarray:
        """Dense float64 image of the excess (zero elsewhere)."""
        out = np.zeros(shape, np.float64)
        np.add.at(out, (self.y, self.x), self.excess)
        return out


@dataclass(frozen=True, eq=False)
class HotColumns:
    """Whole columns with an excess signal in every pixel.

    :func:`make_hot_columns` gives distinct columns sorted by ``x``; repeats are summed
    by :meth:`image`.

    Attributes
    ----------
    x : ndarray of int32
        Column indices.
    excess : ndarray of float64
        Excess per pixel of each column (caller's units).
    """

    x: np.ndarray
    excess: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)

    def image(self, shape: tuple[int, int]) -> np.ndarray:
        """Dense float64 image of the excess (zero elsewhere)."""
        row = np.zeros(shape[1], np.float64)
        np.add.at(row, self.x, self.excess)
        return np.broadcast_to(row, shape).copy()


def log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    """``size`` values with ``log(value)`` uniform in ``[log low, log high)``."""
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 or high < low:
        raise ValueError(f"need 0 < low <= high, got low={low!r}, high={high!r}")
    return np.exp(rng.uniform(np.log(low), np.log(high), int(size)))


def make_hot_pixels(shape: tuple[int, int], fraction: float, rng: np.random.Generator | int | None,
                    *, low: float, high: float) -> HotPixels:
    """Choose ``round(fraction · ny · nx)`` distinct pixels with a log-uniform excess.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    fraction : float
        Fraction of pixels that are hot, ``0 ≤ fraction ≤ 1``.
    rng : numpy.random.Generator or int or None
        Random generator or seed.
    low, high : float
        Range of the excess (log-uniform), ``0 < low ≤ high``.
    """
    ny, nx = image_shape(shape)
    if not np.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction!r}")
    rng = np.random.default_rng(rng)
    n = int(round(fraction * ny * nx))
    flat = np.sort(rng.choice(ny * nx, size=n, replace=False))
    excess = log_uniform(rng, low, high, n)
    y, x = np.divmod(flat, nx)
    return HotPixels(y.astype(np.int32), x.astype(np.int32), excess)


def make_hot_columns(ncols_total: int, n: int, rng: np.random.Generator | int | None,
                     *, low: float, high: float) -> HotColumns:
    """Choose ``n`` distinct columns out of ``ncols_total`` with a log-uniform excess.

    Parameters
    ----------
    ncols_total : int
        Number of columns of the image.
    n : int
        Number of hot columns, ``0 ≤ n ≤ ncols_total``.
    rng : numpy.random.Generator or int or None
        Random generator or seed.
    low, high : float
        Range of the per-pixel excess (log-uniform), ``0 < low ≤ high``.
    """
    if int(ncols_total) != ncols_total or ncols_total < 1:
        raise ValueError(f"ncols_total must be a positive integer, got {ncols_total!r}")
    if int(n) != n or not 0 <= n <= ncols_total:
        raise ValueError(f"n must be an integer within [0, ncols_total={ncols_total}], got {n!r}")
    rng = np.random.default_rng(rng)
    x = np.sort(rng.choice(int(ncols_total), size=int(n), replace=False))
    return HotColumns(x.astype(np.int32), log_uniform(rng, low, high, int(n)))


def make_fixed_pattern(shape: tuple[int, int], rng: np.random.Generator | int | None, *,
                       smooth_rms: float, column_rms: float, pixel_rms: float,
                       n_modes: int = 4, edge_ramp: float = 0.0,
                       edge_ramp_px: float = 20.0) -> np.ndarray:
    """A zero-mean fixed pattern: smooth large-scale shape + column + pixel patterns.

    The smooth part is a random sum of low-order cosine modes (up to ``n_modes`` per
    axis) scaled to ``smooth_rms``; ``edge_ramp`` adds an exponential ramp of that
    amplitude at low ``x`` (the first columns read after the serial overscan, where
    CCD bias images commonly rise or sag).  Column and pixel patterns are Gaussian.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    rng : numpy.random.Generator or int or None
        Random generator or seed; the same seed gives the same pattern.
    smooth_rms, column_rms, pixel_rms : float
        RMS of each component (caller's units, ≥ 0).
    n_modes : int
        Highest cosine order of the smooth component on each axis.
    edge_ramp, edge_ramp_px : float
        Amplitude and e-folding length (pixels) of the ramp at low ``x``.

    Returns
    -------
    ndarray of float64
        The pattern, with its mean removed.
    """
    ny, nx = image_shape(shape)
    for name, value in (("smooth_rms", smooth_rms), ("column_rms", column_rms),
                        ("pixel_rms", pixel_rms), ("edge_ramp_px", edge_ramp_px)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    if int(n_modes) != n_modes or n_modes < 1:
        raise ValueError(f"n_modes must be an integer >= 1, got {n_modes!r}")
    rng = np.random.default_rng(rng)
    order = np.arange(n_modes + 1)
    # Power falling as 1/(1 + ky² + kx²): a smooth, mostly large-scale shape.
    amp = rng.standard_normal((n_modes + 1, n_modes + 1)) / (1.0 + order[:, None] ** 2
                                                              + order[None, :] ** 2)
    amp[0, 0] = 0.0
    cy = np.cos(np.pi * order[:, None] * (np.arange(ny)[None, :] + 0.5) / ny)
    cx = np.cos(np.pi * order[:, None] * (np.arange(nx)[None, :] + 0.5) / nx)
    smooth = cy.T @ amp @ cx
    std = smooth.std()
    smooth *= smooth_rms / std if std > 0 else 0.0
    if edge_ramp and edge_ramp_px > 0:
        smooth += edge_ramp * np.exp(-np.arange(nx) / edge_ramp_px)[None, :]
    pattern = smooth
    pattern += column_rms * rng.standard_normal(nx)[None, :]
    pattern += pixel_rms * rng.standard_normal((ny, nx))
    pattern -= pattern.mean()
    return pattern

