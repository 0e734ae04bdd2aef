"""Cosmic-ray masks and their connected components, as HSTcosmicrays makes them.

Two ways to say which pixels a cosmic ray hit, then one labelling:

* :func:`dq_mask`: the DQ array of a CR-rejected (``crj``/``flt``) dark; a CR pixel has
  bit 8192 set and bit 4 (bad detector pixel) clear (HSTcosmicrays
  ``pipeline/label/labeler.py``, ``Label.ccd_labeling(use_dq=True)``).
* :func:`threshold_mask`: a single image, pixels above ``|median| + nsigma·MAD``
  (the same method's ``use_dq=False`` branch).
* :func:`label_crs`: 8-connected components with the size cut of Miles et al. (2021,
  "The Hubble Space Telescope cosmic-ray census"): 1–2 pixel events are dropped as
  noise/hot-pixel residue and huge ones as artefacts (``threshold_l=2``,
  ``threshold_u=1e5`` in HSTcosmicrays ``pipeline/pipeline.py``).

Arrays in, arrays out; inputs are never modified.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from scipy import ndimage

__all__ = ["EIGHT_CONNECTED", "LabelResult", "dq_mask", "label_crs", "threshold_mask"]

_log = logging.getLogger(__name__)

#: 3×3 structuring element: diagonal neighbours belong to the same object (HSTcosmicrays'
#: default ``structure_element``), so a CR crossing pixels corner to corner stays one.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class LabelResult(NamedTuple):
    """Connected cosmic-ray objects after the size cut.

    Attributes
    ----------
    labels : ndarray of int32
        Label image: 0 = background, kept objects numbered ``1 .. n`` in the order
        ``scipy.ndimage.label`` found them (raster order of their first pixel).
    n : int
        Objects kept.
    n_cut_small : int
        Objects removed for having fewer than ``min_size`` pixels.
    n_cut_large : int
        Objects removed for having ``max_size`` pixels or more.
    sizes : ndarray of int64
        Pixels of each kept object: ``sizes[i]`` belongs to label ``i + 1`` (shape ``(n,)``).
    """

    labels: np.ndarray
    n: int
    n_cut_small: int
    n_cut_large: int
    sizes: np.ndarray


def dq_mask(dq: np.ndarray, cr_bit: int = 8192, exclude_bit: int = 4) -> np.ndarray:
    """Pixels a CR rejection flagged, ignoring bad detector pixels.

    Parameters
    ----------
    dq : ndarray of int
        Data-quality array (any integer dtype, signed FITS ``int16`` included).
    cr_bit : int
        DQ value marking a cosmic ray (8192 for ACS, WFC3/UVIS, STIS and WFPC2 after
        calacs/calwf3/calstis CR rejection).
    exclude_bit : int
        DQ value whose pixels are never CRs (4 = bad detector pixel); 0 excludes nothing.

    Returns
    -------
    ndarray of bool
        True where ``dq & cr_bit`` is set and ``dq & exclude_bit`` is clear.  A hot
        pixel hit by a CR (8192 + 16) counts, as in HSTcosmicrays' bitwise comparison.

    Raises
    ------
    TypeError
        If ``dq`` is not an integer array.
    ValueError
        If ``cr_bit`` is not positive or ``exclude_bit`` is negative.
    """
    dq = np.asarray(dq)
    if not np.issubdtype(dq.dtype, np.integer):
        raise TypeError(f"dq must be an integer array, got dtype {dq.dtype}")
    if int(cr_bit) <= 0:
        raise ValueError(f"cr_bit must be a positive DQ value, got {cr_bit!r}")
    if int(exclude_bit) < 0:
        raise ValueError(f"exclude_bit must be >= 0, got {exclude_bit!r}")
    if int(cr_bit) > np.iinfo(dq.dtype).max:
        return np.zeros(dq.shape, dtype=bool)  # the dtype cannot hold the flag
    cr = (dq & dq.dtype.type(cr_bit)) != 0
    if exclude_bit and int(exclude_bit) <= np.iinfo(dq.dtype).max:
        cr &= (dq & dq.dtype.type(exclude_bit)) == 0
    return cr


def threshold_mask(image: np.ndarray, nsigma: float = 5.0, *, min_mad: float = 0.2) -> np.ndarray:
    """Pixels above ``|median| + nsigma · MAD`` of the image.

    HSTcosmicrays' ``ccd_labeling(use_dq=False)`` thresholds one frame this way.  The MAD
    is astropy's ``median_absolute_deviation``: **unscaled**, ``median(|x − median(x)|)``,
    i.e. 0.6745 σ for Gaussian noise, so the default 5·MAD is a 3.37 σ cut (a one-sided
    Gaussian tail of 3.7e-4).  We keep that convention so thresholds and counts compare
    with the published census; pass ``nsigma / 0.6745`` for a cut in σ.

    Differences from the anchor, both deliberate:

    * the anchor's median is astropy's 3σ-clipped median and its image has negative
      pixels already set to 0 (``Label.get_data``); we use the plain median of the finite
      pixels and do not clip.  With a few per cent of CR pixels the two medians differ by
      a small fraction of the noise, and clipping negatives to 0 would bias the MAD of a
      bias-subtracted frame (half its pixels become exactly 0).
    * non-finite pixels are ignored in the statistics and never flagged.

    Parameters
    ----------
    image : ndarray
        2-D image, electrons.
    nsigma : float
        Threshold in MADs (> 0).
    min_mad : float
        When the MAD is below this (short exposures, where most pixels read ~0), the
        3σ-clipped standard deviation replaces it, as in the anchor (0.2).

    Returns
    -------
    ndarray of bool
        True where ``image > |median| + nsigma · MAD`` (strictly).

    Raises
    ------
    ValueError
        For a non-2-D image, a non-positive ``nsigma`` or an image without finite pixels.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    if not np.isfinite(nsigma) or nsigma <= 0:
        raise ValueError(f"nsigma must be finite and > 0, got {nsigma!r}")
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    finite = np.isfinite(image)
    values = image[finite] if not finite.all() else image.ravel()
    if values.size == 0:
        raise ValueError("image has no finite pixels to compute a threshold from")
    median = float(np.median(values))
    spread = float(np.median(np.abs(values - values.dtype.type(median))))
    if spread < min_mad:
        # Anchor: "For short exposures the median absolute deviation can be very close to
        # zero. If it is less than 1/5, set its value to the regular std" (3σ-clipped).
        from astropy.stats import sigma_clipped_stats

        spread = float(sigma_clipped_stats(values, sigma=3.0)[2])
        _log.debug("MAD below %g; using the clipped standard deviation %g", min_mad, spread)
    threshold = abs(median) + nsigma * spread
    _log.debug("threshold mask: median %g, spread %g, threshold %g", median, spread, threshold)
    return image > threshold


def label_crs(mask: np.ndarray, *, min_size: int = 3, max_size: int = 100_000) -> LabelResult:
    """8-connected components of ``mask``, keeping ``min_size ≤ size < max_size``.

    The size cut is HSTcosmicrays' ``(sizes > threshold_l) & (sizes < threshold_u)``
    with its census values ``threshold_l = 2``, ``threshold_u = 1e5`` (Miles et al. 2021).
    The anchor labels twice (before and after the cut); here the kept objects are
    renumbered ``1 .. n`` through a lookup table applied to the flagged pixels only.

    Parameters
    ----------
    mask : ndarray of bool
        2-D mask of CR pixels (anything non-zero counts).
    min_size : int
        Smallest object kept, pixels (≥ 1).
    max_size : int
        Objects of this many pixels or more are dropped (> ``min_size``).

    Returns
    -------
    LabelResult
        ``labels`` (int32), ``n``, ``n_cut_small``, ``n_cut_large``, ``sizes``.

    Raises
    ------
    ValueError
        For a non-2-D mask or inconsistent size limits.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if int(min_size) != min_size or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    if int(max_size) != max_size or max_size <= min_size:
        raise ValueError(f"max_size must be an integer > min_size ({min_size}), got {max_size!r}")
    if mask.dtype != bool:
        mask = mask != 0
    labels, n_found = ndimage.label(mask, structure=EIGHT_CONNECTED, output=np.int32)
    # Only flagged pixels are touched from here on: a CR mask is a few per cent of a chip,
    # and flatnonzero on a bool array is ~8× faster than on the int32 label image.
    flagged = np.flatnonzero(mask)
    flat_labels = labels.reshape(-1)  # a view: ndimage.label's output is C-contiguous
    found = flat_labels[flagged]
    sizes = np.bincount(found, minlength=n_found + 1)
    sizes[0] = 0
    small = sizes[1:] < min_size
    large = sizes[1:] >= max_size
    n_small, n_large = int(np.count_nonzero(small)), int(np.count_nonzero(large))
    if n_small or n_large:
        keep = np.concatenate(([False], ~(small | large)))
        renumber = np.zeros(n_found + 1, dtype=np.int32)
        renumber[keep] = np.arange(1, int(np.count_nonzero(keep)) + 1, dtype=np.int32)
        flat_labels[flagged] = renumber[found]
        kept_sizes = sizes[keep]
    else:
        kept_sizes = sizes[1:]
    return LabelResult(labels=labels, n=int(kept_sizes.size), n_cut_small=n_small,
                       n_cut_large=n_large, sizes=kept_sizes.astype(np.int64, copy=False))
