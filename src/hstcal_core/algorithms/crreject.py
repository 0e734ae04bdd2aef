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
   ``err = sqrt(Σvar)/Σefac_used · Σefac``; DQ is the OR of the inputs plus 8192
   where a pixel was rejected in every image; one CR mask per input.

Only images are looped over; every per-pixel operation is a numpy array operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

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
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return 0.0
    amin = min(float(values.min()), 0.0)
    lo = -1000 if amin < -1000 else int(amin) - 1
    mean = float(values.mean())
    hi = 1 if mean <= 0 else int(mean + 1.0) * 2
    nbins = hi - lo + 1
    idx = np.trunc(values).astype(np.int64) - lo
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
    good = sci[dq == 0]
    return histogram_mode(good)


def _disk(radius: float) -> np.ndarray:
    width = int(radius + 1e-5)
    yy, xx = np.mgrid[-width:width + 1, -width:width + 1]
    return (xx * xx + yy * yy) <= radius * radius


def _initial_guess(stack, sky, efac, rn2, gains, scale, how, chunk_rows=64):
    """Median or minimum of the sky-subtracted, exposure-scaled stack (crrej_init)."""
    n, ny, nx = stack.shape
    ave = np.empty((ny, nx), np.float32)
    avevar = None
    if how == "median":
        shift = sky.astype(np.float32)[:, None, None]
        scl = efac.astype(np.float32)[:, None, None]
        for r0 in range(0, ny, chunk_rows):  # chunked: peak memory stays a few MB
            block = (stack[:, r0:r0 + chunk_rows] - shift) / scl
            ave[r0:r0 + chunk_rows] = np.median(block, axis=0)
        return ave, None
    avevar = np.empty((ny, nx), np.float32)
    for k in range(n):
        raw = stack[k]
        val = (raw - sky[k]) / efac[k]
        var = (rn2[k] + np.maximum(raw, 0) / gains[k]
               + (scale * np.maximum(raw - sky[k], 0)) ** 2) / efac[k] ** 2
        if k == 0:
            ave[...] = val
            avevar[...] = var
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
    ave, avevar = _initial_guess(stack, sky, efac, rn2, gains, scale, params.initgues)
    footprint = _disk(params.crradius)
    use_spill = footprint.size > 1
    psig2 = params.crthresh ** 2 if params.crthresh > 0 else -1.0
    masks = np.zeros(stack.shape, dtype=bool)
    dq_out = np.bitwise_or.reduce(dq, axis=0).astype(np.uint16) & np.uint16(~CR_FLAG & 0xFFFF)
    rejected_all = np.ones(ave.shape, dtype=bool)
    sumvar = np.zeros(ave.shape, np.float64)
    n_rejected = 0
    niter = len(params.crsigmas)

    for it, sigma in enumerate(params.crsigmas):
        sig2 = sigma * sigma
        last = it == niter - 1
        total = np.zeros(ave.shape, np.float64)
        efacsum = np.zeros(ave.shape, np.float64)
        for k in range(n):
            pic = (stack[k] - np.float32(sky[k])) / np.float32(efac[k])
            dev2 = (pic - ave) ** 2
            if params.initgues == "minimum" and it == 0:
                thresh = sig2 * avevar
                spthresh = thresh
            else:
                model = ave * np.float32(efac[k]) + np.float32(sky[k])
                val = np.maximum(model, 0)
                base = rn2[k] + val / gains[k]
                spthresh = (sig2 / efac[k] ** 2) * base
                if scale > 0:
                    pixsky = np.maximum(model - sky[k], 0)
                    thresh = (sig2 / efac[k] ** 2) * (base + (scale * pixsky) ** 2)
                else:
                    thresh = spthresh
            exclude = (dq[k] & params.badinpdq) != 0 if params.badinpdq else None
            hit = dev2 > thresh
            if exclude is not None:
                hit &= ~exclude
            if use_spill and hit.any():
                near = ndimage.binary_dilation(hit, structure=footprint)
                spill = near & (dev2 > psig2 * spthresh)
                crmask = hit | spill
            else:
                crmask = hit
            good = ~crmask if exclude is None else ~(crmask | exclude)
            total += np.where(good, pic * np.float32(efac[k]), 0)
            efacsum += good * efac[k]
            if last:
                masks[k] = crmask
                value = np.maximum(pic * np.float32(efac[k]) + np.float32(sky[k]), 0)
                var = rn2[k] + value / gains[k] + (scale * value) ** 2
                sumvar += np.where(good, var, 0)
                rejected_all &= crmask
                n_rejected += int(np.count_nonzero(crmask))
        used = efacsum > 0
        np.divide(total, efacsum, out=total, where=used)
        ave = np.where(used, total, params.fillval if last else ave).astype(np.float32)

    err = np.full(ave.shape, params.fillval, np.float64)
    np.divide(np.sqrt(sumvar), efacsum, out=err, where=efacsum > 0)
    err = np.where(efacsum > 0, err * texpt, params.fillval)
    sci = ave.astype(np.float64) * texpt + float(sky.sum())
    dq_out |= np.where(rejected_all, np.uint16(CR_FLAG), np.uint16(0))
    return CRRejectResult(
        sci=sci.astype(np.float32),
        err=err.astype(np.float32),
        dq=dq_out.astype(np.uint16),
        masks=masks,
        sky=sky,
        efac=efac,
        texptime=exptot,
        n_rejected=n_rejected,
        params=params,
    )
