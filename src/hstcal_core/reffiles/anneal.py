"""Anneal periods ("anneal months") and their division into weeks.

An anneal month runs from the end of one CCD anneal to the start of the next; a
reference file must never span an anneal (refstis ``get_anneal_month_dates``).
Weeks follow refstis ``separate_obs`` / ``figure_days_in_period`` with its bugs fixed:

* the number of periods is defined for every length (refstis returned −1 for
  10–11-day months in weekly mode and for < 11 days in bi-weekly mode);
* whole leftover days go to the first periods and the fractional day to the
  last, so the periods tile the month exactly (refstis dropped the fraction, so
  data in the last hours of a month belonged to no week);
* periods are half-open ``[start, end)``: an exposure on a boundary belongs to
  exactly one week (refstis' inclusive test put it in two).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import yaml
from astropy.time import Time

from ..errors import InputError

__all__ = [
    "AnnealPeriod",
    "Week",
    "read_anneal_table",
    "find_period",
    "number_of_periods",
    "days_in_periods",
    "split_period",
    "week_of",
    "mjd_to_datetime",
]

log = logging.getLogger(__name__)

#: Period modes: weekly for gain 1, bi-weekly for gain 4 (refstis ``select_gain``).
MODES = ("WK", "BIWK")


@dataclass(frozen=True)
class AnnealPeriod:
    """One anneal month: ``[start_mjd, end_mjd)`` between two anneals."""

    index: int
    start_mjd: float
    end_mjd: float
    label: str = ""

    @property
    def days(self) -> float:
        return self.end_mjd - self.start_mjd

    @property
    def name(self) -> str:
        return self.label or f"anneal{self.index:03d}_{mjd_to_datetime(self.start_mjd):%Y%m%d}"

    def contains(self, mjd: float) -> bool:
        return self.start_mjd <= mjd < self.end_mjd


@dataclass(frozen=True)
class Week:
    """One reference-file period inside an anneal month, half-open."""

    number: int
    start_mjd: float
    end_mjd: float
    mode: str

    @property
    def tag(self) -> str:
        return f"{self.mode.lower()}{self.number:02d}"

    def contains(self, mjd: float) -> bool:
        return self.start_mjd <= mjd < self.end_mjd


def mjd_to_datetime(mjd: float) -> datetime:
    """MJD (UTC) → datetime, via astropy (refstis' hand-rolled integer-division
    conversions gave wrong dates under Python 3)."""
    return Time(mjd, format="mjd", scale="utc").to_datetime()


def _to_mjd(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (datetime, date)):
        return float(Time(value, scale="utc").mjd)
    return float(Time(str(value), scale="utc").mjd)


def read_anneal_table(path: str | Path) -> list[AnnealPeriod]:
    """Read anneal months from a refstis table.

    Two formats are understood:

    * YAML (``anneal_boundaries_v2.yml``): a list of ``{index, start, end, darks}``
      where ``start``/``end`` already bound each anneal month;
    * SQLite (``anneal_info.db``): table ``anneals(id, proposid, visit, start, end)``
      of anneal *events*; month ``i`` runs from the end of anneal ``i`` to the start
      of anneal ``i+1``.

    Returns
    -------
    list of AnnealPeriod
        Sorted by start, validated to be non-overlapping and of positive length.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "anneal table does not exist")
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        periods = _read_yaml(path)
    elif suffix in (".db", ".sqlite", ".sqlite3"):
        periods = _read_sqlite(path)
    else:
        raise InputError(path, "anneal table must be a refstis YAML (.yml) or SQLite (.db) file")
    if not periods:
        raise InputError(path, "anneal table holds no anneal periods")
    periods.sort(key=lambda p: p.start_mjd)
    for prev, cur in zip(periods, periods[1:]):
        if cur.start_mjd < prev.end_mjd - 1e-9:
            raise InputError(path, f"anneal periods {prev.index} and {cur.index} overlap")
    for p in periods:
        if p.end_mjd <= p.start_mjd:
            raise InputError(path, f"anneal period {p.index} has non-positive length")
    return periods


def _read_yaml(path: Path) -> list[AnnealPeriod]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise InputError(path, "expected a list of anneal periods with 'start' and 'end'")
    periods = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or "start" not in item or "end" not in item:
            raise InputError(path, f"entry {n} lacks 'start'/'end'")
        periods.append(AnnealPeriod(int(item.get("index", n)), _to_mjd(item["start"]),
                                    _to_mjd(item["end"])))
    return periods


def _read_sqlite(path: Path) -> list[AnnealPeriod]:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT id, start, end FROM anneals ORDER BY start").fetchall()
    except sqlite3.Error as exc:
        raise InputError(path, f"cannot read table 'anneals': {exc}") from None
    return [AnnealPeriod(int(a[0]), float(a[2]), float(b[1]))
            for a, b in zip(rows, rows[1:])]


def find_period(periods: Sequence[AnnealPeriod], mjd: float) -> AnnealPeriod | None:
    """The anneal month containing ``mjd`` (None if it falls in an anneal or outside)."""
    starts = np.array([p.start_mjd for p in periods])
    i = int(np.searchsorted(starts, mjd, side="right")) - 1
    if i >= 0 and periods[i].contains(mjd):
        return periods[i]
    return None


def number_of_periods(days: float, mode: str) -> int:
    """How many reference-file periods an anneal month of ``days`` is split into.

    Weekly (``WK``): one period up to 9 days, else ⌈days/9⌉ (12–18 → 2, 19–27 → 3,
    28–36 → 4, as refstis).  Bi-weekly (``BIWK``): one period below 22 days, else
    ⌈days/18⌉.  refstis returned −1 (an error) for 10–11 days weekly; here such a
    month gets 2 periods.  Lengths are rounded to whole days first, as refstis did.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n_days = int(round(days))
    if n_days < 1:
        return 1
    if mode == "WK":
        if n_days < 6:
            log.warning("anneal month of %.2f days is shorter than a week; one period", days)
        return 1 if n_days <= 9 else math.ceil(n_days / 9)
    if n_days < 11:
        log.warning("anneal month of %.2f days is shorter than a bi-week; one period", days)
    return 1 if n_days < 22 else math.ceil(n_days / 18)


def days_in_periods(n_periods: int, days: float) -> list[float]:
    """Period lengths: whole leftover days to the first periods, the fraction to the last.

    >>> days_in_periods(4, 29.5)
    [8.0, 7.0, 7.0, 7.5]
    """
    if n_periods < 1:
        raise ValueError("n_periods must be >= 1")
    whole = int(math.floor(days))
    base, extra = divmod(whole, n_periods)
    lengths = [float(base + (1 if i < extra else 0)) for i in range(n_periods)]
    lengths[-1] += days - whole
    return lengths


def split_period(period: AnnealPeriod, mode: str) -> list[Week]:
    """Tile an anneal month with half-open weeks (or bi-weeks)."""
    n = number_of_periods(period.days, mode)
    lengths = days_in_periods(n, period.days)
    edges = period.start_mjd + np.concatenate([[0.0], np.cumsum(lengths)])
    edges[-1] = period.end_mjd  # exact tiling, no floating-point gap at the end
    return [Week(i + 1, float(edges[i]), float(edges[i + 1]), mode) for i in range(n)]


def week_of(weeks: Iterable[Week], mjd: float) -> Week | None:
    """The single week containing ``mjd``, or None."""
    for week in weeks:
        if week.contains(mjd):
            return week
    return None
