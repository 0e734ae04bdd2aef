"""Per-cosmic-ray statistics of a labelled image, for the census (Miles et al. 2021).

HSTcosmicrays (``pipeline/stat_utils/statshandler.py``, class ``Stats``) measures, for each
CR: the energy deposited ``I0 = Σ p``, the charge-weighted centroid, the second moments
``Ixx, Iyy, Ixy`` about it (divided by ``I0``), the width ``sqrt((Ixx + Iyy) / 2)`` ("size in
sigmas"), the symmetry ``sqrt(((Ixx − Iyy)² + 4 Ixy²) / (Ixx + Iyy)²)`` ("shape") and the
pixel list.  It loops in Python over ``ndimage.find_objects`` and every pixel of each
bounding box.  Here every statistic is a handful of ``np.bincount`` reductions over the
flagged pixels only (a few per cent of a chip), so a 4096×4096 chip with ~10⁴ CRs costs
tens of milliseconds and no full-size float copy.

Conventions (also in :data:`hstcal_core.census.records.CR_COLUMNS`):

* coordinates are 0-based array indices, ``y`` = row, ``x`` = column, pixel centres at
  integers.  (The anchor's ``I_rr[0]`` is the row moment, i.e. ``Iyy``, despite its name;
  width and symmetry do not depend on the naming.)
* ``energy_e`` sums the pixel values as given (electrons).  The centroid and the moments
  weight each pixel by its value **clipped at 0**: a DQ-flagged pixel can read below 0
  after bias/dark subtraction, and a negative weight can put the centroid outside the CR
  or make a second moment negative.  The moments are divided by the sum of those weights,
  which equals ``energy_e`` when no pixel of the CR is negative — always the case in the
  anchor, which sets negative pixels to 0 before measuring (``Label.get_data``).
* a CR whose pixels are all ≤ 0 (or non-finite) is weighted uniformly: its centroid is the
  geometric centre.  Non-finite pixel values propagate into ``energy_e`` but carry no
  weight in the moments.
* a single pixel (or any CR whose weight sits in one pixel) has zero moments, width 0 and
  symmetry 0 (round).  A label in ``1 .. n`` with no pixels gets ``size_px = 0``,
  ``energy_e = 0`` and NaN for everything else.
"""

from __future__ import annotations

import numpy as np

from ._crstats_kernels import wing_energy

__all__ = ["STAT_COLUMNS", "cr_statistics", "energy_with_wings", "incident_rate",
           "integration_time", "pixel_lists"]

#: Columns returned by :func:`cr_statistics`: CR_COLUMNS without ``imset`` (the caller's).
STAT_COLUMNS: tuple[str, ...] = ("energy_e", "size_px", "width_sigma", "symmetry",
                                 "centroid_y", "centroid_x", "ixx", "iyy", "ixy")


def _flagged(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat index, label, row and column of every labelled pixel (raster order)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    # `!= 0` then flatnonzero on the bool array is ~2.5× faster than flatnonzero(labels).
    flat_index = np.flatnonzero(labels != 0)
    rows, cols = np.divmod(flat_index, labels.shape[1])
    owner = labels[rows, cols].astype(np.intp, copy=False)
    if owner.size:
        low, high = int(owner.min()), int(owner.max())
        if low < 0:
            raise ValueError(f"labels must be >= 0, found {low}")
        if high > n:
            raise ValueError(f"labels holds label {high} but n = {n}")
    return flat_index, owner, rows, cols


def cr_statistics(image: np.ndarray, labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Energy, size, centroid, second moments, width and symmetry of each labelled CR.

    Parameters
    ----------
    image : ndarray
        2-D image in electrons (e.g. a calibrated dark, or the CR charge alone).
    labels : ndarray of int
        Label image of the same shape: 0 = background, CRs ``1 .. n``
        (:func:`hstcal_core.algorithms.label.label_crs`).
    n : int
        Number of labels; row ``i`` of every column describes label ``i + 1``.

    Returns
    -------
    dict of str to ndarray
        The :data:`STAT_COLUMNS`, each of shape ``(n,)``: float64 except ``size_px``
        (int32).  ``ixx`` is along x (columns), ``iyy`` along y (rows); see the module
        docstring for the weighting and the degenerate cases.

    Raises
    ------
    ValueError
        For shapes that differ or are not 2-D, a negative label or a label above ``n``.
    TypeError
        If ``labels`` is not an integer array.
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} differs from labels shape {labels.shape}")
    _, owner, rows, cols = _flagged(labels, n)
    bins = int(n) + 1

    def per_cr(weights=None):
        return np.bincount(owner, weights=weights, minlength=bins)

    charge = image[rows, cols].astype(np.float64)
    size = per_cr()
    energy = per_cr(charge)

    weight = np.where(charge > 0, charge, 0.0)  # NaN > 0 is False: no weight
    weight_sum = per_cr(weight)
    unweighted = weight_sum[owner] <= 0
    if unweighted.any():
        weight[unweighted] = 1.0
        weight_sum = per_cr(weight)
    present = weight_sum > 0

    # Coordinates relative to one pixel of their own CR (any will do): small exact
    # integers, so a row-aligned track has iyy == 0 exactly and a 1-px CR zero moments.
    ref_row = np.zeros(bins, np.intp)
    ref_col = np.zeros(bins, np.intp)
    ref_row[owner] = rows
    ref_col[owner] = cols
    dy = (rows - ref_row[owner]).astype(np.float64)
    dx = (cols - ref_col[owner]).astype(np.float64)

    def weighted_mean(values):
        out = np.full(bins, np.nan)
        np.divide(per_cr(weight * values), weight_sum, out=out, where=present)
        return out

    mean_dy = weighted_mean(dy)
    mean_dx = weighted_mean(dx)
    dy -= mean_dy[owner]
    dx -= mean_dx[owner]
    iyy = weighted_mean(dy * dy)
    ixx = weighted_mean(dx * dx)
    ixy = weighted_mean(dx * dy)

    trace = ixx + iyy
    width = np.sqrt(trace / 2.0)
    spread = present & (trace > 0)
    symmetry = np.where(present, 0.0, np.nan)
    ratio = np.divide((ixx - iyy) ** 2 + 4.0 * ixy**2, trace**2, out=np.zeros(bins),
                      where=spread)
    # Cauchy–Schwarz bounds the ratio by 1; clip the last-bit excess of rounding.
    np.sqrt(np.minimum(ratio, 1.0), out=symmetry, where=spread)

    kept = slice(1, None)
    return {
        "energy_e": energy[kept],
        "size_px": size[kept].astype(np.int32),
        "width_sigma": width[kept],
        "symmetry": symmetry[kept],
        "centroid_y": (ref_row + mean_dy)[kept],
        "centroid_x": (ref_col + mean_dx)[kept],
        "ixx": ixx[kept],
        "iyy": iyy[kept],
        "ixy": ixy[kept],
    }


def energy_with_wings(image: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Charge of each CR over its pixels and their unflagged 8-neighbours, e⁻.

    Diffusion spreads ~3 % of a CR's charge into pixels below the detection threshold
    (measured on the census simulator's tracks); summing only the flagged pixels, as
    HSTcosmicrays does, biases energies low by that much.  A neighbour touching two CRs
    goes to the higher label (rare at HST's rates).  Background-subtracted noise in the
    ring averages to zero.  One compiled raster pass; the sums run in raster order, so
    the result equals ``np.bincount`` over the flat pixel indices of each CR and ring.

    Parameters
    ----------
    image : ndarray
        2-D image, background subtracted (electrons).
    labels : ndarray of int
        Label image of the same shape, CRs ``1 .. n``.
    n : int
        Number of labels.

    Returns
    -------
    ndarray of float64
        Shape ``(n,)``: row ``i`` for label ``i + 1``.
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape != labels.shape or labels.ndim != 2:
        raise ValueError(f"image {image.shape} and labels {labels.shape} must be 2-D and "
                         f"of one shape")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    return wing_energy(image, labels, int(n))[1:]


def pixel_lists(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-CR pixel lists: CR ``i`` covers ``flat_index[offsets[i]:offsets[i+1]]``.

    HSTcosmicrays stores a list of ``(row, col)`` tuples per CR (``cr_affected_pixels``);
    flat indices grouped by a stable sort on the label are the same information in two
    int64 arrays, ready for an appendable HDF5 dataset.

    Parameters
    ----------
    labels : ndarray of int
        2-D label image (0 = background, CRs ``1 .. n``).
    n : int
        Number of labels.

    Returns
    -------
    offsets : ndarray of int64
        Shape ``(n + 1,)``, ``offsets[0] = 0``, ``offsets[-1]`` = labelled pixels.
    flat_index : ndarray of int64
        Flat (C-order) indices into ``labels``, grouped by label ``1 .. n``; ascending
        within each CR.

    Raises
    ------
    ValueError, TypeError
        As :func:`cr_statistics`, for a bad label image or ``n``.
    """
    flat_index, owner, _, _ = _flagged(labels, n)
    order = np.argsort(owner, kind="stable")
    offsets = np.zeros(int(n) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=int(n) + 1)[1:], out=offsets[1:])
    return offsets, flat_index[order].astype(np.int64, copy=False)


def integration_time(exptime: float, flashdur: float | None, readout_s: float) -> float:
    """Time during which CRs land in a dark: EXPTIME + FLASHDUR + readout time, seconds.

    HSTcosmicrays ``pipeline/utils/metadata.py``: ``exptime + flashdur + readout_time``,
    with the readout time per detector from its ``pipeline_config.yaml`` (e.g. 50 s for
    ACS/WFC): pixels read last keep collecting CRs while the chip is read out.

    Parameters
    ----------
    exptime : float
        EXPTIME, s.
    flashdur : float or None
        FLASHDUR (post-flash, ACS and WFC3), s; None or 0 where the detector has none.
    readout_s : float
        Readout time of the detector (its Detector constant), s.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If any value is negative or non-finite, naming it.
    """
    flashdur = 0.0 if flashdur is None else flashdur
    for name, value in (("exptime", exptime), ("flashdur", flashdur), ("readout_s", readout_s)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(exptime) + float(flashdur) + float(readout_s)


def incident_rate(n_cr: int, integration_time_s: float, area_cm2: float) -> float:
    """CR incidence rate, CR s⁻¹ cm⁻²: ``n_cr / integration_time_s / area_cm2``.

    HSTcosmicrays' ``Stats.compute_cr_statistics`` sets NaN on a zero integration time; a
    dark always has a readout time, so here a non-positive time or area is an error.

    Parameters
    ----------
    n_cr : int
        Cosmic rays counted (after the size cut).
    integration_time_s : float
        :func:`integration_time`, s (> 0).
    area_cm2 : float
        Sensitive area the CRs were counted on, cm² (> 0).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a negative count or a non-positive / non-finite time or area, naming it.
    """
    if int(n_cr) != n_cr or n_cr < 0:
        raise ValueError(f"n_cr must be an integer >= 0, got {n_cr!r}")
    for name, value in (("integration_time_s", integration_time_s), ("area_cm2", area_cm2)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(n_cr) / float(integration_time_s) / float(area_cm2)
