"""Lightcurves of the real COS G140L rawtags in ../shared/data against calcos' x1d.

The issue's yardstick: over the same wavelength range (airglow masked), the
lightcurve's mean flux equals the x1d's mean FLUX, and its total gross counts the x1d's
GCOUNTS, each within 5 %.  Measured when written (1150–1750 Å, 10 s bins; ``-s`` prints
them):

=========  ==========  ============
rootname   flux ratio  counts ratio
=========  ==========  ============
ldfd01vnq  0.959       1.027
ldfd01vpq  0.971       1.016
ldfd01vrq  0.967       1.003
ldfd01vtq  0.972       1.004
=========  ==========  ============

The flux runs 3–4 % low because rawtag events carry no flat-field/dead-time weight
(epsilon = 1), which calcos' NET includes; the counts are the raw events.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from hstcal_core import run_stage
from hstcal_core.timetag.lightcurve import AIRGLOW_G140L, BIN_NO_GTI

pytestmark = pytest.mark.realdata

ROOTS = ("ldfd01vnq", "ldfd01vpq", "ldfd01vrq", "ldfd01vtq")
WAVE_MIN, WAVE_MAX = 1150.0, 1750.0


def _x1d_figures(x1d_path, wave_min, wave_max):
    """(mean FLUX, Σ GCOUNTS, Σ GROSS·EXPTIME) over the x1d elements in range, airglow
    masked, where the x1d has a flux (DQ_WGT > 0)."""
    with fits.open(x1d_path) as hdul:
        row = hdul[1].data[0]
        wave = np.asarray(row["WAVELENGTH"], dtype=float)
        keep = (wave >= wave_min) & (wave <= wave_max) & (np.asarray(row["DQ_WGT"]) > 0)
        keep &= np.asarray(row["FLUX"]) != 0
        for lo, hi in AIRGLOW_G140L:
            keep &= ~((wave >= lo) & (wave <= hi))
        return (float(np.mean(row["FLUX"][keep])), float(np.sum(row["GCOUNTS"][keep])),
                float(np.sum(row["GROSS"][keep]) * row["EXPTIME"]))


@pytest.mark.parametrize("root", ROOTS)
def test_rawtag_lightcurve_matches_x1d_flux_and_counts(shared_data, tmp_path, root):
    directory = shared_data / "hst" / "cos" / "fuv_timetag"
    rawtag = directory / f"{root}_rawtag_a.fits.gz"
    if not rawtag.exists():
        pytest.skip(f"{rawtag} not present")
    out = tmp_path / f"{root}_curve.fits"
    result = run_stage("lightcurve", detector="cos_fuv", inputs=[rawtag], out=out, step=10.0,
                       wave_min=WAVE_MIN, wave_max=WAVE_MAX)
    assert result.ok, result.failures
    lc = Table.read(out, hdu="LIGHTCURVE")
    header = fits.getheader(out)
    assert header["AIRGLOW"] == "1200-1230;1295-1315"  # G140L's wider windows
    assert any("registered on the x1d" in str(c) for c in header["COMMENT"])
    good = (np.asarray(lc["dq"]) & BIN_NO_GTI) == 0
    exposure = np.asarray(lc["exposure"])[good]
    mean_flux = np.sum(np.asarray(lc["flux"])[good] * exposure) / exposure.sum()
    x1d_flux, x1d_gcounts, _ = _x1d_figures(directory / f"{root}_x1d.fits.gz", WAVE_MIN,
                                            WAVE_MAX)
    counts = float(np.sum(lc["counts"]))
    print(f"\n{root}: flux ratio {mean_flux / x1d_flux:.4f}, "
          f"counts ratio {counts / x1d_gcounts:.4f}")
    assert mean_flux == pytest.approx(x1d_flux, rel=0.05)
    assert counts == pytest.approx(x1d_gcounts, rel=0.05)
