"""Bad input gets a clear error naming the file and the problem; nothing half-written."""

import numpy as np
import pytest
from click.testing import CliRunner

from hstcal_core import ConfigError, InputError, run_stage
from hstcal_core.cli import main


def _no_products(directory):
    return [p.name for p in directory.iterdir() if p.suffix == ".fits" and "_raw" not in p.name
            or p.name.endswith(".tmp")]


def test_empty_input_list(tmp_path):
    with pytest.raises(InputError, match="input list is empty"):
        run_stage("refbias", detector="stis_ccd", inputs=[], out=tmp_path / "bia.fits")
    assert not (tmp_path / "bia.fits").exists()


def test_corrupt_file(tmp_path, stis_raw):
    good = stis_raw("good1_raw.fits")
    bad = tmp_path / "bad1_raw.fits"
    bad.write_bytes(b"SIMPLE  =  this is not a FITS header at all" * 3)
    with pytest.raises(InputError) as info:
        run_stage("refbias", detector="stis_ccd", inputs=[good, bad], out=tmp_path / "o.fits")
    assert "bad1_raw.fits" in str(info.value) and "FITS" in str(info.value)
    assert _no_products(tmp_path) == []


def test_truncated_file(tmp_path, stis_raw):
    good = stis_raw("good2_raw.fits")
    full = stis_raw("trunc_raw.fits", shape=(256, 256))
    data = full.read_bytes()
    full.write_bytes(data[: len(data) - 100_000])
    with pytest.raises(InputError) as info:
        run_stage("refbias", detector="stis_ccd", inputs=[good, full], out=tmp_path / "o.fits")
    assert "trunc_raw.fits" in str(info.value)
    assert "truncated" in str(info.value) or "corrupt" in str(info.value)
    assert _no_products(tmp_path) == []


def test_non_stis_file(tmp_path, stis_raw):
    acs = stis_raw("acs_raw.fits", instrument="ACS", detector="HRC")
    with pytest.raises(InputError, match=r"acs_raw.fits: is INSTRUME=ACS DETECTOR=HRC, not STIS/CCD"):
        run_stage("refbias", detector="stis_ccd", inputs=[acs], out=tmp_path / "o.fits")


@pytest.mark.parametrize("kwargs, key", [(dict(gain=4), "CCDGAIN"), (dict(binning=(2, 1)), "BINAXIS1")])
def test_mixed_gain_or_binning(tmp_path, stis_raw, kwargs, key):
    a = stis_raw("a_raw.fits")
    b = stis_raw("b_raw.fits", **kwargs)
    with pytest.raises(InputError) as info:
        run_stage("refbias", detector="stis_ccd", inputs=[a, b], out=tmp_path / "o.fits")
    assert "b_raw.fits" in str(info.value) and f"mixed {key}" in str(info.value)


def test_missing_sci_extension(tmp_path):
    from astropy.io import fits

    path = tmp_path / "nosci_raw.fits"
    hdr = fits.Header({"INSTRUME": "STIS", "DETECTOR": "CCD"})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.zeros((4, 4)), name="ERR")]).writeto(path)
    with pytest.raises(InputError, match="nosci_raw.fits: has no SCI extension"):
        run_stage("refbias", detector="stis_ccd", inputs=[path], out=tmp_path / "o.fits")


def test_nan_pixels(tmp_path, stis_raw):
    path = stis_raw("nan_raw.fits", nan=True)
    with pytest.raises(InputError, match=r"nan_raw.fits: SCI,1 contains 1 NaN/inf pixels"):
        run_stage("refbias", detector="stis_ccd", inputs=[path], out=tmp_path / "o.fits")


def test_missing_file_and_dark_given_to_bias_stage(tmp_path, stis_raw):
    with pytest.raises(InputError, match="nothere_raw.fits: file does not exist"):
        run_stage("refbias", detector="stis_ccd", inputs=[tmp_path / "nothere_raw.fits"],
                  out=tmp_path / "o.fits")
    dark = stis_raw("dk_raw.fits", targname="DARK", exptime=1100.0)
    with pytest.raises(InputError, match="dk_raw.fits: TARGNAME=DARK: expected a BIAS frame"):
        run_stage("refbias", detector="stis_ccd", inputs=[dark], out=tmp_path / "o.fits")


def test_required_reference_named(tmp_path, stis_raw):
    a = stis_raw("c_raw.fits")
    with pytest.raises(ConfigError, match="needs --basebias"):
        run_stage("weekbias", detector="stis_ccd", inputs=[a], out=tmp_path / "o.fits")


def test_cli_reports_errors_in_one_line(tmp_path, stis_raw):
    acs = stis_raw("acs2_raw.fits", instrument="ACS", detector="WFC")
    result = CliRunner().invoke(main, ["run", "--instrument", "stis_ccd", "--stage", "refbias",
                                       str(acs), "--out", str(tmp_path / "o.fits")])
    assert result.exit_code == 2
    assert "error:" in result.output and "acs2_raw.fits" in result.output
    result = CliRunner().invoke(main, ["run", "--instrument", "nosuch", "--stage", "refbias"])
    assert result.exit_code == 2 and "unknown detector 'nosuch'" in result.output


def test_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from astropy.io import fits

    from hstcal_core.fitsio import write_atomic

    target = tmp_path / "product.fits"

    class Boom(RuntimeError):
        pass

    hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((10, 10)))])

    def explode(self, *args, **kwargs):
        raise Boom("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", explode)
    with pytest.raises(Boom):
        write_atomic(hdul, target)
    assert list(tmp_path.iterdir()) == []
