"""NICMOS ramps: IMA → time-ordered increments (calibrate), cosmic-ray jumps (reject_crs).

Scored against the simulator's truth (hstcal_nicmos.simulate) with
:func:`hstcal_core.simulate.ramps.score_ramp_jumps`; a truth pixel is a deposit of at
least 5 × the camera's read-pair noise (130 / 130 / 145 e⁻).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std
from hstcal_nicmos import calibrate, reject_crs
from hstcal_nicmos.detectors import DETECTORS, NICMOS_NIC2
from hstcal_nicmos.ramps import camera_gain, camera_read_noise, read_ima
from hstcal_nicmos.simulate import sample_sequence, simulate_nicmos_darks

from hstcal_core import ConfigError, InputError, Options
from hstcal_core.fitsio import read_exposure
from hstcal_core.simulate.ramps import score_ramp_jumps

CAMERAS = {int(d.extra["camera"]): d for d in DETECTORS}


# --------------------------------------------------------------------------- helpers
def _pipeline(path, detector):
    exposure = read_ima(path)
    calibrated = calibrate(detector=detector, exposure=exposure, options=Options())
    combined = reject_crs(detector=detector, exposures=[calibrated], options=Options())
    return exposure, calibrated, combined


@pytest.fixture(scope="module")
def nic2(tmp_path_factory):
    """Two NIC2 STEP64 dark ramps (16 reads, 448 s) at HST's mean cosmic-ray flux."""
    return simulate_nicmos_darks(tmp_path_factory.mktemp("nic2"), camera=2, count=2, seed=8)


# --------------------------------------------------------------------------- simulator
def test_simulated_ima_is_stored_like_calnica(nic2):
    with fits.open(nic2["files"][0]) as hdul:
        primary = hdul[0].header
        assert (primary["INSTRUME"], primary["CAMERA"], primary["OBSMODE"]) == (
            "NICMOS", 2, "MULTIACCUM")
        assert primary["NSAMP"] == 16 and primary["ADCGAIN"] == camera_gain(NICMOS_NIC2)
        times = [hdul["SCI", v].header["SAMPTIME"] for v in range(1, 17)]
        assert times == sorted(times, reverse=True)  # newest read first
        assert hdul["SCI", 1].data.shape == (256, 256)
        assert hdul["SCI", 1].header["BUNIT"] == "COUNTS/S"
        assert times[-1] == 0.0 and not hdul["SCI", 16].data.any()
        assert hdul["TIME", 1].data[0, 0] == pytest.approx(times[0])
    spt = fits.getheader(nic2["files"][0].replace("_ima.fits", "_spt.fits"))
    assert (spt["INSTRUME"], spt["FILETYPE"], spt["CAMERA"]) == ("NICMOS", "SPT", 2)
    assert "EPCHTIME" in spt and "SEMILREC" in spt


def test_sample_sequences(tmp_path):
    # STEP32 with 10 reads ends 32 s after the previous read at 64 s, as N4HK12010 does
    # (SAMPTIME 63.96, DELTATIM 32.0).
    step = sample_sequence("STEP32", 10)
    assert step[-1] == pytest.approx(64.0) and step[-1] - step[-2] == pytest.approx(32.0)
    assert sample_sequence("SPARS64", 4).tolist() == pytest.approx([0, 0.203, 64.203, 128.203])
    with pytest.raises(ValueError, match="samp_seq"):
        sample_sequence("MIF1024", 10)
    with pytest.raises(ConfigError, match="samp_seq"):
        simulate_nicmos_darks(tmp_path, samp_seq="MIF1024")
    with pytest.raises(ConfigError, match="camera"):
        simulate_nicmos_darks(tmp_path, camera=4)


# --------------------------------------------------------------------------- calibrate
def test_calibrate_gives_time_ordered_increments_in_electrons(nic2):
    exposure = read_ima(nic2["files"][0])
    calibrated = calibrate(detector=NICMOS_NIC2, exposure=exposure, options=Options())
    times = nic2["exposures"][0]["sample_times"]
    assert len(calibrated.imsets) == 15
    assert [i.header["SAMPTIME"] for i in calibrated.imsets] == pytest.approx(times[1:])
    for imset in calibrated.imsets:
        h = imset.header
        assert h["DELTATIM"] == pytest.approx(h["SAMPTIME"] - h["SAMPBEG"]) and h["DELTATIM"] > 0
        assert h["EXPTIME"] == h["DELTATIM"] and h["BUNIT"] == "ELECTRONS"
    for card in exposure.primary.cards:
        if card.keyword not in ("HISTORY", "COMMENT", ""):
            assert calibrated.primary[card.keyword] == card.value
    # 64 s increments: 0.3 e-/s dark (19 e-) and 26 e- of read-pair noise, in electrons
    long = np.stack([i.sci for i in calibrated.imsets if i.header["DELTATIM"] == 64.0])
    assert np.median(long) == pytest.approx(0.3 * 64, abs=2.0)
    assert mad_std(long) == pytest.approx(np.hypot(26.0, np.sqrt(0.3 * 64)), rel=0.05)
    assert np.median(calibrated.imsets[5].err) == pytest.approx(26.0, rel=0.05)


@pytest.mark.parametrize("bunit", ["COUNTS", "ELECTRONS", "ELECTRONS/S"])
def test_units_counts_and_rates_give_the_same_electrons(tmp_path, bunit):
    kw = dict(camera=3, count=1, seed=4, samp_seq="SPARS16", nsamp=5, cr_rate=20.0)
    ref = simulate_nicmos_darks(tmp_path / "ref", **kw)
    other = simulate_nicmos_darks(tmp_path / bunit.replace("/", "_"), bunit=bunit, **kw)
    det = CAMERAS[3]
    a = calibrate(detector=det, exposure=read_ima(ref["files"][0]), options=Options())
    b = calibrate(detector=det, exposure=read_ima(other["files"][0]), options=Options())
    for x, y in zip(a.imsets, b.imsets):
        assert np.allclose(x.sci, y.sci, rtol=1e-4, atol=0.05)
    assert np.stack([i.sci for i in a.imsets]).max() > 300


def test_gain_is_the_cameras_not_adcgain(nic2):
    """calnica's ADCGAIN is a commanded value (5.0 in the 1998 NIC2 file); Table 7.1's 5.4
    converts counts to electrons."""
    exposure = read_ima(nic2["files"][0])
    primary = exposure.primary.copy()
    primary["ADCGAIN"] = 5.0
    a = calibrate(detector=NICMOS_NIC2, exposure=exposure, options=Options())
    b = calibrate(detector=NICMOS_NIC2, exposure=replace(exposure, primary=primary),
                  options=Options())
    assert np.array_equal(a.imsets[3].sci, b.imsets[3].sci)
    assert camera_gain(NICMOS_NIC2) == 5.4 and camera_read_noise(NICMOS_NIC2) == 26.0


def test_file_order_of_the_reads_does_not_matter(nic2):
    exposure = read_ima(nic2["files"][1])
    shuffled = replace(exposure, imsets=exposure.imsets[::-1])
    a = calibrate(detector=NICMOS_NIC2, exposure=exposure, options=Options())
    b = calibrate(detector=NICMOS_NIC2, exposure=shuffled, options=Options())
    for x, y in zip(a.imsets, b.imsets):
        assert np.array_equal(x.sci, y.sci) and x.header["SAMPTIME"] == y.header["SAMPTIME"]


def test_hooks_answer_only_for_nicmos(nic2):
    from hstcal_core.detectors import Detector

    other = Detector(name="other_ir", instrument="X", detector="Y", kind="ir", shape=(4, 4),
                     pixel_pitch_um=10.0, pixel_scale_arcsec=0.1, gain_keyword="G",
                     amplifiers={}, readout_time_s=1.0)
    exposure = read_ima(nic2["files"][0])
    assert calibrate(detector=other, exposure=exposure, options=Options()) is None
    assert reject_crs(detector=other, exposures=[exposure], options=Options()) is None


def test_registry_offers_crstats_reader_and_simulator(hstcal_registry, tmp_path):
    for det in CAMERAS.values():
        entry = hstcal_registry.entry(det.name)
        assert "crstats" in entry.stages and entry.reader is read_ima
        assert entry.defaults["crstats"]["grouping"] == "single"  # a ramp needs no partner
    truth = hstcal_registry.entry("nicmos_nic1").simulator(tmp_path, count=1, seed=2, nsamp=4)
    assert fits.getval(truth["files"][0], "CAMERA") == 1


# --------------------------------------------------------------------------- jumps
@pytest.mark.parametrize("camera", [1, 2, 3])
def test_cosmic_rays_found_on_the_read_where_they_landed(tmp_path, nic2, camera):
    det = CAMERAS[camera]
    truth = nic2 if camera == 2 else simulate_nicmos_darks(tmp_path, camera=camera, count=2,
                                                            seed=10 + camera)
    threshold = 5 * camera_read_noise(det)
    scores = []
    for k, path in enumerate(truth["files"]):
        _, calibrated, combined = _pipeline(path, det)
        scores.append(score_ramp_jumps(truth["truth_npz"], k, calibrated, combined,
                                      truth_pixel_e=threshold))
        assert combined.masks.shape == (15, 256, 256)
        assert combined.sources == tuple((calibrated.rootname, j) for j in range(1, 16))
        assert np.all(combined.dq[combined.masks.any(axis=0)] & 512)
    countable = sum(s["countable"] for s in scores)
    objects = sum(s["objects"] for s in scores)
    assert countable > 250
    assert sum(s["found"] for s in scores) / countable >= 0.98
    assert sum(s["false"] for s in scores) / objects <= 0.01
    assert sum(s["false_big"] for s in scores) / objects <= 0.01
    ratios = np.concatenate([s["energy_ratio"] for s in scores])
    assert np.median(ratios) == pytest.approx(1.0, abs=0.02)
    assert all(s["energy_sum_ratio"] == pytest.approx(1.0, abs=0.02) for s in scores)
    assert all(s["captured"] > 0.9 for s in scores)


def test_reject_crs_needs_increments(nic2):
    exposure = read_ima(nic2["files"][0])
    with pytest.raises(InputError, match="run calibrate"):
        reject_crs(detector=NICMOS_NIC2, exposures=[exposure], options=Options())
    with pytest.raises(InputError, match="no input exposures"):
        reject_crs(detector=NICMOS_NIC2, exposures=[], options=Options())


def test_threshold_option_is_used(nic2):
    exposure = read_ima(nic2["files"][0])
    calibrated = calibrate(detector=NICMOS_NIC2, exposure=exposure, options=Options())
    default = reject_crs(detector=NICMOS_NIC2, exposures=[calibrated], options=Options())
    loose = reject_crs(detector=NICMOS_NIC2, exposures=[calibrated],
                       options=Options({"ir_jump_sigma": 3.0, "ir_neighbor_sigma": 2.5}))
    assert loose.parameters["ir_jump_sigma"] == 3.0
    assert loose.n_rejected > default.n_rejected + 500  # noise at 3 sigma: ~0.1 % of 1e6


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_nicmos_files_are_not_ramps(shared_data):
    """Neither real NICMOS file is an _ima: each is refused with the reason."""
    mos = shared_data / "hst/nicmos/HST_NICMOS.fits.gz"  # N4HK12010: 1 imset, NSAMP=10
    exposure = read_ima(mos)
    assert len(exposure.imsets) == 1 and exposure.primary["NSAMP"] == 10
    with pytest.raises(InputError, match=r"1 SCI imset .*NSAMP=10.*single-image product"):
        calibrate(detector=NICMOS_NIC2, exposure=exposure, options=Options())
    cal = shared_data / "hst/nicmos/cos_N8XTZCAWQ.fits"  # NIC3 image in the primary array
    with pytest.raises(InputError, match=r"no SCI extension.*primary array.*_ima"):
        read_ima(cal)
    with pytest.raises(InputError, match="no SCI extension"):
        read_exposure(cal)
