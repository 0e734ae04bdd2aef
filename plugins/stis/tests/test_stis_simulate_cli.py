"""`hstcal simulate` from the command line, and through the Python API."""

import json

from astropy.io import fits
from click.testing import CliRunner

import hstcal_core
from hstcal_core.cli import main


def test_simulate_cli_gain4_binned(tmp_path):
    out = tmp_path / "raw"
    result = CliRunner().invoke(main, ["simulate", "--instrument", "stis_ccd", "--kind", "bias",
                                       "--count", "2", "--seed", "3", "--gain", "4",
                                       "--binning", "2x1", "--start", "55000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*_raw.fits"))
    assert len(files) == 2
    for f in files:
        with fits.open(f) as h:
            assert (h[0].header["CCDGAIN"], h[0].header["BINAXIS1"], h[0].header["BINAXIS2"]) == (4, 2, 1)
            assert h[0].header["TEXPSTRT"] >= 55000.0
            assert h["SCI", 1].data.shape == (1034, 532)  # the real 2x1 raw shape
    assert json.loads((out / "truth.json").read_text())


def test_simulate_api_and_unsupported_detector(tmp_path):
    truth = hstcal_core.simulate_detector("stis_ccd", tmp_path / "d", kind="dark", count=1, seed=2)
    assert truth.kind == "dark" and len(truth.files) == 1
    result = CliRunner().invoke(main, ["simulate", "--instrument", "cos_fuv", "--out",
                                       str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "not supported by plugin hstcal-cos" in result.output
