"""Variability of a lightcurve: Lomb–Scargle periodogram and summary statistics.

Anchor: hstlc's ``stats`` table (lightcurve_pipeline ``database/``): Poisson factor
(std / √mean of the counts per bin: ≈ 1 for a constant Poisson source, larger when
the source varies), Pearson r and p of the lightcurve against time (a trend), and a
Lomb–Scargle periodogram (astropy ``LombScargle``; VanderPlas 2018, ApJS 236, 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.timeseries import LombScargle
from scipy import stats

from .lightcurve import BIN_NO_GTI, BIN_PARTIAL, Lightcurve

__all__ = ["Variability", "Periodogram", "variability", "periodogram"]

_MAX_FREQUENCIES = 20_000


@dataclass(frozen=True)
class Periodogram:
    """Lomb–Scargle power of the net count rate at each frequency (Hz)."""

    frequency: np.ndarray
    power: np.ndarray
    peak_frequency: float
    peak_power: float
    false_alarm_probability: float


@dataclass(frozen=True)
class Variability:
    """Summary statistics of one lightcurve (full, good-time bins only)."""

    n_bins: int
    total_counts: float
    mean_counts: float
    std_counts: float
    poisson_factor: float
    mean_flux: float
    std_flux: float
    pearson_r: float
    pearson_p: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _full_bins(lc: Lightcurve) -> np.ndarray:
    c = lc.columns
    return ((c["dq"] & (BIN_NO_GTI | BIN_PARTIAL)) == 0) & np.isfinite(c["net"])


def variability(lc: Lightcurve) -> Variability:
    """Poisson factor, mean/std of counts and flux, and Pearson r/p of flux vs time."""
    c = lc.columns
    full = _full_bins(lc)
    counts = c["counts"][full]
    flux = c["flux"][full]
    n = int(full.sum())
    mean = float(counts.mean()) if n else float("nan")
    std = float(counts.std(ddof=1)) if n > 1 else float("nan")
    poisson = std / np.sqrt(mean) if n > 1 and mean > 0 else float("nan")
    if n > 2 and np.ptp(flux) > 0:
        r, p = stats.pearsonr(c["mjd"][full], flux)
    else:
        r, p = float("nan"), float("nan")
    return Variability(n_bins=n, total_counts=float(c["counts"].sum()), mean_counts=mean,
                       std_counts=std, poisson_factor=float(poisson),
                       mean_flux=float(flux.mean()) if n else float("nan"),
                       std_flux=float(flux.std(ddof=1)) if n > 1 else float("nan"),
                       pearson_r=float(r), pearson_p=float(p))


def periodogram(lc: Lightcurve) -> Periodogram | None:
    """Lomb–Scargle periodogram of the net rate over the good-time bins.

    Frequencies from 1/span to the Nyquist frequency of the bin width, at most
    20,000 of them; None when fewer than 5 usable bins or no variation.
    """
    c = lc.columns
    good = (c["exposure"] > 0) & np.isfinite(c["net"]) & (c["error"] > 0)
    if good.sum() < 5 or np.ptp(c["net"][good]) == 0:
        return None
    seconds = (c["mjd"][good] - c["mjd"][good][0]) * 86400.0
    span = seconds[-1] - seconds[0]
    if span <= 0:
        return None
    step = float(np.median(c["bin_width"][good]))
    f_min, f_max = 1.0 / span, 0.5 / step
    if f_max <= f_min:
        return None
    n_freq = int(min(_MAX_FREQUENCIES, max(10, 5 * span * (f_max - f_min))))
    frequency = np.linspace(f_min, f_max, n_freq)
    model = LombScargle(seconds, c["net"][good], c["error"][good])
    power = model.power(frequency)
    k = int(np.argmax(power))
    fap = float(model.false_alarm_probability(power[k], minimum_frequency=f_min,
                                              maximum_frequency=f_max))
    return Periodogram(frequency=frequency, power=power, peak_frequency=float(frequency[k]),
                       peak_power=float(power[k]), false_alarm_probability=fap)
