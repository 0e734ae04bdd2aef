"""The ocrreject-equivalent kernel against injected truth and against its C semantics."""

import numpy as np
import pytest

from hstcal_core.algorithms.crreject import (
    CR_FLAG,
    CRRejectParams,
    crreject,
    histogram_mode,
)


def _scene(n=8, shape=(128, 128), exptime=1000.0, rate=0.05, rn=6.0, seed=1, cr_frac=0.02):
    """n dark-like images in DN (gain 1) with compact cosmic rays; returns truth masks."""
    rng = np.random.default_rng(seed)
    truth_rate = np.full(shape, rate) + rng.uniform(0, 0.02, shape)
    stack = np.empty((n, *shape), np.float32)
    crs = np.zeros((n, *shape), bool)
    for k in range(n):
        img = rng.poisson(truth_rate * exptime).astype(np.float64) + rng.normal(0, rn, shape)
        ncr = int(cr_frac * shape[0] * shape[1] / 4)
        ys = rng.integers(1, shape[0] - 1, ncr)
        xs = rng.integers(1, shape[1] - 1, ncr)
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # 4-pixel hits
            img[ys + dy, xs + dx] += rng.uniform(200, 3000, ncr)
            crs[k, ys + dy, xs + dx] = True
        stack[k] = img
    return stack, crs, truth_rate


def test_rejection_completeness_and_mean_against_truth():
    stack, crs, truth_rate = _scene()
    n = stack.shape[0]
    res = crreject(stack, np.zeros(stack.shape, np.uint16), exptimes=[1000.0] * n,
                   read_noise_dn=[6.0] * n, gains=[1.0] * n,
                   params=CRRejectParams(crsigmas=(5, 4, 3), skysub="none"))
    completeness = (res.masks & crs).sum() / crs.sum()
    assert completeness >= 0.995
    clean = ~crs
    false_rate = (res.masks & clean).sum() / clean.sum()
    assert false_rate < 0.03  # 3 sigma two-sided rejection plus neighbours
    mean_rate = res.sci / res.texptime
    noise = np.sqrt(truth_rate * 1000 + 36) / 1000 / np.sqrt(n)
    pull = (mean_rate - truth_rate) / noise
    assert abs(np.median(pull)) < 0.1
    assert np.std(pull) < 1.3
    assert res.texptime == pytest.approx(8000.0)


def test_output_is_sum_over_inputs_like_ocrreject():
    """sci = ave * sum(efac) + sum(sky): with no CRs the output is the plain sum."""
    rng = np.random.default_rng(3)
    stack = rng.normal(100.0, 1.0, (4, 32, 32)).astype(np.float32)
    res = crreject(stack, np.zeros((4, 32, 32), np.uint16), exptimes=[10, 20, 30, 40],
                   read_noise_dn=[5.0] * 4, gains=[1.0] * 4,
                   params=CRRejectParams(crsigmas=(50.0,), skysub="none"))
    rates = stack / np.array([10, 20, 30, 40], np.float32)[:, None, None]
    expected = (stack.sum(axis=0))  # efac-weighted mean rate times total time
    np.testing.assert_allclose(res.sci, expected, rtol=1e-5)
    assert not res.masks.any()
    assert rates.shape == (4, 32, 32)


def test_zero_exposure_biases_get_equal_weights_and_ncombine_sum():
    rng = np.random.default_rng(4)
    stack = rng.normal(0.0, 2.0, (5, 16, 16)).astype(np.float32)
    res = crreject(stack, np.zeros(stack.shape, np.uint16), exptimes=[0.0] * 5,
                   read_noise_dn=[2.0] * 5, gains=[1.0] * 5,
                   params=CRRejectParams(crsigmas=(50.0,), skysub="none"))
    np.testing.assert_allclose(res.sci / 5, stack.mean(axis=0), atol=1e-5)
    assert res.texptime == 0.0
    np.testing.assert_array_equal(res.efac, np.ones(5))


def test_dq_flag_only_where_rejected_in_every_image_and_inputs_ored():
    stack = np.full((3, 8, 8), 10.0, np.float32)
    stack[:, 2, 2] += np.array([5000, 6000, 7000], np.float32)  # hit in all images
    stack[0, 5, 5] += 5000  # hit in one image
    dq = np.zeros((3, 8, 8), np.uint16)
    dq[1, 0, 0] = 4
    dq[2, 0, 1] = 256
    res = crreject(stack, dq, exptimes=[0.0] * 3, read_noise_dn=[1.0] * 3, gains=[1.0] * 3,
                   params=CRRejectParams(crsigmas=(4.0,), crradius=0.0, skysub="none",
                                         initgues="minimum"))
    assert res.dq[0, 0] == 4 and res.dq[0, 1] == 256
    assert res.masks[0, 5, 5] and not res.masks[1, 5, 5]
    assert not (res.dq[5, 5] & CR_FLAG)
    # the minimum of the three hits is itself the guess, so it is never rejected
    assert res.masks[:, 2, 2].sum() == 2
    assert not (res.dq[2, 2] & CR_FLAG)


def test_pixel_rejected_everywhere_gets_8192_and_fill_value():
    stack = np.full((2, 6, 6), 10.0, np.float32)
    stack[:, 3, 3] = 1e4
    dq = np.zeros((2, 6, 6), np.uint16)
    dq[:, 3, 3] = 512  # excluded in every image: no data left
    res = crreject(stack, dq, exptimes=[0, 0], read_noise_dn=[1, 1], gains=[1, 1],
                   params=CRRejectParams(crsigmas=(4.0,), badinpdq=512, skysub="none",
                                         crradius=0.0))
    assert res.sci[3, 3] == 0.0  # fillval
    assert res.dq[3, 3] == 512  # excluded, not "rejected"


def test_neighbour_rejection_respects_crthresh():
    """Neighbours of a hit are rejected only where they deviate by crthresh*sigma."""
    base = np.zeros((5, 11, 11), np.float32)
    base[0, 5, 5] = 1000.0   # the hit
    base[0, 5, 6] = 6.0      # 6 DN neighbour: > 0.5*4*1 but < 4*1 -> spill
    base[0, 5, 4] = 1.0      # small neighbour: not rejected
    params = CRRejectParams(crsigmas=(4.0,), crradius=1.5, crthresh=0.5, skysub="none")
    res = crreject(base, np.zeros(base.shape, np.uint16), exptimes=[0] * 5,
                   read_noise_dn=[1.0] * 5, gains=[1e9] * 5, params=params)
    assert res.masks[0, 5, 5] and res.masks[0, 5, 6]
    assert not res.masks[0, 5, 4]
    params_all = CRRejectParams(crsigmas=(4.0,), crradius=1.5, crthresh=0.0, skysub="none")
    res_all = crreject(base, np.zeros(base.shape, np.uint16), exptimes=[0] * 5,
                       read_noise_dn=[1.0] * 5, gains=[1e9] * 5, params=params_all)
    assert res_all.masks[0, 4:7, 4:7].all()  # crthresh <= 0: every neighbour in the radius


def test_histogram_mode_of_known_distribution():
    rng = np.random.default_rng(5)
    values = rng.normal(40.0, 3.0, 200_000)
    values[:5000] += 5000  # cosmic rays do not move the mode
    assert histogram_mode(values) == pytest.approx(40.0, abs=0.3)
    assert histogram_mode(np.array([])) == 0.0


def test_sky_is_subtracted_and_added_back():
    rng = np.random.default_rng(6)
    stack = (rng.normal(0, 2, (4, 64, 64)) + np.array([30, 35, 40, 45])[:, None, None]).astype(np.float32)
    res = crreject(stack, np.zeros(stack.shape, np.uint16), exptimes=[0] * 4,
                   read_noise_dn=[2.0] * 4, gains=[1.0] * 4,
                   params=CRRejectParams(crsigmas=(5, 4), skysub="mode"))
    np.testing.assert_allclose(res.sky, [30, 35, 40, 45], atol=0.5)
    assert np.mean(res.sci) == pytest.approx(stack.sum(axis=0).mean(), rel=1e-3)
    # without sky subtraction the differing levels would be rejected wholesale
    assert res.masks.mean() < 0.02


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=1), "at least 2 images"),
    (dict(exptimes=[0, 10]), "some (but not all)"),
    (dict(gains=[0, 1]), "gains must be positive"),
])
def test_invalid_inputs_raise(kwargs, message):
    n = kwargs.pop("n", 2)
    stack = np.zeros((n, 4, 4), np.float32)
    args = dict(exptimes=[1.0] * n, read_noise_dn=[1.0] * n, gains=[1.0] * n)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        crreject(stack, np.zeros(stack.shape, np.uint16), **args)


def test_inputs_are_not_modified():
    stack, _, _ = _scene(n=3, shape=(32, 32))
    dq = np.zeros(stack.shape, np.uint16)
    before = stack.copy(), dq.copy()
    crreject(stack, dq, exptimes=[1000.0] * 3, read_noise_dn=[6.0] * 3, gains=[1.0] * 3)
    np.testing.assert_array_equal(stack, before[0])
    np.testing.assert_array_equal(dq, before[1])


def test_params_validation():
    with pytest.raises(ValueError, match="initgues"):
        CRRejectParams(initgues="mean")
    with pytest.raises(ValueError, match="crsigmas"):
        CRRejectParams(crsigmas=())


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 32, 33, 64, 70])
def test_sorting_network_sorts(n):
    from hstcal_core.algorithms._crreject_kernels import sort_network

    pairs, size = sort_network(n)
    values = np.random.default_rng(n).random((100, size))
    values[:, n:] = np.inf
    for a, b in pairs:
        lo = np.minimum(values[:, a], values[:, b])
        values[:, b] = np.maximum(values[:, a], values[:, b])
        values[:, a] = lo
    assert (np.diff(values[:, :n], axis=1) >= 0).all()


def test_compiled_sky_modes_equal_the_reference_histogram_mode():
    from hstcal_core.algorithms.crreject import sky_modes

    rng = np.random.default_rng(8)
    stack = (rng.normal(25.0, 4.0, (5, 64, 64)) + np.arange(5)[:, None, None] * 7).astype(np.float32)
    stack[2] -= 40.0  # negative values exercise the C truncation toward zero
    dq = np.zeros(stack.shape, np.uint16)
    dq[1, :10] = 16  # flagged pixels are left out of the histogram
    expected = [histogram_mode(stack[k][dq[k] == 0]) for k in range(5)]
    np.testing.assert_allclose(sky_modes(stack, dq), expected)


def test_more_than_64_images_use_several_bit_words():
    rng = np.random.default_rng(9)
    n = 70
    stack = rng.normal(100.0, 3.0, (n, 16, 16)).astype(np.float32)
    stack[66, 8, 8] += 1000.0  # an image past the first 64-bit word
    res = crreject(stack, np.zeros(stack.shape, np.uint16), exptimes=[0.0] * n,
                   read_noise_dn=[3.0] * n, gains=[1.0] * n,
                   params=CRRejectParams(crsigmas=(6.0,), skysub="none", crradius=0.0))
    assert res.masks[66, 8, 8] and res.masks[:, 8, 8].sum() == 1
    assert res.sci[8, 8] / n == pytest.approx(np.delete(stack[:, 8, 8], 66).mean(), abs=0.01)
