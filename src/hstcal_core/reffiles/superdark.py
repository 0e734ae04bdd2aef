"""Superdark assembly (refstis basedark / weekdark), on count-rate arrays (e⁻/s)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.stats import clipped_stats, median_smooth
from .superbias import HOT_PIXEL

__all__ = ["basedark_hot_pixels", "WeekDark", "make_weekdark"]


def basedark_hot_pixels(rate: np.ndarray, *, nsigma: float = 5.0,
                        floor: float = 0.1) -> np.ndarray:
    """Hot pixels of a baseline dark (refstis ``update_sci`` + ``find_hotpix``).

    A pixel is hot when it exceeds the 5σ-clipped mean by ``nsigma``·σ and by at
    least ``floor`` e⁻/s, or the 3σ-clipped median by ``nsigma``·σ and the mean by
    ``floor``.
    """
    m5, _, s5 = clipped_stats(rate, 5.0, 50)
    hot = (rate >= m5 + nsigma * s5) & (rate - m5 >= floor)
    m3, med3, s3 = clipped_stats(rate, 3.0, 40)
    hot |= (rate > med3 + nsigma * s3) & (rate > m3 + floor)
    return hot


@dataclass(frozen=True)
class WeekDark:
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    hot_pixels: np.ndarray
    threshold: float


def make_weekdark(week_rate, week_err, week_dq, base_rate, base_err, *, nsigma: float = 5.0,
                  floor: float = 0.1, kernel=(5, 5)) -> WeekDark:
    """Weekly dark = baseline dark current + this week's hot pixels (refstis weekdark).

    ``p = median + nsigma·σ`` of the week's dark (5σ clip, 40 iterations).  Pixels of
    the week ≥ p are hot: SCI = baseline (median-filtered where the baseline itself
    is ≥ p, i.e. annealed-out hot pixels) + (week − baseline median), ERR from the
    week.  DQ 16 where hot and at least ``floor`` e⁻/s above the baseline median,
    OR-ed into the week's DQ.
    """
    if np.shape(base_rate) != np.shape(week_rate):
        raise ValueError(f"basedark shape {np.shape(base_rate)} differs from the weekly "
                         f"dark shape {np.shape(week_rate)}")
    _, median, std = clipped_stats(week_rate, 5.0, 40)
    threshold = median + nsigma * std
    _, base_median, _ = clipped_stats(base_rate, 5.0, 40)
    hot = week_rate >= threshold
    only_hot = np.where(hot, week_rate - base_median, 0.0)
    base_smooth = median_smooth(base_rate, kernel)
    only_dark = np.where(base_rate >= threshold, base_smooth, base_rate)
    sci = (only_dark + only_hot).astype(np.float32)
    err = np.where(hot, week_err, base_err).astype(np.float32)
    flagged = hot & (week_rate - base_median >= floor)
    dq = np.asarray(week_dq, np.uint16) | np.where(flagged, HOT_PIXEL, np.uint16(0))
    return WeekDark(sci=sci, err=err, dq=dq, hot_pixels=flagged, threshold=float(threshold))
