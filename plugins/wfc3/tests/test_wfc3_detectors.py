"""The WFC3 plugin registers UVIS and IR with their documented constants."""

from __future__ import annotations

import pytest
from astropy.io import fits

from hstcal_core import StageNotSupportedError, run_stage
from hstcal_wfc3.detectors import DETECTORS, WFC3_IR, WFC3_IR_DQ, WFC3_UVIS, WFC3_UVIS_DQ

# HSTcosmicrays pipeline_config.yaml detector_size, cm^2.
CENSUS_AREA_CM2 = {"wfc3_uvis": 37.804, "wfc3_ir": 3.331}


def test_both_detectors_registered_by_hstcal_wfc3(hstcal_registry):
    for name in ("wfc3_uvis", "wfc3_ir"):
        entry = hstcal_registry.entry(name)
        assert entry.distribution == "hstcal-wfc3"
        assert set(entry.stages) == {"crstats", "drizzle"}  # census (issue 4), drizzle (6)


def test_header_values_and_geometry():
    assert (WFC3_UVIS.instrument, WFC3_UVIS.detector, WFC3_UVIS.kind) == ("WFC3", "UVIS", "ccd")
    assert (WFC3_IR.instrument, WFC3_IR.detector, WFC3_IR.kind) == ("WFC3", "IR", "ir")
    assert WFC3_UVIS.shape == (2 * 2051, 4096)
    assert WFC3_IR.shape == (1024 - 2 * 5, 1024 - 2 * 5)
    assert (WFC3_UVIS.pixel_pitch_um, WFC3_IR.pixel_pitch_um) == (15.0, 18.0)
    assert WFC3_IR.readout_time_s == 2.93


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_census_area_matches_pixels_times_pitch_squared(detector):
    assert detector.area_cm2 == CENSUS_AREA_CM2[detector.name]
    assert detector.area_cm2 == pytest.approx(detector.geometric_area_cm2, rel=0.01)


def test_default_gain_amplifiers():
    uvis = WFC3_UVIS.amplifiers[1.5]
    assert [a.name for a in uvis] == ["A", "B", "C", "D"]
    assert all(a.gain == 1.56 and 3.0 < a.read_noise < 3.2 for a in uvis)
    ir = WFC3_IR.amplifiers[2.5]
    assert all(2.3 < a.gain < 2.4 and 19.5 < a.read_noise < 20.5 for a in ir)


def test_ir_dq_meanings_differ_from_uvis_where_wf3dq_says_so():
    assert WFC3_UVIS.dq_flags is WFC3_UVIS_DQ and WFC3_IR.dq_flags is WFC3_IR_DQ
    for bit in (8, 32, 1024, 2048, 8192, 16384):
        assert WFC3_IR_DQ[bit] != WFC3_UVIS_DQ[bit]
    assert WFC3_UVIS_DQ[32] == "CTE tail of a hot pixel"
    assert WFC3_IR_DQ[2048] == "signal in zero read"
    assert WFC3_UVIS_DQ[256] == WFC3_IR_DQ[256] == "full-well saturated pixel"


def test_stages_not_supported_yet_name_the_distribution(hstcal_registry, tmp_path):
    with pytest.raises(StageNotSupportedError, match="hstcal-wfc3"):
        run_stage("weekbias", detector="wfc3_uvis", inputs=[], out=tmp_path / "w.fits",
                  registry=hstcal_registry)


def test_constants_match_real_calwf3_headers(shared_data):
    """The CCDTAB values calwf3 wrote into real WFC3 headers are the ones registered."""
    cutouts = shared_data / "hst/wfc3/flt_cutouts"
    for path, det, setting in (("sample_svm_flc.fits", WFC3_UVIS, 1.5),
                               ("sample_svm_flt.fits", WFC3_IR, 2.5)):
        hdr = fits.getheader(cutouts / path)
        assert (hdr["INSTRUME"], hdr["DETECTOR"]) == (det.instrument, det.detector)
        assert hdr[det.gain_keyword] == setting
        for amp in det.amplifiers[setting]:
            assert hdr[f"ATODGN{amp.name}"] == pytest.approx(amp.gain, abs=1e-4)
            assert hdr[f"READNSE{amp.name}"] == pytest.approx(amp.read_noise, abs=1e-4)
            if det is WFC3_UVIS:
                assert hdr[f"BIASLEV{amp.name}"] == pytest.approx(amp.bias, abs=0.01)
        sci = fits.getheader(cutouts / path, 1)
        full = (sci["SIZAXIS2"], sci["SIZAXIS1"])
        expected = det.extra["chip_shape"] if det is WFC3_UVIS else det.extra["raw_shape"]
        assert full == expected
