"""COS FUV rawtag → approximate corrtag-like events, without calcos reference files.

calcos turns RAWX/RAWY into XFULL/YFULL with the thermal (stim-pulse), geometric,
walk, Doppler and wavecal corrections, each needing a reference file (BRFTAB,
GEOFILE, XWLKFILE, YWLKFILE, LAMPTAB, ...).  Here the x1d of the same exposure stands
in for all of them:

1. **Thermal correction** exactly as calcos ``timetag.thermalParam`` (a linear stretch
   that moves the measured stim pulses onto their reference positions), from the
   exposure-average stim positions ``STIMx_LX/LY/RX/RY`` and references
   ``STIMx0LX...`` that calcos writes into the x1d header (calcos recomputes them
   every BRFTAB ``timestep`` seconds; the average is used here).
2. **Pulse-height screening** as calcos ``timetag.doPhaCorr``: PHA outside
   ``[PHALOWRx, PHAUPPRx]`` (x1d header) → DQ 512 (``DQ_PHA_OUT_OF_BOUNDS``).
3. **Spectrum row**: the background-subtracted y profile's centroid near SP_LOC
   (as calcos ``xd_search`` locates the spectrum).
4. **x registration**: the RAWX histogram of the spectrum rows is cross-correlated
   with the x1d GCOUNTS (GROSS × EXPTIME) profile — globally (FFT) and then in
   overlapping 1024/512-pixel windows with a parabolic sub-pixel peak; the window
   offsets, cleaned against their running median, are interpolated linearly in x.
   This absorbs the wavecal SHIFT1, Doppler and the large-scale geometric distortion
   (tens of pixels across a segment).  Outside the measured windows the offsets are
   extrapolated along a line through the last four windows at each end.
5. **Trace**: y centroids in 1024-pixel chunks, fitted by a weighted straight line,
   are moved onto SP_LOC (rectified y), so the x1d's SP_HGT/B_BKG/B_HGT regions apply
   with their offsets from SP_LOC unchanged.

Not done (no reference files): flat field and dead time (``epsilon = 1``), walk
correction, gain-sag/bad-pixel DQ, bursts, the sub-pixel geometric structure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hstcal_core.errors import InputError
from hstcal_core.timetag.events import Extraction

__all__ = ["thermal_parameters", "spectrum_row", "register_offsets", "offset_at", "fit_trace",
           "rawtag_columns"]

_MISSING = -999.0
_DETECTOR_ROWS = 1024


def thermal_parameters(header: Mapping[str, Any], letter: str
                       ) -> tuple[float, float, float, float] | None:
    """(x0, xslope, y0, yslope) of calcos ``timetag.thermalParam``: ``x' = x0 + xslope·x``.

    None when the header lacks measured or reference stim positions.
    """
    keys = [f"STIM{letter}_{k}" for k in ("LX", "LY", "RX", "RY")] + \
           [f"STIM{letter}0{k}" for k in ("LX", "LY", "RX", "RY")]
    values = [header.get(k) for k in keys]
    if any(v is None or float(v) == _MISSING for v in values):
        return None
    lx, ly, rx, ry, lx0, ly0, rx0, ry0 = (float(v) for v in values)
    if rx == lx or ry == ly:
        return None
    xslope = (rx0 - lx0) / (rx - lx)
    yslope = (ry0 - ly0) / (ry - ly)
    return lx0 - lx * xslope, xslope, ly0 - ly * yslope, yslope


def spectrum_row(y: np.ndarray, expected: float, height: float, *, search: float | None = None,
                 rows: int = _DETECTOR_ROWS) -> float:
    """Row of the spectrum: centroid of the background-subtracted y histogram.

    The box of ``height`` rows with the most counts within ``expected ± search`` is
    found first, then its centroid is iterated (calcos ``xd_search`` finds the
    spectrum the same way, on the flt image).  The background is the median row.
    """
    search = 2 * height if search is None else search
    hist = np.bincount(np.clip(np.floor(y + 0.5), 0, rows - 1).astype(np.int64),
                       minlength=rows).astype(np.float64)
    excess = np.clip(hist - np.median(hist), 0, None)
    half = int(height // 2)
    box = np.convolve(excess, np.ones(2 * half + 1), mode="same")
    lo, hi = max(int(expected - search), 0), min(int(expected + search) + 1, rows)
    center = float(lo + np.argmax(box[lo:hi]))
    for _ in range(5):
        first, last = max(int(round(center)) - half, 0), min(int(round(center)) + half + 1, rows)
        w = excess[first:last]
        if w.sum() <= 0:
            break
        new = float((np.arange(first, last) * w).sum() / w.sum())
        if abs(new - center) < 1e-3:
            center = new
            break
        center = new
    return center


def _window_correlation(counts: np.ndarray, reference: np.ndarray, start: int, stop: int,
                        lags: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``counts[start:stop]`` with ``reference`` shifted by
    each lag (``reference[i + lag]``); -1 where less than half the window overlaps."""
    n = len(reference)
    idx = np.arange(start, stop)
    j = idx[None, :] + lags[:, None]
    ok = (j >= 0) & (j < n)
    a = np.where(ok, counts[start:stop][None, :], 0.0)
    b = np.where(ok, reference[np.clip(j, 0, n - 1)], 0.0)
    m = np.maximum(ok.sum(axis=1), 1)
    a = np.where(ok, a - (a.sum(axis=1) / m)[:, None], 0.0)
    b = np.where(ok, b - (b.sum(axis=1) / m)[:, None], 0.0)
    rho = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1) + 1e-300)
    rho[ok.sum(axis=1) < (stop - start) // 2] = -1.0
    return rho


def _subpixel_peak(values: np.ndarray, k: int) -> float:
    """Parabolic interpolation of a peak at index ``k``."""
    y1, y2, y3 = values[k - 1], values[k], values[k + 1]
    denom = y1 - 2 * y2 + y3
    return float(k + (0.5 * (y1 - y3) / denom if denom < 0 else 0.0))


def register_offsets(counts: np.ndarray, reference: np.ndarray, *, min_counts: float = 300.0,
                     min_correlation: float = 0.3, trusted_correlation: float = 0.8,
                     passes: Sequence[tuple[int, int]] = ((1024, 120), (1024, 16), (512, 8)),
                     ) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Offsets that carry ``counts`` (a histogram in raw x) onto ``reference`` (x1d pixels).

    Parameters
    ----------
    counts, reference : ndarray
        Same length; ``counts[k]`` are the events at raw x ≈ k, ``reference[i]`` the
        x1d's gross counts of element i.
    min_counts, min_correlation : float
        A window is used only with this many events and this correlation peak.
    trusted_correlation : float
        Windows peaking this high are kept even when they depart from their neighbours.
    passes : sequence of (window, half_range)
        Window widths (stepped by half a width) and the lag range searched around the
        previous pass's offsets.

    Returns
    -------
    knots, offsets : ndarray
        ``x1d pixel = raw x + interp(raw x, knots, offsets)``.
    global_offset, global_correlation : float
        The whole-profile FFT cross-correlation peak and its normalised height.
    windows : int
        Windows behind ``knots`` (0: only the global offset was measured).
    """
    counts = np.asarray(counts, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    n = len(reference)
    a, b = counts - counts.mean(), reference - reference.mean()
    size = 2 * n
    cc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    k = int(np.argmax(cc))
    global_offset = float(k if k < n else k - size)
    global_correlation = float(cc[k] / np.sqrt((a * a).sum() * (b * b).sum() + 1e-300))
    knots, offsets, windows = np.array([0.0]), np.array([global_offset]), 0
    for width, half in passes:
        found = []
        for start in range(0, max(n - width // 2, 1), width // 2):
            stop = min(start + width, n)
            if counts[start:stop].sum() < min_counts:
                continue
            center = 0.5 * (start + stop)
            guess = int(round(float(np.interp(center, knots, offsets))))
            lags = np.arange(guess - half, guess + half + 1)
            rho = _window_correlation(counts, reference, start, stop, lags)
            j = int(np.argmax(rho))
            if 0 < j < len(lags) - 1 and rho[j] >= min_correlation:
                found.append((center, lags[0] + _subpixel_peak(rho, j), rho[j]))
        if len(found) < 2:
            continue
        c, s, peak = np.array(found).T
        keep = np.ones(len(c), dtype=bool)
        for _ in range(3):
            # each window against the median of its five nearest kept neighbours; a
            # strong correlation peak is kept even when it departs from them (the FUV
            # geometric distortion changes by ~100 px within 1000 px of the segment edge)
            pos = np.searchsorted(c[keep], c)
            kept = s[keep]
            med = np.array([np.median(kept[max(p - 2, 0):p + 3]) for p in pos])
            resid = s - med
            mad = 1.4826 * np.median(np.abs(resid[keep]))
            keep = (np.abs(resid) <= max(4 * mad, 2.0)) | (peak >= trusted_correlation)
        # the raw → x1d mapping must stay monotonic (offset slope > -1 between knots)
        while keep.sum() > 2:
            kc, ks = c[keep], s[keep]
            folds = np.nonzero(np.diff(ks) / np.diff(kc) <= -0.9)[0]
            if not len(folds):
                break
            idx = np.nonzero(keep)[0]
            worse = folds[0] if peak[idx[folds[0]]] < peak[idx[folds[0] + 1]] else folds[0] + 1
            keep[idx[worse]] = False
        if keep.sum() >= 2:
            knots, offsets, windows = c[keep], s[keep], int(keep.sum())
    return knots, offsets, global_offset, global_correlation, windows


def offset_at(x: np.ndarray, knots: np.ndarray, offsets: np.ndarray, edge: int = 4
              ) -> np.ndarray:
    """Offset at raw ``x``: linear between knots; beyond them, from the end knot along
    the slope of a line fitted to the ``edge`` outermost knots (constant when fewer)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.interp(x, knots, offsets)
    if len(knots) >= edge:
        for end, select, beyond in ((0, slice(None, edge), x < knots[0]),
                                    (-1, slice(-edge, None), x > knots[-1])):
            slope = np.polyfit(knots[select], offsets[select], 1)[0]
            out[beyond] = offsets[end] + slope * (x[beyond] - knots[end])
    return out


def fit_trace(x: np.ndarray, y: np.ndarray, center: float, height: float, *,
              chunk: float = 1024.0, min_counts: int = 200) -> np.ndarray:
    """Straight-line trace ``y = p[0]·x + p[1]`` of the spectrum near row ``center``:
    centroids of the events within ``height/2`` rows in ``chunk``-wide x slices,
    weighted by their counts (constant when fewer than two slices qualify)."""
    near = np.abs(y - center) < 0.5 * height
    xs, ys = x[near], y[near]
    if not len(xs):
        return np.array([0.0, center])
    slot = np.floor(xs / chunk).astype(np.int64)
    slot -= slot.min()
    n = np.bincount(slot)
    sx = np.bincount(slot, weights=xs)
    sy = np.bincount(slot, weights=ys)
    ok = n >= min_counts
    if ok.sum() < 2:
        return np.array([0.0, float(ys.mean())])
    return np.polyfit(sx[ok] / n[ok], sy[ok] / n[ok], 1, w=np.sqrt(n[ok]))


def rawtag_columns(columns: Mapping[str, np.ndarray], header: Mapping[str, Any],
                   x1d_header: Mapping[str, Any], x1d_rows: Mapping[str, Mapping[str, Any]],
                   extractions: Sequence[Extraction], path: Path, notes: list[str]
                   ) -> tuple[np.ndarray, ...]:
    """Corrtag-like (time, x, y, wavelength, epsilon, dq, segment) of one FUV rawtag.

    ``notes`` receives one line per approximation, with the numbers measured.
    """
    from .timetag import (
        DQ_PHA_OUT_OF_BOUNDS,
        DQ_PIXEL_OUT_OF_BOUNDS,
        FUV_SEGMENT_CODE,
        FUV_X,
    )

    segment = str(header.get("SEGMENT", "")).strip().upper()
    if segment not in FUV_SEGMENT_CODE:
        raise InputError(path, f"rawtag SEGMENT = {segment or '?'}: only FUV rawtag (FUVA/FUVB) "
                               "can be registered without calcos; give the NUV corrtag")
    ext = next((e for e in extractions if e.name == segment), None)
    if ext is None:
        raise InputError(path, f"the x1d has no extraction for {segment}")
    letter = segment[-1]
    time = np.asarray(columns["TIME"], dtype=np.float64)
    raw_x = np.asarray(columns["RAWX"], dtype=np.float64)
    raw_y = np.asarray(columns["RAWY"], dtype=np.float64)
    n = len(time)
    dq = np.zeros(n, dtype=np.int32)

    # 1. thermal (stim) correction, calcos timetag.thermalParam
    params = thermal_parameters(x1d_header, letter) or thermal_parameters(header, letter)
    if params is None:
        x_t, y_t = raw_x, raw_y
        notes.append(f"{path.name}: no stim positions in the headers; no thermal correction")
    else:
        x0, xs, y0, ys = params
        x_t, y_t = x0 + xs * raw_x, y0 + ys * raw_y
        notes.append(f"{path.name}: thermal correction from exposure-mean stims "
                     f"(calcos thermalParam): x' = {x0:.3f} + {xs:.6f}x, "
                     f"y' = {y0:.3f} + {ys:.6f}y")

    # 2. pulse-height screening, calcos timetag.doPhaCorr
    low = x1d_header.get(f"PHALOWR{letter}", header.get(f"PHALOWR{letter}"))
    high = x1d_header.get(f"PHAUPPR{letter}", header.get(f"PHAUPPR{letter}"))
    if "PHA" in columns and low is not None and high is not None and int(low) >= 0 \
            and int(high) >= 0:
        pha = np.asarray(columns["PHA"])
        bad = (pha < int(low)) | (pha > int(high))
        dq[bad] |= DQ_PHA_OUT_OF_BOUNDS
        notes.append(f"{path.name}: PHA screening {int(low)}..{int(high)} (x1d PHALOWR/PHAUPPR): "
                     f"{int(bad.sum())} events flagged DQ {DQ_PHA_OUT_OF_BOUNDS}")
    else:
        notes.append(f"{path.name}: no PHA screening (no PHA column or limits)")
    usable = dq == 0

    # 3. spectrum row near SP_LOC
    mid = FUV_X / 2
    expected = ext.source.center + ext.source.slope * mid
    height = ext.source.height
    row = spectrum_row(y_t[usable], expected, height)

    # 4. x registration against the x1d gross counts
    x1d_row = x1d_rows[segment]
    reference = x1d_row.get("GCOUNTS")
    if reference is None:
        reference = x1d_row["GROSS"] * float(x1d_row["EXPTIME"])
    nelem = len(reference)
    in_rows = usable & (np.abs(y_t - row) < 0.5 * height)
    hist = np.bincount(np.clip(np.floor(x_t[in_rows] + 0.5), 0, nelem - 1).astype(np.int64),
                       minlength=nelem)
    knots, offsets, global_offset, rho, windows = register_offsets(hist, reference)
    if windows == 0 and rho < 0.3:
        raise InputError(path, f"cannot register RAWX on the x1d gross profile (no window "
                               f"correlates; whole-profile peak {rho:.2f} < 0.3)")
    # pixel index i of the x1d ↔ x = ext.pixel[i] (calcos: i - x_offset + dpixel1)
    x = x_t + offset_at(x_t, knots, offsets) + (ext.pixel[0] if len(ext.pixel) else 0.0)
    notes.append(f"{path.name}: RAWX registered on the x1d GCOUNTS profile by "
                 f"cross-correlation: global offset {global_offset:+.0f} px (peak {rho:.2f}); "
                 f"{windows} windows, offsets {offsets.min():+.2f}..{offsets.max():+.2f} px over "
                 f"x = {knots.min():.0f}..{knots.max():.0f}, extrapolated linearly beyond; replaces "
                 "calcos geometric/walk/Doppler/wavecal corrections")

    # 5. straight-line trace, moved onto SP_LOC
    slope, intercept = fit_trace(x[usable], y_t[usable], row, height)
    y = y_t - (slope * x + intercept) + (ext.source.center + ext.source.slope * x)
    notes.append(f"{path.name}: spectrum found at row {row:.2f} (SP_LOC_{letter} "
                 f"{expected:.2f}); trace y = {intercept:.2f} + {slope:.6f}x moved onto "
                 f"SP_LOC_{letter}; SP_HGT/B_BKG/B_HGT regions from the x1d header")

    outside = (x < ext.pixel[0] - 0.5) | (x >= ext.pixel[-1] + 0.5) | (y < -0.5) | \
        (y >= _DETECTOR_ROWS - 0.5)
    dq[outside] |= DQ_PIXEL_OUT_OF_BOUNDS
    wavelength = ext.wavelength_at(x)
    notes.append(f"{path.name}: epsilon = 1 (no flat field, no dead-time correction); DQ only "
                 f"from PHA screening and the digitized area ({int(outside.sum())} events "
                 f"outside, DQ {DQ_PIXEL_OUT_OF_BOUNDS}); no walk, gain-sag or burst flags")
    return (time, x.astype(np.float32), y.astype(np.float32), wavelength,
            np.ones(n, dtype=np.float32), dq, np.full(n, FUV_SEGMENT_CODE[segment], np.int8))
