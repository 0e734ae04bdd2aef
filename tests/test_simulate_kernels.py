"""Tests of the detector-agnostic simulation kernels (hstcal_core.simulate)."""

from __future__ import annotations

import numpy as np
import pytest

from hstcal_core.simulate import (
    DETECTABLE_E,
    HST_CR_RATE,
    HotColumns,
    HotPixels,
    log_uniform,
    make_cosmic_rays,
    make_fixed_pattern,
    make_hot_columns,
    make_hot_pixels,
    rebin,
    render,
)

STIS_SHAPE = (1024, 1024)
STIS_PITCH_UM = 21.0


@pytest.fixture(scope="module")
def crs_1000s():
    """STIS-sized CCD, 1000 s at the HST rate."""
    return make_cosmic_rays(STIS_SHAPE, 1000.0, HST_CR_RATE, STIS_PITCH_UM, 12345)


def test_cr_count_follows_rate(crs_1000s):
    area_cm2 = STIS_SHAPE[0] * STIS_SHAPE[1] * (STIS_PITCH_UM * 1e-4) ** 2
    expected = HST_CR_RATE * 1000.0 * area_cm2
    assert abs(crs_1000s.n_crs - expected) < 5 * np.sqrt(expected)


def test_cr_affected_fraction_per_1000s_matches_handbook(crs_1000s):
    # ACS IHB §4.3.6: 1.5–3 % of pixels per 1000 s on WFPC2, STIS and ACS.
    fraction = crs_1000s.affected_fraction(DETECTABLE_E)
    assert 0.015 <= fraction <= 0.03


def test_cr_charge_and_size(crs_1000s):
    summary = crs_1000s.summary(DETECTABLE_E)
    total = summary["total_charge_e"]
    # Median ~1000 e-, few events below 500 e- (ACS IHB §4.3.6).
    assert 900.0 <= np.median(total) <= 1200.0
    assert np.mean(total < 500.0) < 0.08
    # Typical CR covers 4–5 detectable pixels, with a tail of long tracks.
    assert 4 <= np.median(summary["n_pixels"]) <= 5
    assert np.argmax(np.bincount(summary["n_pixels"])) in (4, 5)
    length = crs_1000s.length_px
    assert np.median(length) < 1.5
    assert 0.02 < np.mean(length > 3.0) < 0.10
    assert np.all(crs_1000s.charge_e >= 1.0)


def test_cr_render_conserves_charge_and_mask(crs_1000s):
    image = render(crs_1000s)
    assert image.dtype == np.float32 and image.shape == STIS_SHAPE
    assert np.isclose(image.sum(dtype=np.float64), crs_1000s.charge_e.sum(dtype=np.float64),
                      rtol=1e-5)
    mask = crs_1000s.mask(DETECTABLE_E)
    assert np.array_equal(mask, image >= DETECTABLE_E)
    assert np.array_equal(crs_1000s.n_pixels, np.bincount(crs_1000s.cr_id,
                                                          minlength=crs_1000s.n_crs))


def test_cr_determinism_and_no_global_state():
    state = np.random.get_state()[1].copy()
    a = make_cosmic_rays((200, 300), 500.0, 1.2, 15.0, 7)
    b = make_cosmic_rays((200, 300), 500.0, 1.2, 15.0, np.random.default_rng(7))
    c = make_cosmic_rays((200, 300), 500.0, 1.2, 15.0, 8)
    for name in ("y", "x", "charge_e", "cr_id", "y0", "length_px"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not (a.y.size == c.y.size and np.array_equal(a.y, c.y))
    assert np.array_equal(state, np.random.get_state()[1])


def test_cr_zero_exposure_is_empty():
    crs = make_cosmic_rays((50, 60), 0.0, 1.2, 21.0, 0)
    assert crs.n_crs == 0 and crs.y.size == 0
    assert render(crs).sum() == 0.0
    assert crs.affected_fraction() == 0.0


def test_cr_rebin_sums_charge_into_binned_pixels():
    crs = make_cosmic_rays((64, 64), 2000.0, 1.2, 21.0, 3)
    binned = rebin(crs, 2, 2, offset_y=2, offset_x=1, shape=(40, 40))
    assert np.isclose(binned.charge_e.sum(dtype=np.float64), crs.charge_e.sum(dtype=np.float64),
                      rtol=1e-5)
    expected = np.zeros((40, 40))
    np.add.at(expected, ((crs.y + 2) // 2, (crs.x + 1) // 2), crs.charge_e)
    assert np.allclose(render(binned), expected, atol=1e-3)
    assert binned.n_crs == crs.n_crs


@pytest.mark.parametrize("kwargs, name", [
    (dict(shape=(0, 5)), "shape"),
    (dict(exposure_time_s=-1.0), "exposure_time_s"),
    (dict(rate_per_cm2_s=float("nan")), "rate_per_cm2_s"),
    (dict(pixel_pitch_um=0.0), "pixel_pitch_um"),
    (dict(diffusion_sigma_px=-0.1), "diffusion_sigma_px"),
])
def test_cr_validation_names_parameter(kwargs, name):
    args = dict(shape=(10, 10), exposure_time_s=10.0, rate_per_cm2_s=1.2, pixel_pitch_um=21.0,
                rng=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        make_cosmic_rays(**args)


def test_hot_pixels_distinct_and_in_range():
    hot = make_hot_pixels((100, 200), 0.003, 5, low=0.02, high=5.0)
    assert len(hot) == 60
    flat = hot.y.astype(int) * 200 + hot.x
    assert np.unique(flat).size == 60 and np.all(np.diff(flat) > 0)
    assert hot.excess.min() >= 0.02 and hot.excess.max() <= 5.0
    image = hot.image((100, 200))
    assert np.isclose(image.sum(), hot.excess.sum())
    again = make_hot_pixels((100, 200), 0.003, 5, low=0.02, high=5.0)
    assert np.array_equal(hot.y, again.y) and np.array_equal(hot.excess, again.excess)


def test_hot_columns_and_log_uniform():
    cols = make_hot_columns(1024, 6, np.random.default_rng(1), low=3.0, high=30.0)
    assert len(cols) == 6 and np.unique(cols.x).size == 6
    assert np.all((cols.excess >= 3.0) & (cols.excess <= 30.0))
    image = cols.image((10, 1024))
    assert np.allclose(image[:, cols.x], cols.excess[None, :])
    values = log_uniform(np.random.default_rng(2), 0.02, 5.0, 20000)
    # log-uniform: the median is the geometric mean of the limits.
    assert np.isclose(np.median(values), np.sqrt(0.02 * 5.0), rtol=0.05)
    with pytest.raises(ValueError, match="n must be"):
        make_hot_columns(10, 11, 0, low=1.0, high=2.0)
    with pytest.raises(ValueError, match="fraction"):
        make_hot_pixels((10, 10), 1.5, 0, low=1.0, high=2.0)
    # Repeated positions (binned truth) are summed by image().
    repeated = HotPixels(np.array([1, 1]), np.array([2, 2]), np.array([1.0, 2.0]))
    assert repeated.image((3, 3))[1, 2] == 3
    assert HotColumns(np.array([0, 0]), np.array([1.0, 1.0])).image((2, 2))[0, 0] == 2


def test_fixed_pattern_is_deterministic_zero_mean():
    kwargs = dict(smooth_rms=1.5, column_rms=0.5, pixel_rms=1.0, edge_ramp=3.0)
    a = make_fixed_pattern((256, 300), 42, **kwargs)
    b = make_fixed_pattern((256, 300), np.random.default_rng(42), **kwargs)
    assert np.array_equal(a, b)
    assert abs(a.mean()) < 1e-9
    assert 1.0 < a.std() < 3.5
    # The ramp raises the first columns above the rest.
    assert a[:, :5].mean() > a[:, 100:].mean()
    with pytest.raises(ValueError, match="pixel_rms"):
        make_fixed_pattern((4, 4), 0, smooth_rms=1.0, column_rms=0.0, pixel_rms=-1.0)


