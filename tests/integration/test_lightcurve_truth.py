"""Lightcurves of simulated COS and STIS TIME-TAG exposures against the injected truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import stats

from hstcal_core import run_stage
from hstcal_core.options import Options
from hstcal_core.registry import get_registry
from hstcal_core.simulate.timetag import CATEGORIES, simulate_timetag
from hstcal_core.timetag.events import TimeTagInput
from hstcal_core.timetag.lightcurve import BIN_NO_GTI

MODELS = {
    "constant": {},
    "sinusoid": {"period": 120.0, "amplitude": 0.4},
    "flare": {"time": 300.0, "amplitude": 3.0, "decay": 40.0},
    "eclipse": {"start": 600.0, "duration": 150.0, "depth": 0.7},
}


def _x1d_mean_flux(x1d_path, wave_min, wave_max, airglow=()):
    """Mean FLUX over the x1d elements in range with a valid flux (all rows)."""
    with fits.open(x1d_path) as hdul:
        data = hdul[1].data
        wave = np.concatenate([np.asarray(r) for r in data["WAVELENGTH"]])
        flux = np.concatenate([np.asarray(r) for r in data["FLUX"]])
        net = np.concatenate([np.asarray(r) for r in data["NET"]])
    keep = (wave >= wave_min) & (wave <= wave_max) & (flux != 0) & np.isfinite(flux)
    keep &= (net != 0)
    for lo, hi in airglow:
        keep &= ~((wave >= lo) & (wave <= hi))
    return float(flux[keep].mean())


@pytest.mark.parametrize("model", sorted(MODELS))
def test_cos_fuv_signal_recovered_within_poisson_error(tmp_path, model):
    truth = simulate_timetag("cos_fuv", tmp_path / "raw", count=1, seed=11, exptime=1000.0,
                             source_rate=80.0, background_rate=2e-5, airglow=False,
                             flagged_rate=1.0, model=model, **MODELS[model])[0]
    out = tmp_path / "lc.fits"
    result = run_stage("lightcurve", detector="cos_fuv",
                       inputs=[f for f in truth.files if "corrtag_a" in f.name], out=out,
                       step=20.0, airglow="none")
    assert result.ok, result.failures
    lc = Table.read(out, hdu="LIGHTCURVE")
    # Counts conserved exactly: every unflagged event in a source band, nothing else.
    injected = sum(truth.counts[seg]["source"][cat] for seg in truth.counts
                   for cat in ("source", "background", "airglow"))
    assert lc["counts"].sum() == injected
    # The partial last bin is kept; the GTI gap is flagged, not zero.
    edges = np.append(np.asarray(lc["time"]), lc["time"][-1] + lc["bin_width"][-1])
    assert edges[-1] == pytest.approx(truth.gti[:, 1].max())
    gap = (np.asarray(lc["dq"]) & BIN_NO_GTI) != 0
    assert gap.any() and np.all(np.isnan(np.asarray(lc["net"])[gap]))
    good = ~gap
    expected = truth.expected_source_counts(edges)[good] / np.asarray(lc["exposure"])[good]
    net = np.asarray(lc["net"])[good]
    err = np.asarray(lc["error"])[good]
    pulls = (net - expected) / err
    # Per bin: the injected signal within its Poisson error — no bias, and the pulls'
    # chi-square inside its central 99.9 % for that many bins.
    n = len(pulls)
    assert abs(pulls.mean()) < 4 / np.sqrt(n)
    assert stats.chi2.ppf(0.0005, n) < np.sum(pulls ** 2) < stats.chi2.ppf(0.9995, n)
    # The model shape is seen: correlation of net with the truth across bins.
    if model != "constant":
        assert np.corrcoef(net, expected)[0, 1] > 0.9
    # Background: the scaled background bands estimate what lies under the source band.
    in_source = sum(truth.counts[s]["source"]["background"] for s in truth.counts)
    bkg_counts = np.sum(np.asarray(lc["background"])[good] * np.asarray(lc["exposure"])[good])
    assert abs(bkg_counts - in_source) < 4 * np.sqrt(in_source + 1)


def test_cos_fuv_flux_matches_x1d_and_airglow_masked(tmp_path):
    truth = simulate_timetag("cos_fuv", tmp_path / "raw", count=1, seed=5, exptime=800.0,
                             source_rate=150.0, airglow=True)[0]
    out = tmp_path / "lc.fits"
    run_stage("lightcurve", detector="cos_fuv", inputs=truth.files, out=out, step=50.0)
    lc = Table.read(out, hdu="LIGHTCURVE")
    header = fits.getheader(out)
    good = (np.asarray(lc["dq"]) & BIN_NO_GTI) == 0
    w = np.asarray(lc["exposure"])[good]
    mean_flux = np.sum(np.asarray(lc["flux"])[good] * w) / w.sum()
    windows = [tuple(float(v) for v in s.split("-")) for s in header["AIRGLOW"].split(";")]
    x1d = next(f for f in truth.files if f.name.endswith("_x1d.fits"))
    expect = _x1d_mean_flux(x1d, header["WAVEMIN"], header["WAVEMAX"], windows)
    assert mean_flux == pytest.approx(expect, rel=0.03)
    # Airglow events never reach the source counts.
    assert lc["counts"].sum() < sum(truth.counts[s]["source"]["source"]
                                    + truth.counts[s]["source"]["background"]
                                    for s in truth.counts) + 1


@pytest.mark.parametrize("detector", ["cos_nuv", "stis_fuv_mama", "stis_nuv_mama"])
def test_other_timetag_detectors_conserve_counts(tmp_path, detector):
    truth = simulate_timetag(detector, tmp_path / "raw", count=1, seed=2, exptime=600.0,
                             airglow=False)[0]
    out = tmp_path / "lc.fits"
    # STIS flags events on the hot pixels of its bad-pixel table (the bpixtab option).
    bpx = [f for f in truth.files if f.name.endswith("_bpx.fits")]
    extra = {"bpixtab": str(bpx[0])} if bpx else {}
    result = run_stage("lightcurve", detector=detector,
                       inputs=[f for f in truth.files if f not in bpx], out=out,
                       step=30.0, airglow="none", **extra)
    assert result.ok, result.failures
    lc = Table.read(out, hdu="LIGHTCURVE")
    injected = sum(c["source"][cat] for c in truth.counts.values()
                   for cat in ("source", "background", "airglow"))
    if bpx:
        # The table flags every event on a listed pixel, not only the injected ones:
        # the reader's DQ must cover the injected flags, and the count is exact over it.
        reg = get_registry()
        ev = reg.hooks.calibrate(detector=reg.detector(detector),
                                 exposure=TimeTagInput(truth.rootname, (truth.files[0],)),
                                 options=Options({"bpixtab": str(bpx[0])}))
        flagged = ev.dq != 0
        assert np.all(flagged[truth.events.category == CATEGORIES["flagged"]])
        injected = int(np.sum(truth.is_source & (truth.extraction >= 0) & ~flagged))
    assert lc["counts"].sum() == injected
    good = (np.asarray(lc["dq"]) & BIN_NO_GTI) == 0
    net_counts = np.sum(np.asarray(lc["net"])[good] * np.asarray(lc["exposure"])[good])
    true_source = sum(c["source"]["source"] for c in truth.counts.values())
    assert abs(net_counts - true_source) < 4 * np.sqrt(injected)
