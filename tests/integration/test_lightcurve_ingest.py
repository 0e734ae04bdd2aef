"""The ingest flow end to end: products, database rows, filing by target, bad data,
resuming after a crash, and resets that stay inside their roots (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core.cli import main
from hstcal_core.simulate.timetag import damage_event_file, simulate_timetag
from hstcal_core.timetag import db
from hstcal_core.timetag import ingest as ingest_module
from hstcal_core.timetag.config import load_ingest_config
from hstcal_core.timetag.ingest import ingest


def _config(tmp_path, database_url):
    path = tmp_path / "hstlc.yaml"
    path.write_text(yaml.safe_dump({"root": "tree", "database": database_url,
                                    "lightcurve": {"step": 25.0}}))
    config = load_ingest_config(path)
    config.make_dirs()
    return path, config


def _rows(config, table):
    engine = db.connect_lightcurve_db(config.database)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(table)).mappings().all()
    finally:
        engine.dispose()


def _simulate_into(config, detector, seed, **kwargs):
    truth = simulate_timetag(detector, config.ingest.parent / f"sim{seed}", count=1,
                             seed=seed, exptime=400.0, **kwargs)[0]
    for f in truth.files:
        shutil.move(str(f), config.ingest / f.name)
    return truth


def test_ingest_files_products_rows_and_composites(tmp_path, database_url):
    config_path, config = _config(tmp_path, database_url)
    a = _simulate_into(config, "cos_fuv", 1)
    b = _simulate_into(config, "cos_fuv", 2)
    c = _simulate_into(config, "cos_nuv", 3, targname="OTHER STAR")
    result = CliRunner().invoke(main, ["lightcurve", "ingest", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "3 ingested, 0 refused, 2 composite(s) written" in result.output
    assert not any(config.ingest.iterdir())  # everything filed
    target = config.filesystem / "SIM-TARGET"
    assert sorted(p.name for p in target.iterdir()) == sorted(
        f.name for t in (a, b) for f in t.files)
    # "OTHER STAR" has a space: filed under a sanitised, hash-tagged directory name.
    (other,) = [p for p in config.filesystem.iterdir() if p.name.startswith("OTHER_STAR")]
    assert sorted(p.name for p in other.iterdir()) == sorted(f.name for f in c.files)
    outputs = config.outputs / "SIM-TARGET"
    for t in (a, b):
        assert (outputs / f"{t.rootname}_curve.fits").is_file()
        assert (outputs / f"{t.rootname}_curve.png").is_file()
    composite = outputs / "hlsp_hstlc_hst_cos-fuv_sim-target_g130m-1291-psa_v1_sci.fits"
    with fits.open(composite) as hdul:
        assert hdul[0].header["HLSPID"] == "HSTLC" and hdul[0].header["NEXPOSUR"] == 2
        assert set(hdul["LIGHTCURVE"].data["dataset"]) == {a.rootname, b.rootname}
    meta = _rows(config, db.metadata_table)
    assert len(meta) == 5  # two FUV exposures × segments A, B and one NUV corrtag
    assert {r["target_dir"] for r in meta} == {"SIM-TARGET", other.name}
    kinds = [r["kind"] for r in _rows(config, db.outputs)]
    assert kinds.count("individual") == 5 and kinds.count("composite") == 5
    stats = {r["name"]: r for r in _rows(config, db.stats)}
    assert set(stats) >= {a.rootname, b.rootname, c.rootname, composite.name}
    assert 0.5 < stats[a.rootname]["poisson_factor"] < 2.0
    # Nothing new: a rerun changes nothing.
    report = ingest(config)
    assert not report.ingested and not report.composites and not report.bad


def _corrupt(path, edit):
    with fits.open(path, mode="update") as hdul:
        edit(hdul)


def test_bad_inputs_go_to_bad_data_with_reasons(tmp_path, database_url):
    _, config = _config(tmp_path, database_url)
    cases = {}
    t = _simulate_into(config, "cos_nuv", 10)
    cases[t.rootname] = "no events"
    damage_event_file(config.ingest / f"{t.rootname}_corrtag.fits", "zero")
    for seed, (reason, damage) in enumerate((("bad EXPFLAG", "bad_expflag"),
                                             ("non-monotonic TIME", "non_monotonic"),
                                             ("single time", "single_time"),
                                             ("EXPTIME < 1 s", "short_exptime")), start=11):
        t = _simulate_into(config, "cos_nuv", seed)
        cases[t.rootname] = reason
        damage_event_file(config.ingest / f"{t.rootname}_corrtag.fits", damage)
    t = _simulate_into(config, "cos_nuv", 15)
    cases[t.rootname] = "missing x1d"
    (config.ingest / f"{t.rootname}_x1d.fits").unlink()
    for seed, hostile in ((16, "../../etc"), (17, "a/b\\c"), (18, "X" * 300)):
        t = _simulate_into(config, "cos_nuv", seed)
        cases[t.rootname] = "unsafe TARGNAME"
        _corrupt(config.ingest / f"{t.rootname}_corrtag.fits",
                 lambda h, v=hostile: h[0].header.__setitem__("TARGNAME", v))
    t = _simulate_into(config, "cos_nuv", 19)
    cases[t.rootname] = "unreadable"
    (config.ingest / f"{t.rootname}_corrtag.fits").write_bytes(b"SIMPLE  =  garbage")
    good = _simulate_into(config, "cos_nuv", 20)

    report = ingest(config)
    assert report.ingested == [good.rootname]
    assert dict(report.bad) == cases
    rows = _rows(config, db.bad_data)
    assert {r["rootname"]: r["reason"] for r in rows} == cases
    # Every refused file is kept, in bad_data/, and nothing escaped the roots.
    for root in cases:
        assert (config.bad_data / f"{root}_corrtag.fits").is_file()
    assert not (tmp_path / "etc").exists() and not (config.filesystem.parent / "etc").exists()
    assert not any(config.ingest.iterdir())
    roots = [r.resolve() for r in config.roots.values()]
    stray = [f for f in tmp_path.rglob("*") if f.is_file()
             and not any(r in f.resolve().parents for r in roots)
             and not f.name.startswith(("hstlc.yaml", "x.sqlite"))
             and not f.parent.name.startswith("sim")]
    assert stray == []


def test_crash_after_commit_is_finished_by_a_rerun(tmp_path, database_url, monkeypatch):
    _, config = _config(tmp_path, database_url)
    a = _simulate_into(config, "cos_fuv", 30)
    b = _simulate_into(config, "cos_fuv", 31)
    calls = {"n": 0}
    real_move = ingest_module._move

    def dying_move(src, dst_dir, root):
        calls["n"] += 1
        if calls["n"] == 2:  # die in the middle of filing the first exposure
            raise KeyboardInterrupt("killed")
        return real_move(src, dst_dir, root)

    monkeypatch.setattr(ingest_module, "_move", dying_move)
    with pytest.raises(KeyboardInterrupt):
        ingest(config)
    monkeypatch.setattr(ingest_module, "_move", real_move)
    # Rows were committed before the move started: the files are all still somewhere.
    names = {f.name for t in (a, b) for f in t.files}
    assert names == {p.name for p in config.ingest.iterdir()} | {
        p.name for p in config.filesystem.rglob("*") if p.is_file()}
    report = ingest(config)
    assert report.resumed == [a.rootname] and report.ingested == [b.rootname]
    assert not any(config.ingest.iterdir())
    assert len(report.composites) == 1
    meta = _rows(config, db.metadata_table)
    assert len(meta) == 4 and len({r["filename"] for r in meta}) == 4


def test_reset_stays_inside_roots_and_asks_first(tmp_path, database_url):
    config_path, config = _config(tmp_path, database_url)
    t = _simulate_into(config, "cos_nuv", 40)
    ingest(config)
    outside = tmp_path / "precious.fits"
    outside.write_bytes(b"keep me")
    (config.filesystem / "SIM-TARGET" / "link.fits").symlink_to(outside)
    runner = CliRunner()
    answer_no = runner.invoke(main, ["lightcurve", "reset", "--filesystem", "--config",
                                     str(config_path)], input="n\n")
    assert answer_no.exit_code == 1 and "nothing changed" in answer_no.output
    assert (config.outputs / "SIM-TARGET" / f"{t.rootname}_curve.fits").exists()
    result = runner.invoke(main, ["lightcurve", "reset", "--filesystem", "--database",
                                  "--yes", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert outside.read_bytes() == b"keep me"
    assert sorted(p.name for p in config.ingest.iterdir()) == sorted(f.name for f in t.files)
    assert not any(p.is_file() for p in config.outputs.rglob("*"))
    engine = db.connect(config.database, create=False)
    assert not {"metadata", "outputs", "bad_data", "stats"} & set(
        sa.inspect(engine).get_table_names())
    engine.dispose()
    # And the reset is undone by ingesting again.
    assert ingest(config).ingested == [t.rootname]


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ingest": "a", "outputs": "a"}))
    with pytest.raises(Exception, match="distinct"):
        load_ingest_config(bad)
    bad.write_text(yaml.safe_dump({"ingset": "a"}))
    with pytest.raises(Exception, match="unknown key.*ingset"):
        load_ingest_config(bad)
    bad.write_text(yaml.safe_dump({"lightcurve": {"stpe": 1}}))
    with pytest.raises(Exception, match="stpe"):
        load_ingest_config(bad)
    assert np.isfinite(1.0)
