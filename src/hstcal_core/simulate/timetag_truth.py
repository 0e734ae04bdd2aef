"""Truth of a simulated TIME-TAG exposure: which region holds each event, exact counts,
expected counts per time bin, and ``truth.json``.  Part of :mod:`hstcal_core.simulate.timetag`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..timetag.events import Region

if TYPE_CHECKING:
    from .timetag import LightcurveModel, SyntheticEvents

__all__ = ["CATEGORIES", "region_truth", "TimeTagTruth", "write_truth"]

#: event category codes in :attr:`SyntheticEvents.category`
CATEGORIES = {"source": 0, "background": 1, "airglow": 2, "flagged": 3}


def region_truth(x: np.ndarray, y: np.ndarray, segment: np.ndarray, category: np.ndarray,
                 extractions: Sequence[tuple[str, int, Region, Sequence[Region]]]
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, dict[str, int]]]]:
    """Which extraction band holds each event, and the counts per category.

    ``extractions``: (name, segment, source, backgrounds) as the files describe them.
    Source bands win over background bands, earlier extractions over later ones (the
    rule of :func:`hstcal_core.timetag.events.classify`, restated here so the truth
    does not depend on the code it checks).

    Returns
    -------
    extraction : ndarray of int16
        Index into ``extractions`` (−1: none).
    is_source : ndarray of bool
    counts : dict
        ``counts[name]["source" | "background"][category name]`` = events.
    """
    n = len(x)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    extraction = np.full(n, -1, dtype=np.int16)
    is_source = np.zeros(n, dtype=bool)
    for band in ("source", "background"):
        for k, (_, seg, source, backgrounds) in enumerate(extractions):
            regions = (source,) if band == "source" else tuple(backgrounds)
            inside = np.zeros(n, dtype=bool)
            for r in regions:
                mid = r.center + r.slope * x
                inside |= (y - mid >= -0.5 * r.height) & (y - mid < 0.5 * r.height)
            take = (extraction < 0) & (segment == seg) & inside
            extraction[take] = k
            is_source[take] = band == "source"
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for k, (name, *_rest) in enumerate(extractions):
        counts[name] = {}
        for band, flag in (("source", True), ("background", False)):
            mine = (extraction == k) & (is_source == flag)
            per = np.bincount(category[mine].astype(np.int64), minlength=len(CATEGORIES))
            counts[name][band] = {c: int(per[code]) for c, code in CATEGORIES.items()}
    return extraction, is_source, counts


@dataclass
class TimeTagTruth:
    """What went into one simulated TIME-TAG exposure.

    Attributes
    ----------
    detector, rootname : str
    files : list of Path
        Event files and x1d written.
    exptime, expstart : float
        Good exposure time (s, = Σ GTI) and start (MJD).
    gti : ndarray (n, 2)
    model : LightcurveModel
    source_rate : float
        Quiescent source rate summed over the extractions (counts/s).
    source_share : dict
        Fraction of the source rate in each extraction.
    background_rate : float
        counts/s/pixel.
    sdqflags, flag_bit : int
    counts : dict
        Exact injected events per extraction band and category (:func:`region_truth`).
    totals : dict
        Events written per category, all regions.
    expected : dict
        Expected (Poisson mean) events per category.
    events : SyntheticEvents
        The events as written (per-event category, extraction band in
        ``extraction``/``is_source``), in file order of the concatenated segments.
    extraction, is_source : ndarray
    notes : list of str
    """

    detector: str
    rootname: str
    files: list[Path]
    exptime: float
    expstart: float
    gti: np.ndarray
    model: LightcurveModel
    source_rate: float
    source_share: dict[str, float]
    background_rate: float
    sdqflags: int
    flag_bit: int
    counts: dict[str, dict[str, dict[str, int]]]
    totals: dict[str, int]
    expected: dict[str, float]
    events: SyntheticEvents | None = None
    extraction: np.ndarray | None = None
    is_source: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def expected_source_counts(self, edges: np.ndarray, extraction: str | None = None
                               ) -> np.ndarray:
        """Expected source events (all extractions, or one) in time bins ``edges`` (s),
        counting only the good time inside each bin."""
        edges = np.asarray(edges, dtype=np.float64)
        lo, hi = edges[:-1], edges[1:]
        total = np.zeros(len(lo))
        for a, b in self.gti:
            s, e = np.clip(lo, a, b), np.clip(hi, a, b)
            total += self.model.cumulative(e) - self.model.cumulative(s)
        share = 1.0 if extraction is None else self.source_share[extraction]
        return self.source_rate * share * total

    def good_time(self, edges: np.ndarray) -> np.ndarray:
        """Good time (s) inside each bin of ``edges``."""
        edges = np.asarray(edges, dtype=np.float64)
        total = np.zeros(len(edges) - 1)
        for a, b in self.gti:
            total += np.clip(edges[1:], a, b) - np.clip(edges[:-1], a, b)
        return total

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (what ``truth.json`` holds)."""
        return {"detector": self.detector, "rootname": self.rootname,
                "files": [str(f) for f in self.files], "exptime": self.exptime,
                "expstart": self.expstart, "gti": self.gti.tolist(),
                "model": self.model.to_dict(), "source_rate": self.source_rate,
                "source_share": self.source_share, "background_rate": self.background_rate,
                "sdqflags": self.sdqflags, "flag_bit": self.flag_bit, "counts": self.counts,
                "totals": self.totals, "expected": self.expected, "notes": self.notes}


def write_truth(truths: Sequence[TimeTagTruth], out_dir: str | os.PathLike) -> Path:
    """Write ``truth.json`` (one summary per exposure) into ``out_dir``."""
    from ..fitsio import atomic_path

    path = Path(out_dir) / "truth.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"format": "hstcal-timetag-truth",
                                   "exposures": [t.summary() for t in truths]}, indent=1))
    return path


