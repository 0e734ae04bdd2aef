"""Campaigns end to end: a local archive of three simulated anneal months for two detectors
(STIS/CCD biases and darks through the ``anneal`` stage, the example plugin's darks through
``crreject``), the CLI, status, resumption, SIGKILL crash safety (a real subprocess), a Dask
local cluster, failures and retries, the lock."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core.campaign import Campaign
from hstcal_core.campaign.lock import StoreLock
from hstcal_core.cli import main
from hstcal_example.simulate import simulate as simulate_example
from hstcal_stis.simulate import simulate_anneal_months

VOLATILE = {"CHECKSUM", "DATASUM", "DATE", "IRAF-TLM"}
MONTHS = 3
PRODUCTS_PER_MONTH = 10  # basebias + 4 weekbias + basedark + 4 weekdark (+ manifest.json)
FILES_PER_MONTH = 12  # 4 biases of 2 imsets, 8 darks of 1 imset
EXAMPLE_PER_MONTH = 4  # example_cam darks, combined into one crreject product per period
DETECTORS = {"stis_ccd": {"stages": ["anneal"]},
             "example_cam": {"stages": ["crreject"], "purposes": ["dark"]}}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    truths = simulate_anneal_months(root / "stis", months=MONTHS, seed=11, bias_files_per_week=1,
                                    binned_bias_files=0, gain4_files_per_biweek=0,
                                    darks_per_week=2)
    example = simulate_example(root / "example", count=MONTHS * EXAMPLE_PER_MONTH, seed=3,
                               start_mjd=truths[0].start_mjd, cadence_days=28.3 / 4)
    return dict(root=root, table=root / "stis" / "anneal_table.yml", truths=truths,
                example=example)


def write_config(where: Path, archive, name="stis-e2e", **over) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "start": "2011-02-08", "end": "2011-05-03", "chunking": "anneal",
            "anneal_table": str(archive["table"]), "out": "products",
            "archive": {"kind": "local", "root": str(archive["root"])},
            "executor": {"workers": 0},
            "detectors": DETECTORS}
    data.update(over)
    path = where / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(out: Path) -> dict:
    """Every product's data and stable header cards, keyed by relative path."""
    snap = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if not path.is_file() or rel.startswith(".") or path.suffix == ".sqlite" or \
                "sqlite" in path.name or path.name.endswith(".lock"):
            continue
        if path.suffix == ".json":
            snap[rel] = json.loads(path.read_text())
            continue
        with fits.open(path) as hdul:
            snap[rel] = [({k: v for k, v in h.header.items() if k not in VOLATILE},
                          None if h.data is None else np.asarray(h.data).tobytes())
                         for h in hdul]
    return snap


def db_rows(out: Path) -> dict:
    con = sqlite3.connect(out / "campaign.sqlite")
    try:
        chunks = con.execute("SELECT detector, stage, chunk, status, n_processed, n_rejected, "
                             "n_products FROM campaign_chunks ORDER BY chunk").fetchall()
        exposures = con.execute("SELECT c.chunk, e.rootname, e.status, e.reason FROM "
                                "campaign_exposures e JOIN campaign_chunks c ON "
                                "c.id = e.chunk_id ORDER BY c.chunk, e.rootname").fetchall()
        products = con.execute("SELECT path FROM campaign_products ORDER BY path").fetchall()
    finally:
        con.close()
    return dict(chunks=chunks, exposures=exposures, products=products)


@pytest.fixture(scope="module")
def clean(archive, tmp_path_factory):
    """An uninterrupted run from the CLI: the reference the other runs must equal."""
    where = tmp_path_factory.mktemp("clean")
    config = write_config(where, archive)
    result = cli("archive", "index", archive["root"], "--database",
                 where / "products" / "campaign.sqlite")
    assert result.exit_code == 0, result.output
    result = cli("campaign", "run", config)
    assert result.exit_code == 0, result.output
    out = where / "products"
    return dict(config=config, out=out, output=result.output, snap=snapshot(out),
                rows=db_rows(out))


def test_clean_run_builds_every_month_and_records_every_exposure(clean, archive):
    assert "6 chunk(s) done, 0 failed" in clean["output"]
    stis = [k for k in clean["snap"] if k.startswith("stis_ccd/anneal/") and k.endswith(".fits")]
    assert len(stis) == MONTHS * PRODUCTS_PER_MONTH
    assert sum(k.endswith("manifest.json") for k in clean["snap"]) == MONTHS
    example = [k for k in clean["snap"] if k.startswith("example_cam/crreject/")]
    assert len(example) == MONTHS and all(k.endswith("_crreject.fits") for k in example)
    rows = clean["rows"]
    assert [r[3] for r in rows["chunks"]] == ["done"] * 2 * MONTHS
    n_files = sum(len(t.files) for t in archive["truths"]) + len(archive["example"]["files"])
    assert len(rows["exposures"]) == n_files == MONTHS * (FILES_PER_MONTH + EXAMPLE_PER_MONTH)
    assert all(status == "processed" for _, _, status, _ in rows["exposures"])
    assert len(rows["products"]) == MONTHS * (PRODUCTS_PER_MONTH + 1 + 1)
    assert not list((clean["out"] / ".staging").rglob("*.fits"))


def test_campaign_products_equal_the_standalone_stage(clean, archive, tmp_path):
    month = archive["truths"][1]
    raw = Path(month.files[0]).parent
    result = cli("run", "--instrument", "stis_ccd", "--stage", "anneal", "--anneal-table",
                 archive["table"], raw, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    alone = snapshot(tmp_path)
    assert alone
    for rel, content in alone.items():
        assert clean["snap"][f"stis_ccd/anneal/{rel}"] == content, rel


def test_status_and_rerun_skip_what_is_done(clean):
    result = cli("campaign", "status", clean["config"], "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert [c["status"] for c in status["chunks"]] == ["done"] * 2 * MONTHS
    assert all(c["processed"] == FILES_PER_MONTH and c["products"] == PRODUCTS_PER_MONTH + 1
               for c in status["chunks"] if c["detector"] == "stis_ccd")
    assert all(c["processed"] == EXAMPLE_PER_MONTH and c["products"] == 1
               for c in status["chunks"] if c["detector"] == "example_cam")
    before = {p: p.stat().st_mtime_ns for p in clean["out"].rglob("*.fits")}
    result = cli("campaign", "run", clean["config"])
    assert result.exit_code == 0, result.output
    assert "0 chunk(s) done, 0 failed, 6 already done" in result.output
    assert {p: p.stat().st_mtime_ns for p in clean["out"].rglob("*.fits")} == before


def _poll(predicate, proc, timeout=240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError("kill point never reached")


def _done_chunks(out: Path) -> int:
    db = out / "campaign.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM campaign_chunks WHERE status='done'"
                               ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_at_any_moment_then_resume_equals_a_clean_run(clean, archive, tmp_path):
    config = write_config(tmp_path, archive, executor={"workers": 2})
    out = tmp_path / "products"
    kill_points = [
        ("a worker is writing the first staged product",
         lambda: any((out / ".staging").rglob("*.fits")) if (out / ".staging").exists() else False),
        ("the first chunk was just stored", lambda: _done_chunks(out) >= 1),
        ("in the middle of the second month", lambda: _done_chunks(out) >= 1 and any(
            (out / ".staging").rglob("*_bia.fits"))),
    ]
    killed = 0
    mark = f"hstcal-sigkill-test-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "HSTCAL_TEST_MARK": mark}
    for what, predicate in kill_points:
        proc = subprocess.Popen([sys.executable, "-m", "hstcal_core.cli", "campaign", "run",
                                 str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            if _poll(predicate, proc):
                os.kill(proc.pid, signal.SIGKILL)  # the driver only: workers are orphaned
                killed += 1
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert killed >= 2, "the run finished before the kill points were reached"
    result = cli("campaign", "run", config)
    assert result.exit_code == 0, result.output
    assert snapshot(out) == clean["snap"]
    assert db_rows(out) == clean["rows"]
    # the killed drivers' workers noticed and left (none lingers as an orphan)
    deadline = time.monotonic() + 20
    while _marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marked_processes(mark) == []


def _marked_processes(mark: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if mark.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_failed_chunk_is_never_done_and_is_retried_on_request(archive, tmp_path,
                                                                 monkeypatch):
    config = write_config(tmp_path, archive)
    import hstcal_core.reffiles.anneal_set as anneal_set

    real = anneal_set.build_product
    victim = archive["truths"][1]

    def flaky(**kwargs):
        spec = kwargs["spec"]
        if any(Path(f.path).parent == Path(victim.files[0]).parent for f in spec.frames):
            raise RuntimeError("simulated crash in a worker")
        return real(**kwargs)

    monkeypatch.setattr(anneal_set, "build_product", flaky)
    report = Campaign.from_yaml(config).run()
    assert len(report.done) == 5 and len(report.failed) == 1
    assert "simulated crash in a worker" in report.failed[0][1]
    rows = db_rows(tmp_path / "products")
    statuses = {r[2]: r[3] for r in rows["chunks"] if r[0] == "stis_ccd"}
    assert sorted(statuses.values()) == ["done", "done", "failed"]
    failed_chunk = next(k for k, v in statuses.items() if v == "failed")
    assert not (tmp_path / "products" / "stis_ccd" / "anneal" / failed_chunk).exists()
    assert len([e for e in rows["exposures"] if e[0] == failed_chunk]) == EXAMPLE_PER_MONTH

    monkeypatch.setattr(anneal_set, "build_product", real)
    again = Campaign.from_yaml(config).run()
    assert again.done == [] and len(again.not_retried) == 1 and not again.ok
    result = cli("campaign", "run", config, "--retry-failed")
    assert result.exit_code == 0, result.output
    assert "1 chunk(s) done, 0 failed, 5 already done" in result.output
    assert [r[3] for r in db_rows(tmp_path / "products")["chunks"]] == ["done"] * 2 * MONTHS


def test_two_campaigns_cannot_write_one_store(archive, tmp_path):
    config = write_config(tmp_path, archive)
    with StoreLock(tmp_path / "products", "someone-else"):
        result = cli("campaign", "run", config)
    assert result.exit_code == 2
    assert "being written by campaign 'someone-else'" in result.output


def test_a_rejected_exposure_is_recorded_with_its_reason(archive, tmp_path):
    # A private archive of the first month in which one dark lost its CCDGAIN keyword:
    # the index takes it (it is a STIS/CCD dark), the stage rejects it, the month goes on.
    import shutil

    month = Path(archive["truths"][0].files[0]).parent
    private = tmp_path / "archive"
    shutil.copytree(month, private / "month")
    dark = next(p for p in sorted((private / "month").glob("*_raw.fits"))
                if fits.getheader(p)["TARGNAME"] == "DARK")
    with fits.open(dark, mode="update") as hdul:
        del hdul[0].header["CCDGAIN"]
    config = write_config(tmp_path, {"root": private, "table": archive["table"]},
                          end="2011-03-01", detectors={"stis_ccd": {"stages": ["anneal"]}})
    c = Campaign.from_yaml(config)
    report = c.run()
    assert report.ok and report.rejected == 1 and report.processed == FILES_PER_MONTH - 1
    rejected = [e for e in c.exposures() if e["status"] == "rejected"]
    assert len(rejected) == 1
    assert rejected[0]["rootname"] == dark.name.split("_")[0]
    assert "CCDGAIN" in rejected[0]["reason"]
    assert [r.status for r in c.status()] == ["done"]


def test_a_dask_local_cluster_gives_the_same_stores(clean, archive, tmp_path):
    config = write_config(tmp_path, archive)
    result = cli("campaign", "run", config, "--dask-local", "2")
    assert result.exit_code == 0, result.output
    out = tmp_path / "products"
    assert snapshot(out) == clean["snap"]
    assert db_rows(out) == clean["rows"]
