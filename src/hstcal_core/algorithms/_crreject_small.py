"""Compiled (numba) cosmic-ray rejection of a few images (2 ≤ n ≤ 8): one sweep over rows.

The same rejection as :mod:`._crreject_kernels` (hstcal ``cs2/crrej_init.c``,
``crrej_loop.c``, ``crrej_do.c``; float32, the same operation order, so the masks and
sums are bit-identical), scheduled for the dark pairs of the cosmic-ray census rather
than for deep stacks:

* the hits of all images are the bits of one **byte** per pixel, not of 64-bit words;
* the iterations are **pipelined** over rows.  Iteration ``i`` at row ``y`` needs the
  hits of iteration ``i-1`` on rows ``y ± r`` only (``r``: crradius), so at step ``t``
  the initial guess runs on row ``t``, iteration 1 on row ``t - r``, iteration 2 on row
  ``t - 2r`` … and the final average on row ``t - len(crsigmas)·r``.  Hits, the running
  average and the excluded pixels live in ring buffers of a few rows, so the stack is
  streamed through the cache once instead of once per iteration, and nothing of the
  size of the image is allocated besides the outputs;
* the neighbour rejection ORs, for each row offset ``dy`` of the crradius disc, a run of
  ``2·w(dy)+1`` columns (the disc is convex), which vectorises for any radius;
* the last step also forms ocrreject's outputs (crrej_do.c): ``sci``, ``err``, ``dq``.

Rows are split into chunks for ``prange``; each chunk recomputes the few rows of the
earlier iterations its first and last rows depend on, so chunks are independent.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._crreject_kernels import image_constants, noise_thresholds

__all__ = ["MAX_IMAGES", "reject_rows"]

# The row functions are compiled on their own, not inlined (inline="always") into the
# sweep: in one large body LLVM vectorised their loops less well (the sweep took 1.3-2x
# longer on a 2×2048×4096 pair).
_JIT = dict(cache=True, nogil=True)

#: Hits of every image are bits of one uint8 per pixel.
MAX_IMAGES = 8


@nb.njit(**_JIT)
def _initial_guess(stack, y, sky, efac, rn2, gains, scale, use_median, pairs, rows,
                   ave_row, avevar_row):
    """crrej_init.c: median of (stack − sky)/efac (a sorting network over row vectors),
    or the minimum and the variance of the image supplying it."""
    n = len(stack)
    nx = stack[0].shape[1]
    if use_median:
        size = rows.shape[0]
        mid = n // 2
        for k in range(n):
            s = np.float32(sky[k])
            inv_e = np.float32(1.0 / efac[k])
            img = stack[k][y]
            rk = rows[k]
            for x in range(nx):
                rk[x] = (img[x] - s) * inv_e
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
                ave_row[x] = rows[mid, x]
        else:
            lower = rows[mid - 1]
            upper = rows[mid]
            for x in range(nx):
                ave_row[x] = (lower[x] + upper[x]) / np.float32(2.0)
    else:
        for k in range(n):
            s = np.float32(sky[k])
            e = np.float32(efac[k])
            e2 = np.float32(efac[k] * efac[k])
            r2 = np.float32(rn2[k])
            g = np.float32(gains[k])
            img = stack[k][y]
            for x in range(nx):
                raw = img[x]
                val = (raw - s) / e
                if k == 0 or val < ave_row[x]:
                    raw0 = raw if raw > 0 else np.float32(0.0)
                    sig0 = raw - s
                    sig0 = sig0 if sig0 > 0 else np.float32(0.0)
                    ave_row[x] = val
                    avevar_row[x] = (r2 + raw0 / g + (np.float32(scale) * sig0) ** 2) / e2


@nb.njit(**_JIT)
def _excluded(dq, y, badinpdq, excl_row):
    """Bit k set where image k has a DQ bit of BADINPDQ (crrej_loop.c leaves it out)."""
    n = len(dq)
    nx = dq[0].shape[1]
    for x in range(nx):
        excl_row[x] = 0
    if badinpdq == 0:
        return
    for k in range(n):
        flags = dq[k][y]
        for x in range(nx):
            excl_row[x] |= np.uint8((flags[x] & badinpdq) != 0) << np.uint8(k)


@nb.njit(**_JIT)
def _flag(stack, y, ave_row, avevar_row, sky, efac, rn2, gains, sig2, scale, psig2,
          use_avevar, excl_row, hit_row, spill_row):
    """crrej_loop.c's test for row ``y`` of every image: ``hit_row`` bit k where
    deviation² > threshold (not excluded), ``spill_row`` bit k where deviation² >
    crthresh²·(threshold without scalense).  Same float32 expressions as
    ``_crreject_kernels._flag_row`` (its ``image_constants`` and ``noise_thresholds``)."""
    n = len(stack)
    nx = stack[0].shape[1]
    sg2 = np.float32(sig2)
    sc = np.float32(scale)
    ps2 = np.float32(psig2)
    for x in range(nx):
        hit_row[x] = 0
        spill_row[x] = 0
    for k in range(n):
        shift = np.uint8(k)
        s, e, inv_e, c, r2, inv_g = image_constants(k, sky, efac, rn2, gains, sig2)
        img = stack[k][y]
        if use_avevar:
            for x in range(nx):
                d = (img[x] - s) * inv_e - ave_row[x]
                d2 = d * d
                thresh = sg2 * avevar_row[x]
                hit_row[x] |= np.uint8(d2 > thresh) << shift
                spill_row[x] |= np.uint8(d2 > ps2 * thresh) << shift
        else:
            for x in range(nx):
                d = (img[x] - s) * inv_e - ave_row[x]
                d2 = d * d
                thresh, spill = noise_thresholds(ave_row[x], s, e, r2, inv_g, sc, c, ps2)
                hit_row[x] |= np.uint8(d2 > thresh) << shift
                spill_row[x] |= np.uint8(d2 > spill) << shift
    for x in range(nx):
        hit_row[x] &= ~excl_row[x]


@nb.njit(**_JIT)
def _cr_bits(hit_ring, spill_row, excl_row, y, ny, halfwidths, near, cr, bad):
    """crrej_loop.c's mask of row ``y``: hit, or within crradius of a hit and rejectable
    (``spill_row``); ``bad`` adds the excluded pixels.  ``hit_ring`` holds the previous
    iteration's hits of rows ``y ± r`` at ``row % len(ring)``; the disc is a run of
    columns ±halfwidths[dy + r] per row offset."""
    nx = near.size
    ring = hit_ring.shape[0]
    radius = (halfwidths.size - 1) // 2
    for x in range(nx):
        near[x] = 0
    for j in range(halfwidths.size):
        yy = y + j - radius
        if yy < 0 or yy >= ny:
            continue
        row = hit_ring[yy % ring]
        w = halfwidths[j]
        for dx in range(-w, w + 1):
            lo = max(0, -dx)
            hi = min(nx, nx - dx)
            dst = near[lo:hi]
            src = row[lo + dx:hi + dx]  # slices: non-negative indices, so it vectorises
            for x in range(hi - lo):
                dst[x] |= src[x]
    own = hit_ring[y % ring]
    for x in range(nx):
        cr[x] = own[x] | (near[x] & spill_row[x])
        bad[x] = cr[x] | excl_row[x]


@nb.njit(**_JIT)
def _average(stack, y, bad, sky, efac, total, used, ave_row):
    """crrej_loop.c's new average of the unrejected images (the previous one stays where
    every image is rejected).  Same accumulation order as ``_accumulate_row``."""
    n = len(stack)
    nx = stack[0].shape[1]
    for x in range(nx):
        total[x] = 0
        used[x] = 0
    for k in range(n):
        shift = np.uint8(k)
        s = np.float32(sky[k])
        e = np.float32(efac[k])
        img = stack[k][y]
        for x in range(nx):
            keep = np.float32(1 - ((bad[x] >> shift) & np.uint8(1)))
            total[x] += (img[x] - s) * keep  # = pic·efac, the sky-subtracted counts
            used[x] += e * keep
    for x in range(nx):
        if used[x] > 0:
            ave_row[x] = total[x] / used[x]


@nb.njit(**_JIT)
def _finish(stack, dq, y, cr, bad, sky, efac, rn2, gains, scale, fillval, texpt, skysum,
            crflag, total, used, var, masks, sci, err, dq_out):
    """The last average with the per-image masks and variances (crrej_loop.c), then
    ocrreject's outputs (crrej_do.c): ``sci = ave·Σefac + Σsky``,
    ``err = sqrt(Σvar)/Σefac_used·Σefac``, DQ = OR of the inputs + crflag where every
    image was rejected.  Same float32 operations as ``crreject``'s numpy epilogue."""
    n = len(stack)
    nx = stack[0].shape[1]
    for x in range(nx):
        total[x] = 0
        used[x] = 0
        var[x] = 0
    sc = np.float32(scale)
    for k in range(n):
        shift = np.uint8(k)
        s = np.float32(sky[k])
        e = np.float32(efac[k])
        r2 = np.float32(rn2[k])
        g = np.float32(gains[k])
        img = stack[k][y]
        mrow = masks[k, y]
        for x in range(nx):
            mrow[x] = ((cr[x] >> shift) & np.uint8(1)) != 0
            keep = np.float32(1 - ((bad[x] >> shift) & np.uint8(1)))
            value = img[x] - s
            total[x] += value * keep
            used[x] += e * keep
            value = max(value + s, np.float32(0.0))
            var[x] += (r2 + value / g + (sc * value) * (sc * value)) * keep
    every = np.uint8((1 << n) - 1)
    fill = np.float32(fillval)
    t32 = np.float32(texpt)
    sky32 = np.float32(skysum)
    keep_bits = np.uint16(~crflag & 0xFFFF)
    flag = np.uint16(crflag)
    for x in range(nx):
        if used[x] > 0:
            ave = total[x] / used[x]
            err[y, x] = (np.sqrt(var[x]) / used[x]) * t32
        else:
            ave = fill
            err[y, x] = fill
        sci[y, x] = ave * t32 + sky32
    out = dq_out[y]
    for x in range(nx):
        out[x] = 0
    for k in range(n):
        flags = dq[k][y]
        for x in range(nx):
            out[x] |= flags[x]
    for x in range(nx):
        out[x] = (out[x] & keep_bits) | (flag if cr[x] == every else np.uint16(0))


@nb.njit(**_JIT)
def _sweep(stack, dq, sky, efac, rn2, gains, scale, use_median, pairs, size, badinpdq,
           sig2s, psig2, halfwidths, fillval, texpt, skysum, crflag, first, stop,
           masks, sci, err, dq_out):
    """Rows ``first .. stop-1`` of the outputs, and the rows of the earlier iterations
    they depend on."""
    ny, nx = stack[0].shape
    niter = sig2s.size
    radius = (halfwidths.size - 1) // 2
    lag = niter * radius
    ring = 2 * radius + 1        # previous iteration's hits of rows y ± r
    span = lag + 1               # rows in flight between the first and the last step
    rows = np.empty((size, nx), np.float32)
    hits = np.empty((niter, ring, nx), np.uint8)
    spill = np.empty((niter, ring, nx), np.uint8)
    ave = np.empty((span, nx), np.float32)
    excl = np.empty((span, nx), np.uint8)
    avevar_row = np.empty(nx, np.float32)
    near = np.empty(nx, np.uint8)
    cr = np.empty(nx, np.uint8)
    bad = np.empty(nx, np.uint8)
    total = np.empty(nx, np.float32)
    used = np.empty(nx, np.float32)
    var = np.empty(nx, np.float32)
    for t in range(max(0, first - lag), stop + lag):
        # step i works on row t - i·r, over the rows the chunk's output depends on
        for i in range(niter + 1):
            y = t - i * radius
            if y < max(0, first - lag + i * radius) or y >= min(ny, stop + lag - i * radius):
                continue
            slot = y % span
            if i == 0:
                _initial_guess(stack, y, sky, efac, rn2, gains, scale, use_median, pairs,
                               rows, ave[slot], avevar_row)
                _excluded(dq, y, badinpdq, excl[slot])
                _flag(stack, y, ave[slot], avevar_row, sky, efac, rn2, gains, sig2s[0],
                      scale, psig2, not use_median, excl[slot], hits[0, y % ring],
                      spill[0, y % ring])
                continue
            _cr_bits(hits[i - 1], spill[i - 1, y % ring], excl[slot], y, ny, halfwidths,
                     near, cr, bad)
            if i < niter:
                _average(stack, y, bad, sky, efac, total, used, ave[slot])
                _flag(stack, y, ave[slot], avevar_row, sky, efac, rn2, gains, sig2s[i],
                      scale, psig2, False, excl[slot], hits[i, y % ring],
                      spill[i, y % ring])
            else:
                _finish(stack, dq, y, cr, bad, sky, efac, rn2, gains, scale, fillval,
                        texpt, skysum, crflag, total, used, var, masks, sci, err, dq_out)


@nb.njit(parallel=True, **_JIT)
def reject_rows(stack, dq, sky, efac, rn2, gains, scale, use_median, pairs, size, badinpdq,
                sig2s, psig2, halfwidths, fillval, texpt, skysum, crflag, nchunks,
                masks, sci, err, dq_out):
    """Every iteration of crrej_loop.c and the outputs of crrej_do.c in one sweep.

    ``stack`` (float32) and ``dq`` (uint16): (n, ny, nx) arrays or tuples of n 2-D
    images (so a caller's separate images need not be stacked into a copy).
    ``pairs``, ``size``: the median's sorting network (``sort_network``); ``sig2s``:
    crsigmas²; ``halfwidths``: columns ±w of the crradius disc per row
    offset −r … r.  Writes ``masks`` (n, ny, nx) and ``sci``, ``err``, ``dq_out``.
    """
    ny = stack[0].shape[0]
    for c in nb.prange(nchunks):
        _sweep(stack, dq, sky, efac, rn2, gains, scale, use_median, pairs, size, badinpdq,
               sig2s, psig2, halfwidths, fillval, texpt, skysum, crflag, c * ny // nchunks,
               (c + 1) * ny // nchunks, masks, sci, err, dq_out)
