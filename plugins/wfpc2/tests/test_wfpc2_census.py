"""WFPC2 in the cosmic-ray census: the one-chip reader on real and simulated files in
every layout, threshold CR masks scored against the truth, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core import InputError, run_stage
from hstcal_core.options import resolve_options
from hstcal_core.simulate.darks import score_cr_masks
from hstcal_core.stages import stage, stage_params
from hstcal_wfpc2.detectors import DETECTORS
from hstcal_wfpc2.reader import layout_of

NAMES = [d.name for d in DETECTORS]


def census_options(registry, name, **overrides):
    entry = registry.entry(name)
    return resolve_options(stage_params(stage("crstats"), entry),
                           plugin_defaults=entry.defaults["crstats"], cli=overrides)


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    """One full-size (800x800) dark and one small dark per layout, same seed."""
    from hstcal_core.registry import build_registry

    registry = build_registry()
    simulator = registry.entry("wfpc2_pc").simulator
    full_dir = tmp_path_factory.mktemp("wfpc2_full")
    full = simulator(full_dir, count=1, seed=31, exptime=1000.0)
    small = {}
    for layout in ("mef", "waiver", "geis"):
        directory = tmp_path_factory.mktemp(f"wfpc2_{layout}")
        small[layout] = (directory, simulator(directory, count=2, seed=7, shape="96x128",
                                              layout=layout))
    return registry, (full_dir, full), small


# --------------------------------------------------------------------------- reader
@pytest.mark.realdata
def test_reader_takes_each_chip_of_the_real_mef(shared_data, hstcal_registry):
    path = shared_data / "hst/wfpc2/test0.fits"
    assert layout_of(path) == "mef"
    with fits.open(path) as hdul:
        for det in DETECTORS:
            chip = det.extra["chip"]
            exposure = hstcal_registry.entry(det.name).read(path)
            (imset,) = exposure.imsets
            assert imset.shape == (40, 40)
            np.testing.assert_array_equal(imset.sci, hdul["SCI", chip].data.astype(np.float32))
            assert exposure.primary["DETECTOR"] == chip == imset.header["DETECTOR"]
            assert exposure.rootname == "u2eq0201t" and imset.exptime == pytest.approx(0.23)


@pytest.mark.realdata
def test_reader_takes_each_group_of_the_real_waiver_fits(shared_data, hstcal_registry):
    path = shared_data / "hst/wfpc2/HST_WFPC_II.fits.gz"
    assert layout_of(path) == "waiver"
    cube = fits.getdata(path, 0)
    crpix1 = {1: 420.0, 2: 423.5, 3: 436.0, 4: 423.0}  # group table of u5780205r
    for det in DETECTORS:
        chip = det.extra["chip"]
        (imset,) = hstcal_registry.entry(det.name).read(path).imsets
        assert imset.shape == (200, 200)
        np.testing.assert_array_equal(imset.sci, cube[chip - 1])
        assert imset.header["DETECTOR"] == chip
        assert imset.header["CRPIX1"] == pytest.approx(crpix1[chip])
        assert np.all(imset.err > 0)  # noise model from the chip's gain and read noise


@pytest.mark.realdata
def test_reader_on_a_single_group_file_knows_its_chip(shared_data, hstcal_registry):
    path = shared_data / "hst/wfpc2/HST_WFPC_II_bis.fits"
    (imset,) = hstcal_registry.entry("wfpc2_wf4").read(path).imsets
    assert imset.shape == (100, 100)
    with pytest.raises(InputError, match="holds chip 4 only, not chip 1"):
        hstcal_registry.entry("wfpc2_pc").read(path)


@pytest.mark.realdata
def test_real_science_frame_is_not_a_dark(shared_data, hstcal_registry):
    path = shared_data / "hst/wfpc2/HST_WFPC_II.fits.gz"
    entry = hstcal_registry.entry("wfpc2_wf3")
    with pytest.raises(InputError, match=r"not a dark \(IMAGETYP=EXT, TARGNAME=NGC4151"):
        hstcal_registry.hooks.calibrate(detector=entry.detector, exposure=entry.read(path),
                                        options=census_options(hstcal_registry, "wfpc2_wf3"))


def test_every_layout_reads_the_same_pixels_and_dq(darks):
    registry, _, small = darks
    entry = registry.entry("wfpc2_wf2")
    images = {}
    for layout, (directory, truth) in small.items():
        exposure = entry.read(directory / truth.files[0])
        (imset,) = exposure.imsets
        assert imset.shape == (96, 128) and exposure.primary["DETECTOR"] == 2
        images[layout] = imset
    for layout in ("waiver", "geis"):
        np.testing.assert_array_equal(images[layout].sci, images["mef"].sci)
        np.testing.assert_array_equal(images[layout].dq, images["mef"].dq)
    assert np.any(images["mef"].dq & 512)  # known warm pixels, from the c1 file


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("name", NAMES)
def test_threshold_masks_find_the_injected_crs(darks, name):
    registry, (directory, truth), _ = darks
    entry = registry.entry(name)
    options = census_options(registry, name)
    calibrated = registry.hooks.calibrate(detector=entry.detector,
                                          exposure=entry.read(directory / truth.files[0]),
                                          options=options)
    assert calibrated.imsets[0].header["BUNIT"] == "ELECTRONS"
    combined = registry.hooks.reject_crs(detector=entry.detector, exposures=[calibrated],
                                         options=options)
    assert combined.masks.shape == (1, 800, 800) and combined.ncombine == 1
    score = score_cr_masks(combined.masks[0], truth.crs[(truth.rootnames[0],
                                                         entry.detector.extra["chip"])])
    assert score["n_crs"] > 1000
    assert score["completeness"] >= 0.98, score
    assert score["false_fraction"] <= 0.01, score
    assert score["pixel_false_fraction"] <= 0.03, score
    flagged = (calibrated.imsets[0].dq & options.badinpdq) != 0
    assert flagged.any() and not (combined.masks[0] & flagged).any()


def test_a_lower_threshold_floods_the_mask_with_noise(darks):
    """The scores can fail: at 2 MADs (1.3 sigma) noise dominates the mask."""
    registry, (directory, truth), _ = darks
    entry = registry.entry("wfpc2_pc")
    options = census_options(registry, "wfpc2_pc", threshold_nsigma=2.0)
    calibrated = registry.hooks.calibrate(detector=entry.detector,
                                          exposure=entry.read(directory / truth.files[0]),
                                          options=options)
    combined = registry.hooks.reject_crs(detector=entry.detector, exposures=[calibrated],
                                         options=options)
    score = score_cr_masks(combined.masks[0], truth.crs[(truth.rootnames[0], 1)])
    assert score["false_fraction"] > 0.05 and score["pixel_false_fraction"] > 0.5


# --------------------------------------------------------------------------- checks, stage
def test_defaults_threshold_each_frame_alone(hstcal_registry):
    for name in NAMES:
        entry = hstcal_registry.entry(name)
        assert entry.reader is not None and entry.simulator is not None
        options = census_options(hstcal_registry, name)
        assert options.grouping == "single" and options.threshold_nsigma == 5.0
        assert options.badinpdq & (1 | 16) == 1 | 16  # Reed-Solomon and missing data


def test_short_exposure_is_rejected_with_the_reason(tmp_path, hstcal_registry):
    truth = hstcal_registry.entry("wfpc2_pc").simulator(tmp_path, count=1, seed=2,
                                                        shape="64x64", exptime=0.05)
    entry = hstcal_registry.entry("wfpc2_wf4")
    with pytest.raises(InputError, match=r"EXPTIME 0\.05 s < 0\.1 s"):
        hstcal_registry.hooks.calibrate(detector=entry.detector,
                                        exposure=entry.read(tmp_path / truth.files[0]),
                                        options=census_options(hstcal_registry, "wfpc2_wf4"))


def test_quality_comment_in_the_shm_rejects_the_exposure(tmp_path, hstcal_registry):
    truth = hstcal_registry.entry("wfpc2_pc").simulator(tmp_path, count=1, seed=3, shape="64x64")
    with fits.open(tmp_path / f"{truth.rootnames[0]}_shm.fits", mode="update") as hdul:
        hdul[0].header["QUALCOM2"] = "Loss of lock during the exposure"
    entry = hstcal_registry.entry("wfpc2_wf3")
    with pytest.raises(InputError, match="QUALCOM says 'Loss of lock"):
        hstcal_registry.hooks.calibrate(detector=entry.detector,
                                        exposure=entry.read(tmp_path / truth.files[0]),
                                        options=census_options(hstcal_registry, "wfpc2_wf3"))


def test_crstats_stage_on_mef_darks(darks, tmp_path):
    registry, _, small = darks
    directory, truth = small["mef"]
    result = run_stage("crstats", detector="wfpc2_wf3", inputs=[directory / f for f in truth.files],
                       store=tmp_path / "census.h5", registry=registry)
    assert result.ok, result.failures
    assert result.details["n_exposures"] == 2 and result.details["n_crs"] > 0
