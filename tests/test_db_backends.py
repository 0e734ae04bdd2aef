"""The one database on both backends it supports: SQLite and PostgreSQL.

Every test runs once per backend (fixture ``database_url``); the PostgreSQL runs need
``HSTCAL_TEST_POSTGRES`` (``.ci/run`` starts a throwaway server with ``.ci/postgres.sh``)
and skip without it.
"""

import datetime as dt
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from hstcal_core.archive.base import QueryCriteria
from hstcal_core.archive.local import LocalArchive, archive_files
from hstcal_core.campaign.lock import StoreLock, StoreLocked
from hstcal_core.campaign.state import campaigns, chunks
from hstcal_core.db import connect

TABLES = {"archive_files", "campaigns", "campaign_chunks", "campaign_exposures",
          "campaign_products"}


def backend(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def test_connect_creates_the_archive_and_campaign_tables(database_url):
    engine = connect(database_url)
    assert engine.dialect.name == backend(database_url)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    indexes = {tuple(i["column_names"]) for i in sa.inspect(engine).get_indexes("archive_files")}
    assert {("instrument_name", "start_mjd"), ("rootname",), ("start_mjd",)} <= indexes
    again = connect(database_url)  # the tables exist: creating them again is a no-op
    assert TABLES <= set(sa.inspect(again).get_table_names())


def test_rows_round_trip(database_url):
    engine = connect(database_url)
    created = dt.datetime(2011, 2, 8, 12, 30, 15, 123456)
    with engine.begin() as conn:
        cid = conn.execute(campaigns.insert().values(name="réf/α", fingerprint="f" * 64,
                                                     created_at=created)
                           ).inserted_primary_key[0]
        conn.execute(chunks.insert(), [
            dict(campaign_id=cid, detector="stis_ccd", stage="anneal", chunk=f"m{i}",
                 start_mjd=55600.0 + i / 3, end_mjd=55600.1 + i / 3, status="pending")
            for i in range(3)])
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns)).one()
        got = conn.execute(sa.select(chunks.c.chunk, chunks.c.start_mjd, chunks.c.attempts)
                           .order_by(chunks.c.chunk)).all()
    assert (row.name, row.fingerprint, row.created_at) == ("réf/α", "f" * 64, created)
    assert [tuple(r) for r in got] == [(f"m{i}", 55600.0 + i / 3, 0) for i in range(3)]
    with pytest.raises(sa.exc.IntegrityError):  # uq_chunk holds on both
        with engine.begin() as conn:
            conn.execute(chunks.insert().values(campaign_id=cid, detector="stis_ccd",
                                                stage="anneal", chunk="m0", start_mjd=0.0,
                                                end_mjd=1.0, status="pending"))


def test_archive_index_and_query(database_url, stis_raw, tmp_path):
    (tmp_path / "arch").mkdir()
    for i, start in enumerate((55600.0, 55600.5, 55700.0)):
        stis_raw(f"arch/o8u20{i}a1q_raw.fits", targname="DARK", exptime=1100.0,
                 texpstrt=start)
    archive = LocalArchive(tmp_path / "arch", connect(database_url))
    report = archive.index()
    assert (report.added, report.bad) == (3, [])
    assert archive.index().unchanged == 3
    found = archive.query(QueryCriteria(detector="stis_ccd", purpose="dark",
                                        instrument_name=("STIS/*",), file_types=("RAW",),
                                        intent=None, target_name=("DAR*",),
                                        header={"CCDAMP": "D"}, time=(55600.0, 55601.0)))
    assert [d.rootname for d in found] == ["o8u200a1q", "o8u201a1q"]
    with archive.engine.connect() as conn:
        header = conn.execute(sa.select(archive_files.c.header)
                              .where(archive_files.c.rootname == "o8u201a1q")).scalar_one()
    assert (header["CCDAMP"], header["CCDGAIN"], header["BINAXIS1"]) == ("D", 1, 1)  # JSON


def test_a_second_holder_of_the_database_is_refused(database_url, tmp_path):
    # Different product directories, so only the database lock stands between them:
    # an advisory lock on PostgreSQL, a lock file beside the database file on SQLite.
    first, second = connect(database_url), connect(database_url)
    with StoreLock(tmp_path / "a", "first", first):
        assert _advisory_locks(database_url) == (1 if backend(database_url) == "postgresql"
                                                  else 0)
        expected = ("being written by another campaign" if backend(database_url) == "postgresql"
                    else "being written by campaign 'first'")
        with pytest.raises(StoreLocked, match=expected):
            with StoreLock(tmp_path / "b", "second", second):
                pass
    assert _advisory_locks(database_url) == 0  # released, not left on a pooled connection
    with StoreLock(tmp_path / "b", "second", second):
        pass
    with StoreLock(tmp_path / "a", "first", first):  # and again by the same engine
        pass


def test_the_database_lock_dies_with_its_holder(database_url, tmp_path):
    code = ("import time; from hstcal_core.campaign.lock import StoreLock;"
            "from hstcal_core.db import connect\n"
            f"l = StoreLock(r'{tmp_path / 'a'}', 'victim', connect({database_url!r})).__enter__()\n"
            "print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    engine = connect(database_url)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLocked):
            StoreLock(tmp_path / "b", "me", engine).__enter__()
        proc.kill()  # SIGKILL: no release, the server/kernel must notice
        proc.wait(10)
    finally:
        proc.kill()
        proc.stdout.close()
    deadline = time.monotonic() + 20  # PostgreSQL ends the session when the socket closes
    while True:
        try:
            with StoreLock(tmp_path / "b", "me", engine):
                break
        except StoreLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _advisory_locks(url: str) -> int:
    if backend(url) != "postgresql":
        return 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE "
                                        "locktype = 'advisory' AND granted")).scalar_one()
    finally:
        engine.dispose()
