"""Time binning of photon events: bin edges, GTI exposure per bin, weighted counts.

Arrays in, arrays out (no FITS).  Every sum is one ``numpy.bincount`` over the events,
so the cost is a few passes over the event arrays whatever the number of bins.

Anchor: the lightcurve package (hstlc, ``lightcurve.cos.extract``) bins
``TIME`` with ``numpy.histogram`` from 0 to EXPTIME in ``step`` seconds and drops the
last partial bin; here the partial last bin is kept with its true exposure, and the
exposure of every bin is its overlap with the good-time intervals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_edges", "gti_exposure", "bin_index", "in_gti"]


def bin_edges(start: float, stop: float, step: float) -> np.ndarray:
    """Edges ``start, start+step, ..., stop``; the last bin is shorter when ``step``
    does not divide the span (it is kept, not dropped)."""
    if not step > 0:
        raise ValueError(f"step must be > 0 s, got {step}")
    if not stop > start:
        raise ValueError(f"empty time span [{start}, {stop}]")
    n_full = int(np.floor((stop - start) / step * (1 + 1e-12)))
    edges = start + step * np.arange(n_full + 1, dtype=np.float64)
    if stop - edges[-1] > 1e-9 * step:
        edges = np.append(edges, stop)
    else:
        edges[-1] = stop
    return edges


def gti_exposure(edges: np.ndarray, gti: np.ndarray) -> np.ndarray:
    """Seconds of each bin covered by the good-time intervals ``gti`` (n, 2)."""
    lo, hi = edges[:-1], edges[1:]
    exposure = np.zeros(len(lo))
    for start, stop in np.asarray(gti, dtype=np.float64).reshape(-1, 2):
        exposure += np.clip(np.minimum(hi, stop) - np.maximum(lo, start), 0.0, None)
    return np.minimum(exposure, hi - lo)


def in_gti(time: np.ndarray, gti: np.ndarray) -> np.ndarray:
    """Boolean mask of events inside any good-time interval (start ≤ t ≤ stop)."""
    gti = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    if len(gti) == 0:
        return np.zeros(len(time), dtype=bool)
    order = np.argsort(gti[:, 0])
    starts, stops = gti[order, 0], gti[order, 1]
    k = np.searchsorted(starts, time, side="right") - 1
    valid = k >= 0
    kk = np.where(valid, k, 0)
    return valid & (time <= stops[kk])


def bin_index(time: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each event (−1 outside ``[edges[0], edges[-1]]``; the last edge belongs
    to the last bin).  Uniform bins are found arithmetically, not by search."""
    n_bins = len(edges) - 1
    step = edges[1] - edges[0]
    idx = np.floor((time - edges[0]) / step).astype(np.int64)
    np.minimum(idx, n_bins - 1, out=idx)  # the partial last bin and its closing edge
    idx[(time < edges[0]) | (time > edges[-1])] = -1
    return idx
