"""Compiled (numba) inner loops of :mod:`hstcal_core.algorithms.crreject`.

Each kernel runs over image rows in parallel and keeps the arithmetic of hstcal
``cs2/crrej_loop.c`` (float32, the same operation order) so results match the C
program.  Per pixel, the hits of all images are kept as bits of 64-bit words
(``words[k // 64]``, bit ``k % 64``): the neighbour rejection of ``crrej_loop``
becomes an OR of neighbouring words, and no per-image masks are materialised until
the last iteration.
"""

from __future__ import annotations

from functools import lru_cache

import numba as nb
import numpy as np

__all__ = ["sort_network", "mode_histograms", "first_pass", "next_pass",
           "last_pass", "image_constants", "noise_thresholds"]

_JIT = dict(cache=True, nogil=True)


@lru_cache(maxsize=32)
def sort_network(n: int) -> tuple[np.ndarray, int]:
    """Batcher odd–even merge-sort comparators for ``n`` keys, padded to a power of two.

    Returns ``(pairs, size)``: compare-exchange index pairs and the padded size.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), size


#: Sky histograms cover DN values [MODE_BASE, MODE_BASE + MODE_BINS): the whole range
#: crrej_sky.c can ask for unless the mean exceeds ~65k DN (then an exact fallback runs).
MODE_BASE = -1001
MODE_BINS = 132_000


@nb.njit(parallel=True, **_JIT)
def mode_histograms(stack, dq, hist, amin, mean):
    """One pass per image over its DQ==0 pixels: minimum (≤ 0), mean and a 1-DN
    histogram (C truncation) over the fixed window; crrej_sky.c then picks its range.
    ``stack``/``dq``: (n, ny, nx) arrays or tuples of n C-contiguous 2-D images."""
    n = len(stack)
    nbins = hist.shape[1]
    for k in nb.prange(n):
        img = stack[k].ravel()
        flags = dq[k].ravel()
        row = hist[k]
        low = np.float32(0.0)
        total = 0.0
        count = 0
        for i in range(img.size):
            if flags[i] == 0:
                v = img[i]
                total += v
                count += 1
                if v < low:
                    low = v
                h = int(v) - MODE_BASE
                if 0 <= h < nbins:
                    row[h] += 1
        amin[k] = low
        mean[k] = total / count if count > 0 else 0.0


@nb.njit(inline="always", **_JIT)
def _median_row(stack, y, sky, efac, pairs, rows, ave):
    """Median over images of row ``y`` of (stack − sky)/efac: a sorting network applied
    to whole row vectors (compare-exchange of rows), so it vectorises."""
    n, _, nx = stack.shape
    size = rows.shape[0]
    mid = n // 2
    for k in range(n):
        s = np.float32(sky[k])
        inv_e = np.float32(1.0 / efac[k])
        for x in range(nx):
            rows[k, x] = (stack[k, y, x] - s) * inv_e
    for k in range(n, size):
        for x in range(nx):
            rows[k, x] = np.inf
    for q in range(pairs.shape[0]):
        a = rows[pairs[q, 0]]
        b = rows[pairs[q, 1]]
        for x in range(nx):
            u = a[x]
            v = b[x]
            a[x] = min(u, v)
            b[x] = max(u, v)
    if n % 2:
        for x in range(nx):
            ave[y, x] = rows[mid, x]
    else:
        for x in range(nx):
            ave[y, x] = (rows[mid - 1, x] + rows[mid, x]) / np.float32(2.0)


@nb.njit(inline="always", **_JIT)
def _minimum_row(stack, y, sky, efac, rn2, gains, scale, ave, avevar):
    """Minimum over images of row ``y`` and the variance of the image supplying it (crrej_init.c)."""
    n, _, nx = stack.shape
    for k in range(n):
        s = np.float32(sky[k])
        e = np.float32(efac[k])
        e2 = np.float32(efac[k] * efac[k])
        r2 = np.float32(rn2[k])
        g = np.float32(gains[k])
        for x in range(nx):
            raw = stack[k, y, x]
            val = (raw - s) / e
            if k == 0 or val < ave[y, x]:
                raw0 = raw if raw > 0 else np.float32(0.0)
                sig0 = raw - s
                sig0 = sig0 if sig0 > 0 else np.float32(0.0)
                ave[y, x] = val
                avevar[y, x] = (r2 + raw0 / g + (np.float32(scale) * sig0) ** 2) / e2


@nb.njit(inline="always", **_JIT)
def _excluded_row(dq, y, badinpdq, excluded):
    n, _, nx = dq.shape
    for w in range(excluded.shape[0]):
        for x in range(nx):
            excluded[w, y, x] = 0
    if badinpdq == 0:
        return
    for k in range(n):
        bit = np.uint64(1) << np.uint64(k % 64)
        for x in range(nx):
            if (dq[k, y, x] & badinpdq) != 0:
                excluded[k // 64, y, x] |= bit


@nb.njit(inline="always", **_JIT)
def image_constants(k, sky, efac, rn2, gains, sig2):
    """Image ``k``'s float32 terms of the crrej_loop.c test: sky, efac, 1/efac,
    sig²/efac², read noise², 1/gain."""
    return (np.float32(sky[k]), np.float32(efac[k]), np.float32(1.0 / efac[k]),
            np.float32(sig2 / (efac[k] * efac[k])), np.float32(rn2[k]),
            np.float32(1.0 / gains[k]))


@nb.njit(inline="always", **_JIT)
def noise_thresholds(ave, s, e, r2, inv_g, sc, c, ps2):
    """crrej_loop.c's noise model at one pixel: the (rejection, neighbour-spill)
    thresholds of the squared deviation, for guess ``ave`` and the image's terms."""
    zero = np.float32(0.0)
    dum = ave * e + s
    base = r2 + max(dum, zero) * inv_g
    pixsky = sc * max(dum - s, zero)
    return (base + pixsky * pixsky) * c, ps2 * base * c


@nb.njit(inline="always", **_JIT)
def _flag_row(stack, y, ave, avevar, sky, efac, rn2, gains, sig2, scale, psig2, use_avevar,
              excluded, hits, spill_ok):
    """The rejection test of crrej_loop.c for row ``y`` of every image, as bits.

    ``hits``: deviation² > threshold and not excluded; ``spill_ok``: deviation² >
    crthresh²·(threshold without scalense), i.e. rejectable as a neighbour of a hit.
    The C divisions are multiplications by reciprocals here (branch-free, vectorised).
    """
    n, _, nx = stack.shape
    sg2 = np.float32(sig2)
    sc = np.float32(scale)
    ps2 = np.float32(psig2)
    for w in range(hits.shape[0]):
        for x in range(nx):
            hits[w, y, x] = 0
            spill_ok[w, y, x] = 0
    arow = ave[y]
    for k in range(n):
        w = k // 64
        shift = np.uint64(k % 64)
        s, e, inv_e, c, r2, inv_g = image_constants(k, sky, efac, rn2, gains, sig2)
        hrow = hits[w, y]
        srow = spill_ok[w, y]
        img = stack[k, y]
        if use_avevar:
            vrow = avevar[y]
            for x in range(nx):
                d = (img[x] - s) * inv_e - arow[x]
                d2 = d * d
                thresh = sg2 * vrow[x]
                hrow[x] |= np.uint64(d2 > thresh) << shift
                srow[x] |= np.uint64(d2 > ps2 * thresh) << shift
        else:
            for x in range(nx):
                d = (img[x] - s) * inv_e - arow[x]
                d2 = d * d
                thresh, spill = noise_thresholds(arow[x], s, e, r2, inv_g, sc, c, ps2)
                hrow[x] |= np.uint64(d2 > thresh) << shift
                srow[x] |= np.uint64(d2 > spill) << shift
    for w in range(hits.shape[0]):
        erow = excluded[w, y]
        hrow = hits[w, y]
        for x in range(nx):
            hrow[x] &= ~erow[x]


@nb.njit(inline="always", **_JIT)
def _accumulate_row(stack, y, hits, spill_ok, excluded, dys, dxs, square, sky, efac, rn2, gains, scale,
                    last, fillval, ave, masks, sumvar, efacsum, rejected_all):
    """CR mask of row ``y`` = hit | (hit within crradius & rejectable); new average of
    the unrejected images.  On the last iteration also the per-image masks, the variance
    sums (rn² + max(value,0)/g + (scalense·value)²) and where every image was rejected."""
    n, ny, nx = stack.shape
    nwords = hits.shape[0]
    cr = np.empty((nwords, nx), np.uint64)
    bad = np.empty((nwords, nx), np.uint64)
    total = np.zeros(nx, np.float32)
    used = np.zeros(nx, np.float32)
    var = np.zeros(nx, np.float32)
    if square >= 0:
        # a square neighbourhood (crradius 1.5 -> 3x3) is separable: OR the rows, then columns
        column = np.empty(nx, np.uint64)
        for w in range(nwords):
            for x in range(nx):
                column[x] = 0
            for yy in range(max(0, y - square), min(ny, y + square + 1)):
                for x in range(nx):
                    column[x] |= hits[w, yy, x]
            for x in range(nx):
                near = np.uint64(0)
                for xx in range(max(0, x - square), min(nx, x + square + 1)):
                    near |= column[xx]
                cr[w, x] = hits[w, y, x] | (near & spill_ok[w, y, x])
                bad[w, x] = cr[w, x] | excluded[w, y, x]
    else:
        for w in range(nwords):
            for x in range(nx):
                near = np.uint64(0)
                for j in range(dys.size):
                    yy = y + dys[j]
                    xx = x + dxs[j]
                    if 0 <= yy < ny and 0 <= xx < nx:
                        near |= hits[w, yy, xx]
                cr[w, x] = hits[w, y, x] | (near & spill_ok[w, y, x])
                bad[w, x] = cr[w, x] | excluded[w, y, x]
    for k in range(n):
        w = k // 64
        shift = np.uint64(k % 64)
        s = np.float32(sky[k])
        e = np.float32(efac[k])
        img = stack[k, y]
        bad_w = bad[w]
        if not last:
            for x in range(nx):
                keep = np.float32(1 - ((bad_w[x] >> shift) & np.uint64(1)))
                total[x] += (img[x] - s) * keep  # = pic·efac, the sky-subtracted counts
                used[x] += e * keep
        else:
            r2 = np.float32(rn2[k])
            g = np.float32(gains[k])
            sc = np.float32(scale)
            cr_w = cr[w]
            mrow = masks[k, y]
            for x in range(nx):
                mrow[x] = ((cr_w[x] >> shift) & np.uint64(1)) != 0
                keep = np.float32(1 - ((bad_w[x] >> shift) & np.uint64(1)))
                value = img[x] - s
                total[x] += value * keep
                used[x] += e * keep
                value = max(value + s, np.float32(0.0))
                var[x] += (r2 + value / g + (sc * value) * (sc * value)) * keep
    for x in range(nx):
        if used[x] > 0:
            ave[y, x] = total[x] / used[x]
        elif last:
            ave[y, x] = fillval
        efacsum[y, x] = used[x]
        if last:
            sumvar[y, x] = var[x]
            every = True
            for k in range(n):
                if (cr[k // 64, x] & (np.uint64(1) << np.uint64(k % 64))) == 0:
                    every = False
                    break
            rejected_all[y, x] = every


@nb.njit(parallel=True, **_JIT)
def first_pass(stack, dq, sky, efac, rn2, gains, scale, use_median, pairs, size, badinpdq,
               sig2, psig2, ave, avevar, excluded, hits, spill_ok):
    """Initial guess (median or minimum) fused with the first rejection test, per row."""
    n, ny, nx = stack.shape
    for y in nb.prange(ny):
        if use_median:
            rows = np.empty((size, nx), np.float32)
            _median_row(stack, y, sky, efac, pairs, rows, ave)
        else:
            _minimum_row(stack, y, sky, efac, rn2, gains, scale, ave, avevar)
        _excluded_row(dq, y, badinpdq, excluded)
        _flag_row(stack, y, ave, avevar, sky, efac, rn2, gains, sig2, scale, psig2,
                  not use_median, excluded, hits, spill_ok)


@nb.njit(parallel=True, **_JIT)
def next_pass(stack, hits, spill_ok, excluded, dys, dxs, square, sky, efac, rn2, gains, scale,
              fillval, sig2, psig2, ave, avevar, masks, sumvar, efacsum, rejected_all,
              next_hits, next_spill_ok):
    """Average of iteration i fused with the rejection test of iteration i+1, per row.

    Row ``y`` needs the hits of rows y±r of iteration i (read-only here) and writes
    the hits of iteration i+1 into the other buffer, so rows are independent.
    """
    n, ny, nx = stack.shape
    for y in nb.prange(ny):
        _accumulate_row(stack, y, hits, spill_ok, excluded, dys, dxs, square, sky, efac, rn2, gains,
                        scale, False, fillval, ave, masks, sumvar, efacsum, rejected_all)
        _flag_row(stack, y, ave, avevar, sky, efac, rn2, gains, sig2, scale, psig2, False,
                  excluded, next_hits, next_spill_ok)


@nb.njit(parallel=True, **_JIT)
def last_pass(stack, hits, spill_ok, excluded, dys, dxs, square, sky, efac, rn2, gains, scale,
              fillval, ave, masks, sumvar, efacsum, rejected_all):
    """Average of the last iteration, per-image masks and variances."""
    n, ny, nx = stack.shape
    for y in nb.prange(ny):
        _accumulate_row(stack, y, hits, spill_ok, excluded, dys, dxs, square, sky, efac, rn2, gains,
                        scale, True, fillval, ave, masks, sumvar, efacsum, rejected_all)
