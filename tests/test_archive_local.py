"""The local archive: incremental indexing, SQL queries with every filter, in-place fetch, CLI."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import db
from hstcal_core.archive import local as local_module
from hstcal_core.archive.base import Archive, QueryCriteria
from hstcal_core.archive.local import LocalArchive, archive_files
from hstcal_core.cli import main
from hstcal_core.cli_archive import mjd_to_iso, parse_mjd
from hstcal_core.errors import ConfigError, InputError

JAN_2005 = 53371.0  # 2005-01-01T00:00:00
FEB_2005 = 53402.0  # 2005-02-01T00:00:00


# ---------------------------------------------------------------------- synthetic files
def write_raw(path: Path, *, instrument="STIS", detector="CCD", target="DARK", start=JAN_2005,
              exptime=1100.0, ccdamp="D", proposal=10021, obstype="IMAGING") -> Path:
    """A small raw file with the headers the archive reads (STIS: TEXP*, ACS: EXP* in SCI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = instrument
    h["DETECTOR"] = detector
    h["ROOTNAME"] = path.name.split("_")[0]
    h["TARGNAME"] = target
    h["OBSTYPE"] = obstype
    h["PROPOSID"] = proposal
    h["CCDAMP"] = ccdamp
    h["CCDGAIN"] = 1
    sci = fits.ImageHDU(np.full((4, 4), 1500, dtype=np.uint16), name="SCI", ver=1)
    if instrument == "STIS":
        h["TEXPSTRT"] = start
        h["TEXPEND"] = start + exptime / 86400 + 0.001
        h["TEXPTIME"] = exptime
    sci.header["EXPSTART"] = start
    sci.header["EXPEND"] = start + exptime / 86400 + 0.001
    sci.header["EXPTIME"] = exptime
    fits.HDUList([primary, sci]).writeto(path)
    return path


def write_spt(path: Path, *, instrument="STIS", target="DARK", proposal=10021) -> Path:
    """A support file: no DETECTOR, no times (as real SPT files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    for key, value in (("INSTRUME", instrument), ("ROOTNAME", path.name.split("_")[0]),
                       ("TARGNAME", target), ("PROPOSID", proposal)):
        primary.header[key] = value
    fits.HDUList([primary, fits.ImageHDU(np.zeros((2, 2), np.int16), name="UDL")]).writeto(path)
    return path


@pytest.fixture
def archive_dir(tmp_path) -> Path:
    """A nested archive: STIS darks/biases/science, one ACS dark, a corrupt file, noise files."""
    root = tmp_path / "archive"
    stis = root / "stis" / "2005"
    # name: (subdir, raw kwargs, with spt)
    layout = {
        "o8u201a1q": ("01", dict(start=JAN_2005, exptime=1100.0), True),
        "o8u201a2q": ("01", dict(start=53380.5, exptime=60.0), True),
        "o8u201a4q": ("01", dict(start=53390.0, exptime=1100.0, ccdamp="B"), False),
        "o8u201a5q": ("01", dict(start=53395.0, exptime=1200.0, target="NGC1068",
                                 proposal=10000, obstype="SPECTROSCOPIC"), True),
        "o8u201a6q": ("01", dict(start=53396.0, exptime=0.0, target="BIAS"), True),
        "o8u201a3q": ("02", dict(start=FEB_2005, exptime=1100.0), True),
    }
    for rootname, (month, kwargs, spt) in layout.items():
        write_raw(stis / month / f"{rootname}_raw.fits", **kwargs)
        if spt:
            write_spt(stis / month / f"{rootname}_spt.fits",
                      target=kwargs.get("target", "DARK"), proposal=kwargs.get("proposal", 10021))
    acs = root / "acs" / "deep" / "nest"
    write_raw(acs / "j8xa01abq_raw.fits", instrument="ACS", detector="WFC", start=53375.25,
              exptime=1000.0, ccdamp="ABCD", proposal=10040)
    write_spt(acs / "j8xa01abq_spt.fits", instrument="ACS", proposal=10040)
    (root / "bad").mkdir()
    (root / "bad" / "x_raw.fits").write_bytes(b"this is not a FITS file" * 50)
    (root / "notes.txt").write_text("not FITS")
    write_spt(root / "nounderscore.fits")  # not an HST file name: ignored
    write_raw(root / ".hidden" / "o9zz99zzq_raw.fits")  # hidden directory: not walked
    return root


N_INDEXED = 6 + 5 + 2  # raws, spts, ACS pair


@pytest.fixture
def engine(tmp_path):
    # create=False: the archive creates its own table (the campaign tables are not needed)
    return db.connect(tmp_path / "db" / "index.sqlite", create=False)


@pytest.fixture
def indexed(archive_dir, engine) -> LocalArchive:
    local = LocalArchive(archive_dir, engine)
    report = local.index()
    assert report.added == N_INDEXED
    return local


def criteria(**kwargs) -> QueryCriteria:
    base = dict(detector="stis_ccd", purpose="dark", instrument_name=("STIS/CCD",),
                file_types=("RAW", "SPT"), intent=None)
    base.update(kwargs)
    return QueryCriteria(**base)


def rootnames(datasets) -> list[str]:
    return [d.rootname for d in datasets]


# ---------------------------------------------------------------------- indexing
def test_local_archive_is_an_archive(engine, archive_dir):
    local = LocalArchive(archive_dir, engine)
    assert isinstance(local, Archive)
    assert (local.name, local.local) == ("local", True)
    assert "archive_files" in db.metadata.tables


def test_connect_creates_the_table_and_its_indexes(tmp_path):
    engine = db.connect(tmp_path / "full.sqlite")
    inspector = sa.inspect(engine)
    assert "archive_files" in inspector.get_table_names()
    indexes = {tuple(i["column_names"]) for i in inspector.get_indexes("archive_files")}
    assert {("instrument_name", "start_mjd"), ("rootname",), ("start_mjd",)} <= indexes


def test_index_records_facts_and_reports_corrupt_file(archive_dir, engine):
    report = LocalArchive(archive_dir, engine).index()
    assert (report.added, report.updated, report.removed, report.unchanged) == (N_INDEXED, 0, 0, 0)
    bad = archive_dir / "bad" / "x_raw.fits"
    assert [p for p, _ in report.bad] == [str(bad)]
    assert "not a readable FITS file" in report.bad[0][1]
    with engine.connect() as conn:
        rows = {r.path: r for r in conn.execute(sa.select(archive_files))}
    assert str(bad) not in rows
    assert not any(".hidden" in p or "nounderscore" in p for p in rows)
    raw = rows[str(archive_dir / "stis" / "2005" / "01" / "o8u201a1q_raw.fits")]
    assert raw.root == str(archive_dir.resolve())
    assert (raw.rootname, raw.file_type, raw.instrument_name, raw.target, raw.intent) == (
        "o8u201a1q", "RAW", "STIS/CCD", "DARK", "calibration")
    assert raw.start_mjd == JAN_2005 and raw.exptime == 1100.0 and raw.proposal == "10021"
    assert raw.header["CCDAMP"] == "D"
    assert raw.checksum.startswith("md5:") and len(raw.checksum) == 4 + 32
    assert raw.size == Path(raw.path).stat().st_size
    spt = rows[str(archive_dir / "stis" / "2005" / "01" / "o8u201a1q_spt.fits")]
    assert (spt.instrument_name, spt.start_mjd) == ("STIS", None)
    acs = rows[str(archive_dir / "acs" / "deep" / "nest" / "j8xa01abq_raw.fits")]
    assert (acs.instrument_name, acs.start_mjd, acs.exptime) == ("ACS/WFC", 53375.25, 1000.0)


def test_index_without_checksums(archive_dir, engine):
    LocalArchive(archive_dir, engine).index(checksums=False)
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(archive_files.c.checksum)).scalars()) == {None}


def test_reindex_reads_only_new_changed_and_bad_files(indexed, archive_dir, monkeypatch):
    reads = []
    real = local_module.describe_file
    monkeypatch.setattr(local_module, "describe_file",
                        lambda p: reads.append(Path(p).name) or real(p))

    again = indexed.index()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, N_INDEXED)
    assert reads == ["x_raw.fits"]  # only the unindexed corrupt file is retried

    reads.clear()
    touched = archive_dir / "stis" / "2005" / "01" / "o8u201a2q_raw.fits"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    gone = archive_dir / "acs" / "deep" / "nest" / "j8xa01abq_spt.fits"
    gone.unlink()
    new = write_raw(archive_dir / "stis" / "2005" / "03" / "o8u201a7q_raw.fits", start=53440.0)
    third = indexed.index()
    assert (third.added, third.updated, third.removed, third.unchanged) == (1, 1, 1, N_INDEXED - 2)
    assert sorted(reads) == sorted([touched.name, new.name, "x_raw.fits"])
    with indexed.engine.connect() as conn:
        paths = set(conn.execute(sa.select(archive_files.c.path)).scalars())
    assert str(gone) not in paths and str(new) in paths


def test_rewritten_file_is_reread_and_query_sees_new_header(indexed, archive_dir):
    path = archive_dir / "stis" / "2005" / "01" / "o8u201a4q_raw.fits"
    path.unlink()
    write_raw(path, start=53390.0, exptime=1100.0, ccdamp="D")
    report = indexed.index()
    assert report.updated == 1
    found = indexed.query(criteria(header={"CCDAMP": "D"}, time=(JAN_2005, FEB_2005)))
    assert "o8u201a4q" in rootnames(found)


def test_file_turned_corrupt_is_reported_and_dropped(indexed, archive_dir):
    path = archive_dir / "stis" / "2005" / "01" / "o8u201a2q_raw.fits"
    path.write_bytes(b"\0" * 100)
    report = indexed.index()
    assert (report.removed, report.updated) == (1, 0)
    assert str(path) in {p for p, _ in report.bad}
    assert "o8u201a2q" not in rootnames(indexed.query(criteria()))


def test_truncated_file_is_bad(archive_dir, engine):
    path = write_raw(archive_dir / "trunc" / "o8u299t1q_raw.fits")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2880])
    report = LocalArchive(archive_dir, engine).index()
    reasons = dict(report.bad)
    assert "truncated" in reasons[str(path)]


def test_interrupted_index_is_completed_by_a_rerun(archive_dir, engine, monkeypatch):
    read = []
    real = local_module.describe_file

    def interrupt_on_seventh(path):
        if len(read) == 6:
            raise KeyboardInterrupt
        read.append(path)
        return real(path)

    monkeypatch.setattr(local_module, "describe_file", interrupt_on_seventh)
    local = LocalArchive(archive_dir, engine, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        local.index()
    readable = [p for p in read if Path(p).name != "x_raw.fits"]
    with engine.connect() as conn:
        committed = conn.execute(sa.select(sa.func.count()).select_from(archive_files)).scalar()
    # whole batches of two are committed; the half-filled batch is not
    assert len(readable) == 5 and committed == 4
    monkeypatch.setattr(local_module, "describe_file", real)
    report = local.index()
    assert (report.added, report.unchanged) == (N_INDEXED - 4, 4)


def test_index_missing_directory_is_an_input_error(tmp_path, engine):
    with pytest.raises(InputError, match="does not exist"):
        LocalArchive(tmp_path / "nowhere", engine).index()
    with pytest.raises(ConfigError):
        LocalArchive(None, engine).index()


# ---------------------------------------------------------------------- queries
def test_query_sorted_with_fields_from_the_raw(indexed):
    found = indexed.query(criteria())
    assert rootnames(found) == ["o8u201a1q", "o8u201a2q", "o8u201a4q", "o8u201a5q", "o8u201a6q",
                                "o8u201a3q"]
    first = found[0]
    assert (first.instrument_name, first.target, first.start_mjd, first.exptime,
            first.proposal) == ("STIS/CCD", "DARK", JAN_2005, 1100.0, "10021")
    assert [f.file_type for f in first.files] == ["RAW", "SPT"]
    assert first.file("SPT").name == "o8u201a1q_spt.fits"
    assert first.file("RAW").checksum.startswith("md5:")


def test_query_equal_start_sorted_by_rootname(indexed, archive_dir):
    write_raw(archive_dir / "stis" / "2005" / "01" / "o8u201a0q_raw.fits", start=53380.5)
    indexed.index()
    found = rootnames(indexed.query(criteria(time=(53380.5, 53380.6))))
    assert found == ["o8u201a0q", "o8u201a2q"]


def test_query_instrument_name_patterns(indexed):
    assert rootnames(indexed.query(criteria(instrument_name=("ACS/*",)))) == ["j8xa01abq"]
    assert rootnames(indexed.query(criteria(instrument_name=("*/wfc",)))) == ["j8xa01abq"]
    assert rootnames(indexed.query(criteria(instrument_name=("acs/wfc",)))) == ["j8xa01abq"]
    assert len(indexed.query(criteria(instrument_name=("STIS/CCD", "ACS/WFC")))) == 7
    assert len(indexed.query(criteria(instrument_name=()))) == 7
    # SPT files say only "STIS": the dataset is described by its RAW
    assert indexed.query(criteria(instrument_name=("STIS",))) == []
    assert indexed.query(criteria(instrument_name=("WFPC2",))) == []


def test_query_intent(indexed):
    science = indexed.query(criteria(intent="science"))
    assert rootnames(science) == ["o8u201a5q"]
    calibration = rootnames(indexed.query(criteria(intent="calibration")))
    assert "o8u201a5q" not in calibration and len(calibration) == 5


def test_query_target_patterns(indexed):
    assert rootnames(indexed.query(criteria(target_name=("BIAS",)))) == ["o8u201a6q"]
    darks = rootnames(indexed.query(criteria(target_name=("DARK*",))))
    assert darks == ["o8u201a1q", "o8u201a2q", "o8u201a4q", "o8u201a3q"]
    assert rootnames(indexed.query(criteria(target_name=("d?rk",)))) == darks
    assert rootnames(indexed.query(criteria(target_name=("[BN]*",)))) == ["o8u201a5q", "o8u201a6q"]
    assert rootnames(indexed.query(criteria(target_name=("BIAS", "NGC%")))) == ["o8u201a5q",
                                                                               "o8u201a6q"]
    # "_" is literal, not SQL's one-character wildcard
    assert indexed.query(criteria(target_name=("D_RK",))) == []


def test_query_exptime_range_is_inclusive(indexed):
    found = rootnames(indexed.query(criteria(instrument_name=(), exptime=(1000.0, 1200.0))))
    assert found == ["o8u201a1q", "j8xa01abq", "o8u201a4q", "o8u201a5q", "o8u201a3q"]
    assert rootnames(indexed.query(criteria(exptime=(0.0, 60.0)))) == ["o8u201a2q", "o8u201a6q"]


def test_query_time_is_half_open(indexed):
    january = rootnames(indexed.query(criteria().between(JAN_2005, FEB_2005)))
    assert january[0] == "o8u201a1q"  # starts exactly at the start: included
    assert "o8u201a3q" not in january  # starts exactly at the end: excluded
    assert rootnames(indexed.query(criteria().between(FEB_2005, FEB_2005 + 1))) == ["o8u201a3q"]
    assert indexed.query(criteria().between(JAN_2005 - 10, JAN_2005)) == []
    assert rootnames(indexed.query(criteria(time=(53395.0, math.inf)))) == ["o8u201a5q",
                                                                            "o8u201a6q",
                                                                            "o8u201a3q"]


def test_query_proposals(indexed):
    assert rootnames(indexed.query(criteria(proposals=("10000",)))) == ["o8u201a5q"]
    assert rootnames(indexed.query(criteria(instrument_name=(), proposals=(10040, 10000)))) == [
        "j8xa01abq", "o8u201a5q"]


def test_query_header_criterion_on_primary_file(indexed):
    amp_d = rootnames(indexed.query(criteria(header={"CCDAMP": "D"})))
    assert "o8u201a4q" not in amp_d and len(amp_d) == 5
    assert rootnames(indexed.query(criteria(header={"CCDAMP": "b"}))) == ["o8u201a4q"]
    assert rootnames(indexed.query(criteria(instrument_name=("ACS/WFC",),
                                            header={"CCDAMP": "ABCD"}))) == ["j8xa01abq"]


def test_query_dataset_missing_spt_is_listed_with_raw_only(indexed):
    (dataset,) = indexed.query(criteria(header={"CCDAMP": "B"}))
    assert dataset.rootname == "o8u201a4q"
    assert [f.file_type for f in dataset.files] == ["RAW"]
    assert dataset.file("SPT") is None


def test_query_only_spt_takes_times_from_the_raw(indexed):
    found = indexed.query(criteria(file_types=("SPT",)).between(JAN_2005, FEB_2005))
    assert "o8u201a4q" not in rootnames(found)  # it has no SPT at all
    assert rootnames(found)[0] == "o8u201a1q"
    assert found[0].start_mjd == JAN_2005 and found[0].instrument_name == "STIS/CCD"
    assert [f.file_type for f in found[0].files] == ["SPT"]


def test_query_is_limited_to_its_root(indexed, engine, tmp_path):
    other = tmp_path / "other"
    write_raw(other / "o8u301b1q_raw.fits", start=53372.0)
    LocalArchive(other, engine).index()
    assert "o8u301b1q" not in rootnames(indexed.query(criteria()))
    everything = LocalArchive(None, engine)
    assert "o8u301b1q" in rootnames(everything.query(criteria()))
    assert len(LocalArchive(other, engine).query(criteria())) == 1


def test_query_needs_file_types(indexed):
    with pytest.raises(ConfigError, match="file_types"):
        indexed.query(criteria(file_types=()))


# ---------------------------------------------------------------------- fetch
def test_fetch_returns_files_in_place_unmodified(indexed, archive_dir, tmp_path):
    (dataset,) = indexed.query(criteria(target_name=("BIAS",)))
    raw = archive_dir / "stis" / "2005" / "01" / "o8u201a6q_raw.fits"
    before = raw.read_bytes()
    scratch = tmp_path / "scratch"
    paths = indexed.fetch(dataset, scratch)
    assert paths == {"RAW": raw, "SPT": raw.with_name("o8u201a6q_spt.fits")}
    assert raw.read_bytes() == before
    assert not scratch.exists()  # nothing copied


def test_fetch_fails_naming_a_changed_or_vanished_file(indexed, archive_dir, tmp_path):
    (dataset,) = indexed.query(criteria(target_name=("BIAS",)))
    raw = archive_dir / "stis" / "2005" / "01" / "o8u201a6q_raw.fits"
    with raw.open("ab") as f:
        f.write(b"\0" * 2880)
    with pytest.raises(InputError, match="changed since it was indexed") as err:
        indexed.fetch(dataset, tmp_path)
    assert err.value.path == raw
    raw.unlink()
    with pytest.raises(InputError, match="vanished") as err:
        indexed.fetch(dataset, tmp_path)
    assert err.value.path == raw


# ---------------------------------------------------------------------- stats
def test_stats(indexed):
    stats = indexed.stats()
    assert stats.files == N_INDEXED and stats.datasets == 7
    assert stats.by_instrument_name == {"ACS": 1, "ACS/WFC": 1, "STIS": 5, "STIS/CCD": 6}
    assert stats.by_file_type == {"RAW": 7, "SPT": 6}
    assert stats.start_mjd == JAN_2005
    assert stats.end_mjd == pytest.approx(FEB_2005 + 1100 / 86400 + 0.001)
    assert stats.roots == (str(indexed.root),)


# ---------------------------------------------------------------------- real files
@pytest.mark.realdata
def test_index_real_stis_files_in_place(shared_data, engine):
    stis = shared_data / "hst" / "stis"
    if not stis.is_dir():
        pytest.skip(f"{stis} is absent")
    before = sorted(p.name for p in stis.rglob("*"))
    local = LocalArchive(stis, engine)
    report = local.index(checksums=False)
    assert report.bad == [] and report.added >= 20
    assert sorted(p.name for p in stis.rglob("*")) == before  # nothing written there
    found = local.query(criteria(intent=None).between(50875.0, 50876.0))
    (llq,) = [d for d in found if d.rootname == "o4er06llq"]
    assert llq.instrument_name == "STIS/CCD"
    assert llq.start_mjd == pytest.approx(50875.19608305, abs=1e-8)
    assert {f.file_type: Path(f.location) for f in llq.files} == {
        "RAW": stis / "ccd_acq" / "o4er06llq_raw.fits",
        "SPT": stis / "ccd_acq" / "o4er06llq_spt.fits"}
    # the gzipped CR-split raws are found too, described by their RAW
    split = local.query(criteria(file_types=("RAW",), target_name=("NGC1068*",)))
    assert rootnames(split) == ["o56502010", "o56502020"]
    assert local.index(checksums=False).unchanged == report.added


# ---------------------------------------------------------------------- scale
def _synthetic_rows(root: str, count: int) -> list[dict]:
    rng = np.random.default_rng(7)
    starts = np.sort(rng.uniform(49000.0, 49000.0 + 20 * 365.25, count))
    stamp = datetime.now(timezone.utc)
    rows = []
    for i, start in enumerate(starts):
        rootname = f"o{i:07d}q"
        target = ("DARK", "BIAS", "NGC1068")[i % 3]
        intent = "science" if target == "NGC1068" else "calibration"
        for file_type, name, mjd in (("RAW", "STIS/CCD", float(start)), ("SPT", "STIS", None)):
            rows.append(dict(path=f"{root}/{rootname}_{file_type.lower()}.fits", root=root,
                             rootname=rootname, file_type=file_type, instrument="STIS",
                             detector="CCD" if mjd else "", instrument_name=name, target=target,
                             intent=intent, obstype="IMAGING", proposal="8408",
                             start_mjd=mjd, end_mjd=None if mjd is None else mjd + 0.02,
                             exptime=None if mjd is None else 1100.0 if i % 2 else 60.0,
                             size=100, mtime_ns=0, checksum=None,
                             header={"CCDAMP": "D"} if mjd else {}, indexed_at=stamp))
    return rows


def _timed_month_query(local: LocalArchive) -> tuple[float, list]:
    month = criteria(target_name=("DARK*",), intent="calibration", exptime=(1000.0, 1200.0),
                     header={"CCDAMP": "D"}).between(53371.0, 53402.0)
    local.query(month)  # warm the connection pool and the SQLite page cache
    began = time.perf_counter()
    found = local.query(month)
    return time.perf_counter() - began, found


def test_query_month_among_many_rows_is_fast(tmp_path, engine):
    root = str(tmp_path / "big")
    local = LocalArchive(root, engine)
    rows = _synthetic_rows(root, 5000)
    with engine.begin() as conn:
        conn.execute(sa.insert(archive_files), rows)
    seconds, found = _timed_month_query(local)
    assert seconds < 0.5, f"month query took {seconds:.3f} s over {len(rows)} rows"
    expected = sorted(r["rootname"] for r in rows
                      if r["file_type"] == "RAW" and r["target"] == "DARK"
                      and r["exptime"] == 1100.0 and 53371.0 <= r["start_mjd"] < 53402.0)
    assert sorted(rootnames(found)) == expected and expected


@pytest.mark.slow
def test_query_month_among_a_million_rows_is_fast(tmp_path, engine):
    root = str(tmp_path / "huge")
    local = LocalArchive(root, engine)
    rows = _synthetic_rows(root, 500_000)
    with engine.begin() as conn:
        for start in range(0, len(rows), 50_000):
            conn.execute(sa.insert(archive_files), rows[start:start + 50_000])
    seconds, found = _timed_month_query(local)
    assert seconds < 0.5, f"month query took {seconds:.3f} s over {len(rows)} rows"
    assert found


# ---------------------------------------------------------------------- CLI
@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv("HSTCAL_DATABASE", raising=False)
    return CliRunner()


def test_cli_index_twice_then_query_and_stats(runner, archive_dir, tmp_path):
    database = str(tmp_path / "cli.sqlite")
    first = runner.invoke(main, ["archive", "index", str(archive_dir), "--database", database])
    assert first.exit_code == 0, first.output
    assert f"{N_INDEXED} added, 0 updated, 0 removed, 0 unchanged, 1 bad" in first.output
    assert "x_raw.fits: not a readable FITS file" in first.output
    second = runner.invoke(main, ["archive", "index", str(archive_dir), "--database", database])
    assert second.exit_code == 0, second.output
    assert f"0 added, 0 updated, 0 removed, {N_INDEXED} unchanged, 1 bad" in second.output

    query = ["archive", "query", str(archive_dir), "--database", database,
             "--instrument-name", "STIS/CCD", "--target", "DARK*", "--file-type", "RAW",
             "--file-type", "SPT", "--start", "2005-01-01", "--end", "2005-02-01"]
    listed = runner.invoke(main, query)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["o8u201a1q", "o8u201a2q", "o8u201a4q"]
    assert lines[1].split()[1:4] == ["STIS/CCD", "DARK", "2005-01-01T00:00:00"]
    assert "(missing SPT)" in lines[3]
    assert lines[-1] == "3 dataset(s)"

    as_json = runner.invoke(main, [*query, "--exptime", "1000", "1200", "--intent",
                                   "calibration", "--header", "ccdamp=D", "--json"])
    assert as_json.exit_code == 0, as_json.output
    (only,) = json.loads(as_json.stdout)
    assert only["rootname"] == "o8u201a1q" and only["missing"] == []
    assert only["files"]["RAW"] == str(archive_dir / "stis" / "2005" / "01" / "o8u201a1q_raw.fits")
    assert only["start_mjd"] == JAN_2005 and only["exptime"] == 1100.0

    stats = runner.invoke(main, ["archive", "stats", "--database", database, "--json"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["by_file_type"] == {"RAW": 7, "SPT": 6}
    text = runner.invoke(main, ["archive", "stats", str(archive_dir), "--database", database])
    assert "STIS/CCD" in text.stdout and "2005-01-01T00:00:00" in text.stdout


def test_cli_default_database_inside_dir_and_from_environment(runner, archive_dir, tmp_path,
                                                              monkeypatch):
    assert runner.invoke(main, ["archive", "index", str(archive_dir)]).exit_code == 0
    assert (archive_dir / ".hstcal" / "archive.sqlite").is_file()
    again = runner.invoke(main, ["archive", "index", str(archive_dir)])
    assert f"{N_INDEXED} unchanged" in again.output  # the database directory is not walked
    listed = runner.invoke(main, ["archive", "query", str(archive_dir), "--target", "BIAS"])
    assert "o8u201a6q" in listed.stdout and "1 dataset(s)" in listed.stdout

    env_db = tmp_path / "env" / "index.sqlite"
    monkeypatch.setenv("HSTCAL_DATABASE", str(env_db))
    assert runner.invoke(main, ["archive", "index", str(archive_dir)]).exit_code == 0
    assert env_db.is_file()
    listed = runner.invoke(main, ["archive", "query", "--instrument-name", "ACS/*"])
    assert "j8xa01abq" in listed.stdout


@pytest.mark.parametrize("args, message", [
    (["archive", "index", "{tmp}/nowhere"], "nowhere: archive directory does not exist"),
    (["archive", "query", "{tmp}"], "no archive index here"),
    (["archive", "query"], "give the archive DIR, --database or set HSTCAL_DATABASE"),
    (["archive", "query", "--database", "nosuchdialect://x"], "is not valid"),
    (["archive", "index", "{tmp}", "--database", "{tmp}"], "cannot open database"),
    (["archive", "query", "--database", "{tmp}/q.sqlite", "--start", "yesterday"],
     "--start 'yesterday' is neither an MJD nor an ISO date"),
])
def test_cli_errors_exit_2_with_one_line(runner, tmp_path, args, message):
    (tmp_path / "q.sqlite").touch()
    result = runner.invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert "error: " in result.stderr and message in result.stderr


def test_dates_round_trip():
    assert parse_mjd("2005-01-01", "--start") == JAN_2005
    assert parse_mjd("2005-01-01T12:00:00+00:00", "--start") == JAN_2005 + 0.5
    assert parse_mjd("53371.25", "--start") == 53371.25
    assert mjd_to_iso(FEB_2005) == "2005-02-01T00:00:00"
    assert mjd_to_iso(math.nan) == "?"
