"""Overscan fit (calstis BLEVCORR) against a known bias level, slope and drift."""

import numpy as np
import pytest

from hstcal_core.algorithms.overscan import OverscanRegions, fit_line, subtract_overscan

REGIONS = OverscanRegions(trim_rows=(20, 1044), trim_cols=(19, 1043), bias_cols=(1, 16),
                          virtual_rows=(0, 20))


def _raw(level=1124.0, row_slope=0.004, drift=0.0, rn=6.0, seed=0):
    rng = np.random.default_rng(seed)
    ny, nx = 1044, 1062
    rows = np.arange(ny)[:, None] - 20 - 512
    cols = np.arange(nx)[None, :] - 8.0  # drift anchored at the middle of the bias columns
    raw = level + row_slope * rows + drift * cols + rng.normal(0, rn, (ny, nx))
    raw[20:1044, 19:1043] += 50.0  # "signal" only in the science area
    return raw.astype(np.float32)


def test_level_and_row_slope_recovered():
    raw = _raw(row_slope=0.01)
    sci, dq, fit = subtract_overscan(raw, np.zeros(raw.shape, np.uint16), REGIONS, drift=False)
    assert sci.shape == (1024, 1024)
    # median of 15 pixels with RN 6 DN per line: slope error ~2.4e-4 (1 sigma) over 1024 lines
    assert fit.slope == pytest.approx(0.01, abs=1e-3)
    assert fit.intercept == pytest.approx(1124.0, abs=0.3)
    assert np.mean(sci) == pytest.approx(50.0, abs=0.25)  # intercept error ~0.06 DN (1 sigma)
    # the residual has no row trend left
    assert np.polyfit(np.arange(1024), sci.mean(axis=1), 1)[0] == pytest.approx(0, abs=1e-3)


def test_flagged_overscan_pixels_are_excluded():
    raw = _raw(row_slope=0.0)
    dq = np.zeros(raw.shape, np.uint16)
    raw[20:1044:3, 1:16] = 60000.0  # hot/saturated overscan pixels on every third line
    dq[20:1044:3, 1:16] = 256
    _, _, with_flags = subtract_overscan(raw, dq, REGIONS, sdqflags=256, drift=False)
    _, _, ignoring = subtract_overscan(raw, dq, REGIONS, sdqflags=0, drift=False)
    assert with_flags.intercept == pytest.approx(1124.0, abs=0.3)
    assert ignoring.intercept > 1124.0 + 1000.0


def test_drift_along_lines_from_virtual_overscan():
    raw = _raw(row_slope=0.0, drift=0.003)
    raw[0:20, 400] += 500.0  # a hot column crossing the virtual overscan is clipped
    sci, _, fit = subtract_overscan(raw, np.zeros(raw.shape, np.uint16), REGIONS, drift=True)
    assert fit.drift_slope == pytest.approx(0.003, abs=5e-4)
    assert np.polyfit(np.arange(1024), sci.mean(axis=0), 1)[0] == pytest.approx(0, abs=2e-4)


def test_no_usable_overscan_falls_back_to_default_bias():
    raw = _raw(row_slope=0.0)
    dq = np.zeros(raw.shape, np.uint16)
    dq[:, 1:16] = 4
    sci, _, fit = subtract_overscan(raw, dq, REGIONS, sdqflags=4, default_bias=1000.0,
                                    drift=False)
    assert fit.intercept == 1000.0 and fit.n_bad_lines == 1024
    assert np.mean(sci) == pytest.approx(174.0, abs=0.2)


def test_fit_line_matches_numpy_and_handles_degenerate_input():
    x = np.arange(10.0)
    y = 3 + 0.5 * x
    a, b = fit_line(x, y)
    assert (a, b) == pytest.approx((3.0, 0.5))
    assert fit_line(np.array([]), np.array([])) is None
    assert fit_line(np.ones(4), np.arange(4.0)) is None


def test_input_arrays_untouched():
    raw = _raw()
    dq = np.zeros(raw.shape, np.uint16)
    before = raw.copy()
    subtract_overscan(raw, dq, REGIONS)
    np.testing.assert_array_equal(raw, before)
