"""Campaign building blocks: month/anneal chunks, inactive windows, config validation,
state transitions and the store lock."""

import datetime as dt
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hstcal_core.campaign.chunks import Chunk, active_windows, anneal_chunks, month_chunks, to_mjd
from hstcal_core.campaign.config import campaign_config, load_campaign_config
from hstcal_core.campaign.lock import StoreLock, StoreLocked
from hstcal_core.campaign.state import CampaignState, ExposureOutcome
from hstcal_core.db import connect
from hstcal_core.errors import ConfigError
from hstcal_core.reffiles.anneal import AnnealPeriod


def test_months_include_the_final_partial_month():
    chunks = month_chunks(dt.date(2005, 1, 15), dt.date(2005, 4, 10))
    assert [c.key for c in chunks] == ["2005-01", "2005-02", "2005-03", "2005-04"]
    assert chunks[0].start_mjd == to_mjd(dt.date(2005, 1, 15))  # clipped to the range
    assert chunks[-1].end_mjd == to_mjd(dt.date(2005, 4, 10))   # HSTcosmicrays dropped this one
    for a, b in zip(chunks, chunks[1:]):
        assert a.end_mjd == b.start_mjd                          # exact tiling, no gap
    assert month_chunks(dt.date(2005, 12, 1), dt.date(2006, 2, 1))[1].key == "2006-01"
    assert month_chunks(dt.date(2005, 1, 1), dt.date(2005, 1, 1)) == []


def test_anneal_chunks_are_whole_periods_overlapping_the_range():
    periods = [AnnealPeriod(i, 53000.0 + 28 * i, 53028.0 + 28 * i) for i in range(5)]
    start = dt.date(2004, 1, 20)  # MJD 53024: inside period 0
    chunks = anneal_chunks(periods, start, dt.date(2004, 3, 1))  # MJD 53065: inside period 2
    assert [c.key for c in chunks] == [p.name for p in periods[:3]]
    assert chunks[0].start_mjd == 53000.0  # not clipped


def test_inactive_windows_remove_whole_or_partial_chunks():
    acs_wfc = (("2007-01-27", "2009-05-01"),)
    jan07 = Chunk("2007-01", to_mjd("2007-01-01"), to_mjd("2007-02-01"))
    parts = active_windows(jan07, acs_wfc)
    assert parts == [(to_mjd("2007-01-01"), to_mjd("2007-01-27"))]
    jun08 = Chunk("2008-06", to_mjd("2008-06-01"), to_mjd("2008-07-01"))
    assert active_windows(jun08, acs_wfc) == []
    may09 = Chunk("2009-05", to_mjd("2009-05-01"), to_mjd("2009-06-01"))
    assert active_windows(may09, acs_wfc) == [(may09.start_mjd, may09.end_mjd)]
    # a window in the middle of a chunk leaves two parts; an open-ended one removes the rest
    mid = (("2010-03-10", "2010-03-20"),)
    mar = Chunk("2010-03", to_mjd("2010-03-01"), to_mjd("2010-04-01"))
    assert len(active_windows(mar, mid)) == 2
    assert active_windows(mar, (("2010-03-15", None),)) == [(mar.start_mjd, to_mjd("2010-03-15"))]


def _base(tmp_path, **over):
    data = dict(name="t", start="2005-01-01", end="2005-03-01",
                archive={"root": str(tmp_path)}, out=str(tmp_path / "out"),
                detectors={"stis_ccd": {"stages": ["anneal"]}})
    data.update(over)
    return data


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['strat'\]"):
        campaign_config({**_base(tmp_path), "strat": 1})
    with pytest.raises(ConfigError, match="'end' .* must be after 'start'"):
        campaign_config(_base(tmp_path, end="2004-01-01"))
    with pytest.raises(ConfigError, match="chunking 'anneal' needs 'anneal_table'"):
        campaign_config(_base(tmp_path, chunking="anneal"))
    with pytest.raises(ConfigError, match="'scheduler' or 'dask_local', not both"):
        campaign_config(_base(tmp_path, executor={"scheduler": "tcp://x:1", "dask_local": 2}))
    with pytest.raises(ConfigError, match="'start' must be a date"):
        campaign_config(_base(tmp_path, start="soon"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stage'\]"):
        campaign_config(_base(tmp_path, detectors={"stis_ccd": {"stage": "x"}}))


def test_config_paths_are_relative_to_the_yaml_file_and_env_fills_site_settings(tmp_path,
                                                                                monkeypatch):
    (tmp_path / "c.yaml").write_text(textwrap.dedent("""
        name: demo
        start: 2005-01-01
        end: 2005-02-01
        archive: {root: arch}
        out: prod
        detectors: {stis_ccd: {stages: [anneal]}}
    """))
    monkeypatch.setenv("HSTCAL_DOWNLOAD_DIR", str(tmp_path / "dl"))
    cfg = load_campaign_config(tmp_path / "c.yaml")
    assert cfg.archive.root == tmp_path / "arch"
    assert cfg.out == tmp_path / "prod"
    assert cfg.scratch == tmp_path / "dl"
    assert cfg.database == f"sqlite:///{(tmp_path / 'prod' / 'campaign.sqlite').resolve()}"
    monkeypatch.setenv("HSTCAL_DATABASE", "postgresql://u@h/db")
    assert load_campaign_config(tmp_path / "c.yaml").database == "postgresql://u@h/db"


def test_state_transitions_and_one_transaction_per_chunk(database_url):
    engine = connect(database_url)  # SQLite and PostgreSQL
    state = CampaignState(engine, "c1", "fp")
    units = [("stis_ccd", "anneal", "m1", 1.0, 2.0, False),
             ("stis_ccd", "anneal", "m2", 2.0, 3.0, True)]
    state.ensure_chunks(units)
    state.ensure_chunks(units)  # idempotent
    rows = state.chunks()
    assert [(r.chunk, r.status) for r in rows] == [("m1", "pending"), ("m2", "inactive")]
    state.mark_running(rows[0].id)
    state.mark_done(rows[0].id, [ExposureOutcome("a", "/x/a", "processed"),
                                 ExposureOutcome("b", "/x/b", "rejected", "CCDAMP=A"),
                                 ExposureOutcome("b", "/x/b", "processed")],
                    ["p/one.fits", "p/one.fits"], ["week 2: no biases"])
    row = state.chunks()[0]
    assert (row.status, row.n_processed, row.n_rejected, row.n_products, row.attempts) == \
        ("done", 1, 1, 1, 1)
    assert row.problems == ("week 2: no biases",)
    assert [(e["rootname"], e["status"], e["reason"]) for e in state.exposures()] == \
        [("a", "processed", None), ("b", "rejected", "CCDAMP=A")]
    # redoing the chunk replaces its rows; a failure drops them and keeps the error
    state.mark_running(row.id)
    state.mark_failed(row.id, "boom")
    row = state.chunks()[0]
    assert (row.status, row.error, row.n_processed, row.attempts) == ("failed", "boom", 0, 2)
    assert state.exposures() == [] and state.products() == []
    # another campaign in the same database is independent
    other = CampaignState(engine, "c2", "fp")
    other.ensure_chunks(units[:1])
    assert len(other.chunks()) == 1 and len(state.chunks()) == 2


def _hold_lock(out, ready, release):
    with StoreLock(out, "first"):
        ready.set()
        release.wait(30)


def test_lock_refuses_a_second_writer_with_a_clear_message(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreLocked, match=r"being written by campaign 'first' \(pid \d+"):
            with StoreLock(tmp_path, "second"):
                pass
    finally:
        release.set()
        proc.join(30)
    with StoreLock(tmp_path, "second"):  # free again once the holder is gone
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    code = ("import sys, time; from hstcal_core.campaign.lock import StoreLock\n"
            f"l = StoreLock(r'{tmp_path}', 'victim').__enter__(); print('locked', flush=True);"
            " time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLocked, match="victim"):
            StoreLock(tmp_path, "me").__enter__()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.stdout.close()
    with StoreLock(tmp_path, "me"):
        pass
