"""Synthetic TIME-TAG photon events with exact truth: the detector-agnostic engine.

A plugin describes where its spectra fall (:class:`SpectrumLayout`: extraction regions,
dispersion, sensitivity, flux spectrum) and which detector planes exist
(:class:`Plane`); :func:`synthesize_events` draws, fully vectorised,

* **source** photons: a Poisson process whose rate is ``source_rate ×``
  :class:`LightcurveModel` (constant, sinusoid, flare, eclipse), spread over the x1d
  elements in proportion to ``flux × sensitivity`` and across the spectrum with a
  Gaussian profile truncated inside the source box;
* **background**: a uniform dark rate per pixel over every plane;
* **airglow**: Lyα 1215.67 Å and O I 1302.17/1304.86/1306.03 Å (geocoronal lines, COS
  IHB §7.4), Gaussian in wavelength, uniform across the slit and background rows;
* **flagged** events: uniform over the spectrum's rows, each with a DQ bit from the
  header's SDQFLAGS (what a reader must drop);

all inside the good-time intervals only, then sorted by segment and time (the order
of the per-segment event files read one after the other).  The plugin turns the
arrays into its own file format (COS corrtag + x1d, STIS tag + x1d) and counts the
truth per extraction region with :func:`region_truth` on the coordinates as written
(:mod:`hstcal_core.simulate.timetag_truth`: ``TimeTagTruth``, ``truth.json``).
Times are cast to the file's dtype here and kept inside their GTI, so the truth is
exactly what a reader sees.

This module knows no instrument: the formats live in the plugins
(``hstcal_cos.simulate_timetag``, ``hstcal_stis.simulate_timetag``), which register
``kind="timetag"`` simulators (``hstcal simulate --instrument cos_fuv --kind timetag``;
:func:`simulate_timetag` is the same call from Python).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..timetag.events import Region
from .timetag_truth import CATEGORIES, TimeTagTruth, region_truth, write_truth

__all__ = ["LightcurveModel", "AirglowLine", "AIRGLOW_LINES", "SpectrumLayout", "Plane",
           "SyntheticEvents", "TimeTagTruth", "CATEGORIES", "synthesize_events",
           "region_truth", "sensitivity_curve", "simulate_timetag", "write_truth",
           "model_from_options", "DAMAGES", "damage_event_file"]

_PLANCK_C = 6.62607015e-27 * 2.99792458e18  # h·c in erg·Å
_GRID = 1 << 16


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class LightcurveModel:
    """Relative source rate ``f(t)`` (1 = quiescent).

    kind ``"constant"``: 1.  ``"sinusoid"``: ``1 + amplitude·sin(2πt/period)``.
    ``"flare"``: ``1 + amplitude·exp(-(t - time)/decay)`` for ``t ≥ time``.
    ``"eclipse"``: ``1 - depth`` for ``start ≤ t < start + duration``.
    """

    kind: str = "constant"
    period: float = 300.0
    amplitude: float = 0.5
    time: float = 100.0
    decay: float = 50.0
    start: float = 100.0
    duration: float = 100.0
    depth: float = 0.5

    def __post_init__(self) -> None:
        kinds = ("constant", "sinusoid", "flare", "eclipse")
        if self.kind not in kinds:
            raise ValueError(f"model kind must be one of {kinds}, got {self.kind!r}")
        if self.kind == "sinusoid" and not (abs(self.amplitude) <= 1 and self.period > 0):
            raise ValueError("sinusoid needs |amplitude| <= 1 and period > 0")
        if self.kind == "flare" and not (self.amplitude >= 0 and self.decay > 0):
            raise ValueError("flare needs amplitude >= 0 and decay > 0")
        if self.kind == "eclipse" and not (0 <= self.depth <= 1 and self.duration >= 0):
            raise ValueError("eclipse needs 0 <= depth <= 1 and duration >= 0")

    def factor(self, t: np.ndarray) -> np.ndarray:
        """Relative rate at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "sinusoid":
            return 1 + self.amplitude * np.sin(2 * np.pi * t / self.period)
        if self.kind == "flare":
            after = t >= self.time
            return 1 + np.where(after, self.amplitude * np.exp(
                -np.where(after, t - self.time, 0.0) / self.decay), 0.0)
        if self.kind == "eclipse":
            inside = (t >= self.start) & (t < self.start + self.duration)
            return np.where(inside, 1 - self.depth, 1.0)
        return np.ones_like(t)

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """``∫₀ᵗ f`` — exact, so expected counts in any bin are exact."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "sinusoid":
            w = 2 * np.pi / self.period
            return t + self.amplitude / w * (1 - np.cos(w * t))
        if self.kind == "flare":
            dt = np.clip(t - self.time, 0.0, None)
            return t + self.amplitude * self.decay * (1 - np.exp(-dt / self.decay))
        if self.kind == "eclipse":
            return t - self.depth * np.clip(t - self.start, 0.0, self.duration)
        return t.copy()

    def kinks(self) -> list[float]:
        """Times where ``f`` is not smooth (grid points for the inverse CDF)."""
        if self.kind == "flare":
            return [self.time]
        if self.kind == "eclipse":
            return [self.start, self.start + self.duration]
        return []

    def to_dict(self) -> dict[str, Any]:
        names = {"constant": (), "sinusoid": ("period", "amplitude"),
                 "flare": ("time", "amplitude", "decay"),
                 "eclipse": ("start", "duration", "depth")}[self.kind]
        return {"kind": self.kind, **{n: getattr(self, n) for n in names}}


@dataclass(frozen=True)
class AirglowLine:
    """A geocoronal line: centre (Å), Gaussian σ (Å), count rate (counts/s) per spectrum."""

    name: str
    wavelength: float
    sigma: float
    rate: float


#: Geocoronal lines (COS IHB §7.4.3 airglow table; O I as its triplet).
AIRGLOW_LINES = (
    AirglowLine("Lya", 1215.67, 0.25, 20.0),
    AirglowLine("OI1302", 1302.17, 0.25, 2.0),
    AirglowLine("OI1305", 1304.86, 0.25, 1.5),
    AirglowLine("OI1306", 1306.03, 0.25, 1.0),
)


def sensitivity_curve(wavelength: np.ndarray, *, peak_area_cm2: float, peak_wavelength: float,
                      width: float) -> np.ndarray:
    """Sensitivity ((counts/s/pixel) per erg s⁻¹ cm⁻² Å⁻¹) of a Gaussian effective area.

    ``S = A_eff(λ) · |dλ/dpixel| · λ / (h c)`` (COS IHB §5.1: sensitivity is effective
    area times dispersion over photon energy).
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    area = peak_area_cm2 * np.exp(-0.5 * ((wavelength - peak_wavelength) / width) ** 2)
    dispersion = np.abs(np.gradient(wavelength))
    return area * dispersion * wavelength / _PLANCK_C


@dataclass(frozen=True)
class SpectrumLayout:
    """One spectrum on the detector (a COS segment or stripe, a STIS order).

    ``pixel``/``wavelength``/``sensitivity``/``flux`` are per x1d element; ``flux``
    (erg s⁻¹ cm⁻² Å⁻¹) is the quiescent source.  Source photons are drawn inside
    ``source`` with a Gaussian cross-dispersion profile of ``profile_sigma`` rows,
    truncated ``margin`` rows inside the box edges.
    """

    name: str
    segment: int
    pixel: np.ndarray
    wavelength: np.ndarray
    sensitivity: np.ndarray
    flux: np.ndarray
    source: Region
    background: tuple[Region, ...]
    profile_sigma: float = 3.0
    margin: float = 0.5

    @property
    def net_rate(self) -> np.ndarray:
        """Quiescent source count rate per element (counts/s)."""
        return self.flux * self.sensitivity

    def rows(self) -> tuple[float, float]:
        """Lowest and highest row of its regions at x = 0 (the airglow band)."""
        regions = (self.source, *self.background)
        return (min(r.center - r.height / 2 for r in regions),
                max(r.center + r.height / 2 for r in regions))


@dataclass(frozen=True)
class Plane:
    """A detector plane that collects background: events have ``segment`` and lie in
    ``x_range × y_range`` (pixel edges)."""

    segment: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    @property
    def area(self) -> float:
        return (self.x_range[1] - self.x_range[0]) * (self.y_range[1] - self.y_range[0])


@dataclass
class SyntheticEvents:
    """Events of one exposure, sorted by segment, then by time (time as it will be
    written): the order of the per-segment event files concatenated."""

    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    segment: np.ndarray
    category: np.ndarray       # CATEGORIES code
    layout: np.ndarray         # index of the spectrum a source/airglow/flagged event came from, -1
    dq: np.ndarray
    expected: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time)

    def take(self, keep: np.ndarray) -> SyntheticEvents:
        return SyntheticEvents(*(getattr(self, n)[keep] for n in (
            "time", "x", "y", "segment", "category", "layout", "dq")), expected=self.expected)


# --------------------------------------------------------------------------- sampling
def _gti_array(gti: Sequence[Sequence[float]]) -> np.ndarray:
    gti = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    if not len(gti) or np.any(gti[:, 1] <= gti[:, 0]) or np.any(gti[1:, 0] < gti[:-1, 1]):
        raise ValueError(f"gti must be increasing, non-overlapping (start, stop) pairs: {gti}")
    return gti


def _sorted_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` sorted uniforms on [0, 1) without sorting: normalised partial sums of n + 1
    exponential spacings are the uniform order statistics (Devroye 1986, §V.2)."""
    spacings = rng.standard_exponential(n + 1)
    total = spacings.sum()
    return np.cumsum(spacings[:-1]) / total


def _sorted_times(rng: np.random.Generator, n: int, grid: np.ndarray, weight: np.ndarray,
                  gti: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sorted times with density ∝ ``weight`` per ``grid`` cell (uniform within a
    cell: the inverse of the piecewise-linear cumulative), and each one's GTI index.
    O(n): the cells are found by searching the few cell edges in the sorted draws."""
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    u = _sorted_uniform(rng, n) * cdf[-1]
    bounds = np.searchsorted(u, cdf, side="left")
    cell = np.repeat(np.arange(len(weight)), np.diff(bounds))
    width = np.diff(grid)
    frac = (u - cdf[cell]) / np.where(weight[cell] > 0, weight[cell], 1.0)
    t = grid[cell] + np.clip(frac, 0.0, 1.0) * width[cell]
    which = np.clip(np.searchsorted(gti[:, 0], grid[:-1], side="right") - 1, 0,
                    len(gti) - 1)[cell]
    return t, which


def _uniform_times(rng: np.random.Generator, n: int, gti: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grid = gti.reshape(-1)
    weight = np.diff(grid)
    weight[1::2] = 0.0  # the gaps between GTIs
    return _sorted_times(rng, n, grid, weight, gti)


def _model_times(rng: np.random.Generator, n: int, gti: np.ndarray, model: LightcurveModel
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted times distributed as ``f(t)`` within the GTIs: the exact cumulative on a
    grid holding every GTI edge and model kink, inverted linearly between grid points."""
    if model.kind == "constant":
        return _uniform_times(rng, n, gti)
    points = [np.linspace(a, b, max(int(_GRID * (b - a) / (gti[:, 1] - gti[:, 0]).sum()), 2))
              for a, b in gti]
    kinks = [k for k in model.kinks() if any(a < k < b for a, b in gti)]
    grid = np.unique(np.concatenate(points + [np.asarray(kinks, dtype=np.float64)]))
    inside = np.zeros(len(grid) - 1, dtype=bool)
    for a, b in gti:
        inside |= (grid[:-1] >= a) & (grid[1:] <= b)
    weight = np.where(inside, np.diff(model.cumulative(grid)), 0.0)
    return _sorted_times(rng, n, grid, weight, gti)


def _truncated_normal(rng: np.random.Generator, n: int, sigma: float, limit: float) -> np.ndarray:
    from scipy.special import ndtr, ndtri

    if limit <= 0:
        return np.zeros(n)
    p = ndtr(limit / sigma)
    return sigma * ndtri(rng.uniform(1 - p, p, n))


def _expected_in_gti(model: LightcurveModel, gti: np.ndarray) -> float:
    return float(np.sum(model.cumulative(gti[:, 1]) - model.cumulative(gti[:, 0])))


def synthesize_events(layouts: Sequence[SpectrumLayout], planes: Sequence[Plane], *,
                      gti: Sequence[Sequence[float]], seed: int | np.random.Generator,
                      source_rate: float, model: LightcurveModel = LightcurveModel(),
                      background_rate: float = 1e-6,
                      airglow: Sequence[AirglowLine] = AIRGLOW_LINES,
                      flagged_rate: float = 0.0, flag_bit: int = 0,
                      hot_pixels: Sequence[tuple[int, float, float]] = (),
                      hot_pixel_rate: float = 0.0,
                      time_dtype: type = np.float64) -> SyntheticEvents:
    """Draw the events of one exposure.

    Parameters
    ----------
    layouts, planes
        The spectra and the detector planes (see the classes).
    gti : sequence of (start, stop)
        Good-time intervals (s); no event falls outside them.
    seed : int or Generator
        For :func:`numpy.random.default_rng`.
    source_rate : float
        Quiescent source count rate summed over all layouts (counts/s); split among
        them in proportion to their ``Σ flux·sensitivity``.
    model : LightcurveModel
    background_rate : float
        Uniform background (counts/s/pixel) over every plane.
    airglow : sequence of AirglowLine
        Lines inside a layout's wavelength range are added to that layout.
    flagged_rate, flag_bit : float, int
        Extra events (counts/s per layout) carrying DQ ``flag_bit``.
    hot_pixels, hot_pixel_rate : sequence of (segment, x, y), float
        Pixels (centres; a pixel spans ±0.5) emitting ``hot_pixel_rate`` counts/s each,
        also category "flagged" with DQ ``flag_bit`` (for formats without a DQ column,
        where the flag comes from a bad-pixel table).
    time_dtype : numpy dtype
        The file's TIME type; times are cast and kept inside their GTI.

    Returns
    -------
    SyntheticEvents
        ``expected`` holds the expected count of each category.
    """
    rng = np.random.default_rng(seed)
    gti = _gti_array(gti)
    if source_rate < 0 or background_rate < 0 or flagged_rate < 0:
        raise ValueError("rates must be >= 0")
    good_time = float((gti[:, 1] - gti[:, 0]).sum())
    net_totals = np.array([layout.net_rate.sum() for layout in layouts])
    if source_rate > 0 and not (net_totals.sum() > 0):
        raise ValueError("layouts have no flux × sensitivity to draw source events from")
    shares = net_totals / net_totals.sum() if net_totals.sum() > 0 else net_totals
    parts: list[tuple] = []
    expected = {"source": 0.0, "background": 0.0, "airglow": 0.0, "flagged": 0.0}
    model_integral = _expected_in_gti(model, gti)

    for k, layout in enumerate(layouts):
        mean = source_rate * shares[k] * model_integral
        expected["source"] += mean
        n = int(rng.poisson(mean))
        t, which = _model_times(rng, n, gti, model)
        # elements: multinomial counts in random order (independent of the sorted times)
        if n:
            per_element = rng.multinomial(n, layout.net_rate / layout.net_rate.sum())
            element = rng.permutation(np.repeat(np.arange(len(per_element)), per_element))
        else:
            element = np.zeros(0, dtype=np.int64)
        x = _element_x(layout.pixel, element, rng)
        offset = _truncated_normal(rng, n, layout.profile_sigma,
                                   layout.source.height / 2 - layout.margin)
        y = layout.source.center + layout.source.slope * x + offset
        parts.append((t, which, x, y, layout.segment, CATEGORIES["source"], k, 0))

        for line in airglow:
            lo, hi = np.nanmin(layout.wavelength), np.nanmax(layout.wavelength)
            if not (lo + 3 * line.sigma <= line.wavelength <= hi - 3 * line.sigma):
                continue
            mean = line.rate * good_time
            expected["airglow"] += mean
            n = int(rng.poisson(mean))
            t, which = _uniform_times(rng, n, gti)
            wave = rng.normal(line.wavelength, line.sigma, n)
            order = np.argsort(layout.wavelength)
            x = np.interp(wave, layout.wavelength[order], layout.pixel[order])
            bottom, top = layout.rows()
            y = rng.uniform(bottom, top, n) + layout.source.slope * x
            parts.append((t, which, x, y, layout.segment, CATEGORIES["airglow"], k, 0))

        if flagged_rate > 0:
            mean = flagged_rate * good_time
            expected["flagged"] += mean
            n = int(rng.poisson(mean))
            t, which = _uniform_times(rng, n, gti)
            x = rng.uniform(layout.pixel.min() - 0.5, layout.pixel.max() + 0.5, n)
            bottom, top = layout.rows()
            y = rng.uniform(bottom, top, n) + layout.source.slope * x
            parts.append((t, which, x, y, layout.segment, CATEGORIES["flagged"], k, flag_bit))

    if len(hot_pixels) and hot_pixel_rate > 0:
        hot = np.asarray(hot_pixels, dtype=np.float64).reshape(-1, 3)
        mean = hot_pixel_rate * good_time * len(hot)
        expected["flagged"] += mean
        n = int(rng.poisson(mean))
        t, which = _uniform_times(rng, n, gti)
        pick = rng.integers(0, len(hot), n)
        x = hot[pick, 1] + rng.uniform(-0.5, 0.5, n)
        y = hot[pick, 2] + rng.uniform(-0.5, 0.5, n)
        for seg in np.unique(hot[:, 0]).astype(int):
            this = hot[pick, 0] == seg
            parts.append((t[this], which[this], x[this], y[this], seg, CATEGORIES["flagged"],
                          -1, flag_bit))

    for plane in planes:
        mean = background_rate * plane.area * good_time
        expected["background"] += mean
        n = int(rng.poisson(mean))
        t, which = _uniform_times(rng, n, gti)
        x = rng.uniform(*plane.x_range, n)
        y = rng.uniform(*plane.y_range, n)
        parts.append((t, which, x, y, plane.segment, CATEGORIES["background"], -1, 0))

    time = np.concatenate([p[0] for p in parts])
    which = np.concatenate([p[1] for p in parts])
    sizes = [len(p[0]) for p in parts]
    time = _cast_inside(time, which, gti, time_dtype)
    segment = np.repeat([p[4] for p in parts], sizes).astype(np.int8)
    # Segment by segment, each in time order: the order a reader gets by concatenating
    # the per-segment files (each written in time order), as the COS corrtag reader does.
    order = np.lexsort((time, segment)) if len(np.unique(segment)) > 1 else \
        np.argsort(time, kind="stable")
    return SyntheticEvents(
        time=time[order],
        x=np.concatenate([p[2] for p in parts])[order],
        y=np.concatenate([p[3] for p in parts])[order],
        segment=segment[order],
        category=np.repeat([p[5] for p in parts], sizes).astype(np.int8)[order],
        layout=np.repeat([p[6] for p in parts], sizes).astype(np.int16)[order],
        dq=np.repeat([p[7] for p in parts], sizes).astype(np.int32)[order],
        expected=expected)


def _element_x(pixel: np.ndarray, element: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A position uniform within element ``element``'s pixel (half-way to its neighbours)."""
    edges = np.concatenate([[pixel[0] - 0.5 * (pixel[1] - pixel[0])],
                            0.5 * (pixel[1:] + pixel[:-1]),
                            [pixel[-1] + 0.5 * (pixel[-1] - pixel[-2])]])
    lo, hi = edges[element], edges[element + 1]
    return lo + (hi - lo) * rng.uniform(0.0, 1.0, len(element))


def _cast_inside(time: np.ndarray, which: np.ndarray, gti: np.ndarray, dtype: type) -> np.ndarray:
    """Cast to the file's dtype; a value rounded past its GTI edge is put back on it."""
    cast = time.astype(dtype)
    start = gti[which, 0].astype(dtype)
    stop = gti[which, 1].astype(dtype)
    cast = np.where(cast < start, start, cast)
    cast = np.where(cast > stop, stop, cast)
    return cast.astype(np.float64)


def simulate_timetag(detector: str, out_dir: str | os.PathLike, **kwargs: Any):
    """Simulate TIME-TAG files for a registered detector (its plugin's simulator with
    ``kind="timetag"``); returns its truth (one :class:`TimeTagTruth` per exposure)."""
    from . import simulate_detector

    return simulate_detector(detector, out_dir, kind="timetag", **kwargs)


#: What :func:`damage_event_file` can do to an event file, with what the readers and the
#: ingest checks then say (a fragment of their message).
DAMAGES: Mapping[str, str] = {
    "zero": "zero events",                  # EVENTS table with no rows
    "no_events_ext": "no EVENTS extension",  # the EVENTS extension removed
    "non_monotonic": "not monotonic",        # two events out of time order
    "single_time": "single time",            # every event at one time
    "bad_expflag": "EXPFLAG",                # EXPFLAG = INTERRUPTED
    "short_exptime": "EXPTIME",              # EXPTIME = 0.5 s
}


def damage_event_file(path: str | os.PathLike, damage: str) -> None:
    """Rewrite a simulated event file (COS corrtag/rawtag, STIS tag) with one of the
    faults of :data:`DAMAGES`, in place, for the bad-input tests."""
    if damage not in DAMAGES:
        raise ValueError(f"unknown damage {damage!r}; one of {', '.join(DAMAGES)}")
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    names = [h.name for h in hdus]
    k = names.index("EVENTS")
    events = hdus[k]
    if damage == "zero":
        hdus[k] = fits.BinTableHDU(events.data[:0], header=events.header, name="EVENTS")
    elif damage == "no_events_ext":
        del hdus[k]
    elif damage == "non_monotonic":
        time = events.data["TIME"]
        time[[3, 4]] = time[[4, 3]] + np.array([1.0, 0.0], dtype=time.dtype)
    elif damage == "single_time":
        events.data["TIME"][:] = 3.0
    elif damage == "bad_expflag":
        events.header["EXPFLAG"] = "INTERRUPTED"
    else:
        events.header["EXPTIME"] = 0.5
    fits.HDUList(hdus).writeto(path, overwrite=True)


def model_from_options(options: Mapping[str, Any]) -> LightcurveModel:
    """A :class:`LightcurveModel` from flat keyword arguments (``model="flare"``,
    ``flare_time=...``, ``decay=...``) as the CLI passes them."""
    aliases = {"flare_time": "time", "eclipse_start": "start", "eclipse_duration": "duration",
               "eclipse_depth": "depth", "flare_amplitude": "amplitude"}
    params = {}
    for key, value in options.items():
        name = aliases.get(key, key)
        if name in ("period", "amplitude", "time", "decay", "start", "duration", "depth"):
            params[name] = float(value)
    return LightcurveModel(kind=str(options.get("model", "constant")), **params)
