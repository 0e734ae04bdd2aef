"""Where the 1024×1024 sensitive area of the STIS CCD sits in a raw readout, per binning.

Amp D readouts (the only amplifier the simulator reads out) have serial overscan
on the left and right and virtual overscan rows at the bottom
(:func:`hstcal_stis.geometry.overscan_regions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry import CCD_NPIX, overscan_regions, raw_shape

BINNINGS = ("1x1", "1x2", "2x1", "2x2")
_AMP = "D"


@dataclass(frozen=True)
class _Layout:
    """Where the 1024×1024 sensitive area sits in a raw readout (amp D).

    ``lead_y``/``lead_x`` are the unbinned samples read before the first sensitive
    pixel; binned pixel ``k`` sums unbinned samples ``k·b .. k·b+b−1``.
    """

    binx: int
    biny: int
    raw_shape: tuple[int, int]
    trim_rows: tuple[int, int]
    trim_cols: tuple[int, int]
    lead_y: int
    lead_x: int

    @property
    def trimmed_shape(self) -> tuple[int, int]:
        return (self.trim_rows[1] - self.trim_rows[0], self.trim_cols[1] - self.trim_cols[0])

    def ltv(self) -> tuple[float, float, float, float]:
        """LTV1, LTV2, LTM1_1, LTM2_2: image = LTM·physical + LTV (1-based pixel centres).

        Reproduces the real o56502010 (2x1: LTV1 = 10.75, LTV2 = 10, LTM1_1 = 0.5).
        """
        def one(lead: int, b: int) -> float:
            return 1.0 + lead / b - (b + 1) / (2.0 * b)
        return (one(self.lead_x, self.binx), one(self.lead_y, self.biny),
                1.0 / self.binx, 1.0 / self.biny)

    def to_raw(self, sensitive: np.ndarray) -> np.ndarray:
        """Sum an unbinned 1024×1024 image into the raw grid (zero in the overscan)."""
        ny, nx = self.raw_shape
        grid = np.zeros((ny * self.biny, nx * self.binx), np.float64)
        grid[self.lead_y:self.lead_y + CCD_NPIX, self.lead_x:self.lead_x + CCD_NPIX] = sensitive
        if self.binx == self.biny == 1:
            return grid
        return grid.reshape(ny, self.biny, nx, self.binx).sum(axis=(1, 3))

    def to_trimmed(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unbinned sensitive pixel → trimmed binned pixel, and whether it is inside."""
        ty = (np.asarray(y) + self.lead_y) // self.biny - self.trim_rows[0]
        tx = (np.asarray(x) + self.lead_x) // self.binx - self.trim_cols[0]
        ny, nx = self.trimmed_shape
        return ty, tx, (ty >= 0) & (ty < ny) & (tx >= 0) & (tx < nx)

    def trim(self, raw: np.ndarray) -> np.ndarray:
        return raw[self.trim_rows[0]:self.trim_rows[1], self.trim_cols[0]:self.trim_cols[1]]


def _layout(binx: int, biny: int) -> _Layout:
    ny, nx = raw_shape(binx, biny)
    regions = overscan_regions(ny, nx, binx, biny, _AMP)
    if regions is None:  # pragma: no cover - BINNINGS are all supported by geometry.py
        raise ValueError(f"binning {binx}x{biny} has no overscan layout for amp {_AMP}")
    # The binned column before the first fully illuminated one mixes the last
    # overscan sample with the first sensitive column(s) (findover.c).
    lead_x = regions.trim_cols[0] * binx - (binx - 1)
    lead_y = regions.trim_rows[0] * biny
    return _Layout(binx, biny, (ny, nx), tuple(regions.trim_rows), tuple(regions.trim_cols),
                   lead_y, lead_x)


def parse_binning(binning: str | Sequence[int]) -> tuple[int, int]:
    """``"2x1"`` (BINAXIS1 × BINAXIS2) or ``(2, 1)`` → ``(binx, biny)``; ValueError otherwise."""
    try:
        if isinstance(binning, str):
            parts = binning.lower().replace(" ", "").split("x")
            binx, biny = (int(p) for p in parts)
        else:
            binx, biny = (int(b) for b in binning)
    except (TypeError, ValueError):
        raise ValueError(f"binning must be one of {BINNINGS} (BINAXIS1xBINAXIS2), "
                         f"got {binning!r}") from None
    if f"{binx}x{biny}" not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS} (BINAXIS1xBINAXIS2), got {binning!r}")
    return binx, biny
