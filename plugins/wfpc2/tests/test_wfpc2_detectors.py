"""The WFPC2 plugin registers the four chips with their documented constants."""

from __future__ import annotations

import pytest
from astropy.io import fits

from hstcal_core import StageNotSupportedError, run_stage
from hstcal_wfpc2.detectors import CAMERA_AREA_CM2, DETECTORS, WFPC2_DQ, WFPC2_PC, WFPC2_WF4

NAMES = ("wfpc2_pc", "wfpc2_wf2", "wfpc2_wf3", "wfpc2_wf4")

# drizzlepac wfpc2Data.WFPC2_GAINS (WFPC2 IHB 4.12): {chip: {ATODGAIN: [gain, read noise]}}
WFPC2_GAINS = {
    1: {7: [7.12, 5.24], 15: [13.99, 7.02]},
    2: {7: [7.12, 5.51], 15: [14.50, 7.84]},
    3: {7: [6.90, 5.22], 15: [13.95, 6.99]},
    4: {7: [7.10, 5.19], 15: [13.95, 8.32]},
}


def test_four_chips_registered_by_hstcal_wfpc2(hstcal_registry):
    assert tuple(d.name for d in DETECTORS) == NAMES
    for name in NAMES:
        entry = hstcal_registry.entry(name)
        assert entry.distribution == "hstcal-wfpc2"
        assert set(entry.stages) == {"crstats", "drizzle"}  # census (issue 4), drizzle (6)


def test_detector_keyword_is_the_chip_number():
    assert [d.detector for d in DETECTORS] == ["1", "2", "3", "4"]
    assert all(d.instrument == "WFPC2" and d.kind == "ccd" for d in DETECTORS)
    assert all(d.shape == (800, 800) and d.pixel_pitch_um == 15.0 for d in DETECTORS)
    assert WFPC2_PC.pixel_scale_arcsec < WFPC2_WF4.pixel_scale_arcsec


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_area_per_chip_is_pixels_times_pitch_squared(detector):
    assert detector.area_cm2 == pytest.approx(1.44)
    assert detector.area_cm2 == pytest.approx(detector.geometric_area_cm2, rel=0.01)


def test_census_area_5_76_is_the_whole_four_chip_camera():
    """HSTcosmicrays' WFPC2 detector_size (5.76 cm^2) is 4 chips x 1.44, not one chip."""
    assert CAMERA_AREA_CM2 == 5.76
    assert sum(d.area_cm2 for d in DETECTORS) == pytest.approx(CAMERA_AREA_CM2)
    assert CAMERA_AREA_CM2 != pytest.approx(WFPC2_PC.geometric_area_cm2, rel=0.01)


@pytest.mark.parametrize("chip", [1, 2, 3, 4])
def test_gains_and_read_noise_per_atodgain(chip):
    detector = DETECTORS[chip - 1]
    assert detector.gain_keyword == "ATODGAIN"
    assert detector.gains == (7.0, 15.0)
    for setting, (gain, read_noise) in WFPC2_GAINS[chip].items():
        amp = detector.amplifier(setting)
        assert (amp.gain, amp.read_noise) == (gain, read_noise)


def test_dq_meanings_are_the_wfpc2_ones():
    assert all(d.dq_flags is WFPC2_DQ for d in DETECTORS)
    assert WFPC2_DQ[2] == "calibration file defect"
    assert WFPC2_DQ[4] == "permanent camera defect"
    assert WFPC2_DQ[8] == "A/D converter saturation"
    assert WFPC2_DQ[16] == "missing data"
    assert WFPC2_DQ[128] == "permanent charge trap"
    assert sorted(WFPC2_DQ) == [2 ** i for i in range(15)]


def test_stages_not_supported_yet_name_the_distribution(hstcal_registry, tmp_path):
    with pytest.raises(StageNotSupportedError, match="hstcal-wfpc2"):
        run_stage("weekbias", detector="wfpc2_wf3", inputs=[], out=tmp_path / "w.fits",
                  registry=hstcal_registry)


def test_constants_match_real_wfpc2_headers(shared_data):
    """Real WFPC2 headers: DETECTOR is the chip number, ATODGAIN a registered setting."""
    for path, detector in (("HST_WFPC_II.fits.gz", WFPC2_PC),
                           ("HST_WFPC_II_bis.fits", WFPC2_WF4)):
        hdr = fits.getheader(shared_data / "hst/wfpc2" / path)
        assert hdr["INSTRUME"].strip() == detector.instrument
        assert str(hdr["DETECTOR"]) == detector.detector
        assert float(hdr[detector.gain_keyword]) in detector.gains
        assert hdr["SATURATE"] == detector.saturation_dn[float(hdr["ATODGAIN"])]
        assert hdr["BIASEVEN"] == pytest.approx(detector.extra["typical_bias_dn"], abs=0.01)
    with fits.open(shared_data / "hst/wfpc2/test0.fits") as hdul:
        chips = [str(h.header["DETECTOR"]) for h in hdul[1:]]
    assert chips == [d.detector for d in DETECTORS]
