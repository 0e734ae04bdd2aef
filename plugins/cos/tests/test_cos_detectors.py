"""The COS plugin registers the FUV XDL and NUV MAMA with their documented constants."""

from __future__ import annotations

import pytest
from astropy.io import fits

from hstcal_core import StageNotSupportedError, run_stage
from hstcal_cos.detectors import COS_DQ, COS_FUV, COS_NUV, DETECTORS


def test_both_detectors_registered_by_hstcal_cos(hstcal_registry):
    for name in ("cos_fuv", "cos_nuv"):
        entry = hstcal_registry.entry(name)
        assert entry.distribution == "hstcal-cos"
        assert set(entry.stages) == {"lightcurve", "composite"}


def test_photon_counting_detectors():
    assert (COS_FUV.instrument, COS_FUV.detector, COS_FUV.kind) == ("COS", "FUV", "xdl")
    assert (COS_NUV.instrument, COS_NUV.detector, COS_NUV.kind) == ("COS", "NUV", "mama")
    for detector in DETECTORS:
        assert detector.extra["timetag"] is True
        assert detector.gain_keyword == ""
        assert detector.readout_time_s == 0.0
        assert all(a.read_noise == 0.0 for amps in detector.amplifiers.values() for a in amps)
    assert tuple(a.name for a in COS_FUV.amplifiers[1.0]) == COS_FUV.extra["segments"]


def test_fuv_geometry_two_segments_of_6_by_24_um_pixels():
    assert COS_FUV.shape == (2 * 1024, 16384)
    assert COS_FUV.extra["segment_shape"] == (1024, 16384)
    dispersion, cross = COS_FUV.extra["pixel_size_um"]
    assert COS_FUV.pixel_pitch_um ** 2 == pytest.approx(dispersion * cross)  # equal area


def test_fuv_sensitive_area_is_smaller_than_its_digitized_format():
    """2 x 85 x 10 mm active, but pixels x pitch^2 is the 2 x 98 x 25 mm digitized format."""
    assert COS_FUV.area_cm2 == pytest.approx(2 * 8.5 * 1.0)
    assert COS_FUV.geometric_area_cm2 == pytest.approx(COS_FUV.extra["digitized_area_cm2"])
    assert COS_FUV.geometric_area_cm2 == pytest.approx(48.32, rel=0.001)
    assert COS_FUV.area_cm2 != pytest.approx(COS_FUV.geometric_area_cm2, rel=0.01)


def test_nuv_area_is_pixels_times_pitch_squared():
    assert COS_NUV.area_cm2 == pytest.approx(2.56 * 2.56)
    assert COS_NUV.area_cm2 == pytest.approx(COS_NUV.geometric_area_cm2, rel=0.01)


def test_dq_meanings_are_the_calcos_ones():
    assert COS_FUV.dq_flags is COS_DQ and COS_NUV.dq_flags is COS_DQ
    assert COS_DQ[64].startswith("burst")
    assert COS_DQ[2048] == "bad time interval"
    assert COS_DQ[8192] == "gain-sag hole"
    assert sorted(COS_DQ) == [2 ** i for i in range(15)]


def test_stages_not_supported_yet_name_the_distribution(hstcal_registry, tmp_path):
    with pytest.raises(StageNotSupportedError, match="hstcal-cos"):
        run_stage("weekbias", detector="cos_fuv", inputs=[], out=tmp_path / "w.fits",
                  registry=hstcal_registry)


def test_constants_match_real_cos_headers(shared_data):
    hdr = fits.getheader(shared_data / "hst/cos/fuv_timetag/ldfd01vnq_rawtag_a.fits.gz")
    assert (hdr["INSTRUME"], hdr["DETECTOR"]) == (COS_FUV.instrument, COS_FUV.detector)
    assert hdr[COS_FUV.extra["segment_keyword"]] in COS_FUV.extra["segments"]
