"""The single-sweep kernel for a few images equals the pass-per-iteration kernel.

``crreject`` sends stacks of up to ``SMALL_N_MAX`` images (the census's dark pairs) to
``_crreject_small`` and larger ones to ``_crreject_kernels``; both implement hstcal
``cs2/crrej_loop.c`` with the same float32 arithmetic, so masks, sums, errors and DQ
must agree bit for bit, whatever the parameters, the image shape or the row chunks.
"""

import importlib

import numpy as np
import pytest

from hstcal_core.algorithms.crreject import CRRejectParams, crreject, sky_modes

# the package re-exports the function under the module's name
crreject_module = importlib.import_module("hstcal_core.algorithms.crreject")


def _stack_with_crs(n, shape, seed, *, dq_fraction=0.01, sky=None):
    """Dark-like images (DN) with 1–6 pixel cosmic rays in each, and sparse DQ flags."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    level = rng.uniform(20.0, 40.0, shape)
    stack = np.empty((n, ny, nx), np.float32)
    for k in range(n):
        img = rng.poisson(level) + rng.normal(0.0, 5.0, shape)
        if sky is not None:
            img += sky[k]
        hits = rng.random(shape) < 0.02
        img[hits] += rng.lognormal(np.log(300.0), 1.0, hits.sum())
        # a few short tracks, so hits have hit neighbours and spill pixels
        ys, xs = np.nonzero(rng.random(shape) < 0.003)
        for dx in (1, 2):
            img[ys, np.minimum(xs + dx, nx - 1)] += rng.uniform(5.0, 60.0, ys.size)
        stack[k] = img
    dq = np.where(rng.random((n, ny, nx)) < dq_fraction,
                  rng.choice(np.array([1, 4, 16, 32], np.uint16), (n, ny, nx)), 0).astype(np.uint16)
    return stack, dq


def _both(stack, dq, exptimes, params, nchunks=None, rn=5.0, gain=1.5):
    """(small-N path, general path) on the same inputs, as crreject prepares them."""
    n = stack.shape[0]
    exptimes = np.asarray(exptimes, np.float64)
    efac = exptimes.copy() if exptimes.sum() > 0 else np.ones(n)
    texpt = float(efac.sum())
    rn2 = np.full(n, rn) ** 2
    gains = np.full(n, gain)
    sky = sky_modes(stack, dq) if params.skysub == "mode" else np.zeros(n)
    few = crreject_module._reject_few(stack, dq, sky, efac, rn2, gains, texpt, params,
                                      nchunks=nchunks)
    many = crreject_module._reject_many(stack, dq, sky, efac, rn2, gains, texpt, params)
    return few, many


def _assert_identical(few, many):
    for name, a, b in zip(("sci", "err", "dq", "masks"), few, many):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


CASES = [
    # initgues, crsigmas, crradius, crthresh, scalense, badinpdq, skysub, fillval
    ("median", (6.0, 5.0, 4.0), 2.1, 0.5555, 0.0, 35, "mode", 0.0),  # the census's ACS row
    ("median", (5.0, 4.0, 3.0), 1.5, 0.75, 0.0, 0, "mode", 0.0),     # ISR 98-22, 3x3 square
    ("minimum", (5.0, 4.0), 1.5, 0.8, 0.0, 4, "none", -1.0),
    ("minimum", (6.0, 5.0, 4.0), 2.1, 0.0, 30.0, 36, "mode", 0.0),   # crthresh 0: no spill test
    ("median", (4.0,), 0.5, 0.75, 10.0, 16, "none", 7.0),            # radius < 1: no neighbours
    ("median", (7.0, 6.0, 5.0, 4.0, 3.0), 3.0, 0.6, 0.0, 1, "mode", 0.0),
]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-r{c[2]}-s{len(c[1])}" for c in CASES])
def test_small_n_path_equals_general_path(n, case):
    initgues, sigmas, radius, thresh, scalense, badinpdq, skysub, fillval = case
    stack, dq = _stack_with_crs(n, (61, 47), seed=100 * n + len(sigmas),
                                sky=np.linspace(0.0, 9.0, n) if skysub == "mode" else None)
    params = CRRejectParams(crsigmas=sigmas, crradius=radius, crthresh=thresh,
                            initgues=initgues, skysub=skysub, scalense=scalense,
                            badinpdq=badinpdq, fillval=fillval)
    few, many = _both(stack, dq, np.linspace(500.0, 900.0, n), params)
    assert many[3].any() and not many[3].all()  # CRs found, not everything
    _assert_identical(few, many)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
@pytest.mark.parametrize("nchunks", [1, 2, 5, 13])
def test_small_n_path_does_not_depend_on_row_chunks(n, nchunks):
    stack, dq = _stack_with_crs(n, (40, 33), seed=7 + n)
    params = CRRejectParams(crsigmas=(6.0, 5.0, 4.0), crradius=2.1, crthresh=0.5555,
                            badinpdq=35)
    few, many = _both(stack, dq, [1000.0] * n, params, nchunks=nchunks)
    _assert_identical(few, many)


@pytest.mark.parametrize("shape", [(1, 50), (3, 1), (4, 9), (9, 4)])
def test_small_n_path_on_images_narrower_than_the_pipeline(shape):
    """Fewer rows than the pipeline's lag (len(crsigmas)·r) or a single column."""
    stack, dq = _stack_with_crs(3, shape, seed=sum(shape))
    stack[1, 0, 0] += 5000.0
    params = CRRejectParams(crsigmas=(6.0, 5.0, 4.0), crradius=3.0, crthresh=0.5,
                            badinpdq=4, skysub="none")
    few, many = _both(stack, dq, [0.0, 0.0, 0.0], params, nchunks=2)
    _assert_identical(few, many)


def test_pixels_rejected_everywhere_and_zero_exposure_biases():
    """Every image excluded or hit: fill value, CR flag, equal weights (ocrreject)."""
    stack, dq = _stack_with_crs(2, (20, 20), seed=3, dq_fraction=0.0)
    stack[:, 5, 5] += 9000.0          # hit in both images (the median is the hit)
    stack[0, 10, 10] += 9000.0        # hit in one
    dq[:, 15, 15] = 512               # excluded in both
    params = CRRejectParams(crsigmas=(5.0, 4.0), badinpdq=512, skysub="none", fillval=-3.0)
    few, many = _both(stack, dq, [0.0, 0.0], params)
    _assert_identical(few, many)
    assert few[0][15, 15] == -3.0 * 2 and few[1][15, 15] == -3.0  # sci: fill·Σefac
    assert few[2][15, 15] == 512  # excluded, not rejected
    assert few[3][0, 10, 10] and not few[3][:, 5, 5].any()  # a pair's median is a common hit


@pytest.mark.parametrize("n", [2, 3, 4])
def test_crreject_dispatches_to_the_small_n_path(monkeypatch, n):
    stack, dq = _stack_with_crs(n, (32, 48), seed=n)
    kwargs = dict(exptimes=[800.0] * n, read_noise_dn=[4.0] * n, gains=[2.0] * n,
                  params=CRRejectParams(crsigmas=(6.0, 5.0, 4.0), crradius=2.1,
                                        crthresh=0.5555, badinpdq=35))
    calls = []
    few = crreject_module._reject_few
    monkeypatch.setattr(crreject_module, "_reject_few",
                        lambda *a, **k: calls.append(1) or few(*a, **k))
    small = crreject(stack, dq, **kwargs)
    assert calls == [1]
    monkeypatch.setattr(crreject_module, "SMALL_N_MAX", 1)
    general = crreject(stack, dq, **kwargs)
    assert calls == [1]
    for name in ("sci", "err", "dq", "masks", "sky"):
        np.testing.assert_array_equal(getattr(small, name), getattr(general, name), err_msg=name)
    assert small.n_rejected == general.n_rejected > 0
