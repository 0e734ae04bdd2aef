"""Anneal months and their weeks, with refstis' date bugs fixed (each tested)."""

import math
import sqlite3

import numpy as np
import pytest

from hstcal_core.errors import InputError
from hstcal_core.reffiles.anneal import (
    AnnealPeriod,
    days_in_periods,
    find_period,
    mjd_to_datetime,
    number_of_periods,
    read_anneal_table,
    split_period,
    week_of,
)


@pytest.mark.parametrize("days, mode, expected", [
    (7, "WK", 1), (9, "WK", 1), (12, "WK", 2), (18, "WK", 2), (19, "WK", 3),
    (27, "WK", 3), (28, "WK", 4), (36, "WK", 4), (37, "WK", 5),
    (21, "BIWK", 1), (22, "BIWK", 2), (36, "BIWK", 2), (37, "BIWK", 3),
])
def test_number_of_periods_matches_refstis_where_refstis_is_defined(days, mode, expected):
    assert number_of_periods(days, mode) == expected


@pytest.mark.parametrize("days", [10, 11, 10.4, 11.3])
def test_ten_and_eleven_day_months_get_periods_not_minus_one(days):
    """refstis figure_number_of_periods returned -1 for 10-11 days in weekly mode."""
    n = number_of_periods(days, "WK")
    assert n == 2
    assert all(length >= 5 for length in days_in_periods(n, days))


def test_short_months_still_get_one_period():
    assert number_of_periods(4.0, "WK") == 1
    assert number_of_periods(8.0, "BIWK") == 1
    with pytest.raises(ValueError, match="mode"):
        number_of_periods(28, "MONTH")


def test_leftover_days_go_first_and_fraction_last():
    assert days_in_periods(4, 29.5) == [8.0, 7.0, 7.0, 7.5]
    assert days_in_periods(4, 28.0) == [7.0, 7.0, 7.0, 7.0]
    assert days_in_periods(3, 23.25) == [8.0, 8.0, 7.25]


@pytest.mark.parametrize("days", [27.15, 28.05, 29.99, 10.5, 44.0])
def test_weeks_tile_the_month_exactly(days):
    """refstis dropped the fractional day: data in the last hours belonged to no week."""
    period = AnnealPeriod(0, 55600.3, 55600.3 + days)
    weeks = split_period(period, "WK")
    assert weeks[0].start_mjd == period.start_mjd
    assert weeks[-1].end_mjd == period.end_mjd
    for a, b in zip(weeks, weeks[1:]):
        assert a.end_mjd == b.start_mjd
    assert sum(w.end_mjd - w.start_mjd for w in weeks) == pytest.approx(days)
    late = period.end_mjd - 1e-4  # a dark taken minutes before the next anneal
    assert week_of(weeks, late) is weeks[-1]


def test_boundary_exposure_belongs_to_exactly_one_week():
    """refstis tested begin <= t <= end, so a boundary exposure landed in two weeks."""
    weeks = split_period(AnnealPeriod(0, 55600.0, 55628.0), "WK")
    boundary = weeks[1].start_mjd
    owners = [w for w in weeks if w.contains(boundary)]
    assert owners == [weeks[1]]
    rng = np.random.default_rng(0)
    for t in rng.uniform(55600.0, 55628.0, 500):
        assert sum(w.contains(t) for w in weeks) == 1


def test_mjd_to_datetime_is_exact():
    """refstis mjd_to_greg used '/' where it meant integer division (wrong dates in Py3)."""
    assert mjd_to_datetime(51544.0).isoformat() == "2000-01-01T00:00:00"
    assert mjd_to_datetime(55600.5).strftime("%Y-%m-%d %H:%M") == "2011-02-08 12:00"
    assert mjd_to_datetime(51603.0).strftime("%Y-%m-%d") == "2000-02-29"  # leap day


def test_find_period_half_open():
    periods = [AnnealPeriod(0, 10.0, 20.0), AnnealPeriod(1, 21.0, 30.0)]
    assert find_period(periods, 10.0) is periods[0]
    assert find_period(periods, 19.999) is periods[0]
    assert find_period(periods, 20.5) is None  # during the anneal
    assert find_period(periods, 30.0) is None
    assert find_period(periods, 5.0) is None


def test_sqlite_table_months_run_between_anneals(tmp_path):
    db = tmp_path / "anneal_info.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE anneals (id integer PRIMARY KEY, proposid integer, "
                    "visit real, start real, end real)")
        con.executemany("INSERT INTO anneals VALUES (?,?,?,?,?)",
                        [(1, 1, 1.0, 100.0, 101.0), (2, 1, 2.0, 128.0, 129.5),
                         (3, 1, 3.0, 156.0, 157.0)])
    periods = read_anneal_table(db)
    assert [(p.start_mjd, p.end_mjd) for p in periods] == [(101.0, 128.0), (129.5, 156.0)]


def test_bad_tables_raise_naming_the_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_anneal_table(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("- {index: 0}\n")
    with pytest.raises(InputError, match="bad.yml.*start"):
        read_anneal_table(bad)
    other = tmp_path / "table.csv"
    other.write_text("x")
    with pytest.raises(InputError, match="YAML"):
        read_anneal_table(other)


@pytest.mark.realdata
def test_real_refstis_tables(shared_data):
    yml = read_anneal_table(shared_data / "stis_anneals" / "anneal_boundaries_v2.yml")
    assert len(yml) == 199
    lengths = np.array([p.days for p in yml])
    assert 27.0 < np.median(lengths) < 29.0
    gaps = [b.start_mjd - a.end_mjd for a, b in zip(yml, yml[1:])]
    assert min(gaps) >= 0  # never overlapping
    assert sum(g > 1e-6 for g in gaps) == 1  # contiguous but for one 1.57-day gap (2017)
    db = read_anneal_table(shared_data / "stis_anneals" / "anneal_info.db")
    assert len(db) == 33  # 34 anneals bound 33 months
    gaps = np.array([p.days for p in db])
    assert gaps.min() > 20 and gaps.max() < 45
    for p in db:
        weeks = split_period(p, "WK")
        assert weeks[-1].end_mjd == p.end_mjd
        assert len(weeks) == math.ceil(round(p.days) / 9) if round(p.days) > 9 else 1
