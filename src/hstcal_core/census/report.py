"""Plots of a census store: rate against time, rate over the Earth, CR property histograms.

The numbers behind each plot come from plain functions (:func:`rate_map`,
:func:`cr_histograms`) that stream the store block by block, so a report over the
whole mission needs memory for one block of CRs, not the table.  Plotting uses
matplotlib's object API (``Figure``, no pyplot, no display) and every file is
written to a temporary name and renamed into place.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fitsio import atomic_path
from .store import iter_crs, iter_orbit, read_exposures, summary

__all__ = [
    "HISTOGRAM_EDGES",
    "Histogram",
    "RateMap",
    "ReportResult",
    "cr_histograms",
    "make_report",
    "rate_map",
]

log = logging.getLogger(__name__)

#: Bin edges of the CR property histograms (fixed, so the store is read in one pass).
#: Sizes are whole pixels, so their log-spaced edges sit on half-integers.
HISTOGRAM_EDGES: dict[str, np.ndarray] = {
    "size_px": np.unique(np.round(np.logspace(0, 6, 61))) - 0.5,
    "energy_e": np.logspace(0, 8, 81),
    "symmetry": np.linspace(0.0, 1.0, 51),
}
_LABELS = {"size_px": "size (pixels)", "energy_e": "energy (e⁻)",
           "symmetry": "symmetry (0 = round)"}
_LOG_X = {"size_px": True, "energy_e": True, "symmetry": False}


@dataclass
class RateMap:
    """Mean CR rate of the exposures whose orbit samples fall in each lat/lon bin.

    Each one-minute orbit sample carries its exposure's rate, so a bin's mean is
    time-weighted; ``mean_rate[i, j]`` covers ``lat_edges[i:i+2]`` × ``lon_edges[j:j+2]``
    and is NaN where HST never was.
    """

    detector: str | None
    lat_edges: np.ndarray
    lon_edges: np.ndarray
    mean_rate: np.ndarray
    samples: np.ndarray

    def peak(self) -> tuple[float, float]:
        """``(latitude, longitude)`` of the centre of the highest-rate bin."""
        i, j = np.unravel_index(np.nanargmax(self.mean_rate), self.mean_rate.shape)
        return (float(self.lat_edges[i:i + 2].mean()), float(self.lon_edges[j:j + 2].mean()))


@dataclass
class Histogram:
    """Counts of one CR property in :data:`HISTOGRAM_EDGES` bins, plus what fell outside."""

    name: str
    edges: np.ndarray
    counts: np.ndarray
    below: int = 0
    above: int = 0


@dataclass
class ReportResult:
    """The files a report wrote."""

    index: Path
    images: list[Path] = field(default_factory=list)


def rate_map(path: str | Path, detector: str | None = None, *, lat_step: float = 4.0,
             lon_step: float = 8.0) -> RateMap:
    """Bin the exposures' rates over the Earth by their orbit samples.

    Parameters
    ----------
    path : str or Path
        The census store.
    detector : str, optional
        One detector (rates of different detectors are not comparable); all if None.
    lat_step, lon_step : float
        Bin sizes in degrees; longitudes are wrapped to [-180, 180).
    """
    if lat_step <= 0 or lon_step <= 0:
        raise ValueError(f"lat_step and lon_step must be positive, got {lat_step}, {lon_step}")
    lat_edges = np.arange(-90.0, 90.0 + lat_step / 2, lat_step)
    lon_edges = np.arange(-180.0, 180.0 + lon_step / 2, lon_step)
    exposures = read_exposures(path, detector)
    ids = np.asarray(exposures["exposure_id"])
    rates = np.asarray(exposures["rate"], np.float64)
    total = np.zeros((len(lat_edges) - 1, len(lon_edges) - 1))
    samples = np.zeros_like(total)
    for block in iter_orbit(path, detector):
        rate = rates[np.searchsorted(ids, block["exposure_id"])]
        lon = (block["longitude"] + 180.0) % 360.0 - 180.0
        good = np.isfinite(rate) & np.isfinite(block["latitude"]) & np.isfinite(lon)
        sample_args = (block["latitude"][good], lon[good])
        total += np.histogram2d(*sample_args, bins=(lat_edges, lon_edges),
                                weights=rate[good])[0]
        samples += np.histogram2d(*sample_args, bins=(lat_edges, lon_edges))[0]
    mean = np.full_like(total, np.nan)
    np.divide(total, samples, out=mean, where=samples > 0)
    return RateMap(detector, lat_edges, lon_edges, mean, samples)


def cr_histograms(path: str | Path, detector: str | None = None,
                  names: Sequence[str] = tuple(HISTOGRAM_EDGES)) -> dict[str, Histogram]:
    """Histograms of CR properties (size, energy, symmetry) streamed from the store."""
    out = {n: Histogram(n, HISTOGRAM_EDGES[n], np.zeros(len(HISTOGRAM_EDGES[n]) - 1, np.int64))
           for n in names}
    for block in iter_crs(path, detector, columns=list(names)):
        for name, hist in out.items():
            values = np.asarray(block[name], np.float64)
            hist.counts += np.histogram(values, hist.edges)[0]
            hist.below += int(np.count_nonzero(values < hist.edges[0]))
            hist.above += int(np.count_nonzero(values > hist.edges[-1]))
    return out


def _decimal_year(mjd: np.ndarray) -> np.ndarray:
    # Julian years from J2000 (MJD 51544.5): close enough for a plot axis.
    return 2000.0 + (np.asarray(mjd, np.float64) - 51544.5) / 365.25


def _monthly_median(mjd: np.ndarray, rate: np.ndarray, days: float = 30.0,
                    min_count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Median rate per ``days``-long bin holding at least ``min_count`` exposures."""
    if not len(mjd):
        return mjd, rate
    bins = np.floor((mjd - mjd.min()) / days).astype(np.int64)
    centres, medians = [], []
    for b in np.unique(bins):
        sel = bins == b
        if np.count_nonzero(sel) >= min_count:
            centres.append(mjd[sel].mean())
            medians.append(np.median(rate[sel]))
    return np.asarray(centres), np.asarray(medians)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _plot_rate_vs_time(path: Path, detectors: list[str], out: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    exposures = read_exposures(path)
    for name in detectors:
        sel = exposures[exposures["detector"] == name]
        points, = ax.plot(_decimal_year(sel["start_mjd"]), np.asarray(sel["rate"]), ".", ms=3,
                          alpha=0.5, label=f"{name} ({len(sel)})")
        mjd, median = _monthly_median(np.asarray(sel["start_mjd"]), np.asarray(sel["rate"]))
        if len(mjd) > 1:  # the trend under the SAA outliers
            ax.plot(_decimal_year(mjd), median, "-", color=points.get_color(), lw=1.5)
    if not detectors:
        _no_data(ax)
    else:
        ax.legend(loc="best", fontsize="small", markerscale=3)
    ax.set_xlabel("year")
    ax.set_ylabel("CR rate (CR s⁻¹ cm⁻²)")
    ax.set_title("Cosmic-ray incident rate against time (solar cycle); lines: 30-day medians")
    ax.grid(alpha=0.3)
    return _save(fig, out)


def _plot_rate_maps(maps: list[RateMap], out: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2 * max(1, len(maps)) + 0.6), layout="constrained")
    axes = fig.subplots(max(1, len(maps)), 1, squeeze=False)[:, 0]
    for ax, m in zip(axes, maps):
        ax.set_title(f"{m.detector}: mean CR rate by HST position")
        ax.set_xlabel("longitude (deg)")
        ax.set_ylabel("latitude (deg)")
        finite = np.isfinite(m.mean_rate)
        if not finite.any():
            _no_data(ax, "no orbit samples")
            continue
        mesh = ax.pcolormesh(m.lon_edges, m.lat_edges, np.ma.masked_invalid(m.mean_rate),
                             cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label="CR s⁻¹ cm⁻²")
        ax.set_xlim(-180, 180)
        used = np.flatnonzero(finite.any(axis=1))  # HST stays within ±28.5°: zoom there
        ax.set_ylim(m.lat_edges[used[0]], m.lat_edges[used[-1] + 1])
    if not maps:
        _no_data(axes[0])
    return _save(fig, out)


def _plot_histograms(hists: dict[str, dict[str, Histogram]], out: Path) -> Path:
    from matplotlib.figure import Figure

    names = list(HISTOGRAM_EDGES)
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, len(names))
    for ax, name in zip(axes, names):
        drawn = False
        for detector, per in hists.items():
            h = per[name]
            total = h.counts.sum()
            if total == 0:
                continue
            ax.stairs(h.counts / total, h.edges, label=detector)
            drawn = True
        if _LOG_X[name]:
            ax.set_xscale("log")
        if drawn:
            ax.set_yscale("log")
            ax.legend(fontsize="small")
        else:
            _no_data(ax)
        ax.set_xlabel(_LABELS[name])
        ax.set_ylabel("fraction of CRs")
    fig.suptitle("Cosmic-ray properties per detector")
    return _save(fig, out)


def make_report(path: str | Path, out_dir: str | Path, *, lat_step: float = 4.0,
                lon_step: float = 8.0) -> ReportResult:
    """Write the census plots and an ``index.html`` showing them into ``out_dir``.

    Parameters
    ----------
    path : str or Path
        The census store.
    out_dir : str or Path
        Created if needed; existing report files are replaced atomically.
    lat_step, lon_step : float
        Bin sizes of the rate maps in degrees.
    """
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = summary(path)
    detectors = sorted(info["detectors"])
    images = [_plot_rate_vs_time(path, detectors, out_dir / "rate_vs_time.png")]
    maps = [rate_map(path, d, lat_step=lat_step, lon_step=lon_step) for d in detectors]
    images.append(_plot_rate_maps(maps, out_dir / "rate_map.png"))
    hists = {d: cr_histograms(path, d) for d in detectors}
    images.append(_plot_histograms(hists, out_dir / "cr_histograms.png"))
    index = out_dir / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(_html(info, images), encoding="utf-8")
    log.info("census report of %s written to %s", path, out_dir)
    return ReportResult(index=index, images=images)


def _html(info: dict, images: list[Path]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{d['exposures']}</td><td>{d['crs']}</td>"
        f"<td>{esc(d['start'] or '')}</td><td>{esc(d['end'] or '')}</td>"
        f"<td>{d['median_rate']:.4g}</td></tr>"
        for name, d in sorted(info["detectors"].items()))
    captions = {"rate_vs_time.png": "Incident rate against time, per detector",
                "rate_map.png": "Mean rate by HST latitude/longitude (the South Atlantic "
                                "Anomaly stands out)",
                "cr_histograms.png": "Size, energy and symmetry of the cosmic rays"}
    figures = "".join(
        f'<figure><a href="{esc(p.name)}"><img src="{esc(p.name)}" alt="{esc(p.stem)}" '
        f'style="max-width:100%"></a><figcaption>{esc(captions.get(p.name, p.stem))}'
        "</figcaption></figure>\n" for p in images)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>Cosmic-ray census: {esc(Path(info['path']).name)}</title></head><body>\n"
        f"<h1>Cosmic-ray census</h1>\n<p>{esc(info['path'])} — schema "
        f"{esc(str(info.get('schema_version')))}, {info['exposures']} exposures, "
        f"{info['crs']} cosmic rays, {info['batches']} batches, "
        f"{esc(info['start'] or '?')} .. {esc(info['end'] or '?')}</p>\n"
        "<table border=\"1\"><tr><th>detector</th><th>exposures</th><th>CRs</th>"
        "<th>first</th><th>last</th><th>median rate (CR s⁻¹ cm⁻²)</th></tr>"
        f"{rows}</table>\n{figures}</body></html>\n")
