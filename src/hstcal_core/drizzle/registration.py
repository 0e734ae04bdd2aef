"""Registration check: how far each exposure sits from the others on the product grid.

hstcal's addition to runastrodriz's verification (see :mod:`.verify` for why): each
exposure's single image, reduced to its sources (background-subtracted, above 3σ of the
sky, inside the region every exposure covers), is cross-correlated by FFT with the
EXPTIME-weighted sum of the other exposures' images, and the peak is refined to
sub-pixel precision by a parabola in each axis.  A well-registered set gives offsets of
a few hundredths of a pixel; a misregistered exposure shows its offset directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["registration_offsets"]


def registration_offsets(singles: Mapping[str, np.ndarray], exptimes: Sequence[float],
                         total_mask: np.ndarray, *, max_size: int = 512
                         ) -> dict[str, tuple[float, float]]:
    """Offset (dx, dy), product pixels, of each single image from the others.

    Each single image (background-subtracted, clipped at 0, inside the region the most
    exposures cover) is cross-correlated (FFT) with the EXPTIME-weighted sum of the
    others; the peak is refined to sub-pixel by a parabola in each axis.  A central
    window of at most ``max_size``² is used (stars everywhere register the same).
    """
    names = list(singles)
    if len(names) < 2:
        return {}
    region = total_mask == total_mask.max()
    yr, xr = np.nonzero(region)
    if yr.size == 0:
        return {}
    cy, cx = (int(yr.min()) + int(yr.max())) // 2, (int(xr.min()) + int(xr.max())) // 2
    hy = min((int(yr.max()) - int(yr.min())) // 2, max_size // 2)
    hx = min((int(xr.max()) - int(xr.min())) // 2, max_size // 2)
    window = (slice(cy - hy, cy + hy), slice(cx - hx, cx + hx))
    inside = region[window]
    weights = np.asarray(exptimes, dtype=np.float64)
    clean = []
    for name in names:
        data = np.nan_to_num(np.asarray(singles[name][window], dtype=np.float64), nan=0.0)
        good = inside & (data != 0)
        level = np.median(data[good]) if good.any() else 0.0
        noise = 1.4826 * np.median(np.abs(data[good] - level)) if good.any() else 0.0
        # sources only: noise correlates with nothing, but weighs on the peak
        clean.append(np.where(inside & (data > level + 3.0 * noise), data - level, 0.0))
    total = sum(w * c for w, c in zip(weights, clean))
    offsets = {}
    for k, name in enumerate(names):
        others = total - weights[k] * clean[k]
        offsets[name] = _correlation_shift(clean[k], others)
    return offsets


def _correlation_shift(image: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(dx, dy) that moves ``reference`` onto ``image`` (cross-correlation peak)."""
    if not image.any() or not reference.any():
        return (np.nan, np.nan)
    from scipy import fft

    shape = [fft.next_fast_len(n + m - 1, real=True) for n, m in zip(image.shape,
                                                                      reference.shape)]
    spectrum = fft.rfft2(image, shape) * np.conj(fft.rfft2(reference, shape))
    corr = fft.irfft2(spectrum, shape)
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)

    def refine(axis: int) -> float:
        n = corr.shape[axis]
        i = peak[axis]
        idx = [list(peak), list(peak), list(peak)]
        idx[0][axis], idx[2][axis] = (i - 1) % n, (i + 1) % n
        left, centre, right = (corr[tuple(j)] for j in idx)
        denom = left - 2.0 * centre + right
        frac = 0.5 * (left - right) / denom if denom != 0 else 0.0
        value = i + frac
        return value - n if value > n / 2 else value

    return float(refine(1)), float(refine(0))
