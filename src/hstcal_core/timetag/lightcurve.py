"""Lightcurve of one TIME-TAG exposure: event cuts, binning, background, flux.

Anchor: the lightcurve package (hstlc; Ely et al., ``lightcurve.cos``/``lightcurve.stis``)
with its known bugs fixed and tested:

* the partial last bin is kept with its true exposure (the anchor dropped it);
* bins outside the good-time intervals are flagged and have NaN rates, never a silent 0;
* background counts are scaled by source height / background height (the anchor's
  ``b_corr`` is the inverse — lightcurve issue #9);
* airglow windows are wider for G140L (lightcurve issue #5).

Flux: the x1d's FLUX of pixel *i* is its NET / sensitivity; the lightcurve's flux is the
mean of that over the spectral elements in the wavelength range, built from events:
``Σ ε/S(λ) / (exposure · N_elements)`` (source minus scaled background).  Its time
average therefore equals the x1d's mean FLUX over the same elements.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from ..algorithms._timebin_kernel import accumulate, interp_table
from ..algorithms.timebin import bin_edges, gti_exposure
from ..errors import InputError
from .events import EventList

__all__ = ["AIRGLOW", "AIRGLOW_G140L", "airglow_windows", "LightcurveSpec", "Lightcurve",
           "make_lightcurve", "concatenate", "BIN_NO_GTI", "BIN_PARTIAL", "wavelength_range"]

log = logging.getLogger(__name__)

# Geocoronal lines (COS IHB §7.4 "Airglow"; hstlc ``lightcurve.cos`` masks 1208–1225 Å
# Lyα and 1298–1312 Å O I 1302/1304/1306).
AIRGLOW: tuple[tuple[float, float], ...] = ((1208.0, 1225.0), (1298.0, 1312.0))
# G140L (~0.08 Å/px) spreads the aperture-filling lines and their wings over more Å
# (lightcurve issue #5: "G140L data has significantly wider airglow lines"); the real
# G140L x1d of ../shared/data (ldfd01vnq) shows Lyα wings over 1208–1223 Å, and these
# windows leave a margin on both sides.
AIRGLOW_G140L: tuple[tuple[float, float], ...] = ((1200.0, 1230.0), (1295.0, 1315.0))

# Bin quality bits of the DQ column.
BIN_NO_GTI = 1   # no good time in the bin: rates are NaN
BIN_PARTIAL = 2  # less than ``step`` of good time (a GTI edge, or the short last bin)


def airglow_windows(opt_elem: str | None) -> tuple[tuple[float, float], ...]:
    """The airglow windows masked for a grating (wider for G140L)."""
    return AIRGLOW_G140L if (opt_elem or "").strip().upper() == "G140L" else AIRGLOW


@dataclass(frozen=True)
class LightcurveSpec:
    """How to make a lightcurve.

    Attributes
    ----------
    step : float
        Bin width, seconds.
    wave_min, wave_max : float or None
        Wavelength range, Å (None: the extent of the exposure's extractions).
    airglow : tuple of (lo, hi) or None
        Windows excluded (None: :func:`airglow_windows` of the grating; ``()``: none).
    sdqflags : int or None
        DQ bits that reject an event (None: the exposure's SDQFLAGS).
    """

    step: float = 1.0
    wave_min: float | None = None
    wave_max: float | None = None
    airglow: tuple[tuple[float, float], ...] | None = None
    sdqflags: int | None = None


@dataclass
class Lightcurve:
    """Binned lightcurve of one exposure (or a composite of several).

    ``columns`` maps column name to array (one row per bin): time (s since the
    exposure's EXPSTART, bin start), mjd (bin centre, float64), bin_width, exposure
    (good time in the bin, s), counts (raw source counts), gross, background, net,
    error (count/s), flux, flux_error (erg s⁻¹ cm⁻² Å⁻¹), signal_to_noise, dq (bin
    quality bits), dataset (rootname).  ``meta`` holds what the header records.
    """

    columns: dict[str, np.ndarray]
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["time"])


def wavelength_range(events: EventList) -> tuple[float, float]:
    """Wavelength extent of the exposure's extractions where the x1d has sensitivity,
    to the outer edges of the end elements."""
    lows, highs = [], []
    for ext in events.extractions:
        wave, sens = ext.sensitivity_table()
        good = np.flatnonzero(np.isfinite(sens))
        if len(good):
            lows.append(float(wave[good[0]]))
            highs.append(float(wave[good[-1]]))
    if not lows:
        raise InputError(events.path, "no extraction has a valid sensitivity (x1d FLUX all 0)")
    return min(lows), max(highs)


def accumulate_events(events: EventList, step: float, edges: np.ndarray, sdqflags: int,
                      wave_min: float, wave_max: float,
                      airglow: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The per-bin sums of the compiled event loop (see
    :mod:`hstcal_core.algorithms._timebin_kernel` for their order).

    The event columns go to the kernel as they are: nothing is copied when they have the
    dtypes :class:`EventList` documents (every reader's output does); time and
    wavelength may be float32 or float64 (one compiled loop for each)."""
    exts = events.extractions
    if not exts:
        raise InputError(events.path, "no spectral extraction (source region) is defined")
    band = lambda r: (r.center, r.height, r.slope)  # noqa: E731
    bkg = [(k, band(r)) for k, e in enumerate(exts) for r in e.background]
    return accumulate(
        _float(events.time), np.asarray(events.x, dtype=np.float32),
        np.asarray(events.y, dtype=np.float32),
        _float(events.wavelength),
        np.asarray(events.epsilon, dtype=np.float32), np.asarray(events.dq, dtype=np.int32),
        np.asarray(events.segment, dtype=np.int8), int(sdqflags), float(step),
        len(edges) - 1, float(edges[-1]), np.ascontiguousarray(events.gti, dtype=np.float64),
        np.array([e.segment for e in exts], dtype=np.int64),
        np.array([band(e.source) for e in exts], dtype=np.float64).reshape(-1, 3),
        np.array([k for k, _ in bkg], dtype=np.int64),
        np.array([b for _, b in bkg], dtype=np.float64).reshape(-1, 3),
        np.array([e.background_scale for e in exts], dtype=np.float64),
        interp_table([e.dispersion_table() for e in exts]),
        interp_table([e.sensitivity_table() for e in exts]),
        float(wave_min), float(wave_max), np.array(airglow, dtype=np.float64).reshape(-1, 2),
        numba.get_num_threads())


def _float(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 or float64, whichever it is (else float64)."""
    values = np.asarray(values)
    return values if values.dtype in (np.float32, np.float64) and values.dtype.isnative \
        else values.astype(np.float64)


def make_lightcurve(events: EventList, spec: LightcurveSpec) -> Lightcurve:
    """Bin one exposure's events into a flux-calibrated lightcurve.

    Parameters
    ----------
    events : EventList
        From the detector's ``calibrate`` hook.
    spec : LightcurveSpec

    Returns
    -------
    Lightcurve
    """
    if len(events) == 0:
        raise InputError(events.path, "the event list is empty (no events)")
    lo_default, hi_default = wavelength_range(events)
    wave_min = lo_default if spec.wave_min is None else float(spec.wave_min)
    wave_max = hi_default if spec.wave_max is None else float(spec.wave_max)
    if not wave_max > wave_min:
        raise InputError(events.path, f"empty wavelength range [{wave_min}, {wave_max}] Å")
    airglow = (airglow_windows(str(events.header.get("OPT_ELEM", "")))
               if spec.airglow is None else tuple(spec.airglow))
    sdqflags = events.sdqflags if spec.sdqflags is None else int(spec.sdqflags)

    # Bins from 0 to the end of good time (EXPTIME when there are no gaps).
    stop = max(events.exptime, float(events.gti[:, 1].max()) if len(events.gti) else 0.0)
    if not stop > 0:
        raise InputError(events.path, "EXPTIME is 0 and there is no good time")
    edges = bin_edges(0.0, stop, spec.step)
    n_bins = len(edges) - 1
    width = np.diff(edges)
    exposure = gti_exposure(edges, events.gti)

    sums, counters = accumulate_events(events, spec.step, edges, sdqflags, wave_min,
                                       wave_max, airglow)
    (counts, gross_w, gross_w2, bkg_w, bkg_w2,
     flux_src, flux_src2, flux_bkg, flux_bkg2) = sums
    n_src, n_bkg, n_outside_gti, n_dq = (int(v) for v in counters)

    n_elements = sum(e.n_elements(wave_min, wave_max, airglow) for e in events.extractions)
    if n_elements == 0:
        raise InputError(events.path, f"no x1d element with a sensitivity in "
                                      f"[{wave_min:.1f}, {wave_max:.1f}] Å")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(exposure > 0, exposure, np.nan)
        gross = gross_w / t
        background = bkg_w / t
        net = gross - background
        error = np.sqrt(gross_w2 + bkg_w2) / t
        flux = (flux_src - flux_bkg) / (t * n_elements)
        flux_error = np.sqrt(flux_src2 + flux_bkg2) / (t * n_elements)
        snr = np.where(error > 0, net / error, 0.0)
        snr = np.where(np.isfinite(t), snr, np.nan)

    dq = np.zeros(n_bins, dtype=np.int16)
    dq[exposure <= 0] |= BIN_NO_GTI
    dq[(exposure > 0) & (exposure < spec.step * (1 - 1e-9))] |= BIN_PARTIAL
    mjd = events.expstart + (edges[:-1] + 0.5 * width) / 86400.0
    columns = {
        "time": edges[:-1].copy(), "mjd": mjd, "bin_width": width, "exposure": exposure,
        "counts": counts, "gross": gross, "background": background, "net": net,
        "error": error, "flux": flux, "flux_error": flux_error, "signal_to_noise": snr,
        "dq": dq, "dataset": np.full(n_bins, events.rootname),
    }
    meta = {
        "rootname": events.rootname, "wave_min": wave_min, "wave_max": wave_max,
        "step": float(spec.step), "airglow": airglow, "sdqflags": sdqflags,
        "n_elements": int(n_elements), "n_source_events": n_src,
        "n_background_events": n_bkg, "n_events": len(events), "n_rejected_dq": n_dq,
        "n_outside_gti": n_outside_gti, "notes": list(events.notes),
    }
    log.debug("%s: %d bins, %d source / %d background events", events.rootname, n_bins,
              meta["n_source_events"], meta["n_background_events"])
    return Lightcurve(columns=columns, meta=meta)


def concatenate(curves: Sequence[Lightcurve]) -> Lightcurve:
    """Join lightcurves in MJD order (a composite's table); meta of the first."""
    if not curves:
        raise ValueError("no lightcurves to concatenate")
    order = np.argsort([c.columns["mjd"][0] for c in curves], kind="stable")
    ordered = [curves[i] for i in order]
    columns = {name: np.concatenate([c.columns[name] for c in ordered])
               for name in ordered[0].columns}
    return Lightcurve(columns=columns, meta=dict(ordered[0].meta))
