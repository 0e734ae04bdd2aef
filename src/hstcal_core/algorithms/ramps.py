"""Non-destructive (MULTIACCUM) ramps: read-to-read increments and cosmic-ray jumps.

A MULTIACCUM exposure samples the charge of every pixel several times without
resetting it (WFC3 Instrument Handbook ch. 7, IR MULTIACCUM sampling; NICMOS
Instrument Handbook ch. 8, MULTIACCUM).  A cosmic ray adds its charge between
two reads, so it shows up as one *increment* (read k+1 − read k) above what the
pixel's steady signal predicts; every later read keeps it.  calwf3 and calnica find
these jumps inside their up-the-ramp fit (calwf3 CRCORR, WFC3 Data Handbook ch. 3); here
they are found on the increments directly, as the "two-point difference" method of
Anderson & Gordon (2011, PASP 123, 1237) that JWST's stcal jump step uses:

1. ``rate_k = increment_k / Δt_k``; the pixel's expected rate is the median of its
   usable rates weighted by their information ``Δt²/(RN² + rate·Δt)`` (the smaller one
   when only two are usable: cosmic rays only add charge), so one or two jumps cannot
   drag it and the sub-second first intervals of a SPARS/STEP sequence, whose rates are
   noise, do not decide it.
2. An increment is a primary hit where
   ``increment_k − rate·Δt_k > nsigma · sqrt(RN² + max(rate·Δt_k, 0) + Δt_k²·var(rate))``:
   read noise of a difference of two reads (the read-pair value HST's tables list),
   Poisson noise of the expected charge, and the uncertainty of the median rate itself
   (π/2 times the variance of the weighted mean).  Only positive jumps count.
3. Steps 1–2 repeat without the increments already flagged until nothing changes.
4. The 8 neighbours of a primary hit in the same increment are flagged where they
   exceed ``neighbor_sigma`` (lower) — the ocrreject/crrej rule of rejecting the
   surroundings of a hit at a reduced threshold (ISR STIS 98-22, CRRADIUS/CRTHRESH).
   Their significance is that of step 2 with steps 1–2 redone *without the candidate
   increments*, as step 3 does for primary hits and the jwst jump step's two-point
   difference does when it looks for a pixel's further outliers: a neighbour holds the
   faint edge of a cosmic ray, and left in its own median it raises the rate it is
   tested against.  Where one increment carries much of a pixel's information (NICMOS
   STEP64: each 64-s increment ~15 %) that raised the expectation of a pixel at the
   3-σ threshold by ~6 e⁻ (0.2 σ) and cut the third pixel off small cosmic rays, which
   then fell under the census' 3-pixel cut (0.95 of the simulated truth's rate).
5. The clean rate is the weighted least-squares rate of the unflagged usable
   increments (weights ``1/(RN² + rate·Δt)``), its error ``1/sqrt(Σ w Δt²)`` (which
   ignores that neighbouring increments share a read: an overestimate when read noise
   dominates).

Everything is vectorised along the read axis (numpy sorts and reductions over the
whole cube); arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "RampIncrements",
    "JumpResult",
    "parse_bunit",
    "time_order",
    "ramp_increments",
    "increment_error",
    "masked_median",
    "weighted_median",
    "detect_jumps",
]

_NEIGHBOURS = np.zeros((3, 3, 3), dtype=bool)
_NEIGHBOURS[1] = True  # 8-connected within one increment, never across increments


@dataclass(frozen=True)
class RampIncrements:
    """Read-to-read increments of a ramp, in time order.

    Attributes
    ----------
    increments : ndarray, shape (n, ny, nx), float32
        ``read[k+1] − read[k]`` in the units of the cumulative reads (electrons when the
        caller converted them).
    intervals : ndarray, shape (n,), float64
        ``Δt_k = t[k+1] − t[k]``, seconds, all > 0.
    start_times, end_times : ndarray, shape (n,), float64
        Sample times of the two reads of each increment.
    dq : ndarray, shape (n, ny, nx), uint16
        Bitwise OR of the two reads' DQ.
    """

    increments: np.ndarray
    intervals: np.ndarray
    start_times: np.ndarray
    end_times: np.ndarray
    dq: np.ndarray

    @property
    def n(self) -> int:
        return int(self.intervals.size)


@dataclass(frozen=True)
class JumpResult:
    """Outcome of :func:`detect_jumps`.

    Attributes
    ----------
    mask : ndarray, shape (n, ny, nx), bool
        Increments holding a jump (primary hits and their flagged neighbours).
    primary : ndarray, shape (n, ny, nx), bool
        The primary hits alone.
    rate : ndarray, shape (ny, nx), float32
        Clean rate (weighted least squares over unflagged usable increments), per s.
    rate_err : ndarray, shape (ny, nx), float32
        Its 1σ uncertainty (0 where no increment was usable).
    n_used : ndarray, shape (ny, nx), int16
        Usable, unflagged increments per pixel.
    testable : ndarray, shape (ny, nx), bool
        Pixels with at least two usable increments, where jumps can be told from signal.
    iterations : int
        Passes of steps 1–2 until the primary hits stopped changing.
    """

    mask: np.ndarray
    primary: np.ndarray
    rate: np.ndarray
    rate_err: np.ndarray
    n_used: np.ndarray
    testable: np.ndarray
    iterations: int

    @property
    def n_flagged(self) -> int:
        """Flagged pixel-increments."""
        return int(np.count_nonzero(self.mask))


def parse_bunit(bunit: str | None) -> tuple[bool, bool]:
    """``(is_rate, is_electrons)`` of an HST BUNIT string.

    ``ELECTRONS``, ``ELECTRONS/S``, ``COUNTS``, ``COUNTS/S``, ``DN`` and ``DN/S`` are
    understood (case and blanks ignored); counts and DN are the same thing on HST.

    Raises
    ------
    ValueError
        For anything else, naming the value.
    """
    text = "".join(str(bunit or "").split()).upper()
    base, _, per = text.partition("/")
    if base.rstrip("S") not in ("ELECTRON", "COUNT", "DN") or per not in ("", "S", "SEC", "SECOND"):
        raise ValueError(f"unsupported BUNIT {bunit!r}: expected ELECTRONS, COUNTS or DN, "
                         f"optionally per second (/S)")
    return bool(per), base.startswith("ELECTRON")


def time_order(sample_times) -> np.ndarray:
    """Indices putting reads in increasing sample time (stable).

    Raises
    ------
    ValueError
        If a time is not finite or two reads share a time.
    """
    times = np.asarray(sample_times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"sample_times must be a non-empty 1-D sequence, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"sample times must be finite, got {times.tolist()}")
    order = np.argsort(times, kind="stable")
    if np.any(np.diff(times[order]) <= 0):
        raise ValueError(f"two reads share a sample time: {sorted(times.tolist())}")
    return order


def ramp_increments(reads: np.ndarray, sample_times, *, dq: np.ndarray | None = None,
                    rate_units: bool = False, scale: float | np.ndarray = 1.0
                    ) -> RampIncrements:
    """Split a ramp into read-to-read increments.

    Parameters
    ----------
    reads : ndarray, shape (n_reads, ny, nx)
        The reads in time order (not modified): cumulative charge, or the average rate
        since the reference read when ``rate_units`` (calwf3/calnica IMA in ``.../S``).
    sample_times : sequence of float, length n_reads
        Time of each read since the reference read (SAMPTIME), strictly increasing.
    dq : ndarray, shape (n_reads, ny, nx), optional
        DQ of each read.
    rate_units : bool
        Multiply each read by its sample time first (rates → cumulative charge).
    scale : float or ndarray of shape (ny, nx)
        Multiplies the cumulative reads (the gain, e⁻/DN, for reads in counts).

    Returns
    -------
    RampIncrements
        ``n_reads − 1`` increments.

    Raises
    ------
    ValueError
        Fewer than two reads, shapes that disagree, or times not strictly increasing.
    """
    reads = np.asarray(reads)
    times = np.asarray(sample_times, dtype=np.float64)
    if reads.ndim != 3:
        raise ValueError(f"reads must be 3-D (n_reads, ny, nx), got shape {reads.shape}")
    if reads.shape[0] < 2:
        raise ValueError(f"a ramp needs at least 2 reads, got {reads.shape[0]}")
    if times.shape != (reads.shape[0],):
        raise ValueError(f"sample_times has {times.size} values for {reads.shape[0]} reads")
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(f"sample times must be finite and strictly increasing, got "
                         f"{times.tolist()}")
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim not in (0, 2) or (scale.ndim == 2 and scale.shape != reads.shape[1:]):
        raise ValueError(f"scale must be a scalar or shape {reads.shape[1:]}, got {scale.shape}")
    factor = times if rate_units else np.ones_like(times)
    increments = np.empty((reads.shape[0] - 1, *reads.shape[1:]), np.float32)
    previous = reads[0].astype(np.float64) * factor[0]
    for k in range(1, reads.shape[0]):  # one read at a time: float64 without a float64 cube
        current = reads[k].astype(np.float64) * factor[k]
        increments[k - 1] = (current - previous) * scale
        previous = current
    if dq is None:
        dq_out = np.zeros(increments.shape, np.uint16)
    else:
        dq = np.asarray(dq)
        if dq.shape != reads.shape:
            raise ValueError(f"dq has shape {dq.shape}, reads have {reads.shape}")
        dq_out = (dq[1:] | dq[:-1]).astype(np.uint16)
    return RampIncrements(increments=increments, intervals=np.diff(times),
                          start_times=times[:-1].copy(), end_times=times[1:].copy(), dq=dq_out)


def increment_error(increments: np.ndarray, read_noise) -> np.ndarray:
    """1σ of each increment: ``sqrt(RN² + max(increment, 0))`` (electrons).

    ``read_noise`` is the noise of a difference of two reads (the correlated-double-
    sample value HST tables list: READNSE for WFC3/IR, Table 7.1 for NICMOS), a scalar
    or an (ny, nx) map; the Poisson term is that of the observed increment, as calwf3's
    ``noiscalc`` does for each read.
    """
    rn2 = np.square(np.asarray(read_noise, dtype=np.float32))
    return np.sqrt(rn2 + np.maximum(np.asarray(increments, np.float32), 0)).astype(np.float32)


def masked_median(values: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median along axis 0 of the ``good`` values, and how many there were.

    Vectorised (one sort of the cube); pixels without a good value get NaN.  The
    even-count median is the mean of the two middle values, as ``numpy.median``.
    """
    values = np.asarray(values, dtype=np.float32)
    good = np.asarray(good, dtype=bool)
    ordered = np.sort(np.where(good, values, np.inf), axis=0)
    n_good = good.sum(axis=0, dtype=np.int16)
    lo = np.maximum((n_good - 1) // 2, 0).astype(np.intp)[None]
    hi = np.maximum(n_good // 2, 0).astype(np.intp)[None]
    median = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    return np.where(n_good > 0, median, np.nan).astype(np.float32), n_good


def weighted_median(values: np.ndarray, weights: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Weighted median along axis 0 of the ``good`` values (NaN where none is good).

    The value where the cumulative weight of the sorted values reaches half the total;
    where it reaches exactly half (equal weights, even count) the mean of the two
    values on either side, as ``numpy.median``.  Vectorised: one argsort of the cube.
    """
    good = np.asarray(good, dtype=bool)
    keyed = np.where(good, np.asarray(values, np.float32), np.inf)
    order = np.argsort(keyed, axis=0)
    ordered = np.take_along_axis(keyed, order, 0)
    cumulative = np.cumsum(np.take_along_axis(np.where(good, weights, 0).astype(np.float64),
                                              order, 0), axis=0)
    half = 0.5 * cumulative[-1]
    lo = np.argmax(cumulative >= half * (1 - 1e-9), axis=0)[None]
    hi = np.argmax(cumulative > half * (1 + 1e-9), axis=0)[None]
    median = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    return np.where(half > 0, median, np.nan).astype(np.float32)


def _information(dt: np.ndarray, rn2, rate: np.ndarray) -> np.ndarray:
    """Fisher information of each increment about the rate: Δt² / (RN² + rate·Δt)."""
    return dt * dt / (rn2 + np.maximum(rate[None] * dt, 0))


def _expected_rate(rates: np.ndarray, use: np.ndarray, dt: np.ndarray, rn2,
                   prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust rate per pixel (step 1): the information-weighted median of ≥ 3 usable rates,
    the smaller of 2, the one of 1.  Weighting by Δt²/σ² lets a SPARS/STEP ramp's long
    intervals decide, not its sub-second first reads (NICMOS STEP: 0.3 s next to 64 s)."""
    n_use = use.sum(axis=0, dtype=np.int16)
    median = weighted_median(rates, _information(dt, rn2, prior), use)
    smallest = np.min(np.where(use, rates, np.inf), axis=0)
    expected = np.where(n_use == 2, smallest, median)
    return np.where(n_use > 0, expected, 0.0).astype(np.float32), n_use


def _significance(increments, dt, rate, rn2, use, n_use) -> np.ndarray:
    """(increment − rate·Δt) / σ with the noise of step 2 of the module docstring."""
    expected = rate[None] * dt
    var_inc = rn2 + np.maximum(expected, 0)
    # var(median) ≈ (π/2) / Σ(Δt²/σ²) over the usable increments: the weighted-mean
    # variance times the median's inefficiency; < 3 usable: one rate's variance.
    info = np.sum(np.where(use, dt * dt / var_inc, 0), axis=0)
    var_rate = np.where(n_use >= 3, 0.5 * np.pi / np.maximum(info, 1e-30),
                        np.max(var_inc / (dt * dt), axis=0))
    return (increments - expected) / np.sqrt(var_inc + dt * dt * var_rate[None])


def _neighbour_significance(increments, dt, rn2, prior, use, candidates) -> np.ndarray:
    """Step 4: the significance of each candidate, in ``increments[candidates]`` order.

    Steps 1–2 on the pixels holding a candidate, with every candidate increment left
    out of ``use`` (the expected rate and its variance) as primary hits are; ``prior`` is
    the rate that weights the median.  Works on those pixels' columns only.
    """
    pixels = candidates.any(axis=0)
    columns = (slice(None), pixels)
    inc, cand = increments[columns], candidates[columns]
    others = use[columns] & ~cand
    dt_p = dt[:, :, 0]
    rn2_p = rn2[pixels] if np.ndim(rn2) == 2 else rn2
    rate, n_use = _expected_rate(inc / dt_p, others, dt_p, rn2_p, prior[pixels])
    return _significance(inc, dt_p, rate, rn2_p, others, n_use)[cand]


def detect_jumps(increments: np.ndarray, intervals, read_noise, *, nsigma: float = 5.0,
                 neighbor_sigma: float = 3.0, bad: np.ndarray | None = None,
                 max_iterations: int = 10) -> JumpResult:
    """Find cosmic-ray jumps in the increments of one ramp (module docstring, steps 1–5).

    Parameters
    ----------
    increments : ndarray, shape (n, ny, nx)
        Read-to-read increments in electrons, time order (not modified).
    intervals : sequence of float, length n
        Their durations Δt, seconds, > 0.
    read_noise : float or ndarray of shape (ny, nx)
        Noise of one increment (a difference of two reads), electrons.
    nsigma : float
        Threshold of a primary hit, in σ of the increment.
    neighbor_sigma : float
        Threshold for the 8 neighbours of a primary hit (same increment); ≥ ``nsigma``
        disables neighbour flagging.
    bad : ndarray of bool, shape (n, ny, nx), optional
        Unusable increments (DQ): never flagged, never used for the rate.
    max_iterations : int
        Cap on the passes of steps 1–2.

    Returns
    -------
    JumpResult

    Raises
    ------
    ValueError
        Bad shapes, non-positive intervals or thresholds, naming the parameter.
    """
    inc = np.asarray(increments, dtype=np.float32)
    if inc.ndim != 3 or inc.shape[0] < 1:
        raise ValueError(f"increments must be 3-D (n, ny, nx), got shape {inc.shape}")
    n = inc.shape[0]
    dt1 = np.asarray(intervals, dtype=np.float64)
    if dt1.shape != (n,) or not np.all(np.isfinite(dt1)) or np.any(dt1 <= 0):
        raise ValueError(f"intervals must be {n} positive durations, got {dt1.tolist()}")
    for name, value in (("nsigma", nsigma), ("neighbor_sigma", neighbor_sigma)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    rn = np.asarray(read_noise, dtype=np.float32)
    if rn.ndim not in (0, 2) or (rn.ndim == 2 and rn.shape != inc.shape[1:]) or np.any(rn <= 0):
        raise ValueError(f"read_noise must be > 0, a scalar or shape {inc.shape[1:]}")
    usable = np.ones(inc.shape, bool) if bad is None else ~np.asarray(bad, dtype=bool)
    if usable.shape != inc.shape:
        raise ValueError(f"bad has shape {usable.shape}, increments have {inc.shape}")
    dt = dt1.astype(np.float32)[:, None, None]
    rn2 = np.square(rn)
    rates = inc / dt

    primary = np.zeros(inc.shape, bool)
    rate = np.maximum(masked_median(rates, usable)[0], 0)  # weights of the first pass
    rate = np.where(np.isfinite(rate), rate, 0).astype(np.float32)
    iterations = 0
    for iterations in range(1, max(1, int(max_iterations)) + 1):
        use = usable & ~primary
        rate, n_use = _expected_rate(rates, use, dt, rn2, rate)
        sig = _significance(inc, dt, rate, rn2, use, n_use)
        testable = (n_use >= 2)[None] | primary  # a hit stays testable once found
        hits = (sig > nsigma) & usable & testable
        new = hits & ~primary
        primary |= hits
        if not new.any():
            break

    use = usable & ~primary
    rate = _expected_rate(rates, use, dt, rn2, rate)[0]
    mask = primary.copy()
    if neighbor_sigma < nsigma and primary.any():
        around = ndimage.binary_dilation(primary, structure=_NEIGHBOURS) & use
        mask[around] = _neighbour_significance(inc, dt, rn2, rate, use, around) > neighbor_sigma

    # Weighted least-squares rate of the clean increments (step 5).
    clean = usable & ~mask
    weight = np.where(clean, 1.0 / (rn2 + np.maximum(rate[None] * dt, 0)), 0).astype(np.float32)
    info = np.sum(weight * dt * dt, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        clean_rate = np.where(info > 0, np.sum(weight * dt * inc, axis=0) / info, 0.0)
        rate_err = np.where(info > 0, 1.0 / np.sqrt(info), 0.0)
    n_clean = clean.sum(axis=0, dtype=np.int16)
    return JumpResult(mask=mask, primary=primary, rate=clean_rate.astype(np.float32),
                      rate_err=rate_err.astype(np.float32), n_used=n_clean,
                      testable=usable.sum(axis=0) >= 2, iterations=iterations)
