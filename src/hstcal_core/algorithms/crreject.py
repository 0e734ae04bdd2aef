"""Iterative cosmic-ray rejection of a stack of images: ocrreject / acsrej equivalent.

Algorithm (hstcal ``pkg/stis/lib/cs2``: crrej_init, crrej_sky, crrej_loop, crrej_do;
parameters as in ISR STIS 98-22):

1. Each image ``n`` is sky-subtracted (``skysub="mode"``: histogram mode, 1-DN bins)
   and scaled by its exposure factor ``efac[n]`` (EXPTIME, or 1 for zero-time frames).
2. Initial guess: the per-pixel ``median`` of the scaled stack, or its ``minimum``.
3. For each sigma in ``crsigmas``: a pixel of image ``n`` is a hit where
   ``(pic - ave)² > σ² (rn² + val/g + (scalense·(val-sky))²) / efac²``
   with ``val = max(ave·efac + sky, 0)`` in DN; pixels within ``crradius`` of a hit
   are also rejected where they deviate by more than ``crthresh·σ`` of the noise
   without the scalense term.  The average is recomputed from the unrejected pixels.
4. Output as ocrreject: ``sci = ave·Σefac + Σsky`` (the sum over inputs),
   ``err = sqrt(Σvar)/Σefac_used · Σefac``; DQ is the OR of the inputs plus ``crflag``
   (8192, DATAREJECT) where a pixel was rejected in every image; one CR mask per input.

The per-pixel loops are compiled (numba, parallel over rows), in two schedules with
bit-identical results:

* up to :data:`SMALL_N_MAX` images (a dark pair, a CR-split): ``_crreject_small``
  pipelines every iteration in one sweep over the rows, hits as bits of a byte, and
  forms the outputs in that sweep; the images may be separate arrays (no stacked copy);
* more images: ``_crreject_kernels`` makes one pass per iteration, hits of 64 images
  per 64-bit word.

In both the median is a sorting network over row vectors and the neighbour rejection
an OR of neighbouring bit words, so the rejection allocates little beyond its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from . import _crreject_kernels as _k
from . import _crreject_small as _small

__all__ = ["CRRejectParams", "CRRejectResult", "crreject", "sky_mode", "sky_modes",
           "histogram_mode"]

CR_FLAG = 8192  # DATAREJECT, stisdq.h
#: Stacks of up to this many images take the pipelined single-sweep kernel
#: (``_crreject_small``); larger ones the pass-per-iteration kernel.  Same results.
SMALL_N_MAX = _small.MAX_IMAGES


@dataclass(frozen=True)
class CRRejectParams:
    """Parameters of one CR-rejection run (the columns of a CRREJTAB row).

    Defaults are those of the STIS CRREJTAB (ISR 98-22) for long CR-split exposures,
    with the 5-4-3σ cycle refstis documents for its superbiases.
    """

    crsigmas: tuple[float, ...] = (5.0, 4.0, 3.0)
    crradius: float = 1.5
    crthresh: float = 0.75
    initgues: str = "median"
    skysub: str = "mode"
    scalense: float = 0.0
    badinpdq: int = 0
    fillval: float = 0.0
    crflag: int = CR_FLAG

    def __post_init__(self):
        if not self.crsigmas:
            raise ValueError("crsigmas: at least one rejection threshold is required")
        if any(s <= 0 for s in self.crsigmas):
            raise ValueError(f"crsigmas must be positive, got {self.crsigmas}")
        if self.initgues not in ("median", "minimum"):
            raise ValueError(f"initgues must be 'median' or 'minimum', got {self.initgues!r}")
        if self.skysub not in ("mode", "none"):
            raise ValueError(f"skysub must be 'mode' or 'none', got {self.skysub!r}")
        if self.crradius < 0:
            raise ValueError(f"crradius must be >= 0, got {self.crradius}")


@dataclass(frozen=True)
class CRRejectResult:
    """Outputs of :func:`crreject` (see module docstring for the conventions)."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    masks: np.ndarray
    sky: np.ndarray
    efac: np.ndarray
    texptime: float
    n_rejected: int
    params: CRRejectParams = field(default_factory=CRRejectParams)


def histogram_mode(values: np.ndarray) -> float:
    """Mode of ``values`` from a 1-DN histogram with parabolic peak interpolation.

    Mirrors crrej_sky + cr_mode: the range is [min(min(values),0)-1 (≥ -1000),
    2·int(mean+1)], bins are 1 DN wide and values are binned by C truncation.
    """
    values = np.asarray(values).ravel()
    if values.size == 0:
        return 0.0
    amin = min(float(values.min()), 0.0)
    lo = -1000 if amin < -1000 else int(amin) - 1
    mean = float(values.mean(dtype=np.float64))
    hi = 1 if mean <= 0 else int(mean + 1.0) * 2
    nbins = hi - lo + 1
    # astype truncates toward zero, as the C (int) cast does
    idx = values.astype(np.int64) - lo
    idx = idx[(idx >= 0) & (idx < nbins)]
    hist = np.bincount(idx, minlength=nbins)[:nbins]
    return _mode_from_histogram(hist, lo)


def _mode_from_histogram(hist: np.ndarray, lo: int) -> float:
    """cr_mode.c: peak of a 1-DN histogram starting at ``lo``, parabola-refined."""
    nbins = hist.size
    hmin = float(lo)
    if nbins == 1:
        return hmin + 0.5
    if nbins == 2:
        if hist[0] > hist[1]:
            return hmin + 0.5
        if hist[1] > hist[0]:
            return hmin + 1.5
        return hmin + 1.0
    peak = int(np.argmax(hist))
    if peak == 0:
        return hmin + 0.5
    if peak == nbins - 1:
        return hmin + nbins - 0.5
    dh1 = float(hist[peak] - hist[peak - 1])
    dh2 = float(hist[peak] - hist[peak + 1])
    denom = dh1 + dh2
    if abs(denom) < 1e-20:
        return hmin + peak + 0.5
    return hmin + (peak + 1 + 0.5 * (dh1 - dh2) / denom) - 0.5


def sky_mode(sci: np.ndarray, dq: np.ndarray) -> float:
    """Sky level of one image: histogram mode of its pixels with DQ == 0."""
    return float(sky_modes(sci[None], dq[None])[0])


def sky_modes(stack: np.ndarray, dq: np.ndarray) -> np.ndarray:
    """Sky level of every image of a stack (crrej_sky.c), one parallel pass.

    ``stack``, ``dq``: (n, ny, nx) arrays, or sequences of n 2-D images."""
    stack, dq = _images(stack, dq)
    n = len(stack)
    hist = np.zeros((n, _k.MODE_BINS), np.int32)
    amin = np.empty(n, np.float64)
    mean = np.empty(n, np.float64)
    _k.mode_histograms(stack, dq, hist, amin, mean)
    modes = np.empty(n)
    for k in range(n):
        lo = -1000 if amin[k] < -1000 else int(amin[k]) - 1
        hi = 1 if mean[k] <= 0 else int(mean[k] + 1.0) * 2
        a, b = lo - _k.MODE_BASE, hi - _k.MODE_BASE + 1
        if a >= 0 and b <= _k.MODE_BINS:
            modes[k] = _mode_from_histogram(hist[k, a:b], lo)
        else:  # a mean beyond ~65k DN: histogram that image exactly
            modes[k] = histogram_mode(stack[k][dq[k] == 0])
    return modes


def _footprint(radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Offsets (dy, dx) within ``radius`` of a pixel (crrej_loop's neighbourhood), and its
    half-width if it is a full square (separable), else -1."""
    width = int(radius + 1e-5)
    offsets = [(dy, dx) for dy in range(-width, width + 1) for dx in range(-width, width + 1)
               if dx * dx + dy * dy <= radius * radius]
    square = width if len(offsets) == (2 * width + 1) ** 2 else -1
    return (np.array([o[0] for o in offsets], np.int64),
            np.array([o[1] for o in offsets], np.int64), square)


def _footprint_halfwidths(radius: float) -> np.ndarray:
    """crrej_loop's neighbourhood as one run of columns ±w per row offset −r … r.

    The disc is convex, so the offsets of :func:`_footprint` on each row are contiguous.
    """
    dys, dxs, _ = _footprint(radius)
    width = int(radius + 1e-5)
    return np.array([int(np.abs(dxs[dys == dy]).max()) for dy in range(-width, width + 1)],
                    np.int64)


def _images(stack, dq) -> tuple:
    """``(stack, dq)`` as C-contiguous float32 / uint16 arrays (n, ny, nx) or, when given
    as sequences of 2-D images, as tuples of them (no stacked copy is made)."""
    if isinstance(stack, np.ndarray) or isinstance(dq, np.ndarray):
        return (np.ascontiguousarray(stack, dtype=np.float32),
                np.ascontiguousarray(dq, dtype=np.uint16))
    images = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in stack)
    flags = tuple(np.ascontiguousarray(a, dtype=np.uint16) for a in dq)
    shapes = {a.shape for a in images + flags}
    if len(shapes) > 1 or any(len(shape) != 2 for shape in shapes):
        raise ValueError(f"stack and dq must hold 2-D images of one shape, got "
                         f"{[a.shape for a in images]} and {[a.shape for a in flags]}")
    return images, flags


def crreject(stack: np.ndarray, dq: np.ndarray, *, exptimes, read_noise_dn, gains,
             params: CRRejectParams = CRRejectParams(),
             scale_by_exptime: bool = True) -> CRRejectResult:
    """Reject cosmic rays in a stack of images of one scene.

    Parameters
    ----------
    stack : ndarray, shape (n, ny, nx), or sequence of n 2-D images
        Bias-level-subtracted images in DN (float32 preferred; not modified).  A
        sequence of C-contiguous float32 images is used as it is, not stacked.
    dq : ndarray, shape (n, ny, nx), or sequence of n 2-D images
        Input data-quality flags (uint16 preferred; not modified).
    exptimes : sequence of float
        EXPTIME of each image.  All zero (biases) means equal weights.
    read_noise_dn : sequence of float
        Read noise of each image in DN (READNSE / ATODGAIN).
    gains : sequence of float
        ATODGAIN of each image, e⁻/DN.
    params : CRRejectParams
        Rejection parameters.
    scale_by_exptime : bool
        Weight by EXPTIME (ocrreject's behaviour); ``False`` gives equal weights.

    Returns
    -------
    CRRejectResult
    """
    if isinstance(stack, np.ndarray) or isinstance(dq, np.ndarray):
        stack = np.asarray(stack)
        dq = np.asarray(dq)
        if stack.ndim != 3:
            raise ValueError(f"stack must be 3-D (n, ny, nx), got shape {stack.shape}")
        if dq.shape != stack.shape:
            raise ValueError(f"dq shape {dq.shape} differs from stack shape {stack.shape}")
    elif len(dq) != len(stack):
        raise ValueError(f"{len(dq)} dq images for {len(stack)} images")
    n = len(stack)
    if n < 2:
        raise ValueError(f"cosmic-ray rejection needs at least 2 images, got {n}")
    exptimes = np.asarray(exptimes, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    rn2 = np.asarray(read_noise_dn, dtype=np.float64) ** 2
    for name, arr in (("exptimes", exptimes), ("gains", gains), ("read_noise_dn", rn2)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have one value per image ({n}), got {arr.shape}")
    if np.any(gains <= 0):
        raise ValueError(f"gains must be positive, got {gains.tolist()}")
    if np.any(exptimes < 0):
        raise ValueError("exposure times must not be negative")
    nzero = int(np.count_nonzero(exptimes == 0))
    if scale_by_exptime and 0 < nzero < n:
        raise ValueError("some (but not all) input images have zero exposure time")

    exptot = float(exptimes.sum())
    if scale_by_exptime and exptot > 0:
        efac = exptimes.copy()
        texpt = exptot
    else:
        efac = np.ones(n)
        texpt = float(n)

    stack, dq = _images(stack, dq)
    sky = sky_modes(stack, dq) if params.skysub == "mode" else np.zeros(n)
    if n <= SMALL_N_MAX:
        sci, err, dq_out, masks = _reject_few(stack, dq, sky, efac, rn2, gains, texpt, params)
    else:
        if isinstance(stack, tuple):
            stack, dq = np.stack(stack), np.stack(dq)
        sci, err, dq_out, masks = _reject_many(stack, dq, sky, efac, rn2, gains, texpt, params)
    return CRRejectResult(
        sci=sci,
        err=err,
        dq=dq_out,
        masks=masks,
        sky=sky,
        efac=efac,
        texptime=exptot,
        n_rejected=int(np.count_nonzero(masks)),
        params=params,
    )


def _reject_many(stack, dq, sky, efac, rn2, gains, texpt, params):
    """crrej_loop.c over the whole stack once per iteration (``_crreject_kernels``):
    hits of up to 64 images per 64-bit word, the median a sorting network over rows."""
    n, ny, nx = stack.shape
    scale = params.scalense / 100.0
    ave = np.empty((ny, nx), np.float32)
    avevar = np.empty((ny, nx), np.float32)
    pairs, size = _k.sort_network(n)
    dys, dxs, square = _footprint(params.crradius)
    psig2 = params.crthresh ** 2 if params.crthresh > 0 else -1.0
    nwords = (n + 63) // 64
    hits = np.empty((2, nwords, ny, nx), np.uint64)  # double-buffered: iteration i and i+1
    spill_ok = np.empty_like(hits)
    excluded = np.empty((nwords, ny, nx), np.uint64)
    masks = np.zeros(stack.shape, dtype=bool)
    sumvar = np.zeros((ny, nx), np.float32)
    efacsum = np.zeros((ny, nx), np.float32)
    rejected_all = np.zeros((ny, nx), dtype=bool)
    sigmas = params.crsigmas
    _k.first_pass(stack, dq, sky, efac, rn2, gains, scale, params.initgues == "median", pairs,
                  size, params.badinpdq, sigmas[0] ** 2, psig2, ave, avevar, excluded,
                  hits[0], spill_ok[0])
    for it in range(1, len(sigmas)):
        cur, nxt = (it - 1) % 2, it % 2
        _k.next_pass(stack, hits[cur], spill_ok[cur], excluded, dys, dxs, square, sky, efac,
                     rn2, gains, scale, params.fillval, sigmas[it] ** 2, psig2, ave, avevar,
                     masks, sumvar, efacsum, rejected_all, hits[nxt], spill_ok[nxt])
    cur = (len(sigmas) - 1) % 2
    _k.last_pass(stack, hits[cur], spill_ok[cur], excluded, dys, dxs, square, sky, efac, rn2,
                 gains, scale, params.fillval, ave, masks, sumvar, efacsum, rejected_all)
    del hits, spill_ok, excluded

    used = efacsum > 0
    err = np.full((ny, nx), np.float32(params.fillval), np.float32)
    np.sqrt(sumvar, out=sumvar)
    np.divide(sumvar, efacsum, out=err, where=used)
    err[used] *= np.float32(texpt)
    sci = ave * np.float32(texpt)
    sci += np.float32(sky.sum())
    crflag = np.uint16(params.crflag)
    dq_out = np.bitwise_or.reduce(dq, axis=0).astype(np.uint16) & np.uint16(~params.crflag & 0xFFFF)
    dq_out |= np.where(rejected_all, crflag, np.uint16(0))
    return sci, err, dq_out, masks


def _reject_few(stack, dq, sky, efac, rn2, gains, texpt, params, nchunks=None):
    """The same rejection for 2 ≤ n ≤ SMALL_N_MAX images (``_crreject_small``): one
    pipelined sweep over rows, hits as bits of a byte, outputs formed in the sweep.

    ``nchunks``: row chunks run in parallel (default: one per numba thread); the
    results do not depend on it."""
    # as a tuple of 2-D images (views of a 3-D stack): numba then keeps each image's
    # rows in registers, and there is one compiled kernel for either form of input
    stack, dq = tuple(stack), tuple(dq)
    n = len(stack)
    ny, nx = stack[0].shape
    pairs, size = _k.sort_network(n)
    halfwidths = _footprint_halfwidths(params.crradius)
    psig2 = params.crthresh ** 2 if params.crthresh > 0 else -1.0
    sig2s = np.array([s ** 2 for s in params.crsigmas], np.float64)
    masks = np.empty((n, ny, nx), dtype=bool)
    sci = np.empty((ny, nx), np.float32)
    err = np.empty((ny, nx), np.float32)
    dq_out = np.empty((ny, nx), np.uint16)
    nchunks = max(1, min(ny, nchunks or numba.get_num_threads()))
    _small.reject_rows(stack, dq, sky, efac, rn2, gains, params.scalense / 100.0,
                       params.initgues == "median", pairs, size, params.badinpdq, sig2s, psig2,
                       halfwidths, params.fillval, texpt, float(sky.sum()), params.crflag,
                       nchunks, masks, sci, err, dq_out)
    return sci, err, dq_out, masks
