"""WFC3/UVIS in the cosmic-ray census: simulated dark pairs scored against their truth,
the artifact filters, wf3rej's CRREJTAB values and a real calwf3 FLC."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core import InputError, run_stage
from hstcal_core.combine import combine_exposures
from hstcal_core.fitsio import read_exposure
from hstcal_core.images import Exposure
from hstcal_core.options import resolve_options
from hstcal_core.simulate.darks import score_cr_masks
from hstcal_core.stages import stage, stage_params

NAME = "wfc3_uvis"


def census_options(registry, **overrides):
    entry = registry.entry(NAME)
    return resolve_options(stage_params(stage("crstats"), entry),
                           plugin_defaults=entry.defaults["crstats"], cli=overrides)


def per_chip(exposures, k):
    return [Exposure(e.path, e.primary, (e.imsets[k],)) for e in exposures]


def calibrated(registry, directory, truth, options):
    detector = registry.detector(NAME)
    return [registry.hooks.calibrate(detector=detector, exposure=read_exposure(directory / f),
                                     options=options) for f in truth.files]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from hstcal_core.registry import build_registry

    registry = build_registry()
    directory = tmp_path_factory.mktemp("uvis")
    truth = registry.entry(NAME).simulator(directory, count=2, seed=12, shape="256x512",
                                           exptime=900.0)
    return registry, directory, truth


def test_crstats_registered_with_wf3rej_census_defaults(hstcal_registry):
    entry = hstcal_registry.entry(NAME)
    assert "crstats" in entry.stages and entry.simulator is not None
    options = census_options(hstcal_registry)
    assert options.crsigmas == (8.0, 6.0, 4.0)  # HSTcosmicrays wf3rej call
    assert (options.initgues, options.skysub) == ("median", "mode")
    assert (options.crradius, options.crthresh, options.badinpdq) == (2.1, 0.5555, 32575)


def test_defaults_match_the_uvis_crrejtab(shared_data):
    from hstcal_wfc3.uvis import CRSTATS_DEFAULTS

    with fits.open(shared_data / "hst/reference_tables/n9i1435li_crr_UVIS.fits") as hdul:
        rows = hdul[1].data
        assert np.allclose(rows["CRRADIUS"], CRSTATS_DEFAULTS["crradius"])
        assert np.allclose(rows["CRTHRESH"], CRSTATS_DEFAULTS["crthresh"])
        assert set(rows["BADINPDQ"]) == {CRSTATS_DEFAULTS["badinpdq"]}
    assert CRSTATS_DEFAULTS["badinpdq"] & 3 == 3  # Reed-Solomon and fill bits excluded


def test_pair_masks_find_the_injected_crs(pair):
    registry, directory, truth = pair
    options = census_options(registry)
    detector = registry.detector(NAME)
    exposures = calibrated(registry, directory, truth, options)
    found = eligible = 0
    for k in range(2):
        combined = registry.hooks.reject_crs(detector=detector, exposures=per_chip(exposures, k),
                                             options=options)
        for j, root in enumerate(truth.rootnames):
            score = score_cr_masks(combined.masks[j], truth.crs[(root, k + 1)])
            found, eligible = found + score["n_found"], eligible + score["n_crs"]
            assert score["n_crs"] > 100
            assert score["false_fraction"] <= 0.01, score
            assert score["pixel_false_fraction"] <= 0.02, score
    assert found / eligible >= 0.98


def test_generic_median_pair_flags_both_images(pair):
    registry, directory, truth = pair
    options = census_options(registry)
    exposures = calibrated(registry, directory, truth, options)
    combined = combine_exposures(registry.detector(NAME), per_chip(exposures, 1), options)
    score = score_cr_masks(combined.masks[0], truth.crs[(truth.rootnames[0], 2)])
    assert score["false_fraction"] > 0.3


def test_fill_streak_gives_no_crs_in_either_exposure(tmp_path, hstcal_registry):
    truth = hstcal_registry.entry(NAME).simulator(tmp_path, count=2, seed=2, shape="128x256")
    rows = slice(40, 52)
    with fits.open(tmp_path / truth.files[1], mode="update") as hdul:
        hdul["SCI", 2].data[rows] = -3000.0  # zero fill after bias removal
        hdul["DQ", 2].data[rows] |= 2
    options = census_options(hstcal_registry)
    exposures = calibrated(hstcal_registry, tmp_path, truth, options)
    detector = hstcal_registry.detector(NAME)
    combined = hstcal_registry.hooks.reject_crs(detector=detector,
                                                exposures=per_chip(exposures, 1), options=options)
    assert not combined.masks[:, rows].any()
    assert combined.masks[0].sum() > 50  # elsewhere the CRs are still found
    plain = combine_exposures(detector, per_chip(exposures, 1), options.replace(badinpdq=0))
    assert plain.masks[0][rows].sum() > 1000


@pytest.mark.parametrize("subarray", [False, True], ids=["full", "subarray"])
def test_short_exposures_are_rejected_with_the_reason(tmp_path, hstcal_registry, subarray):
    truth = hstcal_registry.entry(NAME).simulator(tmp_path, count=2, seed=1, shape="64x128",
                                                  exptime=0.08, subarray=subarray)
    with pytest.raises(InputError, match=r"EXPTIME 0\.08 s < 0\.1 s"):
        hstcal_registry.hooks.calibrate(detector=hstcal_registry.detector(NAME),
                                        exposure=read_exposure(tmp_path / truth.files[0]),
                                        options=census_options(hstcal_registry))
    result = run_stage("crstats", detector=NAME, inputs=[tmp_path / f for f in truth.files],
                       store=tmp_path / "census.h5", registry=hstcal_registry)
    assert [why for _, why in result.failures] and all(
        "EXPTIME 0.08 s" in why for _, why in result.failures)


def test_counts_become_electrons(tmp_path, hstcal_registry):
    entry = hstcal_registry.entry(NAME)
    counts = entry.simulator(tmp_path / "c", count=1, seed=6, shape="32x64", bunit="COUNTS")
    electrons = entry.simulator(tmp_path / "e", count=1, seed=6, shape="32x64")
    cal = hstcal_registry.hooks.calibrate(
        detector=entry.detector, exposure=read_exposure(tmp_path / "c" / counts.files[0]),
        options=census_options(hstcal_registry))
    ref = read_exposure(tmp_path / "e" / electrons.files[0])
    for k in range(2):
        assert cal.imsets[k].header["BUNIT"] == "ELECTRONS"
        np.testing.assert_allclose(cal.imsets[k].sci, ref.imsets[k].sci, rtol=1e-5, atol=1e-3)


def test_crstats_stage_records_both_exposures(tmp_path, hstcal_registry):
    truth = hstcal_registry.entry(NAME).simulator(tmp_path, count=2, seed=9, shape="128x256")
    result = run_stage("crstats", detector=NAME, inputs=[tmp_path / f for f in truth.files],
                       store=tmp_path / "census.h5", registry=hstcal_registry)
    assert result.ok, result.failures
    assert result.details["n_exposures"] == 2
    injected = sum(c.n_crs for c in truth.crs.values())
    assert 0.6 * injected < result.details["n_crs"] <= injected


@pytest.mark.realdata
def test_real_uvis_flc_is_not_a_dark(shared_data, hstcal_registry):
    path = shared_data / "hst/wfc3/flt_cutouts/sample_ipppssoot_flc.fits"
    with pytest.raises(InputError, match=r"not a dark \(TARGNAME=ANY"):
        hstcal_registry.hooks.calibrate(detector=hstcal_registry.detector(NAME),
                                        exposure=read_exposure(path),
                                        options=census_options(hstcal_registry))
    # the same FLC passes every other check and is converted with its own header values
    cal = hstcal_registry.hooks.calibrate(detector=hstcal_registry.detector(NAME),
                                          exposure=read_exposure(path),
                                          options=census_options(hstcal_registry,
                                                                 require_dark=False))
    assert [i.header["BUNIT"] for i in cal.imsets] == ["ELECTRONS", "ELECTRONS"]
    assert 3.0 < cal.primary["READNSE"] < 3.2  # READNSEA-D of t291659mi_ccd.fits
