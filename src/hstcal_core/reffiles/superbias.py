"""Superbias assembly (refstis basejoint / refbias / weekbias), on arrays.

Thresholds are parameters; the STIS plugin supplies refstis' values.  Fixes over
the anchor: column profiles broadcast to the image's own shape (refstis built a
square nx×nx image, so binned 1024×512 frames broke); DQ flags are OR-ed into the
existing DQ, never overwriting it; hot columns are flagged as whole columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..algorithms.stats import clipped_stats, median_smooth

__all__ = [
    "HOT_PIXEL",
    "residual_image",
    "column_profile",
    "hot_columns",
    "weighted_mean",
    "BaseBias",
    "make_basebias",
    "refbias_hot_pixels",
    "WeekBias",
    "make_weekbias",
]

HOT_PIXEL = np.uint16(16)


def residual_image(image: np.ndarray, kernel: tuple[int, int],
                   clip: float = 3.0, maxiters: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """``image − smooth`` where smooth is the median-filtered image shifted to the
    image's clipped mean (refstis ``make_residual``).  Returns (residual, smooth)."""
    smooth = median_smooth(image, kernel)
    offset = clipped_stats(image, clip, maxiters)[0] - clipped_stats(smooth, clip, maxiters)[0]
    smooth = smooth + np.float32(offset)
    return (np.asarray(image, np.float32) - smooth), smooth


def column_profile(residual: np.ndarray, yfrac: float = 1.0) -> np.ndarray:
    """Mean of each column over the first ``yfrac`` of the rows (refstis
    ``make_resicols_image`` without its square-image assumption)."""
    ny = residual.shape[0]
    yend = max(1, min(ny, int(np.floor(yfrac * ny + 0.5))))
    return residual[:yend].mean(axis=0, dtype=np.float64)


def hot_columns(residual: np.ndarray, yfrac: float, nsigma: float,
                clip: float = 3.0, maxiters: int = 40) -> np.ndarray:
    """Boolean per column: profile ≥ clipped mean + ``nsigma``·clipped std."""
    profile = column_profile(residual, yfrac)
    mean, _, std = clipped_stats(profile, clip, maxiters)
    return profile >= mean + nsigma * std


def weighted_mean(sums: Sequence[np.ndarray], errs: Sequence[np.ndarray],
                  dqs: Sequence[np.ndarray], weights: Sequence[float]):
    """Average crj *sums* weighted by their NCOMBINE (refstis ``average_biases``):
    ``mean = Σ sum_i / Σ w_i``, ``err = sqrt(Σ err_i²) / Σ w_i``, DQ OR-ed."""
    total = float(np.sum(weights))
    if total <= 0:
        raise ValueError("total weight (NCOMBINE) must be positive")
    acc = np.zeros(sums[0].shape, np.float64)
    var = np.zeros(sums[0].shape, np.float64)
    dq = np.zeros(sums[0].shape, np.uint16)
    for s, e, d in zip(sums, errs, dqs):
        acc += s
        var += np.asarray(e, np.float64) ** 2
        dq |= d.astype(np.uint16)
    return (acc / total).astype(np.float32), (np.sqrt(var) / total).astype(np.float32), dq, total


@dataclass(frozen=True)
class BaseBias:
    sci: np.ndarray
    hot_columns: np.ndarray
    hot_pixels: np.ndarray
    smooth: np.ndarray


def make_basebias(mean_bias: np.ndarray, *, kernel=(3, 15), column_sigma=3.0,
                  column_yfracs=(1.0, 0.2), pixel_sigma=5.0) -> BaseBias:
    """Baseline bias: hot columns and pixels replaced by the smooth bias (basejoint).

    Columns whose profile (over each row fraction in ``column_yfracs``) exceeds
    mean + ``column_sigma``·σ, then pixels whose residual exceeds
    mean + ``pixel_sigma``·σ, take the median-filtered value.
    """
    residual, smooth = residual_image(mean_bias, kernel)
    sci = np.array(mean_bias, dtype=np.float32, copy=True)
    cols = np.zeros(sci.shape[1], bool)
    for yfrac in column_yfracs:
        cols |= hot_columns(residual, yfrac, column_sigma, clip=3.0, maxiters=40)
    sci[:, cols] = smooth[:, cols]
    resid2 = sci - smooth
    mean, _, std = clipped_stats(resid2, 5.0, 40)
    pixels = resid2 >= mean + pixel_sigma * std
    sci[pixels] = smooth[pixels]
    return BaseBias(sci=sci, hot_columns=cols, hot_pixels=pixels, smooth=smooth)


def refbias_hot_pixels(bias: np.ndarray, *, kernel=(3, 15), nsigma=5.0) -> np.ndarray:
    """Hot pixels of a refbias: residual from the offset-matched median-filtered
    bias above mean + ``nsigma``·σ (3σ-clipped, 30 iterations; refstis ``flag_hot_pixels``)."""
    smooth = median_smooth(bias, kernel)
    offset = clipped_stats(bias, 3.0, 30)[0] - clipped_stats(smooth, 3.0, 30)[0]
    residual = np.asarray(bias, np.float32) - (smooth + np.float32(offset))
    mean, _, std = clipped_stats(residual, 3.0, 30)
    return residual > mean + nsigma * std


@dataclass(frozen=True)
class WeekBias:
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    hot_columns: np.ndarray


def make_weekbias(week_sci, week_err, week_dq, base_sci, base_err, *, kernel=(3, 15),
                  yfrac=0.25, nsigma=5.0) -> WeekBias:
    """Weekly bias = basebias + this week's hot columns (refstis ``make_weekbias``).

    Hot columns: profile over the first ``yfrac`` of the rows ≥ mean + ``nsigma``·σ
    (3σ clip, 20 iterations).  In them SCI = basebias + weekly residual, ERR is the
    weekly ERR and DQ gets 16; elsewhere SCI/ERR are the basebias'.
    """
    if np.shape(base_sci) != np.shape(week_sci):
        raise ValueError(f"basebias shape {np.shape(base_sci)} differs from the "
                         f"weekly bias shape {np.shape(week_sci)}")
    residual, _ = residual_image(week_sci, kernel)
    cols = hot_columns(residual, yfrac, nsigma, clip=3.0, maxiters=20)
    in_col = np.broadcast_to(cols[None, :], residual.shape)
    sci = np.asarray(base_sci, np.float32) + np.where(in_col, residual, 0).astype(np.float32)
    err = np.where(in_col, week_err, base_err).astype(np.float32)
    dq = np.asarray(week_dq, np.uint16) | np.where(in_col, HOT_PIXEL, np.uint16(0))
    return WeekBias(sci=sci, err=err, dq=dq, hot_columns=cols)
