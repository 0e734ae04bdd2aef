"""STIS CCD readout geometry: where the overscan is, for every binning and amplifier.

A port of hstcal ``cs1/findover.c`` (FindOverscan) to 0-based, end-exclusive slices.
Full-frame unbinned raw: 1062×1044 = 19 + 1024 + 19 columns, 1024 + 20 virtual rows;
for amp D the physical overscan used for the bias level is columns 1–15 and the
trimmed image is ``raw[20:1044, 19:1043]``.
"""

from __future__ import annotations

from hstcal_core.algorithms.overscan import OverscanRegions

__all__ = ["overscan_regions", "raw_shape"]

CCD_NPIX = 1024
OVERSCAN_LEFT = 19
OVERSCAN_RIGHT = 19
OVERSCAN_TOP = 20
SUBARRAY_BORDER = 1
# BIASSECT (0-based, inclusive) for amp A, by column binning; stissizes.h
_BSECT_FULL = (1046, 1060)
_BSECT_BINNED = {1: (1046, 1052), 2: (524, 530), 4: (263, 269)}


def raw_shape(binx: int, biny: int) -> tuple[int, int]:
    """(ny, nx) of a full-frame raw at a binning (what the flight software writes).

    Unbinned: 1044×1062.  Binned readouts keep 10 virtual-overscan lines and one
    mixed (overscan + illuminated) column (findover.c), e.g. 2x1 → 1034×532.
    """
    if (binx, biny) == (1, 1):
        return CCD_NPIX + OVERSCAN_TOP, CCD_NPIX + OVERSCAN_LEFT + OVERSCAN_RIGHT
    if binx not in (1, 2, 4) or biny not in (1, 2, 4):
        raise ValueError(f"binning must be 1, 2 or 4 on each axis, got {binx}x{biny}")
    ny = CCD_NPIX // biny + 10
    nx = {1: 1054, 2: 532, 4: 266}[binx]
    return ny, nx


def overscan_regions(ny: int, nx: int, binx: int, biny: int, amp: str) -> OverscanRegions | None:
    """Overscan layout of a raw STIS CCD array, or None if it has no usable overscan.

    Parameters
    ----------
    ny, nx : int
        Raw array shape.
    binx, biny : int
        BINAXIS1, BINAXIS2.
    amp : str
        CCDAMP (A, B, C or D).
    """
    if (binx, biny) == (1, 1):
        readout = "subarray" if ny <= CCD_NPIX else "full"
    else:
        readout = "binned"
    if readout == "full":
        a_left, a_right, a_top = OVERSCAN_LEFT, OVERSCAN_RIGHT, OVERSCAN_TOP
        a_bsect = _BSECT_FULL
    elif readout == "subarray":
        a_left = OVERSCAN_LEFT - SUBARRAY_BORDER
        a_right = OVERSCAN_RIGHT - SUBARRAY_BORDER
        a_top = 0
        a_bsect = (_BSECT_FULL[0], _BSECT_FULL[1] - SUBARRAY_BORDER)
    else:
        if binx not in _BSECT_BINNED:
            return None
        if binx == 1:
            a_left = OVERSCAN_LEFT
            a_right = nx - CCD_NPIX - a_left
        else:
            a_left = (OVERSCAN_LEFT + 1) // binx
            a_right = nx - (CCD_NPIX // binx - 1) - a_left
        a_top = ny - CCD_NPIX // biny
        a_bsect = _BSECT_BINNED[binx]
    amp = (amp or "D").strip().upper()[:1]
    if amp in ("A", "C"):
        left, right, bsect = a_left, a_right, a_bsect
    elif amp in ("B", "D"):
        left, right = a_right, a_left
        bsect = (nx - a_bsect[1] - 1, nx - a_bsect[0] - 1)
    else:
        return None
    bottom, top = (a_top, 0) if amp in ("C", "D") else (0, a_top)
    if min(left, right, bottom, top) < 0:
        return None
    if readout == "full" and (nx - left - right < CCD_NPIX or ny - top - bottom < CCD_NPIX):
        return None
    if readout == "subarray" and nx - left - right < CCD_NPIX:
        return None
    if bsect[0] < 0 or bsect[1] >= nx or bsect[1] < bsect[0]:
        return None
    virtual = (0, bottom) if amp in ("C", "D") else (ny - top, ny)
    return OverscanRegions(trim_rows=(bottom, ny - top), trim_cols=(left, nx - right),
                           bias_cols=(bsect[0], bsect[1] + 1),
                           virtual_rows=virtual if virtual[1] > virtual[0] else None)
