"""Compiled (numba) event loop of the lightcurve: one pass over the events.

Per event: DQ cut, time bin, good-time test, source/background band of the first
extraction that claims it (source bands first), wavelength (the event's own, or the
extraction's dispersion solution at its x), wavelength and airglow cuts, sensitivity
at that wavelength, then nine weighted sums per bin.  The events are cut into one
chunk per thread; each chunk sums into its own rows, added up at the end.

Lookups into the x1d tables (``numpy.interp`` semantics, NaN outside) start from a
linear guess and walk to the bracketing pair, so a near-linear dispersion solution
costs O(1) per event instead of a binary search.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["N_SUMS", "accumulate"]

# Rows of the sums: counts, Σε, Σε², Σsε, Σ(sε)², Σε/S, Σ(ε/S)², Σsε/S, Σ(sε/S)²
# (s: the extraction's background scale, S: sensitivity).  Source rows 0–2 and 5–6,
# background rows 3–4 and 7–8.
N_SUMS = 9
_N_COUNTERS = 4  # source events, background events, outside GTI, DQ-rejected

_JIT = dict(cache=True, nogil=True)


@nb.njit(inline="always", **_JIT)
def _interp(v, xs, ys, lo, hi):
    """``numpy.interp(v, xs[lo:hi], ys[lo:hi], left=nan, right=nan)`` for ascending xs."""
    n = hi - lo
    if n < 2 or not (v >= xs[lo]) or not (v <= xs[hi - 1]):
        return np.nan
    span = xs[hi - 1] - xs[lo]
    i = lo + int((v - xs[lo]) / span * (n - 1)) if span > 0 else lo
    if i > hi - 2:
        i = hi - 2
    while i > lo and xs[i] > v:
        i -= 1
    while i < hi - 2 and xs[i + 1] < v:
        i += 1
    x0 = xs[i]
    x1 = xs[i + 1]
    if x1 == x0:
        return ys[i]
    return ys[i] + (ys[i + 1] - ys[i]) * ((v - x0) / (x1 - x0))


@nb.njit(parallel=True, **_JIT)
def accumulate(time, x, y, wave, eps, dq, seg, sdqflags, step, n_bins, stop,
               gti, ext_seg, src_band, bkg_ext, bkg_band, scale,
               pix_x, pix_wave, pix_off, sens_wave, sens_val, sens_off,
               wave_min, wave_max, airglow, n_threads):
    """Sum the events into ``(N_SUMS, n_bins)`` and count them.

    Parameters
    ----------
    time, x, y, wave, eps, dq, seg : arrays over events (``wave`` NaN: unknown)
    sdqflags : int
        DQ bits that reject an event.
    step, n_bins, stop : bin width (s), number of bins, end of the last bin
    gti : (n, 2) float64
    ext_seg : int array (K,), segment of each extraction
    src_band : (K, 3) float64, (centre, height, slope) of each source band
    bkg_ext, bkg_band : background bands, their extraction and (centre, height, slope)
    scale : (K,) background scale of each extraction
    pix_x, pix_wave, pix_off : concatenated dispersion tables, extraction k in
        ``pix_off[k]:pix_off[k+1]``
    sens_wave, sens_val, sens_off : concatenated sensitivity tables (ascending wave)
    wave_min, wave_max : wavelength range
    airglow : (m, 2) windows excluded
    n_threads : int
        Chunks summed in parallel (``numba.get_num_threads()``).

    Returns
    -------
    sums : (N_SUMS, n_bins) float64
    counters : (4,) int64
        Source events, background events, events outside the GTIs, DQ-rejected.
    """
    n = time.shape[0]
    n_chunks = max(1, min(n_threads, n // 65536 + 1))
    partial = np.zeros((n_chunks, N_SUMS, n_bins))
    counters = np.zeros((n_chunks, _N_COUNTERS), dtype=np.int64)
    n_ext = ext_seg.shape[0]
    n_bkg = bkg_ext.shape[0]
    n_gti = gti.shape[0]
    n_glow = airglow.shape[0]
    for c in nb.prange(n_chunks):
        sums = partial[c]
        count = counters[c]
        start = c * n // n_chunks
        end = (c + 1) * n // n_chunks
        for e in range(start, end):
            if dq[e] & sdqflags:
                count[3] += 1
                continue
            t = time[e]
            if not (t >= 0.0) or t > stop:
                continue
            b = int(t / step)
            if b >= n_bins:
                b = n_bins - 1
            # Band: the first extraction's source band, else the first background band.
            xe = x[e]
            ye = y[e]
            k = -1
            source = False
            for j in range(n_ext):
                if ext_seg[j] != seg[e]:
                    continue
                off = ye - (src_band[j, 0] + src_band[j, 2] * xe)
                if off >= -0.5 * src_band[j, 1] and off < 0.5 * src_band[j, 1]:
                    k = j
                    source = True
                    break
            if k < 0:
                for j in range(n_bkg):
                    kk = bkg_ext[j]
                    if ext_seg[kk] != seg[e]:
                        continue
                    off = ye - (bkg_band[j, 0] + bkg_band[j, 2] * xe)
                    if off >= -0.5 * bkg_band[j, 1] and off < 0.5 * bkg_band[j, 1]:
                        k = kk
                        break
            if k < 0:
                continue
            w = wave[e]
            if not np.isfinite(w):
                w = _interp(xe, pix_x, pix_wave, pix_off[k], pix_off[k + 1])
            if not (w >= wave_min and w <= wave_max):
                continue
            masked = False
            for g in range(n_glow):
                if w >= airglow[g, 0] and w <= airglow[g, 1]:
                    masked = True
                    break
            if masked:
                continue
            inside = False
            for g in range(n_gti):
                if t >= gti[g, 0] and t <= gti[g, 1]:
                    inside = True
                    break
            if not inside:
                count[2] += 1
                continue
            s = _interp(w, sens_wave, sens_val, sens_off[k], sens_off[k + 1])
            ep = np.float64(eps[e])
            inv = ep / s if np.isfinite(s) and s > 0 else 0.0
            if source:
                count[0] += 1
                sums[0, b] += 1.0
                sums[1, b] += ep
                sums[2, b] += ep * ep
                sums[5, b] += inv
                sums[6, b] += inv * inv
            else:
                count[1] += 1
                sc = scale[k]
                sums[3, b] += sc * ep
                sums[4, b] += (sc * ep) * (sc * ep)
                sums[7, b] += sc * inv
                sums[8, b] += (sc * inv) * (sc * inv)
    return partial.sum(axis=0), counters.sum(axis=0)
