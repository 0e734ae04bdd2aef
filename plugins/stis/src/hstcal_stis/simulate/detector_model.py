"""The simulated STIS CCD itself: its fixed bias structure and its dark current.

The bias structure depends only on (gain, binning) and :data:`DETECTOR_SEED`, never
on a call's seed — the target of a superbias.  Dark rates are at 18 °C and scale
with the housing temperature as ``1 + 0.07 (OCCDHTAV − 18)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hstcal_core.simulate import make_fixed_pattern, make_hot_columns, make_hot_pixels

from ..detectors import STIS_CCD
from ..geometry import CCD_NPIX
from .layout import _Layout

#: Seeds the fixed bias structure of every (gain, binning): the same detector in every call.
DETECTOR_SEED = 19970214  # STIS installed during SM2, February 1997
_T_REF = float(STIS_CCD.extra["dark_reference_temperature"])  # 18 °C, TIR 2004-01
_T_COEF = float(STIS_CCD.extra["dark_temperature_coefficient"])  # 7 %/°C, IHB §7.3.1
# Fixed bias pattern, DN (a couple of DN rms, like the structure left in STIS
# superbiases after overscan subtraction); hot columns +3..+30 DN.
_BIAS_PATTERN = {1: dict(smooth_rms=1.5, column_rms=0.5, pixel_rms=1.0, edge_ramp=3.0),
                 4: dict(smooth_rms=0.8, column_rms=0.3, pixel_rms=0.6, edge_ramp=1.5)}
_BIAS_HOT_COLUMNS = (6, 3.0, 30.0)  # count, low, high DN
_BIAS_HOT_PIXELS = (3e-5, 5.0, 100.0)  # fraction, low, high DN


def _bias_structure(gain: int, layout: _Layout, detector_seed: int):
    """The fixed bias pattern of one (gain, binning), DN, trimmed shape."""
    rng = np.random.default_rng([detector_seed, gain, layout.binx, layout.biny])
    shape = layout.trimmed_shape
    pattern = make_fixed_pattern(shape, rng, **_BIAS_PATTERN[gain])
    n_cols, low, high = _BIAS_HOT_COLUMNS
    columns = make_hot_columns(shape[1], n_cols, rng, low=low, high=high)
    fraction, low, high = _BIAS_HOT_PIXELS
    pixels = make_hot_pixels(shape, fraction, rng, low=low, high=high)
    structure = pattern + columns.image(shape) + pixels.image(shape)
    return structure.astype(np.float32), pixels, columns


@dataclass(frozen=True)
class _DarkModel:
    """Dark current on the unbinned sensitive area at 18 °C, e⁻/s."""

    static_rate: np.ndarray  # base + columns + initial hot pixels
    hot_y: np.ndarray
    hot_x: np.ndarray
    hot_excess: np.ndarray
    hot_onset_mjd: np.ndarray  # -inf: hot from the start
    col_x: np.ndarray
    col_excess: np.ndarray

    def rate_at(self, mjd: float) -> np.ndarray:
        late = (self.hot_onset_mjd > -np.inf) & (self.hot_onset_mjd <= mjd)
        if not late.any():
            return self.static_rate
        rate = self.static_rate.copy()
        np.add.at(rate, (self.hot_y[late], self.hot_x[late]), self.hot_excess[late])
        return rate


def _dark_model(rng: np.random.Generator, *, dark_rate_e_s: float, dark_gradient: float,
                hot_pixel_fraction: float, hot_pixel_range: tuple[float, float],
                hot_columns: int, hot_column_range: tuple[float, float],
                hot_pixel_growth_per_day: float, span_mjd: tuple[float, float]) -> _DarkModel:
    shape = (CCD_NPIX, CCD_NPIX)
    rows = np.arange(CCD_NPIX, dtype=np.float64)
    # Higher near the serial register (low y), lower at the top: CTE losses make the
    # effective dark current fall with distance from the register (IHB §7.3.1).
    base = dark_rate_e_s * (1.0 + dark_gradient * (0.5 - rows / (CCD_NPIX - 1)))
    rate = np.repeat(base[:, None], CCD_NPIX, axis=1)
    cols = make_hot_columns(CCD_NPIX, hot_columns, rng, low=hot_column_range[0],
                            high=hot_column_range[1])
    rate += cols.image(shape)
    hot = make_hot_pixels(shape, hot_pixel_fraction, rng, low=hot_pixel_range[0],
                          high=hot_pixel_range[1])
    np.add.at(rate, (hot.y, hot.x), hot.excess)
    onset = np.full(len(hot), -np.inf)
    y, x, excess = hot.y, hot.x, hot.excess
    n_new = int(rng.poisson(hot_pixel_growth_per_day * CCD_NPIX**2
                            * max(span_mjd[1] - span_mjd[0], 0.0)))
    if n_new:
        flat = rng.integers(0, CCD_NPIX**2, n_new)
        y = np.concatenate([y, (flat // CCD_NPIX).astype(np.int32)])
        x = np.concatenate([x, (flat % CCD_NPIX).astype(np.int32)])
        excess = np.concatenate([excess, np.exp(rng.uniform(np.log(hot_pixel_range[0]),
                                                            np.log(hot_pixel_range[1]), n_new))])
        onset = np.concatenate([onset, np.sort(rng.uniform(span_mjd[0], span_mjd[1], n_new))])
    return _DarkModel(rate, y, x, excess, onset, cols.x, cols.excess)
