"""The ACS plugin registers WFC and HRC with their documented constants."""

from __future__ import annotations

import pytest
from astropy.io import fits

from hstcal_acs.detectors import ACS_DQ, ACS_HRC, ACS_WFC, DETECTORS
from hstcal_core import StageNotSupportedError, run_stage

# HSTcosmicrays pipeline_config.yaml detector_size, cm^2.
CENSUS_AREA_CM2 = {"acs_wfc": 37.748, "acs_hrc": 4.624}


def test_both_detectors_registered_by_hstcal_acs(hstcal_registry):
    for name in ("acs_wfc", "acs_hrc"):
        entry = hstcal_registry.entry(name)
        assert entry.distribution == "hstcal-acs"
        assert entry.plugin == "acs"
        assert set(entry.stages) == {"crstats", "drizzle"}  # census (issue 4), drizzle (6)


def test_header_values_and_geometry():
    assert (ACS_WFC.instrument, ACS_WFC.detector, ACS_WFC.kind) == ("ACS", "WFC", "ccd")
    assert (ACS_HRC.instrument, ACS_HRC.detector, ACS_HRC.kind) == ("ACS", "HRC", "ccd")
    assert ACS_WFC.shape == (4096, 4096)  # two 2048 x 4096 chips
    assert ACS_HRC.shape == (1024, 1024)
    assert (ACS_WFC.pixel_pitch_um, ACS_HRC.pixel_pitch_um) == (15.0, 21.0)
    assert ACS_WFC.gain_keyword == ACS_HRC.gain_keyword == "CCDGAIN"


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_census_area_matches_pixels_times_pitch_squared(detector):
    assert detector.area_cm2 == CENSUS_AREA_CM2[detector.name]
    assert detector.area_cm2 == pytest.approx(detector.geometric_area_cm2, rel=0.01)


def test_default_gain_amplifiers():
    wfc = ACS_WFC.amplifiers[2.0]
    assert [a.name for a in wfc] == ["A", "B", "C", "D"]
    assert all(a.gain == 2.0 and 4.0 < a.read_noise < 6.0 for a in wfc)
    hrc = ACS_HRC.amplifier(2.0)
    assert (hrc.name, hrc.gain, hrc.read_noise) == ("C", 2.216, 4.71)
    with pytest.raises(KeyError, match="acs_hrc"):
        ACS_HRC.amplifier(4.0)


def test_saturation_follows_full_well_or_adc():
    assert ACS_WFC.saturation_dn[1.0] == 65535.0  # ADC-limited at gain 1
    assert ACS_WFC.saturation_dn[2.0] == pytest.approx(84700 / 2.0)
    assert ACS_HRC.saturation_dn[2.0] == 65535.0


def test_dq_meanings_are_calacs_ones():
    assert ACS_WFC.dq_flags is ACS_DQ
    assert ACS_DQ[2048] == "A-to-D saturated pixel"
    assert ACS_DQ[8192].startswith("rejected during image combination")
    assert "warm" in ACS_DQ[64]
    assert sorted(ACS_DQ) == [2 ** i for i in range(15)]


def test_stages_not_supported_yet_name_the_distribution(hstcal_registry, tmp_path):
    with pytest.raises(StageNotSupportedError, match="hstcal-acs") as info:
        run_stage("weekbias", detector="acs_wfc", inputs=[], out=tmp_path / "w.fits",
                  registry=hstcal_registry)
    assert "acs_wfc" in str(info.value)
    assert not (tmp_path / "w.fits").exists()


def test_constants_match_real_calacs_headers(shared_data):
    """The CCDTAB values calacs wrote into real ACS headers are the ones registered."""
    wfc = fits.getheader(shared_data / "hst/acs/headers/j94f05bgq_flt.fits")
    assert (wfc["INSTRUME"], wfc["DETECTOR"], wfc["CCDGAIN"]) == ("ACS", "WFC", 1)
    for amp in ACS_WFC.amplifiers[1.0]:
        assert wfc[f"ATODGN{amp.name}"] == pytest.approx(amp.gain, abs=1e-4)
        assert wfc[f"READNSE{amp.name}"] == pytest.approx(amp.read_noise, abs=1e-4)
        assert wfc[f"BIASLEV{amp.name}"] == pytest.approx(amp.bias, abs=0.01)
    hrc = fits.getheader(shared_data / "hst/acs/headers/j8bt06nyq_sip_flt.fits")
    amp = ACS_HRC.amplifier(float(hrc["CCDGAIN"]), hrc["CCDAMP"])
    assert hrc["ATODGNC"] == pytest.approx(amp.gain, abs=1e-4)
    assert hrc["READNSEC"] == pytest.approx(amp.read_noise, abs=1e-4)
    raw = fits.getheader(shared_data / "hst/acs/hrc_raw/j8bt05njq_raw.fits.gz", 1)
    assert (raw["NAXIS2"], raw["NAXIS1"]) == ACS_HRC.extra["raw_shape"]
    assert raw["LTV1"] == ACS_HRC.extra["overscan_leading"]
