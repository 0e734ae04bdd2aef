"""The census HDF5 store, its readers, the report and `hstcal census`.

Records are synthetic with known values (``synthetic_records``), so every stored
field is compared exactly with what went in.  Run as a script
(``python test_census_store.py --crash-writer STORE``) this file is the writer the
SIGKILL test kills.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from hstcal_core.census.journal import JournaledFile, journal_path, recover
from hstcal_core.census.records import CR_COLUMNS, ExposureRecord
from hstcal_core.census.store import (
    SCHEMA_VERSION,
    CensusStore,
    StoreError,
    _runs,
    batch_key,
    read_crs,
    read_exposures,
    read_orbit,
    read_pixels,
    read_record,
    summary,
)
from hstcal_core.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOT_LAT, HOT_LON = (-30.0, -10.0), (-70.0, -30.0)  # the injected "SAA" box


def synthetic_records(seed: int, n: int, *, start_mjd: float = 55000.0,
                      detectors=("acs_wfc", "wfc3_uvis"), max_crs: int = 60,
                      hot_box: bool = False, orbit_samples: int = 8) -> list[ExposureRecord]:
    """``n`` exposures 0.5 day apart with random CRs, pixel lists, orbit tracks.

    With ``hot_box``, an exposure whose track midpoint lies in the HOT_LAT × HOT_LON box
    gets 10× the base rate.
    """
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        n_cr = int(rng.integers(0, max_crs)) if i % 5 else 0  # every fifth has no CR
        size = rng.integers(3, 40, n_cr).astype(np.int32)
        offsets = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
        crs = {name: rng.normal(10.0, 3.0, n_cr) for name in CR_COLUMNS}
        crs["energy_e"] = rng.lognormal(8.0, 1.0, n_cr)
        crs["symmetry"] = rng.uniform(0.0, 1.0, n_cr)
        crs["size_px"] = size
        crs["imset"] = rng.integers(1, 3, n_cr).astype(np.int16)
        t0 = start_mjd + 0.5 * i + rng.uniform(0, 0.01)
        minutes = np.arange(orbit_samples)
        lat0, lon0 = rng.uniform(-28.0, 28.0), rng.uniform(-180.0, 180.0)
        # ~4 deg of ground track per minute, as HST's.
        latitude = np.clip(lat0 + rng.uniform(-1.0, 1.0) * minutes, -28.5, 28.5)
        longitude = (lon0 + 4.0 * minutes + 180.0) % 360.0 - 180.0
        rate = float(rng.uniform(0.9, 1.1))
        mid = orbit_samples // 2
        if hot_box and HOT_LAT[0] <= latitude[mid] <= HOT_LAT[1] \
                and HOT_LON[0] <= longitude[mid] <= HOT_LON[1]:
            rate *= 10.0
        wcs = {"CRVAL1": float(rng.uniform(0, 360)), "CRVAL2": float(rng.uniform(-90, 90)),
               "CRPIX1": 2048.0, "CRPIX2": 1024.0, "CD1_1": -1.4e-5, "CD1_2": 0.0,
               "CD2_1": 0.0, "CD2_2": 1.4e-5, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"}
        if i % 3 == 0:
            wcs = {}  # darks of some detectors carry no WCS
        elif i % 3 == 2:
            wcs["CD1_2"] = math.nan  # a NaN value survives, in wcs_extra
            wcs["LONPOLE"] = 180.0
        records.append(ExposureRecord(
            rootname=f"j{seed:03d}{i:05d}q", detector=detectors[i % len(detectors)],
            start_mjd=t0, end_mjd=t0 + orbit_samples / 1440.0, exptime=float(orbit_samples * 60),
            integration_time=orbit_samples * 60.0 + 50.0, area_cm2=37.748, n_cr=n_cr,
            n_cut_small=int(rng.integers(0, 100)), n_cut_large=int(rng.integers(0, 3)),
            rate=rate, orbit_mjd=t0 + minutes / 1440.0, latitude=latitude,
            longitude=longitude, altitude_km=rng.uniform(530.0, 545.0, orbit_samples),
            crs=crs, pixel_offsets=offsets, pixel_index=rng.integers(0, 4096 * 2048,
                                                                     int(offsets[-1])),
            wcs=wcs, meta={"ccdamp": "ABCD", "gain": [2.0, 2.02], "source": f"r{i}_raw.fits",
                           "flags": {"postflash": bool(i % 2)}}))
    return records


def assert_same_record(got: ExposureRecord, want: ExposureRecord) -> None:
    for name in ("rootname", "detector", "start_mjd", "end_mjd", "exptime", "integration_time",
                 "area_cm2", "n_cr", "n_cut_small", "n_cut_large", "rate"):
        assert getattr(got, name) == getattr(want, name), name
        assert type(getattr(got, name)) is type(getattr(want, name)), name
    for name in ("orbit_mjd", "latitude", "longitude", "altitude_km", "pixel_offsets",
                 "pixel_index"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert set(got.crs) == set(want.crs)
    for name, values in want.crs.items():
        np.testing.assert_array_equal(got.crs[name], values, err_msg=name)
        assert got.crs[name].dtype == values.dtype, name
    assert json.dumps(got.wcs, sort_keys=True) == json.dumps(want.wcs, sort_keys=True)
    assert got.meta == want.meta


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "census.h5"


def fill(path: Path, batches: int = 3, per_batch: int = 6, **kw) -> list[list[ExposureRecord]]:
    written = []
    with CensusStore(path) as store:
        for b in range(batches):
            recs = synthetic_records(b, per_batch, start_mjd=55000.0 + 10 * b, **kw)
            assert store.append(recs, f"batch-{b}") == per_batch
            written.append(recs)
    return written


# -- round trip ----------------------------------------------------------------------------

def test_every_field_round_trips_exactly(store_path: Path) -> None:
    written = [r for batch in fill(store_path) for r in batch]
    exposures = read_exposures(store_path)
    assert list(exposures["exposure_id"]) == list(range(len(written)))
    for row, want in zip(exposures, written):
        assert_same_record(read_record(store_path, int(row["exposure_id"])), want)
        assert row["rootname"] == want.rootname and row["detector"] == want.detector
        assert row["cr_count"] == len(want.crs["energy_e"])
        assert row["orbit_count"] == len(want.orbit_mjd)
        assert json.loads(row["meta"]) == want.meta
        if want.wcs:
            assert row["CRVAL1"] == want.wcs["CRVAL1"] and row["CTYPE2"] == "DEC--TAN"
        else:
            assert math.isnan(row["CRVAL1"]) and row["CTYPE1"] == ""
    assert set(exposures["batch"]) == {"batch-0", "batch-1", "batch-2"}
    orbit = read_orbit(store_path, 7)
    np.testing.assert_array_equal(orbit["latitude"], written[7].latitude)


def test_schema_attributes_and_layout(store_path: Path) -> None:
    fill(store_path, batches=1)
    with h5py.File(store_path, "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["created_by"].startswith("hstcal-core ")
        assert f.attrs["created"][:2] == "20"
        for name in [*(f"crs/{c}" for c in CR_COLUMNS), "crs/exposure_id", "crs/pixel_start",
                     "pixels/index", "orbit/latitude", "exposures", "batches"]:
            ds = f[name]
            assert ds.chunks is not None and ds.maxshape == (None,), name
            assert ds.compression == "gzip", name
        assert f["crs/size_px"].dtype == np.int32 and f["crs/imset"].dtype == np.int16
        assert f["batches"][0]["batch"] == b"batch-0"


def test_ragged_pixel_lists(store_path: Path) -> None:
    written = fill(store_path, batches=1, per_batch=6)[0]
    for i, rec in enumerate(written):
        offsets, index = read_pixels(store_path, i)
        np.testing.assert_array_equal(offsets, rec.pixel_offsets)
        np.testing.assert_array_equal(index, rec.pixel_index)
        per_cr = np.split(index, offsets[1:-1]) if len(offsets) > 1 else []
        assert [len(p) for p in per_cr] == list(rec.crs["size_px"])
    assert len(read_pixels(store_path, 0)[1]) == 0  # an exposure without CRs
    with pytest.raises(StoreError, match="no exposure with id 99"):
        read_pixels(store_path, 99)


def test_invalid_record_is_refused_before_anything_is_written(store_path: Path) -> None:
    recs = synthetic_records(1, 3)
    recs[2].crs["symmetry"] = recs[2].crs["symmetry"][:-1]
    with CensusStore(store_path) as store:
        with pytest.raises(StoreError, match=r"j00100002q.*differ in length"):
            store.append(recs, "bad")
        assert store.n_exposures == 0 and store.batches == []
    with h5py.File(store_path, "r") as f:
        assert f["crs/energy_e"].shape == (0,)


# -- readers -------------------------------------------------------------------------------

def test_filters_by_detector_and_date(store_path: Path) -> None:
    written = [r for batch in fill(store_path) for r in batch]
    wfc = read_exposures(store_path, detector="acs_wfc")
    assert list(wfc["rootname"]) == [r.rootname for r in written if r.detector == "acs_wfc"]
    window = [r for r in written if 55010.0 <= r.start_mjd < 55012.0]
    assert 0 < len(window) < len(written)
    for start, end in ((55010.0, 55012.0), ("2009-06-28", "2009-06-30"), ("55010", "55012")):
        got = read_exposures(store_path, start=start, end=end)
        assert list(got["rootname"]) == [r.rootname for r in window]
    crs = read_crs(store_path, detector="wfc3_uvis", start=55010.0, end=55012.0,
                   columns=["energy_e", "size_px", "pixel_count"])
    want = [r for r in window if r.detector == "wfc3_uvis"]
    np.testing.assert_array_equal(crs["energy_e"],
                                  np.concatenate([r.crs["energy_e"] for r in want]))
    np.testing.assert_array_equal(crs["pixel_count"], crs["size_px"])
    assert list(crs.columns) == ["exposure_id", "rootname", "detector", "start_mjd",
                                 "energy_e", "size_px", "pixel_count"]
    assert set(crs["rootname"]) == {r.rootname for r in want if r.n_cr}
    frame = crs.to_pandas()
    assert len(frame) == len(crs) and frame["detector"].iloc[0] == "wfc3_uvis"
    assert len(read_crs(store_path, detector="nicmos_nic1")) == 0


def test_narrow_date_range_reads_only_its_rows(store_path: Path, monkeypatch) -> None:
    fill(store_path, batches=4, per_batch=10, max_crs=400)
    total = sum(read_exposures(store_path)["cr_count"])
    seen: list[int] = []
    original = h5py.Dataset.__getitem__

    def counting(self, key, **kw):
        out = original(self, key, **kw)
        if self.name == "/crs/energy_e":
            seen.append(len(out))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    crs = read_crs(store_path, start=55020.0, end=55021.0, columns=["energy_e"])
    assert 0 < len(crs) < total / 10
    assert sum(seen) == len(crs)  # contiguous exposures: exactly their rows were read


def test_runs_merge_close_ranges_only() -> None:
    starts, counts = np.array([100, 0, 10, 50_000]), np.array([5, 10, 0, 3])
    assert _runs(starts, counts, max_gap=200) == [(0, 105), (50_000, 50_003)]
    assert _runs(starts, counts, max_gap=0) == [(0, 10), (100, 105), (50_000, 50_003)]


def test_summary_counts_per_detector(store_path: Path) -> None:
    written = [r for batch in fill(store_path) for r in batch]
    info = summary(store_path)
    assert info["exposures"] == len(written) and info["batches"] == 3
    assert info["crs"] == sum(len(r.crs["energy_e"]) for r in written)
    wfc = [r for r in written if r.detector == "acs_wfc"]
    assert info["detectors"]["acs_wfc"]["exposures"] == len(wfc)
    assert info["detectors"]["acs_wfc"]["start_mjd"] == min(r.start_mjd for r in wfc)
    assert info["start"].startswith("2009-06-18") and info["schema_version"] == SCHEMA_VERSION


def test_not_a_store_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no census store here"):
        read_exposures(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not a cosmic-ray census store"):
        summary(tmp_path / "other.h5")
    path = tmp_path / "future.h5"
    CensusStore(path).close()
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = "2.0"
    with pytest.raises(InputError, match="census schema 2.0"):
        read_exposures(path)


# -- batches, commits, rollback ------------------------------------------------------------

def test_committed_batch_is_not_appended_twice(store_path: Path) -> None:
    recs = synthetic_records(0, 4)
    with CensusStore(store_path) as store:
        assert store.append(recs, "2011-03/acs_wfc") == 4
        assert store.append(recs, "2011-03/acs_wfc") == 0
        assert store.n_exposures == 4
    with CensusStore(store_path) as store:  # the rerun after a crash
        assert store.append(recs, "2011-03/acs_wfc") == 0
        assert store.batches == ["2011-03/acs_wfc"]
    assert len(read_exposures(store_path)) == 4


def test_long_batch_keys_are_stored_as_digests(store_path: Path) -> None:
    key = "run:" + ",".join(f"j8xi{i:04d}q" for i in range(30))  # what crstats may use
    with CensusStore(store_path) as store:
        assert store.append(synthetic_records(0, 2), key) == 2
        assert store.has_batch(key) and store.append(synthetic_records(0, 2), key) == 0
        assert store.batches == [batch_key(key)] and len(batch_key(key).encode()) == 64
    assert set(read_exposures(store_path)["batch"]) == {batch_key(key)}


def test_replace_the_last_batch_only(store_path: Path, monkeypatch) -> None:
    with CensusStore(store_path) as store:
        store.append(synthetic_records(0, 4), "a")
        store.append(synthetic_records(1, 3), "b")
        newer = synthetic_records(2, 5)
        assert store.append(newer, "b", replace=True) == 5
        with pytest.raises(StoreError, match="'a' is not the most recent"):
            store.append(synthetic_records(3, 1), "a", replace=True)
        assert store.batches == ["a", "b"]
    exposures = read_exposures(store_path)
    assert list(exposures["rootname"][4:]) == [r.rootname for r in newer]

    def broken(*args, **kw):
        raise OSError("No space left on device")

    with CensusStore(store_path) as store:  # a failed replace keeps the old batch
        with monkeypatch.context() as patch:
            patch.setattr(CensusStore, "_commit", broken)
            with pytest.raises(OSError):
                store.append(synthetic_records(4, 2), "b", replace=True)
        assert store.batches == ["a", "b"] and store.n_exposures == 9
    assert list(exposures["exposure_id"]) == list(range(9))
    assert_same_record(read_record(store_path, 8), newer[-1])


def test_uncommitted_tail_is_ignored_then_rolled_back(store_path: Path, monkeypatch) -> None:
    first = synthetic_records(0, 5)
    with CensusStore(store_path) as store:
        store.append(first, "a")
    crash = RuntimeError("killed between the data rows and the commit")

    def no_commit(*args, **kw):
        raise crash

    # Rows written and flushed, no commit row, no in-process clean-up, and the file
    # closed normally: the commit log alone must then show the rows are not committed
    # (the journal is the first line of defence; this is the second).
    monkeypatch.setattr(CensusStore, "_commit", no_commit)
    monkeypatch.setattr(CensusStore, "_abort", lambda self: None)
    with CensusStore(store_path) as store, pytest.raises(RuntimeError):
        store.append(synthetic_records(1, 6), "b")
    monkeypatch.undo()
    with h5py.File(store_path, "r") as f:
        assert f["exposures"].shape == (11,)  # the tail is really there
    assert len(read_exposures(store_path)) == 5  # readers see committed rows only
    assert len(read_crs(store_path)) == sum(len(r.crs["energy_e"]) for r in first)
    with CensusStore(store_path) as store:
        assert store.rolled_back["exposures"] == 6 and store.rolled_back["crs/energy_e"] > 0
        assert store.batches == ["a"]
        again = synthetic_records(1, 6)
        assert store.append(again, "b") == 6
    with h5py.File(store_path, "r") as f:
        assert f["exposures"].shape == (11,)
    assert_same_record(read_record(store_path, 10), again[-1])


def test_failed_append_is_undone_in_process(store_path: Path, monkeypatch) -> None:
    with CensusStore(store_path) as store:
        store.append(synthetic_records(0, 2), "a")

        def full_disk(*args, **kw):
            raise OSError("No space left on device")

        monkeypatch.setattr(CensusStore, "_commit", full_disk)
        with pytest.raises(OSError):
            store.append(synthetic_records(1, 3), "b")
        monkeypatch.undo()
        assert store.append(synthetic_records(1, 3), "b") == 3
    with CensusStore(store_path) as store:
        assert store.rolled_back == {} and store.n_exposures == 5


def test_torn_commit_row_is_dropped(store_path: Path) -> None:
    with CensusStore(store_path) as store:
        store.append(synthetic_records(0, 2), "a")
    with h5py.File(store_path, "a") as f:  # the commit row resized but never written
        f["batches"].resize((2,))
    assert summary(store_path)["batches"] == 1
    with CensusStore(store_path) as store:
        assert store.rolled_back == {"batches": 1} and store.batches == ["a"]


# -- a real crash --------------------------------------------------------------------------

CRASH_BATCH = 40  # exposures per batch of the crash writer


def crash_writer(path: str, kill_at_protected_write: int = 0) -> None:
    """Append batches forever, printing each committed batch; the test kills us.

    With ``kill_at_protected_write=K`` the writer SIGKILLs itself right after the K-th
    in-place overwrite of committed bytes during its third batch: inside HDF5's
    metadata flush, the moment that damaged files before the journal existed.
    """
    from hstcal_core.census.journal import JournaledFile

    aim: list = []
    if kill_at_protected_write:
        original = JournaledFile.write

        def write(self, data):
            written = original(self, data)
            if aim and self is aim[0] and self.protected_writes >= aim[1]:
                os.kill(os.getpid(), signal.SIGKILL)
            return written

        JournaledFile.write = write
    with CensusStore(path) as store:
        b = len(store.batches)
        while True:
            if kill_at_protected_write and b == 2:
                journaled = store._journaled
                aim[:] = [journaled, journaled.protected_writes + kill_at_protected_write]
            store.append(synthetic_records(1000 + b, CRASH_BATCH, max_crs=300), f"b{b}")
            print(b, flush=True)
            b += 1


def check_crashed_store(path: Path, min_batches: int) -> list[str]:
    """The checks after a kill: opens, whole committed batches only, appending goes on."""
    with CensusStore(path) as store:  # opens, and rolls back any partial batch
        committed = store.batches
        assert committed == [f"b{b}" for b in range(len(committed))]
        assert len(committed) >= min_batches
        assert store.n_exposures == CRASH_BATCH * len(committed)
        n_crs = store.n_crs
    with h5py.File(path, "r") as f:  # no partial exposure left in any table
        assert f["exposures"].shape == (CRASH_BATCH * len(committed),)
        assert f["crs/energy_e"].shape == (n_crs,)
    exposures = read_exposures(path)
    crs = read_crs(path, columns=["energy_e", "size_px"])
    at = 0
    for b in range(len(committed)):
        want = synthetic_records(1000 + b, CRASH_BATCH, max_crs=300)
        rows = exposures[exposures["batch"] == f"b{b}"]
        assert list(rows["rootname"]) == [r.rootname for r in want]
        for k in (0, CRASH_BATCH - 1):
            assert_same_record(read_record(path, int(rows["exposure_id"][k])), want[k])
        energy = np.concatenate([r.crs["energy_e"] for r in want])
        np.testing.assert_array_equal(crs["energy_e"][at:at + len(energy)], energy)
        at += len(energy)
    with CensusStore(path) as store:  # appending continues
        n = len(committed)
        assert store.append(synthetic_records(1000 + n, 3), f"b{n}") == 3
        assert store.append(synthetic_records(0, 3), "b0") == 0
    return committed


def run_crash_writer(path: Path, commits_before_kill: int, delay: float = 0.0,
                     kill_at_protected_write: int = 0) -> int:
    """Start the writer, SIGKILL it after some commits (or let it kill itself); its code."""
    args = [sys.executable, __file__, "--crash-writer", str(path), str(kill_at_protected_write)]
    writer = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(commits_before_kill):
            assert writer.stdout.readline().strip(), "the crash writer stopped early"
        if not kill_at_protected_write:
            time.sleep(delay)
            os.kill(writer.pid, signal.SIGKILL)
        return writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()


@pytest.mark.parametrize("delay", [0.0, 0.037, 0.11])
def test_sigkill_mid_append_leaves_only_whole_batches(tmp_path: Path, delay: float) -> None:
    path = tmp_path / "killed.h5"
    # Two commits first, so the kill lands in the steady appending loop.
    assert run_crash_writer(path, 2, delay) == -signal.SIGKILL
    check_crashed_store(path, min_batches=2)


def test_sigkill_inside_the_hdf5_flush_is_rolled_back(tmp_path: Path) -> None:
    # Where one append overwrites committed bytes: measured on the same data in-process
    # (HDF5's writes are deterministic for the same calls).
    probe = tmp_path / "probe.h5"
    with CensusStore(probe) as store:
        for b in range(3):
            before = store._journaled.protected_writes
            store.append(synthetic_records(1000 + b, CRASH_BATCH, max_crs=300), f"b{b}")
        in_place = store._journaled.protected_writes - before
    assert in_place > 3
    for k in (1, in_place // 2, in_place - 1):
        path = tmp_path / f"killed_{k}.h5"
        assert run_crash_writer(path, 2, kill_at_protected_write=k) == -signal.SIGKILL
        assert journal_path(path).exists()  # killed mid-flush, journal on disk
        with CensusStore(path) as store:
            assert store.rolled_back.get("journal") == 1
        assert check_crashed_store(path, min_batches=2) == ["b0", "b1"]
        assert not journal_path(path).exists()


def test_readers_roll_back_a_crashed_writers_journal(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    run_crash_writer(path, 2, kill_at_protected_write=2)
    assert journal_path(path).exists()
    assert len(read_exposures(path)) == 2 * CRASH_BATCH  # no writer open needed
    assert not journal_path(path).exists()


def test_journal_ignores_a_torn_record_and_restores_bytes(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"A" * 100)
    jf = JournaledFile(path, durable=False)
    jf.seek(10)
    jf.write(b"B" * 20)   # in place: saved first
    jf.seek(10)
    jf.write(b"C" * 5)    # again: the first copy is the one that counts
    jf.seek(100)
    jf.write(b"D" * 50)   # beyond the committed size: not saved, truncated on recovery
    assert jf.protected_writes == 2
    # Simulate a kill while the next record was being written: a torn tail record.
    with open(journal_path(path), "ab") as fh:
        fh.write(b"\x05\x00\x00")
    jf.close()  # without commit: as if the process died here
    assert recover(path)
    assert path.read_bytes() == b"A" * 100 and not journal_path(path).exists()
    jf = JournaledFile(path, durable=False)
    jf.seek(0)
    jf.write(b"E")
    jf.commit()
    jf.close()
    assert path.read_bytes()[:2] == b"EA" and not recover(path)


def test_a_second_writer_is_refused(store_path: Path) -> None:
    with CensusStore(store_path) as store:
        store.append(synthetic_records(0, 2), "a")
        with pytest.raises(InputError, match="being written"):
            CensusStore(store_path)
        with pytest.raises(InputError, match="being written|cannot open"):
            read_exposures(store_path)


# -- report and CLI ------------------------------------------------------------------------

def test_rate_map_peaks_at_the_injected_hot_spot(store_path: Path) -> None:
    from hstcal_core.census.report import rate_map

    fill(store_path, batches=4, per_batch=150, detectors=("acs_wfc",), max_crs=3,
         hot_box=True)
    rmap = rate_map(store_path, "acs_wfc", lat_step=4.0, lon_step=8.0)
    lat, lon = rmap.peak()
    assert HOT_LAT[0] <= lat <= HOT_LAT[1] and HOT_LON[0] <= lon <= HOT_LON[1], (lat, lon)
    centres_lat = (rmap.lat_edges[:-1] + rmap.lat_edges[1:]) / 2
    centres_lon = (rmap.lon_edges[:-1] + rmap.lon_edges[1:]) / 2
    inside = ((centres_lat[:, None] > HOT_LAT[0]) & (centres_lat[:, None] < HOT_LAT[1])
              & (centres_lon[None, :] > HOT_LON[0]) & (centres_lon[None, :] < HOT_LON[1]))
    assert np.nanmean(rmap.mean_rate[inside]) > 3 * np.nanmean(rmap.mean_rate[~inside])
    assert rmap.samples.sum() == 4 * 150 * 8
    assert np.isnan(rmap.mean_rate[0, 0])  # HST never reaches -90 deg


def test_report_writes_pngs_and_index(store_path: Path, tmp_path: Path) -> None:
    from hstcal_core.census.report import cr_histograms, make_report

    written = [r for batch in fill(store_path) for r in batch]
    result = make_report(store_path, tmp_path / "report")
    names = sorted(p.name for p in result.images)
    assert names == ["cr_histograms.png", "rate_map.png", "rate_vs_time.png"]
    for image in result.images:
        assert image.read_bytes()[:8] == PNG_SIGNATURE and image.stat().st_size > 5000
    page = result.index.read_text()
    for name in names:
        assert f'src="{name}"' in page
    assert "acs_wfc" in page and "wfc3_uvis" in page
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted([*names, "index.html"])
    hists = cr_histograms(store_path, "acs_wfc")
    sizes = [s for r in written if r.detector == "acs_wfc" for s in r.crs["size_px"]]
    assert hists["size_px"].counts.sum() == len(sizes) and hists["size_px"].above == 0


def test_cli_summary_and_report(store_path: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hstcal_core.cli_census import census

    fill(store_path, batches=2)
    runner = CliRunner()
    result = runner.invoke(census, ["summary", str(store_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["exposures"] == 12
    result = runner.invoke(census, ["summary", str(store_path)])
    assert result.exit_code == 0 and "acs_wfc" in result.output
    result = runner.invoke(census, ["report", str(store_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").is_file()
    result = runner.invoke(census, ["summary", str(tmp_path / "nope.h5")])
    assert result.exit_code == 2 and "no census store here" in result.output


def test_report_of_an_empty_store(tmp_path: Path) -> None:
    from hstcal_core.census.report import make_report

    path = tmp_path / "empty.h5"
    CensusStore(path).close()
    result = make_report(path, tmp_path / "out")
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in result.images)


if __name__ == "__main__" and sys.argv[1:2] == ["--crash-writer"]:
    crash_writer(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
