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

Only images are looped over; every per-pixel operation is a numpy array operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CRRejectParams", "CRRejectResult", "crreject", "sky_mode", "histogram_mode"]

CR_FLAG = 8192  # DATAREJECT, stisdq.h


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
    hist = np.bincount(idx, minlength=nbins)[:nbins].astype(np.float64)
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
    dh1 = hist[peak] - hist[peak - 1]
    dh2 = hist[peak] - hist[peak + 1]
    denom = dh1 + dh2
    if abs(denom) < 1e-20:
        return hmin + peak + 0.5
    return hmin + (peak + 1 + 0.5 * (dh1 - dh2) / denom) - 0.5


def sky_mode(sci: np.ndarray, dq: np.ndarray) -> float:
    """Sky level of one image: histogram mode of its pixels with DQ == 0."""
    if not dq.any():
        return histogram_mode(sci)
    return histogram_mode(sci[dq == 0])


def _footprint_offsets(radius: float) -> tuple[list[tuple[int, int]], int, bool]:
    """Offsets within ``radius`` (crrej_loop's disk), its half-width, and whether it is a square."""
    width = int(radius + 1e-5)
    offsets = [(dy, dx) for dy in range(-width, width + 1) for dx in range(-width, width + 1)
               if dx * dx + dy * dy <= radius * radius]
    return offsets, width, len(offsets) == (2 * width + 1) ** 2


def _dilate(mask: np.ndarray, offsets, width: int, square: bool, out: np.ndarray) -> np.ndarray:
    """Binary dilation by shifted-slice ORs (a square footprint is done separably)."""
    if square:
        out[...] = mask
        for d in range(1, width + 1):
            out[d:] |= mask[:-d]
            out[:-d] |= mask[d:]
        rows = out.copy()
        for d in range(1, width + 1):
            out[:, d:] |= rows[:, :-d]
            out[:, :-d] |= rows[:, d:]
        return out
    out[...] = False
    ny, nx = mask.shape
    for dy, dx in offsets:
        ys, yd = (slice(0, ny - dy), slice(dy, ny)) if dy >= 0 else (slice(-dy, ny), slice(0, ny + dy))
        xs, xd = (slice(0, nx - dx), slice(dx, nx)) if dx >= 0 else (slice(-dx, nx), slice(0, nx + dx))
        out[yd, xd] |= mask[ys, xs]
    return out


def _median_guess(stack, sky, efac, chunk_rows=32):
    """Per-pixel median of (stack - sky)/efac, in row chunks of contiguous pixel vectors."""
    n, ny, nx = stack.shape
    ave = np.empty((ny, nx), np.float32)
    uniform = np.all(sky == sky[0]) and np.all(efac == efac[0])
    shift = sky.astype(np.float32)[:, None]
    inv = (1.0 / efac).astype(np.float32)[:, None]
    mid = n // 2
    kth = [mid] if n % 2 else [mid - 1, mid]
    for r0 in range(0, ny, chunk_rows):
        r1 = min(ny, r0 + chunk_rows)
        block = stack[:, r0:r1].reshape(n, -1)
        if not uniform:
            block = (block - shift) * inv
        vectors = np.ascontiguousarray(block.T)
        vectors.partition(kth, axis=1)
        if n % 2:
            med = vectors[:, mid]
        else:
            med = (vectors[:, mid - 1] + vectors[:, mid]) * np.float32(0.5)
        ave[r0:r1] = med.reshape(r1 - r0, nx)
    if uniform:
        ave -= np.float32(sky[0])
        ave *= np.float32(1.0 / efac[0])
    return ave


def _minimum_guess(stack, sky, efac, rn2, gains, scale):
    """Minimum of the scaled stack and the variance of the image that supplied it."""
    n = stack.shape[0]
    ave = avevar = None
    for k in range(n):
        raw = stack[k]
        val = (raw - np.float32(sky[k])) * np.float32(1.0 / efac[k])
        var = (np.float32(rn2[k]) + np.maximum(raw, 0) * np.float32(1.0 / gains[k])
               + (np.float32(scale) * np.maximum(raw - np.float32(sky[k]), 0)) ** 2
               ) * np.float32(1.0 / efac[k] ** 2)
        if k == 0:
            ave, avevar = val, var
        else:
            lower = val < ave
            ave[lower] = val[lower]
            avevar[lower] = var[lower]
    return ave, avevar


def crreject(stack: np.ndarray, dq: np.ndarray, *, exptimes, read_noise_dn, gains,
             params: CRRejectParams = CRRejectParams(),
             scale_by_exptime: bool = True) -> CRRejectResult:
    """Reject cosmic rays in a stack of images of one scene.

    Parameters
    ----------
    stack : ndarray, shape (n, ny, nx)
        Bias-level-subtracted images in DN (float32 preferred; not modified).
    dq : ndarray, shape (n, ny, nx)
        Input data-quality flags (not modified).
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
    stack = np.asarray(stack)
    dq = np.asarray(dq)
    if stack.ndim != 3:
        raise ValueError(f"stack must be 3-D (n, ny, nx), got shape {stack.shape}")
    n = stack.shape[0]
    if n < 2:
        raise ValueError(f"cosmic-ray rejection needs at least 2 images, got {n}")
    if dq.shape != stack.shape:
        raise ValueError(f"dq shape {dq.shape} differs from stack shape {stack.shape}")
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

    if params.skysub == "mode":
        sky = np.array([sky_mode(stack[k], dq[k]) for k in range(n)])
    else:
        sky = np.zeros(n)

    scale = params.scalense / 100.0
    if params.initgues == "median":
        ave, avevar = _median_guess(stack, sky, efac), None
    else:
        ave, avevar = _minimum_guess(stack, sky, efac, rn2, gains, scale)
    offsets, width, square = _footprint_offsets(params.crradius)
    use_spill = len(offsets) > 1
    psig2 = np.float32(params.crthresh ** 2 if params.crthresh > 0 else -1.0)
    shape = ave.shape
    masks = np.zeros(stack.shape, dtype=bool)
    crflag = np.uint16(params.crflag)
    dq_out = np.bitwise_or.reduce(dq, axis=0).astype(np.uint16) & np.uint16(~params.crflag & 0xFFFF)
    rejected_all = np.ones(shape, dtype=bool)
    sumvar = np.zeros(shape, np.float32)
    total = np.empty(shape, np.float32)
    efacsum = np.empty(shape, np.float32)
    # work buffers reused for every image (float32 throughout, NEP 50-safe scalars)
    pic = np.empty(shape, np.float32)
    dev2 = np.empty(shape, np.float32)
    thresh = np.empty(shape, np.float32)
    spthresh = np.empty(shape, np.float32) if scale > 0 else thresh
    noise_term = np.empty(shape, np.float32) if scale > 0 else None
    dev_limit = np.empty(shape, np.float32)
    hit = np.empty(shape, bool)
    near = np.empty(shape, bool)
    good = np.empty(shape, bool)
    n_rejected = 0
    niter = len(params.crsigmas)

    for it, sigma in enumerate(params.crsigmas):
        last = it == niter - 1
        total[...] = 0
        efacsum[...] = 0
        for k in range(n):
            e = np.float32(efac[k])
            s = np.float32(sky[k])
            np.subtract(stack[k], s, out=pic)               # raw - sky = pic·efac
            np.multiply(pic, np.float32(1.0 / efac[k]), out=dev2)
            dev2 -= ave
            np.square(dev2, out=dev2)
            if params.initgues == "minimum" and it == 0:
                np.multiply(avevar, np.float32(sigma * sigma), out=thresh)
            else:
                # sig²·(rn² + max(ave·efac+sky, 0)/g [+ (scalense·max(ave·efac, 0))²]) / efac²
                c = np.float32(sigma * sigma / efac[k] ** 2)
                np.multiply(ave, e, out=thresh)
                if scale > 0:
                    np.maximum(thresh, 0, out=noise_term)
                    noise_term *= np.float32(scale)
                    np.square(noise_term, out=noise_term)
                thresh += s
                np.maximum(thresh, 0, out=thresh)
                thresh *= np.float32(1.0 / gains[k])
                thresh += np.float32(rn2[k])
                if scale > 0:
                    np.multiply(thresh, c, out=spthresh)  # neighbours: without scalense
                    thresh += noise_term
                thresh *= c
            np.greater(dev2, thresh, out=hit)
            exclude = (dq[k] & params.badinpdq) != 0 if params.badinpdq else None
            if exclude is not None:
                hit &= ~exclude
            if use_spill and hit.any():
                _dilate(hit, offsets, width, square, out=near)
                np.multiply(spthresh, psig2, out=dev_limit)
                np.greater(dev2, dev_limit, out=good)
                near &= good
                near |= hit                              # the CR mask of this image
                crmask = near
            else:
                crmask = hit
            np.logical_not(crmask, out=good)
            if exclude is not None:
                good &= ~exclude
            if last:
                masks[k] = crmask
                rejected_all &= crmask
                n_rejected += int(np.count_nonzero(crmask))
                # variance of the kept pixels: rn² + max(raw,0)/g + (scalense·max(raw,0))²
                value = np.maximum(pic + s, 0)
                var = value * np.float32(1.0 / gains[k])
                var += np.float32(rn2[k])
                if scale > 0:
                    var += (np.float32(scale) * value) ** 2
                np.add(sumvar, var, out=sumvar, where=good)
            np.add(total, pic, out=total, where=good)
            np.add(efacsum, e, out=efacsum, where=good)
        used = efacsum > 0
        np.divide(total, efacsum, out=total, where=used)
        if last:
            ave = np.where(used, total, np.float32(params.fillval)).astype(np.float32)
        else:
            np.copyto(ave, total, where=used)

    used = efacsum > 0
    err = np.full(shape, np.float32(params.fillval), np.float32)
    np.sqrt(sumvar, out=sumvar)
    np.divide(sumvar, efacsum, out=err, where=used)
    err[used] *= np.float32(texpt)
    sci = ave * np.float32(texpt)
    sci += np.float32(sky.sum())
    dq_out |= np.where(rejected_all, crflag, np.uint16(0))
    return CRRejectResult(
        sci=sci,
        err=err,
        dq=dq_out.astype(np.uint16),
        masks=masks,
        sky=sky,
        efac=efac,
        texptime=exptot,
        n_rejected=n_rejected,
        params=params,
    )
