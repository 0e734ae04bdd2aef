"""WFC3/IR ramps: IMA → time-ordered increments (calibrate), cosmic-ray jumps (reject_crs).

Scored against the simulator's truth (hstcal_wfc3.simulate) with
:func:`hstcal_core.simulate.ramps.score_ramp_jumps`; a truth pixel is a deposit of at
least 5 × the read-pair noise (100 e⁻ for 20 e⁻): what one increment can show.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std
from hstcal_wfc3 import calibrate, reject_crs
from hstcal_wfc3.detectors import WFC3_IR, WFC3_UVIS
from hstcal_wfc3.ir import quadrant_map, read_ima
from hstcal_wfc3.simulate import sample_sequence, simulate_ir_darks
from scipy import ndimage

from hstcal_core import ConfigError, InputError, Options
from hstcal_core.algorithms.ramps import (
    detect_jumps,
    masked_median,
    parse_bunit,
    ramp_increments,
    time_order,
)
from hstcal_core.fitsio import read_exposure
from hstcal_core.simulate.ramps import score_ramp_jumps

READ_NOISE_E = 20.0  # READNSE A-D, 19.8-20.2 e- (t2c16200i_ccd)
TRUTH_PIXEL_E = 5 * READ_NOISE_E
REAL_IMA = "hst/wfc3/ir_ima/iccz11q4q_ima.fits.gz"


# --------------------------------------------------------------------------- helpers
def _pipeline(path):
    exposure = read_ima(path)
    calibrated = calibrate(detector=WFC3_IR, exposure=exposure, options=Options())
    combined = reject_crs(detector=WFC3_IR, exposures=[calibrated], options=Options())
    return exposure, calibrated, combined


def _score(truth_npz, file_index, calibrated, combined):
    return score_ramp_jumps(truth_npz, file_index, calibrated, combined,
                            truth_pixel_e=TRUTH_PIXEL_E)


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    """Two SQ512SUB SPARS25 dark ramps (16 reads) at HST's mean cosmic-ray flux."""
    out = tmp_path_factory.mktemp("wfc3_ir_darks")
    return simulate_ir_darks(out, count=2, seed=42, subarray=512, samp_seq="SPARS25", nsamp=16)


@pytest.fixture(scope="module")
def processed(darks):
    return [_pipeline(path) for path in darks["files"]]


# --------------------------------------------------------------------------- simulator
def test_simulated_ima_is_stored_like_calwf3(darks):
    with fits.open(darks["files"][0]) as hdul:
        primary = hdul[0].header
        assert (primary["INSTRUME"], primary["DETECTOR"], primary["OBSMODE"]) == (
            "WFC3", "IR", "MULTIACCUM")
        assert primary["NSAMP"] == 16 and primary["SUBTYPE"] == "SQ512SUB"
        times = [hdul["SCI", v].header["SAMPTIME"] for v in range(1, 17)]
        assert times == sorted(times, reverse=True)  # newest read first
        assert hdul["SCI", 1].data.shape == (522, 522)  # 512 + the 5-pixel reference border
        assert hdul["SCI", 1].header["BUNIT"] == "ELECTRONS/S"
        assert times[-1] == 0.0 and not hdul["SCI", 16].data.any()  # zeroth read, subtracted
        assert hdul["TIME", 3].header["PIXVALUE"] == pytest.approx(times[2])
        # LTV locates the subarray on the 1014 grid as the real SQ256SUB IMA does (-374)
        assert hdul["SCI", 1].header["LTV1"] == 5 - (1014 - 512) // 2
    spt = fits.getheader(darks["files"][0].replace("_ima.fits", "_spt.fits"))
    assert (spt["INSTRUME"], spt["ROOTNAME"], spt["FILETYPE"]) == ("WFC3", primary["ROOTNAME"],
                                                                   "SPT")
    assert "EPCHTIME" in spt and "SEMILREC" in spt  # orbital elements for the census track


def test_sample_sequences(tmp_path):
    spars = sample_sequence("SPARS25", 4, 2.932)
    assert spars.tolist() == pytest.approx([0.0, 2.932, 27.932, 52.932])
    assert sample_sequence("RAPID", 3, 0.278).tolist() == pytest.approx([0.0, 0.278, 0.556])
    with pytest.raises(ValueError, match="samp_seq"):
        sample_sequence("STEPWISE", 4, 1.0)
    with pytest.raises(ValueError, match="nsamp"):
        sample_sequence("SPARS10", 17, 2.932)
    with pytest.raises(ConfigError, match="unknown simulator argument"):
        simulate_ir_darks(tmp_path, subarray=64, exptime=100)
    with pytest.raises(ConfigError, match="subarray"):
        simulate_ir_darks(tmp_path, subarray=100)


# --------------------------------------------------------------------------- calibrate
def test_calibrate_gives_time_ordered_increments_in_electrons(darks, processed):
    exposure, calibrated, _ = processed[0]
    times = darks["exposures"][0]["sample_times"]
    assert len(calibrated.imsets) == len(times) - 1 == 15
    ends = [i.header["SAMPTIME"] for i in calibrated.imsets]
    begins = [i.header["SAMPBEG"] for i in calibrated.imsets]
    assert ends == pytest.approx(times[1:]) and begins == pytest.approx(times[:-1])
    for imset in calibrated.imsets:
        h = imset.header
        assert h["DELTATIM"] == pytest.approx(h["SAMPTIME"] - h["SAMPBEG"]) and h["DELTATIM"] > 0
        assert h["EXPTIME"] == h["DELTATIM"] and h["BUNIT"] == "ELECTRONS" and h["RAMPDIFF"]
        assert imset.shape == (512, 512)  # reference border trimmed
        assert h["LTV1"] == exposure.imsets[0].header["LTV1"] - 5
    assert [i.header["EXTVER"] for i in calibrated.imsets] == list(range(1, 16))
    # the primary keeps every original keyword and value
    for card in exposure.primary.cards:
        if card.keyword not in ("HISTORY", "COMMENT", ""):
            assert calibrated.primary[card.keyword] == card.value
    # ERR: read-pair noise and Poisson of the increment
    first = calibrated.imsets[1]
    assert np.median(first.err) == pytest.approx(READ_NOISE_E, rel=0.03)
    # increments hold ~20 e- of read noise about the 0.05 e-/s dark: not rates, not DN
    stack = np.stack([i.sci for i in calibrated.imsets[1:]])
    assert np.median(stack) == pytest.approx(0.05 * 25.0, abs=0.5)
    assert mad_std(stack) == pytest.approx(READ_NOISE_E, rel=0.05)


def test_calibrate_does_not_modify_its_input(darks):
    exposure = read_ima(darks["files"][0])
    before = [(i.sci.copy(), i.header.tostring()) for i in exposure.imsets]
    calibrate(detector=WFC3_IR, exposure=exposure, options=Options())
    for (sci, header), imset in zip(before, exposure.imsets):
        assert np.array_equal(sci, imset.sci) and header == imset.header.tostring()


@pytest.mark.parametrize("bunit", ["COUNTS", "ELECTRONS", "COUNTS/S"])
def test_units_counts_and_rates_give_the_same_electrons(tmp_path, bunit):
    """The same ramp stored as e-/s (calwf3 default), DN, e- and DN/s: same increments."""
    kw = dict(count=1, seed=7, subarray=64, samp_seq="SPARS10", nsamp=6, cr_rate=50.0)
    ref = simulate_ir_darks(tmp_path / "rate", **kw)
    other = simulate_ir_darks(tmp_path / bunit.replace("/", "_"), bunit=bunit, **kw)
    a = calibrate(detector=WFC3_IR, exposure=read_ima(ref["files"][0]), options=Options())
    b = calibrate(detector=WFC3_IR, exposure=read_ima(other["files"][0]), options=Options())
    assert fits.getval(other["files"][0], "BUNIT", extname="SCI", extver=1) == bunit
    for x, y in zip(a.imsets, b.imsets):
        assert np.allclose(x.sci, y.sci, rtol=1e-4, atol=0.05)
    # a unit mix-up (DN taken as e-, or rates as charge) would be off by >2x
    sci = np.stack([i.sci for i in a.imsets])
    assert sci.max() > 300  # cosmic rays are present in e-


def test_gains_follow_the_calwf3_quadrants():
    """B lower-left, C lower-right, A upper-left, D upper-right (calwf3 noiscalc)."""
    values = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0}
    full = quadrant_map(fits.Header({"LTV1": 0.0, "LTV2": 0.0}), (1014, 1014), values, (1014, 1014))
    assert (full[0, 0], full[0, -1], full[-1, 0], full[-1, -1]) == (2.0, 3.0, 1.0, 4.0)
    assert full[506, 506] == 2.0 and full[507, 507] == 4.0
    # the real SQ256SUB IMA (LTV -374, trimmed -379) straddles the centre
    sub = quadrant_map(fits.Header({"LTV1": -379.0, "LTV2": -379.0}), (256, 256), values,
                       (1014, 1014))
    assert (sub[127, 127], sub[127, 128], sub[128, 127], sub[128, 128]) == (2.0, 3.0, 1.0, 4.0)


def test_file_order_of_the_reads_does_not_matter(darks):
    exposure = read_ima(darks["files"][0])
    shuffled = replace(exposure, imsets=tuple(exposure.imsets[i] for i in
                                              np.random.default_rng(3).permutation(16)))
    a = calibrate(detector=WFC3_IR, exposure=exposure, options=Options())
    b = calibrate(detector=WFC3_IR, exposure=shuffled, options=Options())
    for x, y in zip(a.imsets, b.imsets):
        assert np.array_equal(x.sci, y.sci) and x.header["SAMPTIME"] == y.header["SAMPTIME"]


def test_calibrate_rejects_what_is_not_a_ramp(darks):
    exposure = read_ima(darks["files"][0])
    one = replace(exposure, imsets=exposure.imsets[:1])
    with pytest.raises(InputError, match="1 SCI imset.*single-image product"):
        calibrate(detector=WFC3_IR, exposure=one, options=Options())
    header = exposure.imsets[2].header.copy()
    del header["SAMPTIME"]
    broken = replace(exposure, imsets=exposure.imsets[:2] + (replace(exposure.imsets[2],
                                                                     header=header),)
                     + exposure.imsets[3:])
    with pytest.raises(InputError, match="SCI,3 has no SAMPTIME"):
        calibrate(detector=WFC3_IR, exposure=broken, options=Options())
    header = exposure.imsets[0].header.copy()
    header["BUNIT"] = "JY/PIXEL"
    odd = replace(exposure, imsets=(replace(exposure.imsets[0], header=header),)
                  + exposure.imsets[1:])
    with pytest.raises(InputError, match="BUNIT"):
        calibrate(detector=WFC3_IR, exposure=odd, options=Options())
    calibrated = calibrate(detector=WFC3_IR, exposure=exposure, options=Options())
    with pytest.raises(InputError, match="already split"):
        calibrate(detector=WFC3_IR, exposure=calibrated, options=Options())
    with pytest.raises(InputError, match="run calibrate"):
        reject_crs(detector=WFC3_IR, exposures=[exposure], options=Options())


def test_hooks_answer_only_for_the_ir_channel(darks):
    exposure = read_ima(darks["files"][0])
    assert calibrate(detector=WFC3_UVIS, exposure=exposure, options=Options()) is None
    assert reject_crs(detector=WFC3_UVIS, exposures=[exposure], options=Options()) is None


def test_registry_offers_crstats_reader_and_simulator(hstcal_registry, tmp_path):
    entry = hstcal_registry.entry("wfc3_ir")
    assert "crstats" in entry.stages
    assert {p.name for p in entry.stages["crstats"]} >= {"ir_jump_sigma", "ir_neighbor_sigma"}
    assert entry.reader is read_ima
    assert entry.defaults["crstats"]["grouping"] == "single"  # a ramp needs no partner
    truth = entry.simulator(tmp_path, count=1, seed=1, subarray=64, nsamp=3)
    assert len(truth["files"]) == 1 and (tmp_path / "truth.json").exists()


# --------------------------------------------------------------------------- jumps
def test_cosmic_rays_found_on_the_read_where_they_landed(processed, darks):
    scores = [_score(darks["truth_npz"], k, cal, comb) for k, (_, cal, comb) in
              enumerate(processed)]
    countable = sum(s["countable"] for s in scores)
    found = sum(s["found"] for s in scores)
    objects = sum(s["objects"] for s in scores)
    false = sum(s["false"] for s in scores)
    false_big = sum(s["false_big"] for s in scores)
    assert countable > 300  # enough cosmic rays for a 1 % statement
    assert found / countable >= 0.98
    assert false / objects <= 0.01
    assert false_big / objects <= 0.01
    ratios = np.concatenate([s["energy_ratio"] for s in scores])
    assert np.median(ratios) == pytest.approx(1.0, abs=0.02)
    assert all(s["energy_sum_ratio"] == pytest.approx(1.0, abs=0.02) for s in scores)
    assert all(s["captured"] > 0.9 for s in scores)  # the rest sits in sub-3-sigma wings


def test_masks_are_not_smeared_onto_other_reads(processed, darks):
    """Shifting the truth by one read finds (almost) nothing: the label is the landing read."""
    _, calibrated, combined = processed[0]
    s = _score(darks["truth_npz"], 0, calibrated, combined)
    inc, y, x, big = s["increment"], s["y"], s["x"], s["big"]
    right = combined.masks[inc[big], y[big], x[big]].mean()
    later = inc[big] + 1 < combined.masks.shape[0]
    shifted = combined.masks[inc[big][later] + 1, y[big][later], x[big][later]].mean()
    assert right > 0.95 and shifted < 0.01


def test_combined_image_describes_the_ramp(processed, darks):
    _, calibrated, combined = processed[0]
    assert combined.masks.shape == (15, 512, 512) and combined.masks.dtype == bool
    root = calibrated.rootname
    assert combined.sources == tuple((root, k) for k in range(1, 16))
    assert combined.texptime == pytest.approx(darks["exposures"][0]["sample_times"][-1])
    assert combined.ncombine == 15 and combined.n_rejected == int(combined.masks.sum())
    # clean accumulated dark: 0.05 e-/s x 353 s for most pixels, CR pixels included
    assert np.median(combined.sci) == pytest.approx(0.05 * combined.texptime, abs=1.5)
    assert np.all(combined.dq[combined.masks.any(axis=0)] & 8192)
    assert combined.header["BUNIT"] == "ELECTRONS"


def test_hot_pixels_are_not_jumps(processed, darks):
    """Unflagged hot pixels (up to 50 e-/s) follow their Poisson noise: no false jumps."""
    t = np.load(darks["truth_npz"])
    _, _, combined = processed[0]
    hot = t["hot_file"] == 0
    y, x = t["hot_y"][hot], t["hot_x"][hot]
    cr_pixels = np.zeros(combined.masks.shape[1:], bool)
    on = t["cr_file"][t["dep_cr"]] == 0
    cr_pixels[t["dep_y"][on], t["dep_x"][on]] = True
    quiet = ~cr_pixels[y, x]
    assert quiet.sum() > 100
    assert combined.masks[:, y[quiet], x[quiet]].sum() <= 2
    rate = combined.sci[y[quiet], x[quiet]] / combined.texptime
    assert np.median(rate / t["hot_rate"][hot][quiet]) == pytest.approx(1.0, abs=0.03)


def test_a_tighter_threshold_finds_more_noise():
    """The threshold is live: 3 sigma on pure noise flags ~1000x more than 5 sigma."""
    rng = np.random.default_rng(0)
    increments = rng.normal(0.0, READ_NOISE_E, (10, 200, 200)).astype(np.float32)
    loose = detect_jumps(increments, np.full(10, 25.0), READ_NOISE_E, nsigma=3.0,
                         neighbor_sigma=3.0)
    strict = detect_jumps(increments, np.full(10, 25.0), READ_NOISE_E)
    assert strict.n_flagged <= 5 and loose.n_flagged > 100


# --------------------------------------------------------------------------- kernel
def test_kernel_units_and_order_helpers():
    assert parse_bunit("ELECTRONS/S") == (True, True)
    assert parse_bunit("counts") == (False, False)
    assert parse_bunit(" DN/S ") == (True, False)
    with pytest.raises(ValueError, match="BUNIT"):
        parse_bunit("MJy/sr")
    assert time_order([0.8, 0.5, 0.2, 0.0]).tolist() == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="share"):
        time_order([1.0, 1.0])
    reads = np.array([0.0, 10.0, 10.0, 10.0])[:, None, None] * np.ones((4, 2, 2))
    split = ramp_increments(reads, [0.0, 1.0, 2.0, 4.0], rate_units=True, scale=2.0)
    assert split.increments[:, 0, 0].tolist() == [20.0, 20.0, 40.0]  # rates x SAMPTIME x gain
    assert split.intervals.tolist() == [1.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="increasing"):
        ramp_increments(reads, [0.0, 2.0, 1.0, 4.0])
    values = np.array([[5.0], [1.0], [3.0], [100.0]])[:, :, None]
    good = np.array([[True], [True], [True], [False]])[:, :, None]
    median, n = masked_median(values, good)
    assert median[0, 0] == 3.0 and n[0, 0] == 3


def test_kernel_flags_two_jumps_in_one_pixel_and_respects_dq():
    rng = np.random.default_rng(5)
    increments = (rng.normal(0, 20, (12, 30, 30)) + 0.5 * 25).astype(np.float32)
    increments[3, 10, 10] += 800
    increments[8, 10, 10] += 500
    increments[3, 10, 11] = 0.5 * 25 + 80  # a neighbour 4 sigma up: flagged, not primary
    increments[5, 20, 20] += 900
    bad = np.zeros(increments.shape, bool)
    bad[5, 20, 20] = True  # a saturated/bad increment is never a jump
    jumps = detect_jumps(increments, np.full(12, 25.0), 20.0, bad=bad)
    assert jumps.primary[3, 10, 10] and jumps.primary[8, 10, 10]
    assert jumps.mask[3, 10, 11] and not jumps.primary[3, 10, 11]
    assert not jumps.mask[5, 20, 20]
    assert jumps.rate[10, 10] == pytest.approx(0.5, abs=0.5)  # jumps left out of the rate
    assert jumps.mask.sum() == 3


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_ima_iccz11q4q(shared_data):
    """iccz11q4q (SQ256SUB, RAPID, NSAMP=4, ELECTRONS/S): 3 increments of 0.278 s.

    Expected cosmic rays: 1.2 cm-2 s-1 x 256^2 (18 um)^2 x 0.83 s = 0.2; the grism
    spectrum of WASP-12 in the field must not read as jumps."""
    exposure, calibrated, combined = _pipeline(shared_data / REAL_IMA)
    assert len(exposure.imsets) == 4 and exposure.imsets[0].header["SAMPTIME"] > 0.8
    assert [i.header["SAMPTIME"] for i in calibrated.imsets] == pytest.approx(
        [0.277815, 0.55563, 0.833445])
    assert all(i.header["DELTATIM"] == pytest.approx(0.277815) for i in calibrated.imsets)
    assert calibrated.imsets[0].shape == (256, 256)
    stack = np.stack([i.sci for i in calibrated.imsets])
    assert abs(np.median(stack)) < 2.0  # electrons per 0.28 s, dark plus sky
    assert mad_std(stack) == pytest.approx(READ_NOISE_E, rel=0.2)
    objects = sum(ndimage.label(m, structure=np.ones((3, 3)))[1] for m in combined.masks)
    assert objects <= 3
    assert combined.texptime == pytest.approx(0.833445)
    assert read_exposure(shared_data / REAL_IMA).imsets[0].header["BUNIT"] == "ELECTRONS/S"

