"""Compiled (numba) event loop of the lightcurve: one pass over the events.

Per event: DQ cut, time bin, source/background band of the first extraction that
claims it (source bands first), wavelength (the event's own, or the extraction's
dispersion solution at its x), wavelength and airglow cuts, good-time test,
sensitivity at that wavelength, then nine weighted sums per bin.  The events are cut
into one chunk per thread; each chunk sums into its own rows, added up at the end.
The events may come in any order (a reader's file order).

What keeps the loop lean, each exact (the sums do not change):

* a bin that lies wholly inside one good-time interval, with a margin far above the
  rounding of ``t / step``, takes no interval search;
* airglow windows outside the wavelength range are dropped;
* events cut by wavelength, airglow or good time are summed into a spare bin that is
  dropped, instead of leaving the loop early (see the comment in the loop);
* lookups into the x1d tables (``numpy.interp`` semantics, NaN outside) start from a
  linear guess (a precomputed reciprocal span: no division) and walk to the bracketing
  pair ``xs[i] <= v < xs[i+1]`` (the last pair at the top end) — the same pair whatever
  the guess, so a near-linear dispersion solution costs O(1) per event instead of a
  binary search.

The bin stays ``int(t / step)``: a product with the reciprocal step floors differently
when the quotient is within rounding of an integer, and the division is not what the
loop waits on (benchmarks/README.md, lightcurve section).
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
def _interp(v, xs, ys, lo, hi, guess_scale):
    """``numpy.interp(v, xs[lo:hi], ys[lo:hi], left=nan, right=nan)`` for ascending xs;
    ``guess_scale`` is ``(hi - lo - 1) / (xs[hi-1] - xs[lo])`` (0 when the span is 0)."""
    if hi - lo < 2 or not (v >= xs[lo]) or not (v <= xs[hi - 1]):
        return np.nan
    i = lo + int((v - xs[lo]) * guess_scale)
    if i > hi - 2:
        i = hi - 2
    while i > lo and xs[i] > v:
        i -= 1
    while i < hi - 2 and xs[i + 1] <= v:
        i += 1
    x0 = xs[i]
    x1 = xs[i + 1]
    if x1 == x0:
        return ys[i]
    return ys[i] + (ys[i + 1] - ys[i]) * ((v - x0) / (x1 - x0))


@nb.njit(**_JIT)
def _guess_scales(xs, off):
    """``guess_scale`` of :func:`_interp` for each table ``xs[off[k]:off[k+1]]``."""
    out = np.zeros(off.shape[0] - 1)
    for k in range(out.shape[0]):
        lo = off[k]
        hi = off[k + 1]
        if hi - lo >= 2 and xs[hi - 1] > xs[lo]:
            out[k] = (hi - lo - 1) / (xs[hi - 1] - xs[lo])
    return out


@nb.njit(**_JIT)
def _bins_inside_one_gti(gti, step, n_bins, stop):
    """True for each bin whose every event time lies inside one GTI (start ≤ t ≤ stop).

    An event is in bin ``b`` when ``int(t / step) == b`` (the last bin up to ``stop``),
    so its time is within rounding of ``[b·step, (b+1)·step)``; the margin, 10⁻⁹ of the
    span, is far above that rounding (~10⁻¹⁶ of the span).  Only the exact ends — 0 and
    ``stop``, tested per event — need no margin."""
    margin = 1e-9 * max(stop, step)
    inside = np.zeros(n_bins, dtype=np.bool_)
    for b in range(n_bins):
        lo = 0.0 if b == 0 else b * step - margin
        hi = stop if b == n_bins - 1 else (b + 1) * step + margin
        for g in range(gti.shape[0]):
            if gti[g, 0] <= lo and hi <= gti[g, 1]:
                inside[b] = True
                break
    return inside



@nb.njit(parallel=True, **_JIT)
def accumulate(time, x, y, wave, eps, dq, seg, sdqflags, step, n_bins, stop,
               gti, ext_seg, src_band, bkg_ext, bkg_band, scale,
               pix_x, pix_wave, pix_off, sens_wave, sens_val, sens_off,
               wave_min, wave_max, airglow, n_threads):
    """Sum the events into ``(N_SUMS, n_bins)`` and count them.

    Parameters
    ----------
    time, x, y, wave, eps, dq, seg : arrays over events, in any order (``wave`` NaN:
        unknown)
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
    partial = np.zeros((n_chunks, N_SUMS, n_bins + 1))  # + the spare bin of cut events
    counters = np.zeros((n_chunks, _N_COUNTERS), dtype=np.int64)
    n_ext = ext_seg.shape[0]
    n_bkg = bkg_ext.shape[0]
    n_gti = gti.shape[0]
    whole_bin = _bins_inside_one_gti(gti, step, n_bins, stop)
    src_centre = src_band[:, 0].copy()
    src_slope = src_band[:, 2].copy()
    src_half = 0.5 * src_band[:, 1]
    bkg_centre = bkg_band[:, 0].copy()
    bkg_slope = bkg_band[:, 2].copy()
    bkg_half = 0.5 * bkg_band[:, 1]
    bkg_seg = np.empty(n_bkg, dtype=np.int64)
    for j in range(n_bkg):
        bkg_seg[j] = ext_seg[bkg_ext[j]]
    pix_guess = _guess_scales(pix_x, pix_off)
    sens_guess = _guess_scales(sens_wave, sens_off)
    # Windows that miss [wave_min, wave_max] cannot mask an event that passed it.
    keep = (airglow[:, 1] >= wave_min) & (airglow[:, 0] <= wave_max)
    glow_lo = airglow[:, 0][keep]
    glow_hi = airglow[:, 1][keep]
    n_glow = glow_lo.shape[0]
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
            se = seg[e]
            xe = np.float64(x[e])
            ye = np.float64(y[e])
            k = -1
            source = False
            for j in range(n_ext):
                if ext_seg[j] != se:
                    continue
                off = ye - (src_centre[j] + src_slope[j] * xe)
                if off >= -src_half[j] and off < src_half[j]:
                    k = j
                    source = True
                    break
            if k < 0:
                for j in range(n_bkg):
                    if bkg_seg[j] != se:
                        continue
                    off = ye - (bkg_centre[j] + bkg_slope[j] * xe)
                    if off >= -bkg_half[j] and off < bkg_half[j]:
                        k = bkg_ext[j]
                        break
            if k < 0:
                continue
            w = wave[e]
            if not np.isfinite(w):
                w = _interp(xe, pix_x, pix_wave, pix_off[k], pix_off[k + 1], pix_guess[k])
            # Wavelength, airglow and GTI cuts send the event to the spare bin (n_bins):
            # they fall on random events, and a branch the CPU cannot predict costs
            # more than the lookup below.
            good = (w >= wave_min) & (w <= wave_max)
            for g in range(n_glow):
                good &= ~((w >= glow_lo[g]) & (w <= glow_hi[g]))
            if not whole_bin[b]:
                inside = False
                for g in range(n_gti):
                    if t >= gti[g, 0] and t <= gti[g, 1]:
                        inside = True
                        break
                if good and not inside:
                    count[2] += 1
                good &= inside
            s = _interp(w, sens_wave, sens_val, sens_off[k], sens_off[k + 1], sens_guess[k])
            ep = np.float64(eps[e])
            inv = ep / s if np.isfinite(s) and s > 0 else 0.0
            row = b if good else n_bins
            if source:
                count[0] += np.int64(good)
                sums[0, row] += 1.0
                sums[1, row] += ep
                sums[2, row] += ep * ep
                sums[5, row] += inv
                sums[6, row] += inv * inv
            else:
                count[1] += np.int64(good)
                sc = scale[k]
                sums[3, row] += sc * ep
                sums[4, row] += (sc * ep) * (sc * ep)
                sums[7, row] += sc * inv
                sums[8, row] += (sc * inv) * (sc * inv)
    return np.ascontiguousarray(partial.sum(axis=0)[:, :n_bins]), counters.sum(axis=0)
