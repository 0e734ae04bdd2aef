"""The NICMOS plugin registers the three cameras with their documented constants."""

from __future__ import annotations

import pytest
from astropy.io import fits

from hstcal_core import StageNotSupportedError, run_stage
from hstcal_nicmos.detectors import DETECTORS, NICMOS_DQ, NICMOS_NIC2, NICMOS_NIC3

NAMES = ("nicmos_nic1", "nicmos_nic2", "nicmos_nic3")


def test_three_cameras_registered_by_hstcal_nicmos(hstcal_registry):
    assert tuple(d.name for d in DETECTORS) == NAMES
    for name in NAMES:
        entry = hstcal_registry.entry(name)
        assert entry.distribution == "hstcal-nicmos"
        assert set(entry.stages) == {"crstats"}  # the cosmic-ray census (issue 4)


def test_camera_number_stands_for_detector():
    for camera, detector in enumerate(DETECTORS, start=1):
        assert (detector.instrument, detector.kind) == ("NICMOS", "ir")
        assert detector.detector == str(camera)
        assert detector.extra["detector_keyword"] == "CAMERA"
        assert detector.extra["camera"] == camera
        assert detector.shape == (256, 256) and detector.pixel_pitch_um == 40.0
        assert detector.gain_keyword == "ADCGAIN"


def test_gain_and_read_noise_per_camera():
    """NICMOS IHB Table 7.1 (and drizzlepac nicmosData): 5.4 / 5.4 / 6.5 e-/ADU."""
    expected = {"nicmos_nic1": (5.4, 26.0), "nicmos_nic2": (5.4, 26.0),
                "nicmos_nic3": (6.5, 29.0)}
    for detector in DETECTORS:
        gain, read_noise = expected[detector.name]
        amps = detector.amplifiers[gain]
        assert [a.name for a in amps] == ["A", "B", "C", "D"]  # four quadrants
        assert all((a.gain, a.read_noise) == (gain, read_noise) for a in amps)
        assert detector.saturation_dn[gain] < detector.extra["well_depth_dn"]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_area_is_pixels_times_pitch_squared(detector):
    # HSTcosmicrays gives no NICMOS detector_size; the geometric area is used.
    assert detector.area_cm2 == pytest.approx(256 * 256 * (40e-4) ** 2)
    assert detector.area_cm2 == pytest.approx(detector.geometric_area_cm2, rel=0.01)


def test_dq_meanings_are_the_calnica_ones():
    assert all(d.dq_flags is NICMOS_DQ for d in DETECTORS)
    assert NICMOS_DQ[16].startswith("grot")
    assert NICMOS_DQ[64] == "saturated pixel"
    assert NICMOS_DQ[512] == "cosmic ray hit"
    assert sorted(NICMOS_DQ) == [2 ** i for i in range(15)]


def test_stages_not_supported_yet_name_the_distribution(hstcal_registry, tmp_path):
    with pytest.raises(StageNotSupportedError, match="hstcal-nicmos"):
        run_stage("weekbias", detector="nicmos_nic2", inputs=[], out=tmp_path / "w.fits",
                  registry=hstcal_registry)


def test_constants_match_real_nicmos_headers(shared_data):
    """CAMERA names the detector; NQUALnn comments give the DQ bit order."""
    nic3 = fits.getheader(shared_data / "hst/nicmos/cos_N8XTZCAWQ.fits")
    assert (nic3["INSTRUME"], str(nic3["CAMERA"])) == ("NICMOS", NICMOS_NIC3.detector)
    assert "DETECTOR" not in nic3
    assert nic3["ADCGAIN"] in NICMOS_NIC3.gains
    comments = {2 ** (n - 1): nic3.comments[f"NQUAL{n:02d}"].lower() for n in range(1, 16)}
    for bit, word in ((1, "reed-solomon"), (2, "nonlinearity"), (16, "grot"),
                      (64, "saturated"), (512, "cosmic ray"), (16384, "curvature")):
        assert word in comments[bit]
    nic2 = fits.getheader(shared_data / "hst/nicmos/HST_NICMOS.fits.gz")
    assert str(nic2["CAMERA"]) == NICMOS_NIC2.detector
    # A 1998 header says ADCGAIN = 5.0 although the measured gain is 5.4 e-/ADU.
    assert nic2["ADCGAIN"] == 5.0 and nic2["ADCGAIN"] not in NICMOS_NIC2.gains
