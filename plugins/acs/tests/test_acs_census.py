"""ACS/WFC and ACS/HRC in the cosmic-ray census: simulated dark pairs scored against their
truth, the artifact filters, and the real HRC raws and SBC darks of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core import InputError, run_stage
from hstcal_core.combine import combine_exposures
from hstcal_core.fitsio import read_exposure
from hstcal_core.images import Exposure
from hstcal_core.options import resolve_options
from hstcal_core.simulate.darks import load_dark_truth, score_cr_masks
from hstcal_core.stages import stage, stage_params

SMALL = {"acs_wfc": "256x512", "acs_hrc": "384x384"}


def census_options(registry, name, **overrides):
    entry = registry.entry(name)
    return resolve_options(stage_params(stage("crstats"), entry),
                           plugin_defaults=entry.defaults["crstats"], cli=overrides)


def per_chip(exposures, k):
    return [Exposure(e.path, e.primary, (e.imsets[k],)) for e in exposures]


def calibrated(registry, name, directory, truth, options):
    entry = registry.entry(name)
    return [registry.hooks.calibrate(detector=entry.detector, exposure=read_exposure(directory / f),
                                     options=options) for f in truth.files]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from hstcal_core.registry import build_registry

    registry = build_registry()
    out = {}
    for name, shape in SMALL.items():
        directory = tmp_path_factory.mktemp(name)
        truth = registry.entry(name).simulator(directory, count=2, seed=11, shape=shape,
                                               exptime=1000.0)
        out[name] = (directory, truth)
    return registry, out


# --------------------------------------------------------------------------- registration
def test_crstats_registered_with_acsrej_census_defaults(hstcal_registry):
    for name in ("acs_wfc", "acs_hrc"):
        entry = hstcal_registry.entry(name)
        assert "crstats" in entry.stages and entry.simulator is not None
        options = census_options(hstcal_registry, name)
        assert options.crsigmas == (6.0, 5.0, 4.0)  # HSTcosmicrays acsrej call
        assert (options.initgues, options.skysub) == ("median", "mode")
        assert (options.crradius, options.crthresh) == (2.1, 0.5555)
        assert options.badinpdq == 35 and options.scalense == 0.0
        assert options.require_dark is True


def test_defaults_match_the_acs_crrejtabs(shared_data):
    """crradius/crthresh from 29p1548cj (WFC) and n4e12510j (HRC); BADINPDQ 39 less bit 4."""
    from hstcal_acs.census import CRSTATS_DEFAULTS

    for table in ("29p1548cj_crr_WFC.fits", "n4e12510j_crr_HRC.fits"):
        with fits.open(shared_data / "hst/reference_tables" / table) as hdul:
            rows = hdul[1].data
            assert np.allclose(rows["CRRADIUS"], CRSTATS_DEFAULTS["crradius"])
            assert np.allclose(rows["CRTHRESH"], CRSTATS_DEFAULTS["crthresh"], atol=1e-4)
            assert set(rows["BADINPDQ"]) == {39}
    assert CRSTATS_DEFAULTS["badinpdq"] == 39 & ~4


# --------------------------------------------------------------------------- truth scores
@pytest.mark.parametrize("name", sorted(SMALL))
def test_pair_masks_find_the_injected_crs(pairs, name):
    registry, sims = pairs
    directory, truth = sims[name]
    options = census_options(registry, name)
    detector = registry.detector(name)
    exposures = calibrated(registry, name, directory, truth, options)
    found = eligible = 0
    for k, imset in enumerate(exposures[0].imsets):
        combined = registry.hooks.reject_crs(detector=detector, exposures=per_chip(exposures, k),
                                             options=options)
        assert combined.masks.shape == (2,) + imset.shape
        extver = k + 1
        for j, root in enumerate(truth.rootnames):
            score = score_cr_masks(combined.masks[j], truth.crs[(root, extver)])
            found, eligible = found + score["n_found"], eligible + score["n_crs"]
            assert score["n_crs"] > 100
            assert score["false_fraction"] <= 0.01, score
            assert score["pixel_false_fraction"] <= 0.02, score
    # CRs ≥ 3 px; the misses are CRs landing on a CR of the partner exposure
    assert found / eligible >= 0.98


def test_a_triple_keeps_only_positive_deviations(tmp_path, hstcal_registry):
    """An odd dark joins the last pair (the stage's grouping); where two of three images
    hold cosmic rays the clean one deviates from the median too, but downwards."""
    name = "acs_wfc"
    truth = hstcal_registry.entry(name).simulator(tmp_path, count=3, seed=4, shape="256x512")
    options = census_options(hstcal_registry, name)
    exposures = calibrated(hstcal_registry, name, tmp_path, truth, options)
    combined = hstcal_registry.hooks.reject_crs(detector=hstcal_registry.detector(name),
                                                exposures=per_chip(exposures, 0),
                                                options=options)
    plain = combine_exposures(hstcal_registry.detector(name), per_chip(exposures, 0), options)
    n_false_plain = 0
    for j, root in enumerate(truth.rootnames):
        score = score_cr_masks(combined.masks[j], truth.crs[(root, 1)])
        assert score["completeness"] >= 0.98 and score["false_fraction"] <= 0.005, score
        n_false_plain += score_cr_masks(plain.masks[j], truth.crs[(root, 1)])["n_false"]
    assert n_false_plain >= 5


def test_generic_median_pair_flags_both_images(pairs):
    """Why the pair rule exists: the median of two is their mean, so the core's plain
    combination flags every CR in both exposures (half the objects are false)."""
    registry, sims = pairs
    directory, truth = sims["acs_wfc"]
    options = census_options(registry, "acs_wfc")
    detector = registry.detector("acs_wfc")
    exposures = calibrated(registry, "acs_wfc", directory, truth, options)
    combined = combine_exposures(detector, per_chip(exposures, 0), options)
    score = score_cr_masks(combined.masks[1], truth.crs[(truth.rootnames[1], 1)])
    assert score["false_fraction"] > 0.3


def test_truth_round_trips(pairs):
    _, sims = pairs
    directory, truth = sims["acs_wfc"]
    back = load_dark_truth(directory)
    assert back.files == truth.files and back.rootnames == truth.rootnames
    for key, crs in truth.crs.items():
        assert np.array_equal(back.crs[key].charge_e, crs.charge_e)
        assert np.array_equal(back.crs[key].y, crs.y)
    assert (directory / f"{truth.rootnames[0]}_spt.fits").exists()


# --------------------------------------------------------------------------- calibration
def test_counts_become_electrons_with_each_amplifier_gain(tmp_path, hstcal_registry):
    entry = hstcal_registry.entry("acs_wfc")
    sims = {}
    for bunit in ("COUNTS", "ELECTRONS"):
        sims[bunit] = entry.simulator(tmp_path / bunit, count=1, seed=4, shape="64x128",
                                      gain=2, bunit=bunit)
    options = census_options(hstcal_registry, "acs_wfc")
    raw = read_exposure(tmp_path / "COUNTS" / sims["COUNTS"].files[0])
    cal = hstcal_registry.hooks.calibrate(detector=entry.detector, exposure=raw, options=options)
    ref = read_exposure(tmp_path / "ELECTRONS" / sims["ELECTRONS"].files[0])
    for k in range(2):
        assert cal.imsets[k].header["BUNIT"] == "ELECTRONS"
        np.testing.assert_allclose(cal.imsets[k].sci, ref.imsets[k].sci, rtol=1e-5, atol=1e-3)
    # SCI,1 is WFC2 (amps C|D), read by two amplifiers split at the middle column
    left, right = raw.imsets[0].sci[:, :64], raw.imsets[0].sci[:, 64:]
    np.testing.assert_allclose(cal.imsets[0].sci[:, :64], left * raw.primary["ATODGNC"],
                               rtol=1e-6)
    np.testing.assert_allclose(cal.imsets[0].sci[:, 64:], right * raw.primary["ATODGND"],
                               rtol=1e-6)
    assert cal.primary["ATODGAIN"] == 1.0 and cal.primary["READNSE"] > 4
    assert raw.imsets[0].header["BUNIT"] == "COUNTS"  # the input is untouched


def _set_fill(path: Path, extver: int, rows: slice) -> None:
    with fits.open(path, mode="update") as hdul:
        hdul["SCI", extver].data[rows] = -4000.0  # zero fill after bias removal
        hdul["DQ", extver].data[rows] |= 2


def test_fill_pixels_are_left_out_of_cr_detection(tmp_path, hstcal_registry):
    """A Reed-Solomon/fill streak (DQ 2, SCI 0) in one exposure: no CR in either exposure
    there; the rest of the frame is still scored against the truth."""
    name = "acs_wfc"
    entry = hstcal_registry.entry(name)
    truth = entry.simulator(tmp_path, count=2, seed=21, shape="256x512", exptime=1000.0)
    rows = slice(100, 120)
    _set_fill(tmp_path / truth.files[0], 1, rows)
    options = census_options(hstcal_registry, name)
    exposures = calibrated(hstcal_registry, name, tmp_path, truth, options)
    combined = hstcal_registry.hooks.reject_crs(detector=entry.detector,
                                                exposures=per_chip(exposures, 0), options=options)
    assert not combined.masks[:, rows].any()
    assert combined.parameters["badinpdq"] & 2
    outside = np.ones(combined.masks.shape[1:], bool)
    outside[rows.start - 3:rows.stop + 3] = False
    for j, root in enumerate(truth.rootnames):
        crs = truth.crs[(root, 1)]
        keep = outside[crs.y, crs.x]
        from dataclasses import replace

        ids = np.unique(crs.cr_id[~keep])
        clean = ~np.isin(crs.cr_id, ids)
        trimmed = replace(crs, y=crs.y[clean], x=crs.x[clean], charge_e=crs.charge_e[clean],
                          cr_id=crs.cr_id[clean])
        score = score_cr_masks(combined.masks[j] & outside, trimmed)
        assert score["completeness"] >= 0.97 and score["false_fraction"] <= 0.01
    # Without the rule (bit 2 not excluded, plain combination) the partner lights up.
    plain = combine_exposures(entry.detector, per_chip(exposures, 0),
                              options.replace(badinpdq=0))
    assert plain.masks[1][rows].sum() > 1000


@pytest.mark.parametrize("subarray", [False, True], ids=["full", "subarray"])
def test_short_exposures_are_rejected_with_the_reason(tmp_path, hstcal_registry, subarray):
    entry = hstcal_registry.entry("acs_wfc")
    truth = entry.simulator(tmp_path, count=2, seed=3, shape="64x128", exptime=0.05,
                            subarray=subarray, ccdamp="C")
    options = census_options(hstcal_registry, "acs_wfc")
    with pytest.raises(InputError, match=r"EXPTIME 0\.05 s < 0\.1 s"):
        hstcal_registry.hooks.calibrate(detector=entry.detector,
                                        exposure=read_exposure(tmp_path / truth.files[0]),
                                        options=options)
    result = run_stage("crstats", detector="acs_wfc", inputs=[tmp_path / f for f in truth.files],
                       store=tmp_path / "census.h5", registry=hstcal_registry)
    assert len(result.failures) == 2
    assert all("EXPTIME 0.05 s" in why for _, why in result.failures)


def test_quality_comment_in_the_spt_rejects_the_exposure(tmp_path, hstcal_registry):
    entry = hstcal_registry.entry("acs_hrc")
    truth = entry.simulator(tmp_path, count=1, seed=5, shape="64x64")
    root = truth.rootnames[0]
    with fits.open(tmp_path / f"{root}_spt.fits", mode="update") as hdul:
        hdul[0].header["QUALCOM1"] = "Data lost due to a tape recorder problem"
    with pytest.raises(InputError, match="QUALCOM says 'Data lost"):
        hstcal_registry.hooks.calibrate(detector=entry.detector,
                                        exposure=read_exposure(tmp_path / truth.files[0]),
                                        options=census_options(hstcal_registry, "acs_hrc"))


def test_crstats_stage_records_both_exposures(tmp_path, hstcal_registry):
    entry = hstcal_registry.entry("acs_wfc")
    truth = entry.simulator(tmp_path, count=2, seed=8, shape="128x256")
    result = run_stage("crstats", detector="acs_wfc", inputs=[tmp_path / f for f in truth.files],
                       store=tmp_path / "census.h5", registry=hstcal_registry)
    assert result.ok, result.failures
    assert result.details["n_exposures"] == 2
    injected = sum(c.n_crs for c in truth.crs.values())
    assert 0.6 * injected < result.details["n_crs"] <= injected


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_hrc_raw_is_not_a_dark(shared_data, hstcal_registry, tmp_path):
    path = shared_data / "hst/acs/hrc_raw/j8bt05njq_raw.fits.gz"
    detector = hstcal_registry.detector("acs_hrc")
    options = census_options(hstcal_registry, "acs_hrc")
    with pytest.raises(InputError, match=r"not a dark \(TARGNAME=NGC104"):
        hstcal_registry.hooks.calibrate(detector=detector, exposure=read_exposure(path),
                                        options=options)
    # the same raw relabelled as a dark is still a raw, not an FLT
    with fits.open(path) as hdul:
        hdul[0].header["TARGNAME"] = "DARK"
        hdul.writeto(tmp_path / "j8bt05njq_raw.fits")
    with pytest.raises(InputError, match="raw file"):
        hstcal_registry.hooks.calibrate(detector=detector,
                                        exposure=read_exposure(tmp_path / "j8bt05njq_raw.fits"),
                                        options=options)


@pytest.mark.realdata
def test_real_sbc_dark_is_a_mama_and_not_supported(shared_data, hstcal_registry):
    path = shared_data / "hst/acs/sbc_dark/jcrx01iiq_raw.fits.gz"
    for name in ("acs_hrc", "acs_wfc"):
        with pytest.raises(InputError, match="ACS/SBC, a MAMA.*not supported"):
            hstcal_registry.hooks.calibrate(detector=hstcal_registry.detector(name),
                                            exposure=read_exposure(path),
                                            options=census_options(hstcal_registry, name))
