"""Cosmic-ray labelling and per-CR statistics kernels (issue 4, HSTcosmicrays census).

Every statistic is checked against a brute-force per-object computation written here
independently, on synthetic images whose CRs are drawn at known places with known
charges, and against the cosmic-ray simulator's ground truth.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import special

from hstcal_core import Amplifier, Detector
from hstcal_core.algorithms.crstats import (
    STAT_COLUMNS,
    cr_statistics,
    energy_with_wings,
    incident_rate,
    integration_time,
    pixel_lists,
)
from hstcal_core.algorithms.label import dq_mask, label_crs, threshold_mask
from hstcal_core.census.records import CR_COLUMNS
from hstcal_core.errors import NoImplementationError
from hstcal_core.options import Options
from hstcal_core.simulate.cosmic_rays import make_cosmic_rays, render


# --------------------------------------------------------------------------- helpers
def brute_force(image: np.ndarray, labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-object loop, the textbook formulas (Miles et al. 2021; HSTcosmicrays Stats)."""
    rows = {name: [] for name in STAT_COLUMNS}
    for k in range(1, n + 1):
        y, x = np.nonzero(labels == k)
        q = image[y, x].astype(np.float64)
        w = np.clip(q, 0, None)
        if w.sum() == 0:
            w = np.ones_like(w)
        cy, cx = (w * y).sum() / w.sum(), (w * x).sum() / w.sum()
        ixx = (w * (x - cx) ** 2).sum() / w.sum()
        iyy = (w * (y - cy) ** 2).sum() / w.sum()
        ixy = (w * (x - cx) * (y - cy)).sum() / w.sum()
        trace = ixx + iyy
        rows["energy_e"].append(q.sum())
        rows["size_px"].append(y.size)
        rows["centroid_y"].append(cy)
        rows["centroid_x"].append(cx)
        rows["ixx"].append(ixx)
        rows["iyy"].append(iyy)
        rows["ixy"].append(ixy)
        rows["width_sigma"].append(np.sqrt(trace / 2))
        rows["symmetry"].append(
            np.sqrt(((ixx - iyy) ** 2 + 4 * ixy**2) / trace**2) if trace > 1e-20 else 0.0)
    return {k: np.asarray(v) for k, v in rows.items()}


def gaussian_blob(shape, cy, cx, sigma, total, radius=4):
    """A round Gaussian deposit of ``total`` e⁻ integrated over pixels, cut at ``radius``."""
    image = np.zeros(shape)
    y = np.arange(int(cy) - radius, int(cy) + radius + 1)
    x = np.arange(int(cx) - radius, int(cx) + radius + 1)

    def frac(centres, c):
        edges = np.append(centres - 0.5, centres[-1] + 0.5)
        return np.diff(special.ndtr((edges - c) / sigma))

    image[np.ix_(y, x)] = total * np.outer(frac(y, cy), frac(x, cx))
    return image


@pytest.fixture
def scene():
    """Known objects on a 64×80 zero background; returns (image, truth rows in label order)."""
    image = np.zeros((64, 80))
    # 1. a 3×4 rectangle of 100 e⁻ per pixel at rows 2-4, cols 3-6
    image[2:5, 3:7] = 100.0
    # 2. a horizontal 1×5 line with a gradient, row 10, cols 30-34
    image[10, 30:35] = [10.0, 20.0, 30.0, 40.0, 50.0]
    # 3. a vertical 5×1 line, col 60, rows 8-12
    image[8:13, 60] = 70.0
    # 4. a diagonal line of 6 pixels (8-connected only), from (20, 10)
    d = np.arange(6)
    image[20 + d, 10 + d] = 55.0
    # 5. a round Gaussian blob, σ = 1.2 px, 5000 e⁻, centred at (40.0, 40.0)
    image += gaussian_blob(image.shape, 40.0, 40.0, 1.2, 5000.0)
    # 6. a 2-pixel event (cut) and 7. a single hot pixel (cut)
    image[55, 5:7] = 300.0
    image[58, 70] = 900.0
    return image


# --------------------------------------------------------------------------- masks
def test_dq_mask_bits():
    dq = np.array([[0, 8192, 8192 + 4, 8192 + 16],
                   [4, 16, 8192 + 4 + 16, 8192 + 512]], dtype=np.int16)
    expected = np.array([[False, True, False, True],
                         [False, False, False, True]])
    np.testing.assert_array_equal(dq_mask(dq), expected)
    # exclude nothing: every 8192 pixel counts
    np.testing.assert_array_equal(dq_mask(dq, exclude_bit=0), (dq & 8192) != 0)
    # big-endian unsigned DQ as astropy may hand it over; bit 15 set (negative as int16)
    big = dq.astype(">u2") | np.uint16(32768)
    np.testing.assert_array_equal(dq_mask(big), expected)
    np.testing.assert_array_equal(dq_mask(big.astype(np.int16).view(np.int16)), expected)
    # a dtype that cannot hold the flag has no CR pixels
    assert not dq_mask(np.full((2, 2), 255, np.uint8)).any()
    assert dq.sum() == (dq.copy()).sum()  # input untouched
    with pytest.raises(TypeError, match="dq must be an integer array"):
        dq_mask(dq.astype(float))


def test_threshold_mask_false_positive_rate_on_gaussian_noise():
    rng = np.random.default_rng(2021)
    sigma, level = 6.0, 40.0
    image = rng.normal(level, sigma, (1500, 1500)).astype(np.float32)
    mask = threshold_mask(image, nsigma=5.0)
    # Unscaled MAD = 0.6745 σ, so 5 MAD is a 3.372 σ one-sided cut.
    z = 5.0 * special.ndtri(0.75)
    expected = special.ndtr(-z) * image.size
    observed = np.count_nonzero(mask)
    assert abs(observed - expected) < 5 * np.sqrt(expected), (observed, expected)
    # a cut in σ: nsigma / 0.6745 → 5σ, ~ 0.6 false pixels in 2.25e6
    assert np.count_nonzero(threshold_mask(image, nsigma=5.0 / special.ndtri(0.75))) < 10


def test_threshold_mask_finds_injected_crs_and_ignores_nan():
    rng = np.random.default_rng(5)
    image = rng.normal(-3.0, 5.0, (200, 200))
    # 10 CRs of 3 px at 500 e⁻ each; median is negative: the threshold uses |median|
    ys, xs = rng.integers(5, 195, 10), rng.integers(5, 195, 10)
    for y, x in zip(ys, xs):
        image[y, x - 1:x + 2] = 500.0
    image[0, 0] = np.nan
    image[1, 1] = np.inf
    mask = threshold_mask(image)
    assert mask[ys, xs].all()
    assert not mask[0, 0] and mask[1, 1]  # +inf is above any threshold; NaN never
    threshold = 3.0 + 5.0 * 0.6745 * 5.0
    assert np.count_nonzero(mask & (image < threshold - 1.0)) == 0


def test_threshold_mask_falls_back_to_clipped_std_when_mad_tiny():
    # Short exposure, 0.25 e⁻ noise: MAD = 0.17 < 0.2, so the anchor replaces it with the
    # 3σ-clipped std (0.25) and the cut becomes 5σ instead of 5·MAD = 3.4σ.
    from astropy.stats import sigma_clipped_stats

    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 0.25, (200, 200))
    image[50, 50] = 5.0
    mask = threshold_mask(image)
    std = sigma_clipped_stats(image, sigma=3.0)[2]
    expected = image > abs(np.median(image)) + 5.0 * std
    np.testing.assert_array_equal(mask, expected)
    assert mask[50, 50] and np.count_nonzero(mask) < 4
    # with the fallback off, the 3.4σ MAD cut lets through ~15 noise pixels
    assert np.count_nonzero(threshold_mask(image, min_mad=0.0)) > 5
    with pytest.raises(ValueError, match="no finite pixels"):
        threshold_mask(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="nsigma"):
        threshold_mask(image, nsigma=0)


# --------------------------------------------------------------------------- labelling
def test_label_size_cut_and_consecutive_labels(scene):
    mask = scene > 0
    before = mask.copy()
    result = label_crs(mask)
    np.testing.assert_array_equal(mask, before)
    assert result.labels.dtype == np.int32
    assert result.n == 5
    assert (result.n_cut_small, result.n_cut_large) == (1 + 1, 0)  # 2-px and 1-px events
    assert set(np.unique(result.labels)) == set(range(result.n + 1))
    np.testing.assert_array_equal(result.sizes, np.bincount(result.labels.ravel())[1:])
    blob_pixels = np.count_nonzero(gaussian_blob(scene.shape, 40.0, 40.0, 1.2, 5000.0))
    np.testing.assert_array_equal(result.sizes, [12, 5, 5, 6, blob_pixels])
    assert result.labels[55, 5] == result.labels[58, 70] == 0
    # keep everything
    everything = label_crs(mask, min_size=1)
    assert (everything.n, everything.n_cut_small) == (7, 0)
    # upper cut: objects of >= max_size pixels go
    capped = label_crs(mask, min_size=3, max_size=12)
    assert (capped.n, capped.n_cut_small, capped.n_cut_large) == (3, 2, 2)
    np.testing.assert_array_equal(capped.sizes, [5, 5, 6])


def test_label_eight_connectivity():
    mask = np.zeros((6, 6), bool)
    mask[[0, 1, 2], [0, 1, 2]] = True   # a diagonal staircase: one object
    mask[[4, 5, 5], [5, 4, 5]] = True   # an L joined at a corner
    mask[0, 5] = mask[1, 4] = mask[2, 5] = True  # a chevron, corners only
    result = label_crs(mask, min_size=1)
    assert result.n == 3
    np.testing.assert_array_equal(np.sort(result.sizes), [3, 3, 3])
    assert len(np.unique(result.labels[[0, 1, 2], [0, 1, 2]])) == 1


def test_label_empty_mask():
    result = label_crs(np.zeros((32, 16), bool))
    assert result.n == result.n_cut_small == result.n_cut_large == 0
    assert result.sizes.shape == (0,) and not result.labels.any()
    stats = cr_statistics(np.ones((32, 16)), result.labels, result.n)
    assert set(stats) == set(STAT_COLUMNS)
    assert all(v.shape == (0,) for v in stats.values())
    assert stats["size_px"].dtype == np.int32
    offsets, index = pixel_lists(result.labels, 0)
    np.testing.assert_array_equal(offsets, [0])
    assert index.shape == (0,) and index.dtype == np.int64


def test_label_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mask must be 2-D"):
        label_crs(np.zeros(5, bool))
    with pytest.raises(ValueError, match="max_size"):
        label_crs(np.zeros((3, 3), bool), min_size=3, max_size=3)
    with pytest.raises(ValueError, match="min_size"):
        label_crs(np.zeros((3, 3), bool), min_size=0)


# --------------------------------------------------------------------------- statistics
def test_statistics_of_known_objects(scene):
    result = label_crs(scene > 0)
    stats = cr_statistics(scene, result.labels, result.n)
    assert list(stats) == [c for c in CR_COLUMNS if c != "imset"]
    assert all(v.dtype == np.float64 for k, v in stats.items() if k != "size_px")
    # label order = raster order of first pixels: rectangle, vertical, horizontal, diag, blob
    rect, vertical, horizontal, diagonal, blob = range(5)
    np.testing.assert_allclose(stats["energy_e"][:4], [1200.0, 350.0, 150.0, 330.0])
    # rectangle rows 2-4, cols 3-6: uniform 3×4 → Iyy = (3²-1)/12, Ixx = (4²-1)/12
    assert stats["centroid_y"][rect] == pytest.approx(3.0)
    assert stats["centroid_x"][rect] == pytest.approx(4.5)
    assert stats["iyy"][rect] == pytest.approx(8 / 12)
    assert stats["ixx"][rect] == pytest.approx(15 / 12)
    assert stats["ixy"][rect] == pytest.approx(0.0, abs=1e-12)
    assert stats["width_sigma"][rect] == pytest.approx(np.sqrt((8 / 12 + 15 / 12) / 2))
    assert stats["symmetry"][rect] == pytest.approx((15 - 8) / (15 + 8))
    # charge-weighted centroid of the gradient line: Σ q x / Σ q
    assert stats["centroid_x"][horizontal] == pytest.approx(
        np.dot([10, 20, 30, 40, 50], np.arange(30, 35)) / 150)
    assert stats["centroid_y"][horizontal] == 10.0
    # lines are maximally asymmetric, whatever their direction
    for line in (horizontal, vertical, diagonal):
        assert stats["symmetry"][line] == pytest.approx(1.0, abs=1e-12)
    assert stats["iyy"][horizontal] == 0.0 and stats["ixx"][vertical] == 0.0
    assert stats["ixx"][diagonal] == pytest.approx(stats["ixy"][diagonal])
    # round Gaussian: symmetric, centred, width ≈ σ (slightly more: pixel integration)
    assert stats["symmetry"][blob] < 1e-6
    assert stats["centroid_y"][blob] == pytest.approx(40.0, abs=1e-9)
    assert stats["centroid_x"][blob] == pytest.approx(40.0, abs=1e-9)
    # width ≈ sqrt(σ² + 1/12) (pixel integration), a little less: the blob is cut at 3.3σ
    assert stats["width_sigma"][blob] == pytest.approx(np.sqrt(1.2**2 + 1 / 12), rel=3e-3)
    assert stats["energy_e"][blob] == pytest.approx(5000.0, rel=1e-3)
    # and everything equals the per-object brute force
    brute = brute_force(scene, result.labels, result.n)
    for name in STAT_COLUMNS:
        np.testing.assert_allclose(stats[name], brute[name], rtol=1e-10, atol=1e-10,
                                   err_msg=name)


def test_statistics_match_brute_force_on_noisy_image():
    rng = np.random.default_rng(11)
    image = rng.normal(0.0, 8.0, (120, 150)).astype(np.float32)
    mask = rng.random(image.shape) < 0.15  # many irregular objects, some pixels negative
    image[mask] += rng.lognormal(4.0, 1.0, mask.sum()).astype(np.float32)
    result = label_crs(mask, min_size=1)
    assert result.n > 500
    image_before = image.copy()
    stats = cr_statistics(image, result.labels, result.n)
    np.testing.assert_array_equal(image, image_before)
    brute = brute_force(image, result.labels, result.n)
    for name in STAT_COLUMNS:
        np.testing.assert_allclose(stats[name], brute[name], rtol=1e-9, atol=1e-9,
                                   err_msg=name)
    assert np.all(stats["symmetry"] >= 0) and np.all(stats["symmetry"] <= 1)


def test_statistics_negative_pixels_and_degenerate_objects():
    image = np.zeros((10, 10))
    labels = np.zeros((10, 10), np.int32)
    # CR 1: two positive pixels and one negative, the negative carries no weight
    labels[1, 1:4] = 1
    image[1, 1:4] = [100.0, 100.0, -50.0]
    # CR 2: a single pixel
    labels[5, 5] = 2
    image[5, 5] = 7.0
    # CR 3: all pixels ≤ 0 → uniform weights, geometric centre
    labels[8, 2:5] = 3
    image[8, 2:5] = [-1.0, 0.0, -5.0]
    # label 4 has no pixels (n = 4)
    stats = cr_statistics(image, labels, 4)
    np.testing.assert_allclose(stats["energy_e"], [150.0, 7.0, -6.0, 0.0])
    np.testing.assert_array_equal(stats["size_px"], [3, 1, 3, 0])
    assert stats["centroid_x"][0] == pytest.approx(1.5)
    assert stats["ixx"][0] == pytest.approx(0.25)
    assert (stats["centroid_y"][1], stats["centroid_x"][1]) == (5.0, 5.0)
    assert stats["width_sigma"][1] == 0.0 and stats["symmetry"][1] == 0.0
    assert stats["centroid_x"][2] == pytest.approx(3.0)
    assert stats["ixx"][2] == pytest.approx(2 / 3)
    for name in ("centroid_y", "centroid_x", "ixx", "iyy", "ixy", "width_sigma", "symmetry"):
        assert np.isnan(stats[name][3]), name


def test_statistics_reject_bad_inputs():
    labels = np.zeros((4, 4), np.int32)
    labels[1, 1] = 3
    with pytest.raises(ValueError, match="label 3 but n = 2"):
        cr_statistics(np.zeros((4, 4)), labels, 2)
    with pytest.raises(ValueError, match="differs from labels shape"):
        cr_statistics(np.zeros((4, 5)), labels, 3)
    with pytest.raises(TypeError, match="integer"):
        cr_statistics(np.zeros((4, 4)), labels.astype(float), 3)
    labels[1, 1] = -1
    with pytest.raises(ValueError, match=">= 0"):
        pixel_lists(labels, 3)


def test_pixel_lists_round_trip(scene):
    result = label_crs(scene > 0)
    offsets, index = pixel_lists(result.labels, result.n)
    assert offsets.dtype == index.dtype == np.int64
    assert offsets.shape == (result.n + 1,) and offsets[-1] == index.size
    np.testing.assert_array_equal(np.diff(offsets), result.sizes)
    rebuilt = np.zeros(scene.size, np.int32)
    for k in range(result.n):  # test-side loop: the reference reconstruction
        chunk = index[offsets[k]:offsets[k + 1]]
        assert np.all(np.diff(chunk) > 0)
        rebuilt[chunk] = k + 1
    np.testing.assert_array_equal(rebuilt.reshape(scene.shape), result.labels)
    # the same, vectorised, on a larger random label image
    rng = np.random.default_rng(4)
    big = label_crs(rng.random((300, 300)) < 0.2, min_size=1)
    offsets, index = pixel_lists(big.labels, big.n)
    rebuilt = np.zeros(big.labels.size, np.int32)
    rebuilt[index] = np.repeat(np.arange(1, big.n + 1), np.diff(offsets))
    np.testing.assert_array_equal(rebuilt.reshape(big.labels.shape), big.labels)


# --------------------------------------------------------------------------- simulator truth
def test_against_simulated_cosmic_rays():
    crs = make_cosmic_rays((512, 512), 1000.0, 1.2, 15.0, rng=2021)
    image = render(crs)
    assert crs.n_crs > 300
    result = label_crs(image > 0, min_size=1)
    stats = cr_statistics(image, result.labels, result.n)
    total = float(crs.charge_e.astype(np.float64).sum())
    assert stats["energy_e"].sum() == pytest.approx(total, rel=1e-3)
    # with the census cut, kept + cut energy is still everything
    cut = label_crs(image > 0)
    kept = cr_statistics(image, cut.labels, cut.n)["energy_e"].sum()
    lost = image[(image > 0) & (cut.labels == 0)].astype(np.float64).sum()
    assert kept + lost == pytest.approx(total, rel=1e-6)
    assert cut.n + cut.n_cut_small + cut.n_cut_large == result.n

    # CRs that did not merge with another: one truth CR ↔ one label
    deposit_label = result.labels[crs.y, crs.x]
    pairs = np.unique(np.stack([crs.cr_id, deposit_label]), axis=1)
    labels_per_cr = np.bincount(pairs[0], minlength=crs.n_crs)
    crs_per_label = np.bincount(pairs[1], minlength=result.n + 1)
    isolated = (labels_per_cr[pairs[0]] == 1) & (crs_per_label[pairs[1]] == 1)
    cr_ids, label_ids = pairs[0][isolated], pairs[1][isolated]
    assert cr_ids.size > 0.8 * np.count_nonzero(labels_per_cr)
    truth = crs.summary()
    np.testing.assert_allclose(stats["energy_e"][label_ids - 1],
                               truth["total_charge_e"][cr_ids], rtol=1e-3)
    np.testing.assert_allclose(stats["centroid_y"][label_ids - 1], truth["y"][cr_ids],
                               atol=1e-3)
    np.testing.assert_allclose(stats["centroid_x"][label_ids - 1], truth["x"][cr_ids],
                               atol=1e-3)
    np.testing.assert_array_equal(stats["size_px"][label_ids - 1],
                                  truth["n_pixels"][cr_ids])


# --------------------------------------------------------------------------- energy with wings
def _energy_with_wings_numpy(image, labels, n):
    """The census's first (numpy) formulation: np.bincount over the flagged pixels, then
    over their unflagged 8-neighbours, each neighbour going to its highest label."""
    ny, nx = labels.shape
    flat_labels, flat_image = labels.ravel(), image.ravel()
    idx = np.flatnonzero(flat_labels)
    energy = np.bincount(flat_labels[idx], weights=flat_image[idx].astype(np.float64),
                         minlength=n + 1)
    y, x = np.divmod(idx, nx)
    ring_pix, ring_lab = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                yy, xx = y + dy, x + dx
                ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
                neighbour = yy[ok] * nx + xx[ok]
                free = flat_labels[neighbour] == 0
                ring_pix.append(neighbour[free])
                ring_lab.append(flat_labels[idx[ok][free]])
    pix, lab = np.concatenate(ring_pix), np.concatenate(ring_lab)
    if pix.size:
        order = np.lexsort((-lab, pix))
        pix, lab = pix[order], lab[order]
        first = np.ones(pix.size, dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        energy += np.bincount(lab[first], weights=flat_image[pix[first]].astype(np.float64),
                              minlength=n + 1)
    return energy[1:]


@pytest.mark.parametrize("seed", range(6))
def test_energy_with_wings_equals_the_bincount_formulation(seed):
    """Bit for bit, on crowded masks (touching CRs, edges) with shuffled label numbers."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 60, 2))
    mask = rng.random(shape) < rng.uniform(0.05, 0.5)
    result = label_crs(mask, min_size=1)
    shuffle = np.concatenate(([0], rng.permutation(result.n) + 1)).astype(np.int32)
    labels = shuffle[result.labels]
    image = rng.normal(0.0, 30.0, shape).astype(np.float32)
    np.testing.assert_array_equal(energy_with_wings(image, labels, result.n),
                                  _energy_with_wings_numpy(image, labels, result.n))


def test_energy_with_wings_adds_the_ring_once(scene):
    result = label_crs(scene > 0)
    image = np.ones(scene.shape)
    energy = energy_with_wings(image, result.labels, result.n)
    # the 3x4 rectangle at rows 2-4, cols 3-6: its 12 pixels and the 6x5 - 12 around them
    assert energy[0] == 30.0
    with pytest.raises(ValueError, match="0 .. n"):
        energy_with_wings(image, result.labels, result.n - 1)


# --------------------------------------------------------------------------- rates
def test_integration_time_and_rate():
    # ACS/WFC: EXPTIME 1000 s, FLASHDUR 0.5 s, 50 s readout (HSTcosmicrays pipeline_config)
    t = integration_time(1000.0, 0.5, 50.0)
    assert t == 1050.5
    assert integration_time(300.0, None, 15.0) == 315.0
    assert incident_rate(45_000, t, 37.748) == pytest.approx(45_000 / 1050.5 / 37.748)
    assert incident_rate(0, t, 1.0) == 0.0
    with pytest.raises(ValueError, match="flashdur"):
        integration_time(10.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="integration_time_s"):
        incident_rate(3, 0.0, 1.0)
    with pytest.raises(ValueError, match="area_cm2"):
        incident_rate(3, 1.0, np.nan)
    with pytest.raises(ValueError, match="n_cr"):
        incident_rate(-1, 1.0, 1.0)


# --------------------------------------------------------------------------- hooks
_CAM = Detector(name="test_cam", instrument="TEST", detector="CAM", kind="ccd", shape=(64, 80),
                pixel_pitch_um=15.0, pixel_scale_arcsec=0.05, gain_keyword="CCDGAIN",
                amplifiers={1: (Amplifier("A", 1.0, 4.0),)}, readout_time_s=50.0)


def test_builtin_label_hook_applies_size_cut(fresh_registry, scene):
    hooks = fresh_registry.hooks
    result = hooks.label(detector=_CAM, image=scene, mask=scene > 0, options=Options())
    labels, n = result
    assert labels.dtype == np.int32 and n == 5
    # the census reads the size-cut bookkeeping off the result; it survives pickling
    assert (result.n_cut_small, result.n_cut_large) == (2, 0)
    again = pickle.loads(pickle.dumps(result))
    assert again.n_cut_small == 2 and again[1] == 5 and np.array_equal(again.sizes, result.sizes)
    labels, n = hooks.label(detector=_CAM, image=scene, mask=scene > 0,
                            options=Options({"min_cr_size": 1, "max_cr_size": 12}))
    assert n == 5  # the 1- and 2-px events back in, the 12-px rectangle and the blob out
    assert labels[58, 70] > 0 and labels[2, 3] == 0


def test_builtin_measure_hook(fresh_registry, scene):
    hooks = fresh_registry.hooks
    labels, n = hooks.label(detector=_CAM, image=scene, mask=scene > 0, options=Options())
    stats = hooks.measure(detector=_CAM, kind="crstats",
                          data={"image": scene, "labels": labels, "n": n}, options=Options())
    assert set(stats) | {"imset"} == set(CR_COLUMNS)
    np.testing.assert_allclose(stats["energy_e"], cr_statistics(scene, labels, n)["energy_e"])
    with pytest.raises(NoImplementationError):
        hooks.measure(detector=_CAM, kind="nonesuch", data={}, options=Options())
    with pytest.raises(TypeError, match="EventList"):
        hooks.measure(detector=_CAM, kind="lightcurve", data={}, options=Options())
    with pytest.raises(KeyError, match="labels"):
        hooks.measure(detector=_CAM, kind="crstats", data={"image": scene, "n": n},
                      options=Options())
