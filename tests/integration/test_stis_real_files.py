"""calibrate + reject_crs on real STIS CCD raws from ../shared/data (skipped if absent)."""

import logging

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import run_stage
from hstcal_core.cli import main
from hstcal_core.fitsio import read_exposure
from hstcal_core.options import Options
from hstcal_core.registry import get_registry

pytestmark = pytest.mark.realdata


@pytest.fixture
def stis():
    reg = get_registry()
    return reg, reg.detector("stis_ccd")


@pytest.mark.parametrize("root", ["o56502010", "o56502020"])
def test_binned_crsplit_pair(shared_data, stis, tmp_path, root):
    """Full-frame 2x1-binned CRSPLIT=2 science raws (1034x532 with overscan)."""
    reg, det = stis
    raw_path = shared_data / "hst/stis/ccd_crsplit" / f"{root}_raw.fits.gz"
    crrejtab = shared_data / "hst/reference_tables/j3m1403io_crr.fits"
    raw = read_exposure(raw_path)
    cal = reg.hooks.calibrate(detector=det, exposure=raw, options=Options({"bias": None}))
    for before, imset in zip(raw.imsets, cal.imsets):
        overscan = np.median(before.sci[10:, 1:8])  # amp D bias columns of a 2x1 readout
        assert imset.shape == (1024, 511)  # amp D, 2x1: 10 virtual rows, 11 + 10 columns trimmed
        assert imset.header["LTV1"] == pytest.approx(-0.25) and imset.header["LTV2"] == 0.0
        assert imset.header["MEANBLEV"] == pytest.approx(overscan, abs=1.0)
        assert np.isfinite(imset.sci).all() and (imset.err > 0).all()
        assert np.median(imset.err) >= 6.2 / 1.0 - 1e-3  # read noise floor in DN at gain 1
    assert cal.primary["ATODGAIN"] == 1.0 and cal.primary["READNSE"] == 6.2
    assert cal.primary["BLEVCORR"] == "COMPLETE"
    combined = reg.hooks.reject_crs(detector=det, exposures=[cal],
                                    options=Options({"crrejtab": str(crrejtab)}))
    exptimes = [i.exptime for i in raw.imsets]
    assert combined.texptime == pytest.approx(sum(exptimes))
    assert combined.ncombine == 2
    # CRREJTAB row for CRSPLIT=2 and a long mean exposure: minimum, 4 sigma, no sky (spectra)
    assert combined.parameters["initgues"] == "minimum"
    assert combined.parameters["crsigmas"] == [4.0]
    assert combined.parameters["skysub"] == "none"
    assert combined.masks.shape == (2, 1024, 511)
    rate = combined.masks.mean(axis=(1, 2))
    assert 0.001 < rate.min() and rate.max() < 0.5
    assert np.isfinite(combined.sci).all()
    # the CLI writes the same crj
    out = tmp_path / f"{root}_crj.fits"
    result = CliRunner().invoke(main, ["run", "--instrument", "stis_ccd", "--stage", "crreject",
                                       str(raw_path), "--crrejtab", str(crrejtab), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with fits.open(out) as h:
        np.testing.assert_allclose(h["SCI"].data, combined.sci, rtol=1e-6)
        assert h[0].header["TEXPTIME"] == pytest.approx(sum(exptimes))
        assert h["SCI"].header["NCOMBINE"] == 2


def test_astropy_bundled_o4sp040b0(shared_data, stis, caplog):
    """astropy's trimmed 62x44 gain-4 raw: too small for BLEVCORR, CCD-table bias used."""
    reg, det = stis
    raw = read_exposure(shared_data / "hst/stis/ccd_misc/o4sp040b0_raw.fits")
    with caplog.at_level(logging.WARNING):
        cal = reg.hooks.calibrate(detector=det, exposure=raw, options=Options({"bias": None}))
    assert "too small for BLEVCORR" in caplog.text
    assert cal.primary["ATODGAIN"] == pytest.approx(4.016)
    for before, after in zip(raw.imsets, cal.imsets):
        assert after.shape == before.shape == (44, 62)
        np.testing.assert_allclose(after.sci, before.sci - 1500.0)
    combined = reg.hooks.reject_crs(detector=det, exposures=[cal], options=Options({}))
    assert combined.ncombine == 2 and combined.texptime == pytest.approx(60.0)
    assert abs(np.median(combined.sci)) < 50  # bias-subtracted dark sky over 60 s
    assert combined.masks.mean() < 0.05


def test_real_acs_hrc_raw_is_refused_by_the_stis_stage(shared_data, tmp_path):
    hrc = shared_data / "hst/acs/hrc_raw/j8bt05njq_raw.fits.gz"
    from hstcal_core import InputError

    with pytest.raises(InputError, match="j8bt05njq_raw.fits.gz: is INSTRUME=ACS DETECTOR=HRC"):
        run_stage("crreject", detector="stis_ccd", inputs=[hrc], out=tmp_path / "x.fits")
