"""The cosmic-ray census as a campaign: simulated ACS/WFC and STIS/CCD darks over two
months in a local archive, month chunks, one HDF5 store written by the driver alone;
a SIGKILL mid-campaign and a rerun end with exactly the store of a clean run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core.campaign.chunks import to_mjd
from hstcal_core.cli import main
from hstcal_core.simulate import simulate_detector

MONTHS = ("2011-03-02", "2011-04-02")
N_ACS = 4    # per month: two pairs of 2x128x256 WFC darks
N_STIS = 4   # per month: one group of four 1100 s darks


def _stis_darks(out: Path, start: float, seed: int):
    from hstcal_core.simulate.darks import spt_header

    truth = simulate_detector("stis_ccd", out, kind="dark", count=N_STIS, seed=seed,
                              exptime=1100.0,
                              start_times_mjd=[start + 0.1 * i for i in range(N_STIS)])
    for f, t0 in zip(truth.files, truth.expstart_mjd[:, 0]):
        root = Path(f).name.split("_")[0]
        fits.PrimaryHDU(header=spt_header("STIS", root, float(t0))).writeto(
            Path(f).with_name(f"{root}_spt.fits"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("census_archive")
    for k, day in enumerate(MONTHS):
        start = to_mjd(day)
        simulate_detector("acs_wfc", root / f"acs_{k}", kind="dark", count=N_ACS, seed=10 + k,
                          start_mjd=start, shape="128x256")
        _stis_darks(root / f"stis_{k}", start + 0.3, seed=20 + k)
    return root


def write_config(where: Path, archive: Path, **over) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    data = {"name": "census", "start": "2011-03-01", "end": "2011-05-01",
            "archive": {"root": str(archive)}, "out": "products",
            "executor": {"workers": 0},
            "detectors": {"acs_wfc": {"stages": ["crstats"]},
                          "stis_ccd": {"stages": ["crstats"]}}}
    data.update(over)
    path = where / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def store_content(path: Path) -> dict:
    """The store's exposures and CRs, independent of the order batches were appended."""
    from hstcal_core.census.store import read_crs, read_exposures

    exp = read_exposures(path)
    crs = read_crs(path)
    keys = sorted(range(len(exp)), key=lambda i: exp["rootname"][i])
    content = {}
    for i in keys:
        row = exp[i]
        mine = crs[crs["rootname"] == row["rootname"]]
        content[str(row["rootname"])] = (
            str(row["detector"]), float(row["start_mjd"]), int(row["n_cr"]), float(row["rate"]),
            int(row["orbit_count"]), np.asarray(mine["energy_e"]).tobytes(),
            np.asarray(mine["centroid_x"]).tobytes())
    return content


@pytest.fixture(scope="module")
def clean(archive, tmp_path_factory):
    where = tmp_path_factory.mktemp("census_clean")
    config = write_config(where, archive)
    result = CliRunner().invoke(main, ["campaign", "run", str(config)])
    assert result.exit_code == 0, result.output
    store = where / "products" / "census.h5"
    return dict(config=config, store=store, output=result.output, content=store_content(store))


def test_every_dark_of_both_detectors_is_in_the_store(clean):
    assert "4 chunk(s) done, 0 failed" in clean["output"]
    content = clean["content"]
    detectors = [v[0] for v in content.values()]
    assert detectors.count("acs_wfc") == 2 * N_ACS
    assert detectors.count("stis_ccd") == 2 * N_STIS
    assert all(v[2] > 0 and v[4] > 0 for v in content.values())  # CRs and an orbit track
    result = CliRunner().invoke(main, ["census", "summary", str(clean["store"]), "--json"])
    assert result.exit_code == 0, result.output


def test_a_rerun_appends_nothing(clean):
    result = CliRunner().invoke(main, ["campaign", "run", str(clean["config"])])
    assert result.exit_code == 0 and "4 already done" in result.output
    assert store_content(clean["store"]) == clean["content"]


def test_sigkill_then_resume_gives_the_clean_store(clean, archive, tmp_path):
    config = write_config(tmp_path, archive, executor={"workers": 2})
    store = tmp_path / "products" / "census.h5"
    journal = Path(str(store) + "-journal")
    killed = 0
    for delay in (4.0, 9.0):
        proc = subprocess.Popen([sys.executable, "-m", "hstcal_core.cli", "campaign", "run",
                                 str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            killed += 1
    assert killed >= 1
    result = CliRunner().invoke(main, ["campaign", "run", str(config)])
    assert result.exit_code == 0, result.output
    assert not journal.exists()
    assert store_content(store) == clean["content"]


def test_report_from_the_campaign_store(clean, tmp_path):
    result = CliRunner().invoke(main, ["census", "report", str(clean["store"]), "--out",
                                       str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "index.html").exists()
    assert len(list((tmp_path / "report").glob("*.png"))) >= 3
