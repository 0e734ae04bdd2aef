"""Time bins of a lightcurve: their edges and the good time in each.

Arrays in, arrays out (no FITS).  The events are summed into these bins by the compiled
loop of :mod:`hstcal_core.algorithms._timebin_kernel`.

Anchor: the lightcurve package (hstlc, ``lightcurve.cos.extract``) bins
``TIME`` with ``numpy.histogram`` from 0 to EXPTIME in ``step`` seconds and drops the
last partial bin; here the partial last bin is kept with its true exposure, and the
exposure of every bin is its overlap with the good-time intervals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_edges", "gti_exposure"]


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
