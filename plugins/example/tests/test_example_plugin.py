"""Integration test of the example plugin: real FITS files through the crreject stage.

Two files of example_cam, two SCI/ERR/DQ imsets each, all showing the same noiseless
scene on a 100 DN bias; one imset carries a cosmic ray.  The stage must subtract the
bias (the plugin's calibrate hook), combine the four imsets with the core's generic
reject_crs, and write the bias-subtracted sum with the cosmic ray rejected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

import hstcal_example
from hstcal_core import reset_registry, run_stage
from hstcal_core.cli import main
from hstcal_core.fitsio import read_exposure
from hstcal_core.options import Options
from hstcal_example import EXAMPLE_CAM

BIAS_DN = 100.0
EXPTIME_S = 100.0
CR_FILE, CR_IMSET, CR_PIXEL, CR_DN = 0, 1, (10, 20), 5000.0


def scene() -> np.ndarray:
    """Bias-free signal in DN: 20 DN sky and two stars."""
    y, x = np.mgrid[0:64, 0:64]

    def star(y0: float, x0: float, peak: float) -> np.ndarray:
        return peak * np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2 * 1.5 ** 2))

    return (20.0 + star(30, 40, 500.0) + star(50, 12, 200.0)).astype(np.float32)


def write_raw(path: Path, cr: bool) -> Path:
    """One example_cam file with two imsets; ``cr`` puts a cosmic ray in the second."""
    primary = fits.PrimaryHDU()
    primary.header.update(INSTRUME="EXAMPLE", DETECTOR="CAM", BIASLEVL=BIAS_DN,
                          ATODGAIN=1.0, READNSE=5.0, ROOTNAME=path.stem.split("_")[0])
    hdus = [primary]
    for ver in (1, 2):
        sci = scene() + np.float32(BIAS_DN)
        if cr and ver == CR_IMSET + 1:
            sci[CR_PIXEL] += CR_DN
        header = fits.Header({"EXPTIME": EXPTIME_S})
        hdus += [fits.ImageHDU(sci, header=header, name="SCI", ver=ver),
                 fits.ImageHDU(np.zeros((64, 64), np.float32), name="ERR", ver=ver),
                 fits.ImageHDU(np.zeros((64, 64), np.int16), name="DQ", ver=ver)]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def raw_files(tmp_path) -> list[Path]:
    return [write_raw(tmp_path / f"exam0{i}_raw.fits", cr=(i == CR_FILE)) for i in range(2)]


@pytest.fixture
def global_registry():
    """The CLI uses the process-wide registry: build it fresh from the installed plugins."""
    reset_registry()
    yield
    reset_registry()


def expected_sum() -> np.ndarray:
    return 4 * scene()  # four imsets, bias removed, cosmic ray rejected


def test_example_cam_is_registered_with_crreject(hstcal_registry):
    entry = hstcal_registry.entry("example_cam")
    assert entry.distribution == "hstcal-example"
    assert entry.plugin == "example"
    assert set(entry.stages) == {"crreject"}


def test_calibrate_subtracts_bias_without_touching_the_input(raw_files):
    raw = read_exposure(raw_files[1])
    before = [imset.sci.copy() for imset in raw.imsets]
    cal = hstcal_example.calibrate(detector=EXAMPLE_CAM, exposure=raw, options=Options())
    assert cal is not raw
    for imset, original in zip(cal.imsets, before):
        np.testing.assert_allclose(imset.sci, original - BIAS_DN)
    for imset, original in zip(raw.imsets, before):
        np.testing.assert_array_equal(imset.sci, original)
    assert cal.primary["BIASCORR"] == "COMPLETE" and "BIASCORR" not in raw.primary


def test_calibrate_answers_none_for_other_detectors(raw_files):
    from dataclasses import replace

    other = replace(EXAMPLE_CAM, name="someone_elses_cam")
    raw = read_exposure(raw_files[0])
    assert hstcal_example.calibrate(detector=other, exposure=raw, options=Options()) is None


def test_crreject_stage_end_to_end(raw_files, tmp_path, hstcal_registry):
    out = tmp_path / "crj.fits"
    result = run_stage("crreject", detector="example_cam", inputs=raw_files, out=out,
                       registry=hstcal_registry)
    assert result.ok and result.products == [out] and out.exists()
    assert result.details["n_rejected"] >= 1
    with fits.open(out) as hdul:
        sci = hdul["SCI"].data.astype(np.float64)
        assert hdul["SCI"].header["NCOMBINE"] == 4
        assert hdul[0].header["BIASCORR"] == "COMPLETE"
    np.testing.assert_allclose(sci, expected_sum(), rtol=1e-5, atol=1e-3)
    # The cosmic ray is gone: its pixel holds the clean sum, not sum + 5000 DN.
    assert sci[CR_PIXEL] == pytest.approx(expected_sum()[CR_PIXEL], abs=0.01)
    # The inputs are untouched on disk.
    with fits.open(raw_files[CR_FILE]) as hdul:
        assert hdul["SCI", CR_IMSET + 1].data[CR_PIXEL] == pytest.approx(
            scene()[CR_PIXEL] + BIAS_DN + CR_DN)


def test_crreject_from_the_command_line(raw_files, tmp_path, global_registry):
    out = tmp_path / "crj.fits"
    result = CliRunner().invoke(main, ["run", "--instrument", "example_cam",
                                       "--stage", "crreject", *map(str, raw_files),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"product  {out}" in result.output
    with fits.open(out) as hdul:
        np.testing.assert_allclose(hdul["SCI"].data, expected_sum(), rtol=1e-5, atol=1e-3)
