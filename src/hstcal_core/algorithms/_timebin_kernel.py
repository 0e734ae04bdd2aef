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
* lookups into the x1d tables (``numpy.interp``, NaN outside) go through a cell table
  (:func:`interp_table`): the cell of a value is arithmetic, and one cache line holds
  all the cell needs — no search, no data-dependent branch, no division.  It equals
  ``numpy.interp`` to rounding (the sums did not change in the benchmark); the
  branchy walk from a linear guess it replaced took half the loop's time.

The bin stays ``int(t / step)``: a product with the reciprocal step floors differently
when the quotient is within rounding of an integer, and the division is not what the
loop waits on (benchmarks/README.md, lightcurve section).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = ["N_SUMS", "InterpTable", "accumulate", "interp_table"]

# Rows of the sums: counts, Σε, Σε², Σsε, Σ(sε)², Σε/S, Σ(ε/S)², Σsε/S, Σ(sε/S)²
# (s: the extraction's background scale, S: sensitivity).  Source rows 0–2 and 5–6,
# background rows 3–4 and 7–8.
N_SUMS = 9
_N_COUNTERS = 4  # source events, background events, outside GTI, DQ-rejected

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


class InterpTable(NamedTuple):
    """Piecewise-linear functions ``y(x)`` (``numpy.interp``, NaN outside), one per
    table ``k``, laid out for an O(1) lookup; built by :func:`interp_table`.

    Table ``k``'s knots are ``x[off[k]:off[k+1]]`` (ascending).  Its range
    ``[x_first, x_last]`` is cut into equal cells, ``cell = int((v − x_first) ·
    scale[k])`` (clipped to the last), each no wider than the spacing of the inner
    knots, so a cell holds at most one knot besides the two ends.  Row ``cell_off[k] +
    cell`` of ``cells`` is ``(x_c, y_c, slope_below, slope_above)``: the knot inside the
    cell and its value (or the knot starting the cell's pair, both slopes then equal),
    so ``y(v) = y_c + (v − x_c) · (slope_below if v < x_c else slope_above)``, the slope
    picked by index.  ``x_c`` NaN marks a cell left to a bisection of ``x``/``y``: two
    inner knots in it (uneven grids), or a NaN value on its lines (numpy's own rules
    apply there).

    The kernel takes the six arrays as a tuple and unpacks them before its loop: numba
    does not hoist a named tuple's fields out of a loop (that cost 20% of the loop).
    """

    cells: np.ndarray      # (n_cells, 4) float64
    cell_off: np.ndarray   # (K + 1,) int64
    scale: np.ndarray      # (K,) float64, cells per unit of x
    x: np.ndarray          # knots, all tables
    y: np.ndarray
    off: np.ndarray        # (K + 1,) int64


def _cells(x: np.ndarray, y: np.ndarray, max_cells_per_knot: int
           ) -> tuple[np.ndarray, float]:
    """Cell rows and scale of one table (see :class:`InterpTable`)."""
    n = len(x)
    span = float(x[-1] - x[0]) if n >= 2 else 0.0
    if not span > 0:  # fewer than two distinct knots: every value takes the bisection
        return np.full((1, 4), np.nan), 0.0
    dx = np.diff(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(dx > 0, np.diff(y) / np.where(dx > 0, dx, 1.0), 0.0)
    inner = dx[1:-1][dx[1:-1] > 0]  # spacing of knots 1 … n-2 (the ends may be closer)
    n_cells = int(np.ceil(span / inner.min())) + 1 if len(inner) else 1
    n_cells = max(1, min(n_cells, max_cells_per_knot * n))
    scale = n_cells / span
    # Cells of the inner knots, with the kernel's arithmetic (monotone in x, so a value's
    # cell has the knots of lower cells below it and those of higher cells above it).
    knot_cell = np.minimum(((x[1:-1] - x[0]) * scale).astype(np.int64), n_cells - 1)
    j = np.arange(n_cells)
    below = np.searchsorted(knot_cell, j, side="left")   # inner knots in lower cells
    inside = np.searchsorted(knot_cell, j, side="right") - below
    pair = np.minimum(below, n - 2)  # the pair of the cell's lowest values
    knot = np.minimum(below + 1, n - 2)  # the inner knot in the cell, when there is one
    one = inside == 1
    rows = np.empty((n_cells, 4))
    rows[:, 0] = np.where(one, x[knot], x[pair])
    rows[:, 1] = np.where(one, y[knot], y[pair])
    rows[:, 2] = slope[pair]
    rows[:, 3] = np.where(one, slope[knot], slope[pair])
    rows[(inside > 1) | ~np.isfinite(rows[:, 1:]).all(axis=1), 0] = np.nan
    return rows, scale


def interp_table(tables: Sequence[tuple[np.ndarray, np.ndarray]],
                 max_cells_per_knot: int = 8) -> InterpTable:
    """:class:`InterpTable` of ``(x, y)`` knot arrays (``x`` ascending in each).

    Slopes are ``numpy.interp``'s ``(y[i+1] − y[i]) / (x[i+1] − x[i])``; a cell's line
    equals numpy's to rounding.  ``max_cells_per_knot`` bounds the table on very uneven
    grids (cells with two inner knots then take the bisection).
    """
    cells, cell_off, scales, xs, ys, off = [], [0], [], [], [], [0]
    for x, y in tables:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rows, scale = _cells(x, y, max_cells_per_knot)
        xs.append(x)
        ys.append(y)
        off.append(off[-1] + len(x))
        cells.append(rows)
        cell_off.append(cell_off[-1] + len(rows))
        scales.append(scale)
    return InterpTable(np.concatenate(cells) if cells else np.zeros((0, 4)),
                       np.array(cell_off, dtype=np.int64), np.array(scales, dtype=np.float64),
                       np.concatenate(xs) if xs else np.zeros(0),
                       np.concatenate(ys) if ys else np.zeros(0),
                       np.array(off, dtype=np.int64))


@nb.njit(inline="always", **_JIT)
def _interp_search(v, x, y, lo, hi):
    """``numpy.interp`` by bisection for ``x[lo] <= v <= x[hi-1]``, its rules included:
    the pair ``x[i] <= v < x[i+1]``, ``y[i]`` at a knot and ``y[-1]`` at the top end, and
    a NaN from one side retried from the other (numpy ``compiled_base.c``,
    ``arr_interp``)."""
    if v >= x[hi - 1]:
        return y[hi - 1]
    a = lo
    b = hi - 1
    while b - a > 1:  # x[a] <= v < x[b]
        m = (a + b) >> 1
        if x[m] <= v:
            a = m
        else:
            b = m
    if x[a] == v:
        return y[a]
    slope = (y[b] - y[a]) / (x[b] - x[a])
    out = slope * (v - x[a]) + y[a]
    if np.isnan(out):
        out = slope * (v - x[b]) + y[b]
        if np.isnan(out) and y[a] == y[b]:
            out = y[a]
    return out


@nb.njit(inline="always", **_JIT)
def _interp(v, k, cells, cell_off, scale, x, y, off):
    """``numpy.interp(v, x, y, left=nan, right=nan)`` of table ``k`` of an
    :class:`InterpTable` (its arrays): the cell's line, or the search in a marked cell."""
    lo = off[k]
    hi = off[k + 1]
    if hi - lo < 1 or not (v >= x[lo]) or not (v <= x[hi - 1]):
        return np.nan
    cell = int((v - x[lo]) * scale[k])
    last = cell_off[k + 1] - cell_off[k] - 1
    cell = min(cell, last)
    row = cell_off[k] + cell
    xc = cells[row, 0]
    if np.isnan(xc):
        return _interp_search(v, x, y, lo, hi)
    return cells[row, 1] + (v - xc) * cells[row, 2 + np.int64(v >= xc)]


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
               pix, sens, wave_min, wave_max, airglow, n_threads):
    """Sum the events into ``(N_SUMS, n_bins)`` and count them.

    Parameters
    ----------
    time, x, y, wave, eps, dq, seg : arrays over events, in any order (``time`` and
        ``wave`` float32 or float64; ``wave`` NaN: unknown)
    sdqflags : int
        DQ bits that reject an event.
    step, n_bins, stop : bin width (s), number of bins, end of the last bin
    gti : (n, 2) float64
    ext_seg : int array (K,), segment of each extraction
    src_band : (K, 3) float64, (centre, height, slope) of each source band
    bkg_ext, bkg_band : background bands, their extraction and (centre, height, slope)
    scale : (K,) background scale of each extraction
    pix, sens : :class:`InterpTable` of the extractions' dispersion (x → wavelength)
        and sensitivity (wavelength → S), table ``k`` for extraction ``k``
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
    pix_cells, pix_cell_off, pix_scale, pix_x, pix_y, pix_off = pix
    sens_cells, sens_cell_off, sens_scale, sens_x, sens_y, sens_off = sens
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
            t = np.float64(time[e])
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
            w = np.float64(wave[e])
            if not np.isfinite(w):
                w = _interp(xe, k, pix_cells, pix_cell_off, pix_scale, pix_x, pix_y, pix_off)
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
            s = _interp(w, k, sens_cells, sens_cell_off, sens_scale, sens_x, sens_y, sens_off)
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
