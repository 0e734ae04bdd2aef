"""A campaign against the loopback MAST server: astroquery queries and downloads a month of
STIS biases and darks, the campaign processes them, deletes the downloads, and survives an
archive outage (the chunk fails, ``--retry-failed`` finishes it)."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import run_stage
from hstcal_core.campaign import Campaign
from hstcal_core.cli import main
from hstcal_stis.simulate import simulate_anneal_month

SMALL = dict(bias_files_per_week=1, binned_bias_files=0, gain4_files_per_biweek=0,
             darks_per_week=2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("mast_files")
    truth = simulate_anneal_month(root, seed=21, **SMALL)
    return dict(root=root, truth=truth)


def config(tmp_path: Path, served, server, **archive) -> Path:
    data = {"name": "mast-month", "start": "2011-02-09", "end": "2011-03-01",
            "chunking": "anneal", "anneal_table": str(served["root"] / "anneal_table.yml"),
            "out": str(tmp_path / "products"), "scratch": str(tmp_path / "scratch"),
            "archive": {"kind": "mast", "server": server.url, "retries": 1, "backoff": 0.01,
                        **archive},
            "executor": {"workers": 0},
            "detectors": {"stis_ccd": {"stages": ["anneal"]}}}
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_month_is_downloaded_with_astroquery_processed_and_cleaned_up(fake_mast, served,
                                                                         tmp_path):
    server = fake_mast(served["root"])
    c = Campaign.from_yaml(config(tmp_path, served, server))
    report = c.run()
    assert report.ok, report.failed
    n_raw = len(served["truth"].files)
    assert report.processed == n_raw == 12 and report.rejected == 0
    # every raw was downloaded exactly once, and nothing else
    assert sorted(server.downloads()) == sorted(Path(f).name for f in served["truth"].files)
    assert "Mast.Caom.Filtered" in server.services and "Mast.Caom.Products" in server.services
    # downloads are gone once the chunk is stored
    assert not [p for p in (tmp_path / "scratch").rglob("*") if p.is_file()]
    # the products equal the stage run directly on the served files
    direct = tmp_path / "direct"
    run_stage("anneal", detector="stis_ccd", inputs=[served["root"]], out=direct,
              anneal_table=served["root"] / "anneal_table.yml")
    ours = sorted((tmp_path / "products" / "stis_ccd" / "anneal").rglob("*.fits"))
    theirs = sorted(direct.rglob("*.fits"))
    assert [p.name for p in ours] == [p.name for p in theirs] and len(ours) == 10
    for a, b in zip(ours, theirs):
        with fits.open(a) as ha, fits.open(b) as hb:
            for x, y in zip(ha, hb):
                if x.data is not None:
                    np.testing.assert_array_equal(x.data, y.data)
    # a rerun finds the month done and downloads nothing
    n = len(server.downloads())
    assert Campaign.from_yaml(config(tmp_path, served, server)).run().already_done == 1
    assert len(server.downloads()) == n


def test_an_outage_fails_the_chunk_and_retry_failed_completes_it(fake_mast, served, tmp_path):
    server = fake_mast(served["root"])
    cfg = config(tmp_path, served, server)
    server.fail_next(1000, status=503)
    result = CliRunner().invoke(main, ["campaign", "run", str(cfg)])
    assert result.exit_code == 1, result.output
    assert "0 chunk(s) done, 1 failed" in result.output
    status = Campaign.from_yaml(cfg).status()
    assert status[0].status == "failed" and "503" in status[0].error
    assert not (tmp_path / "products" / "stis_ccd").exists()
    # recovered server; without --retry-failed nothing happens, with it the month is built
    server.clear_faults()
    result = CliRunner().invoke(main, ["campaign", "run", str(cfg)])
    assert result.exit_code == 1 and "not retried (use --retry-failed)" in result.output
    result = CliRunner().invoke(main, ["campaign", "run", str(cfg), "--retry-failed",
                                       "--keep-downloads"])
    assert result.exit_code == 0, result.output
    assert Campaign.from_yaml(cfg).status()[0].status == "done"
    kept = sorted(p.name for p in (tmp_path / "scratch").rglob("*_raw.fits"))
    assert len(kept) == 12  # --keep-downloads


def test_an_exposure_failing_a_header_criterion_is_rejected_with_the_reason(fake_mast, served,
                                                                             tmp_path):
    import shutil

    root = tmp_path / "served"
    shutil.copytree(served["root"], root)
    bias = next(p for p in sorted(root.glob("*_raw.fits"))
                if fits.getheader(p)["TARGNAME"] == "BIAS")
    with fits.open(bias, mode="update") as hdul:
        hdul[0].header["CCDAMP"] = "A"
    server = fake_mast(root)
    c = Campaign.from_yaml(config(tmp_path, {"root": root}, server))
    report = c.run()
    assert report.ok and report.rejected == 1
    rejected = [e for e in c.exposures() if e["status"] == "rejected"]
    assert rejected[0]["rootname"] == bias.name.split("_")[0]
    assert rejected[0]["reason"] == "CCDAMP=A, wanted CCDAMP=D"
