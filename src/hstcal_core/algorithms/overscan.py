"""Bias-level (overscan) subtraction: calstis BLEVCORR, detector-agnostic.

Source: hstcal ``pkg/stis/lib/cs1`` doblev.c, findblev.c, blevfit.c, blevdrift.c.

* For every line of the trimmed image, the bias level is the median of the
  physical-overscan columns ``bias_cols`` on that line, excluding pixels whose DQ
  has any ``sdqflags`` bit; a straight line ``bias(row)`` is fitted (unweighted
  least squares, rows centred on ny/2) and evaluated on every line.
* If a virtual-overscan band exists, the drift of the bias along a line is the
  slope of column medians of that band versus column (after replacing extreme
  outliers, e.g. hot columns, above median + ``clip``·σ), anchored to zero at
  the middle of ``bias_cols``.

The geometry (which rows/columns) is the plugin's business; this module only
needs slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OverscanRegions", "OverscanFit", "subtract_overscan", "fit_line"]


@dataclass(frozen=True)
class OverscanRegions:
    """Where things are in a raw array (0-based, end-exclusive).

    Parameters
    ----------
    trim_rows, trim_cols : tuple of int
        ``(start, stop)`` of the science region kept.
    bias_cols : tuple of int
        ``(start, stop)`` columns of physical overscan used for the bias level.
    virtual_rows : tuple of int or None
        ``(start, stop)`` rows of virtual overscan, used for the drift along lines.
    """

    trim_rows: tuple[int, int]
    trim_cols: tuple[int, int]
    bias_cols: tuple[int, int]
    virtual_rows: tuple[int, int] | None = None


@dataclass(frozen=True)
class OverscanFit:
    """What was subtracted: per-line bias fit and the drift slope (DN per column)."""

    intercept: float
    slope: float
    middle_row: int
    drift_slope: float
    drift_zero_col: float
    n_bad_lines: int
    mean_level: float


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Unweighted least-squares ``y = a + b·x``; ``None`` if empty or singular (blevfit.c)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = x.size
    if n < 1:
        return None
    sx, sy = x.sum(), y.sum()
    d = (x * x).sum() - sx * sx / n
    if d == 0:
        return None
    xmean, ymean = sx / n, sy / n
    slope = ((x * y).sum() - xmean * ymean * n) / d
    return ymean - slope * xmean, slope


def _masked_median_rows(values: np.ndarray, bad: np.ndarray) -> np.ndarray:
    work = np.where(bad, np.nan, values.astype(np.float64))
    with np.errstate(all="ignore"):
        out = np.full(work.shape[0], np.nan)
        ok = ~np.all(bad, axis=1)
        if ok.any():
            out[ok] = np.nanmedian(work[ok], axis=1)
    return out


def _drift_slope(raw: np.ndarray, dq: np.ndarray, regions: OverscanRegions,
                 sdqflags: int, clip: float) -> float | None:
    """Slope of the virtual overscan versus column (blevdrift.c), or None."""
    if regions.virtual_rows is None:
        return None
    v0, v1 = regions.virtual_rows
    c0, c1 = regions.trim_cols
    if v1 - v0 < 2 or c1 - c0 < 2:
        return None
    band = raw[v0:v1, c0:c1].astype(np.float64)
    # rejectHighValues: outliers above median + clip*sigma replaced by the median
    # of a 21-column window on their line; sigma from values within 4.5 MAD.
    median = np.median(band)
    dev = np.abs(band - median)
    mad = np.median(dev)
    inside = dev <= 4.5 * mad
    sigma = np.sqrt(np.mean(dev[inside] ** 2)) if inside.any() else 0.0
    high = band > median + clip * sigma
    if high.any():
        ncol = band.shape[1]
        rows, cols = np.nonzero(high)
        start = np.clip(cols - 10, 0, max(ncol - 21, 0))
        windows = start[:, None] + np.arange(min(21, ncol))[None, :]
        band = band.copy()
        band[rows, cols] = np.median(raw[v0:v1, c0:c1][rows[:, None], windows], axis=1)
    bad = (dq[v0:v1, c0:c1] & sdqflags) != 0 if sdqflags else np.zeros(band.shape, bool)
    col_median = _masked_median_rows(band.T, bad.T)
    ok = np.isfinite(col_median)
    cols = np.arange(c0, c1)[ok]
    fit = fit_line(cols - (c0 + c1 - 1) // 2, col_median[ok])
    return None if fit is None else fit[1]


def subtract_overscan(raw: np.ndarray, dq: np.ndarray, regions: OverscanRegions, *,
                      sdqflags: int = 0, default_bias: float = 0.0,
                      drift: bool = True, clip: float = 5.0
                      ) -> tuple[np.ndarray, np.ndarray, OverscanFit]:
    """Subtract the fitted bias level and return the trimmed image.

    Parameters
    ----------
    raw : ndarray
        Full raw array in DN, including overscan (not modified).
    dq : ndarray
        DQ array of the same shape (not modified).
    regions : OverscanRegions
        Geometry of the readout.
    sdqflags : int
        "Serious" DQ bits excluded from the overscan statistics.
    default_bias : float
        Level used when no line has usable overscan (CCDTAB CCDBIAS).
    drift : bool
        Apply the virtual-overscan drift correction along lines.
    clip : float
        Outlier criterion (σ) in the virtual overscan (CCDTAB BLEV_CLIP).

    Returns
    -------
    trimmed_sci, trimmed_dq, fit
    """
    r0, r1 = regions.trim_rows
    c0, c1 = regions.trim_cols
    b0, b1 = regions.bias_cols
    sci = raw[r0:r1, c0:c1].astype(np.float32)
    ny, nx = sci.shape
    over = raw[r0:r1, b0:b1]
    bad = (dq[r0:r1, b0:b1] & sdqflags) != 0 if sdqflags else np.zeros(over.shape, bool)
    levels = _masked_median_rows(over, bad)
    ok = np.isfinite(levels)
    middle = ny // 2
    fit = fit_line(np.nonzero(ok)[0] - middle, levels[ok])
    intercept, slope = (default_bias, 0.0) if fit is None else fit
    rows = np.arange(ny) - middle
    bias_rows = intercept + slope * rows
    drift_slope = _drift_slope(raw, dq, regions, sdqflags, clip) if drift else None
    zero_col = (b0 + b1 - 1) / 2.0 - c0
    if drift_slope is None:
        drift_slope = 0.0
    drift_cols = drift_slope * (np.arange(nx) - zero_col)
    sci -= (bias_rows[:, None] + drift_cols[None, :]).astype(np.float32)
    mean_level = float(np.mean(bias_rows) + drift_slope * (nx // 2 - zero_col))
    return sci, dq[r0:r1, c0:c1].copy(), OverscanFit(
        intercept=float(intercept), slope=float(slope), middle_row=middle,
        drift_slope=float(drift_slope), drift_zero_col=float(zero_col),
        n_bad_lines=int(np.count_nonzero(~ok)), mean_level=mean_level)
