"""Date chunks of a campaign: calendar months or anneal periods, minus inactive windows.

HSTcosmicrays built its monthly intervals with ``pd.date_range`` and lost the final
partial month; here every month that overlaps ``[start, end)`` is a chunk, the first
and last clipped to the range.  A chunk that falls wholly in a detector's inactive
window (failure, safe mode, before installation, after retirement) is marked
inactive; one that straddles a window edge keeps only its active part(s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from astropy.time import Time

__all__ = ["Chunk", "to_mjd", "month_chunks", "anneal_chunks", "active_windows"]


def to_mjd(value: date | datetime | str | float) -> float:
    """MJD (UTC) of a date, datetime, ISO string or number."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        return float(Time(value, scale="utc").mjd)
    if isinstance(value, date):
        return float(Time(datetime(value.year, value.month, value.day), scale="utc").mjd)
    return float(Time(str(value), scale="utc").mjd)


@dataclass(frozen=True)
class Chunk:
    """One unit of a campaign's calendar: ``[start_mjd, end_mjd)`` with a stable key."""

    key: str
    start_mjd: float
    end_mjd: float

    def overlaps(self, start: float, end: float) -> bool:
        return self.start_mjd < end and start < self.end_mjd


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def month_chunks(start: date, end: date) -> list[Chunk]:
    """Calendar months overlapping ``[start, end)``, clipped to it; keys ``YYYY-MM``."""
    if end <= start:
        return []
    chunks = []
    year, month = start.year, start.month
    while True:
        first = _month_start(year, month)
        if first >= end:
            break
        nxt = _month_start(year, month + 1)
        lo, hi = max(first, start), min(nxt, end)
        chunks.append(Chunk(f"{first:%Y-%m}", to_mjd(lo), to_mjd(hi)))
        year, month = nxt.year, nxt.month
    return chunks


def anneal_chunks(periods: Iterable, start: date, end: date) -> list[Chunk]:
    """Whole anneal periods (``AnnealPeriod``) that overlap ``[start, end)``; keys are their names.

    Periods are not clipped: a reference-file month needs all its frames.
    """
    lo, hi = to_mjd(start), to_mjd(end)
    return [Chunk(p.name, p.start_mjd, p.end_mjd) for p in periods
            if p.start_mjd < hi and lo < p.end_mjd]


def active_windows(chunk: Chunk, inactive: Sequence[tuple[str, str | None]]
                   ) -> list[tuple[float, float]]:
    """The parts of ``chunk`` outside every inactive window (empty: wholly inactive)."""
    parts = [(chunk.start_mjd, chunk.end_mjd)]
    for first, back in inactive:
        w_lo = to_mjd(first)
        w_hi = to_mjd(back) if back else float("inf")
        kept = []
        for lo, hi in parts:
            if hi <= w_lo or lo >= w_hi:
                kept.append((lo, hi))
                continue
            if lo < w_lo:
                kept.append((lo, w_lo))
            if hi > w_hi:
                kept.append((w_hi, hi))
        parts = kept
    return parts
