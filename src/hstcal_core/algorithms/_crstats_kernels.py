"""Compiled (numba) loops of :mod:`hstcal_core.algorithms.crstats`."""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["wing_energy"]


@nb.njit(cache=True, nogil=True)
def wing_energy(image, labels, n):
    """Charge of each label ``1 .. n`` over its pixels plus its unlabelled 8-neighbours
    (a neighbour of several labels goes to the highest), float64, index 0 unused.

    One raster pass over the rows near a label: the highest label of each pixel's 3×3
    neighbourhood is a max over row vectors; both sums run in raster order, as
    ``np.bincount`` over the flat pixel indices would.
    """
    ny, nx = labels.shape
    core = np.zeros(n + 1)
    ring = np.zeros(n + 1)
    labelled = np.zeros(ny, np.bool_)
    for y in range(ny):
        row = labels[y]
        low = row[0] if nx else 0
        high = low
        for x in range(nx):
            low = min(low, row[x])
            high = max(high, row[x])
        if low < 0 or high > n:
            raise ValueError("labels must lie in 0 .. n")
        labelled[y] = high > 0
    column_max = np.zeros(nx + 2, labels.dtype)  # over rows y-1 .. y+1, zero-padded
    near = np.empty(nx, labels.dtype)
    for y in range(ny):
        if not (labelled[y] or (y > 0 and labelled[y - 1])
                or (y + 1 < ny and labelled[y + 1])):
            continue
        here = labels[y]
        pixels = image[y]
        for x in range(nx):
            column_max[x + 1] = here[x]
        for yy in (y - 1, y + 1):
            if 0 <= yy < ny and labelled[yy]:
                other = labels[yy]
                for x in range(nx):
                    column_max[x + 1] = max(column_max[x + 1], other[x])
        for x in range(nx):
            near[x] = max(max(column_max[x], column_max[x + 1]), column_max[x + 2])
        for x in range(nx):
            label = here[x]
            if label != 0:
                core[label] += np.float64(pixels[x])
            elif near[x] != 0:
                ring[near[x]] += np.float64(pixels[x])
    return core + ring
