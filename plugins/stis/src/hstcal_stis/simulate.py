"""Synthetic STIS CCD raw biases and darks, with the truth that went into them.

Every file has the flight layout of :func:`hstcal_stis.geometry.raw_shape` for amp D
(serial overscan on the left and right, virtual overscan rows at the bottom) and is
written like a real ``_raw.fits``: uint16 SCI stored as int16 + BZERO 32768, empty
ERR/DQ extensions (NAXIS = 0, PIXVALUE), real keyword names.  One imset is

    DN = level(row) + structure + [Poisson(dark · f(T) · EXPTIME) + CR] / ATODGAIN + RN/ATODGAIN

* ``level(row)``: the amplifier bias (1124 DN gain 1, 1500 DN gain 4, CCDOFFST=3)
  plus a per-imset offset and linear trend along rows, in the science area *and*
  the overscan, so BLEVCORR can remove it;
* ``structure``: a fixed bias pattern (smooth shape, column and pixel patterns,
  hot columns, hot bias pixels) that depends only on (gain, binning) and
  :data:`DETECTOR_SEED`, never on the call's seed — the target of a superbias;
* dark current (darks only): ~0.03 e⁻/s with a gentle gradient along rows, hot
  pixels and hot columns, scaled by ``f(T) = 1 + 0.07 (OCCDHTAV − 18)`` (STIS TIR
  2004-01, IHB §7.3.1); truth rates are at 18 °C;
* cosmic rays over ``EXPTIME + READOUT/2`` (a bias collects them only while it is
  read out, on average half the 29 s readout);
* read noise (IHB §7.2, CCDTAB amp D), rounding, clipping to 0..65535.

Everything is drawn at unbinned resolution on the 1024×1024 sensitive area and
summed into binned pixels the way the serial register does (binned columns at the
illuminated edge mix overscan and sky, as ``findover.c`` describes).  Truth is
given in *trimmed binned* coordinates, ``raw[trim_rows, trim_cols]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from astropy.io import fits
from astropy.time import Time

from hstcal_core.simulate import (
    HST_CR_RATE,
    HotColumns,
    HotPixels,
    make_cosmic_rays,
    make_fixed_pattern,
    make_hot_columns,
    make_hot_pixels,
    rebin,
    render,
)

from .detectors import STIS_CCD
from .geometry import CCD_NPIX, overscan_regions, raw_shape

__all__ = [
    "simulate",
    "simulate_stis_ccd",
    "simulate_anneal_month",
    "SimTruth",
    "MonthTruth",
    "load_truth",
    "parse_binning",
    "BINNINGS",
    "DETECTOR_SEED",
]

log = logging.getLogger(__name__)

#: Seeds the fixed bias structure of every (gain, binning): the same detector in every call.
DETECTOR_SEED = 19970214  # STIS installed during SM2, February 1997
BINNINGS = ("1x1", "1x2", "2x1", "2x2")
KINDS = ("bias", "dark")
_KIND_CODE = {"bias": 1, "dark": 2}
_AMP = "D"
_DEFAULT_NIMSETS = {"bias": 2, "dark": 1}
# 1100 s: the long darks of the STIS CCD dark monitor (14 a week, STIS ISR 2012-02).
_DEFAULT_EXPTIME = {"bias": 0.0, "dark": 1100.0}
_PROPOSID = {"bias": 12400, "dark": 12401}
_PROPTTL1 = {"bias": "STIS CCD Bias Monitor (synthetic, hstcal)",
             "dark": "STIS CCD Dark Monitor (synthetic, hstcal)"}
_IMSET_OVERHEAD_S = 60.0  # readout (29 s, IHB §7.2) + buffer dump between repeats, approximate
_T_REF = float(STIS_CCD.extra["dark_reference_temperature"])  # 18 °C, TIR 2004-01
_T_COEF = float(STIS_CCD.extra["dark_temperature_coefficient"])  # 7 %/°C, IHB §7.3.1
_CCD_CENTER = (532, 523)  # CENTERA1/2 of full-frame STIS CCD readouts (real raws)
_SIZAXIS = (1062, 1044)
# Fixed bias pattern, DN (a couple of DN rms, like the structure left in STIS
# superbiases after overscan subtraction); hot columns +3..+30 DN.
_BIAS_PATTERN = {1: dict(smooth_rms=1.5, column_rms=0.5, pixel_rms=1.0, edge_ramp=3.0),
                 4: dict(smooth_rms=0.8, column_rms=0.3, pixel_rms=0.6, edge_ramp=1.5)}
_BIAS_HOT_COLUMNS = (6, 3.0, 30.0)  # count, low, high DN
_BIAS_HOT_PIXELS = (3e-5, 5.0, 100.0)  # fraction, low, high DN
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_TRUTH_FORMAT = "hstcal-stis-simulation-truth"


# ----------------------------------------------------------------------------- layout

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


# ------------------------------------------------------------------- fixed detector state

def _bias_structure(gain: int, layout: _Layout, detector_seed: int):
    """The fixed bias pattern of one (gain, binning), DN, trimmed shape."""
    rng = np.random.default_rng([detector_seed, gain, layout.binx, layout.biny])
    shape = layout.trimmed_shape
    pattern = make_fixed_pattern(shape, rng, **_BIAS_PATTERN[gain])
    n_cols, low, high = _BIAS_HOT_COLUMNS
    columns = make_hot_columns(shape[1], n_cols, rng, low=low, high=high)
    fraction, low, high = _BIAS_HOT_PIXELS
    pixels = make_hot_pixels(shape, fraction, rng, low=low, high=high)
    structure = pattern + columns.image(shape) + pixels.image(shape)
    return structure.astype(np.float32), pixels, columns


@dataclass(frozen=True)
class _DarkModel:
    """Dark current on the unbinned sensitive area at 18 °C, e⁻/s."""

    static_rate: np.ndarray  # base + columns + initial hot pixels
    hot_y: np.ndarray
    hot_x: np.ndarray
    hot_excess: np.ndarray
    hot_onset_mjd: np.ndarray  # -inf: hot from the start
    col_x: np.ndarray
    col_excess: np.ndarray

    def rate_at(self, mjd: float) -> np.ndarray:
        late = (self.hot_onset_mjd > -np.inf) & (self.hot_onset_mjd <= mjd)
        if not late.any():
            return self.static_rate
        rate = self.static_rate.copy()
        np.add.at(rate, (self.hot_y[late], self.hot_x[late]), self.hot_excess[late])
        return rate


def _dark_model(rng: np.random.Generator, *, dark_rate_e_s: float, dark_gradient: float,
                hot_pixel_fraction: float, hot_pixel_range: tuple[float, float],
                hot_columns: int, hot_column_range: tuple[float, float],
                hot_pixel_growth_per_day: float, span_mjd: tuple[float, float]) -> _DarkModel:
    shape = (CCD_NPIX, CCD_NPIX)
    rows = np.arange(CCD_NPIX, dtype=np.float64)
    # Higher near the serial register (low y), lower at the top: CTE losses make the
    # effective dark current fall with distance from the register (IHB §7.3.1).
    base = dark_rate_e_s * (1.0 + dark_gradient * (0.5 - rows / (CCD_NPIX - 1)))
    rate = np.repeat(base[:, None], CCD_NPIX, axis=1)
    cols = make_hot_columns(CCD_NPIX, hot_columns, rng, low=hot_column_range[0],
                            high=hot_column_range[1])
    rate += cols.image(shape)
    hot = make_hot_pixels(shape, hot_pixel_fraction, rng, low=hot_pixel_range[0],
                          high=hot_pixel_range[1])
    np.add.at(rate, (hot.y, hot.x), hot.excess)
    onset = np.full(len(hot), -np.inf)
    y, x, excess = hot.y, hot.x, hot.excess
    n_new = int(rng.poisson(hot_pixel_growth_per_day * CCD_NPIX**2
                            * max(span_mjd[1] - span_mjd[0], 0.0)))
    if n_new:
        flat = rng.integers(0, CCD_NPIX**2, n_new)
        y = np.concatenate([y, (flat // CCD_NPIX).astype(np.int32)])
        x = np.concatenate([x, (flat % CCD_NPIX).astype(np.int32)])
        excess = np.concatenate([excess, np.exp(rng.uniform(np.log(hot_pixel_range[0]),
                                                            np.log(hot_pixel_range[1]), n_new))])
        onset = np.concatenate([onset, np.sort(rng.uniform(span_mjd[0], span_mjd[1], n_new))])
    return _DarkModel(rate, y, x, excess, onset, cols.x, cols.excess)


# ------------------------------------------------------------------------------ truth

def _hot_pixels_npz(prefix: str, hp: HotPixels | None) -> dict[str, np.ndarray]:
    if hp is None:
        return {}
    return {f"{prefix}_y": hp.y, f"{prefix}_x": hp.x, f"{prefix}_excess": hp.excess}


def _hot_columns_npz(prefix: str, hc: HotColumns | None) -> dict[str, np.ndarray]:
    if hc is None:
        return {}
    return {f"{prefix}_x": hc.x, f"{prefix}_excess": hc.excess}


@dataclass(eq=False)
class SimTruth:
    """What went into one simulated series of STIS CCD raw files.

    Coordinates are *trimmed binned*: ``raw[trim_rows[0]:trim_rows[1],
    trim_cols[0]:trim_cols[1]]`` of the raw SCI array.  ``file`` arguments accept
    the 0-based index, the ROOTNAME or the path; ``extver`` is the FITS EXTVER (1-based).

    Attributes
    ----------
    kind, gain, binning, seed : str, int, str, int
        What was simulated (``binning`` is ``"BINAXIS1xBINAXIS2"``).
    files, rootnames : list
        The raw files written and their ROOTNAMEs.
    nimsets, exptime_s : int, float
        Imsets per file and EXPTIME of each.
    atodgain, read_noise_e, bias_dn : float
        Amp-D gain (e⁻/DN), read noise (e⁻) and nominal bias level (DN).
    raw_shape, trim_rows, trim_cols : tuple of int
        Raw SCI shape and the trimmed region (0-based, end-exclusive).
    expstart_mjd, temperature_c : ndarray, shape (nfiles, nimsets)
        EXPSTART and OCCDHTAV of each imset.
    bias_offset_dn, bias_trend_dn : ndarray, shape (nfiles, nimsets)
        Bias level of raw row ``r`` is ``bias_dn + offset + trend · (r − (ny−1)/2)/(ny−1)``.
    bias_structure : ndarray of float32, trimmed shape
        Fixed pattern above the level, DN (includes hot columns and hot bias pixels).
    bias_hot_pixels, bias_hot_columns : HotPixels, HotColumns
        Hot bias pixels and columns, excess in DN.
    dark_rate : ndarray of float32 or None
        Darks: dark current per binned pixel at 18 °C, e⁻/s, with the hot pixels
        present from the start and the hot columns (see :meth:`dark_rate_at`).
    dark_hot_pixels, dark_hot_columns : HotPixels, HotColumns or None
        Darks: excess in e⁻/s at 18 °C per binned pixel (one entry per unbinned hot
        pixel/column, so positions may repeat in binned frames; sensitive columns
        falling in a mixed edge column are omitted).
    dark_hot_onset_mjd : ndarray or None
        When each dark hot pixel appeared (``-inf``: from the start).
    cr_y, cr_x, cr_charge_dn, cr_id : ndarray
        Every cosmic-ray deposit inside the trimmed area, DN, sorted by ``cr_id``.
    cr_file, cr_extver, cr_length_px : ndarray, shape (n_crs,)
        File index, EXTVER and projected track length (unbinned px) of CR ``cr_id``.
    parameters : dict
        Every simulation parameter, for provenance.
    """

    kind: str
    gain: int
    binning: str
    seed: int
    files: list[Path]
    rootnames: list[str]
    nimsets: int
    exptime_s: float
    atodgain: float
    read_noise_e: float
    bias_dn: float
    raw_shape: tuple[int, int]
    trim_rows: tuple[int, int]
    trim_cols: tuple[int, int]
    expstart_mjd: np.ndarray
    temperature_c: np.ndarray
    bias_offset_dn: np.ndarray
    bias_trend_dn: np.ndarray
    bias_structure: np.ndarray
    bias_hot_pixels: HotPixels
    bias_hot_columns: HotColumns
    cr_y: np.ndarray
    cr_x: np.ndarray
    cr_charge_dn: np.ndarray
    cr_id: np.ndarray
    cr_file: np.ndarray
    cr_extver: np.ndarray
    cr_length_px: np.ndarray
    dark_rate: np.ndarray | None = None
    dark_hot_pixels: HotPixels | None = None
    dark_hot_columns: HotColumns | None = None
    dark_hot_onset_mjd: np.ndarray | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    # -- convenience -------------------------------------------------------------------
    @property
    def binx(self) -> int:
        return parse_binning(self.binning)[0]

    @property
    def biny(self) -> int:
        return parse_binning(self.binning)[1]

    @property
    def shape(self) -> tuple[int, int]:
        """Trimmed (binned) shape."""
        return (self.trim_rows[1] - self.trim_rows[0], self.trim_cols[1] - self.trim_cols[0])

    @property
    def read_noise_dn(self) -> float:
        return self.read_noise_e / self.atodgain

    @property
    def hot_pixels(self) -> HotPixels:
        """Hot pixels of this kind: DN for biases, e⁻/s at 18 °C for darks."""
        return self.dark_hot_pixels if self.kind == "dark" else self.bias_hot_pixels

    @property
    def hot_columns(self) -> HotColumns:
        """Hot columns of this kind: DN for biases, e⁻/s at 18 °C for darks."""
        return self.dark_hot_columns if self.kind == "dark" else self.bias_hot_columns

    def file_index(self, file: int | str | os.PathLike) -> int:
        """0-based index of a file given as index, ROOTNAME or path."""
        if isinstance(file, (int, np.integer)):
            if not 0 <= int(file) < len(self.files):
                raise ValueError(f"file index {file} out of range 0..{len(self.files) - 1}")
            return int(file)
        name = Path(file).name.lower()
        for i, (path, root) in enumerate(zip(self.files, self.rootnames)):
            if name in (path.name.lower(), root.lower()):
                return i
        raise ValueError(f"file {file!r} is not part of this simulation")

    def _imset(self, file, extver: int) -> tuple[int, int]:
        i = self.file_index(file)
        if not 1 <= int(extver) <= self.nimsets:
            raise ValueError(f"extver must be within 1..{self.nimsets}, got {extver!r}")
        return i, int(extver) - 1

    def bias_level(self, file, extver: int = 1, *, trimmed: bool = False) -> np.ndarray:
        """Bias level (DN) of every raw row of one imset (or of the trimmed rows)."""
        i, k = self._imset(file, extver)
        ny = self.raw_shape[0]
        rows = np.arange(ny, dtype=np.float64)
        level = (self.bias_dn + self.bias_offset_dn[i, k]
                 + self.bias_trend_dn[i, k] * (rows - (ny - 1) / 2.0) / (ny - 1))
        return level[self.trim_rows[0]:self.trim_rows[1]] if trimmed else level

    def temperature_factor(self, file, extver: int = 1) -> float:
        """Dark scaling of one imset, ``1 + 0.07 (OCCDHTAV − 18)`` (clipped at 0)."""
        i, k = self._imset(file, extver)
        return max(0.0, 1.0 + _T_COEF * (float(self.temperature_c[i, k]) - _T_REF))

    def dark_rate_at(self, mjd: float) -> np.ndarray | None:
        """Dark current (e⁻/s, 18 °C, trimmed) including hot pixels appeared by ``mjd``."""
        if self.dark_rate is None:
            return None
        late = np.isfinite(self.dark_hot_onset_mjd) & (self.dark_hot_onset_mjd <= mjd)
        if not late.any():
            return self.dark_rate
        rate = self.dark_rate.astype(np.float64)
        hp = self.dark_hot_pixels
        np.add.at(rate, (hp.y[late], hp.x[late]), hp.excess[late])
        return rate.astype(np.float32)

    def expected_dn(self, file, extver: int = 1) -> np.ndarray:
        """Noise- and CR-free expectation of the trimmed SCI array, DN (float64)."""
        i, k = self._imset(file, extver)
        image = self.bias_level(i, extver, trimmed=True)[:, None] + self.bias_structure
        if self.dark_rate is not None:
            rate = self.dark_rate_at(float(self.expstart_mjd[i, k]))
            image = image + (rate * self.temperature_factor(i, extver) * self.exptime_s
                             / self.atodgain)
        return image

    # -- cosmic rays -------------------------------------------------------------------
    def _cr_slice(self, i: int, k: int) -> tuple[slice, np.ndarray]:
        ids = np.flatnonzero((self.cr_file == i) & (self.cr_extver == k + 1))
        if ids.size == 0:
            return slice(0, 0), ids
        lo = np.searchsorted(self.cr_id, ids[0], side="left")
        hi = np.searchsorted(self.cr_id, ids[-1], side="right")
        return slice(int(lo), int(hi)), ids

    def cr_image(self, file, extver: int = 1) -> np.ndarray:
        """Dense CR charge (DN, float32, trimmed shape) of one imset."""
        i, k = self._imset(file, extver)
        sl, _ = self._cr_slice(i, k)
        out = np.zeros(self.shape, np.float64)
        np.add.at(out, (self.cr_y[sl], self.cr_x[sl]), self.cr_charge_dn[sl])
        return out.astype(np.float32)

    def cr_mask(self, file, extver: int = 1, *, threshold_dn: float = 0.0) -> np.ndarray:
        """Boolean trimmed mask of one imset: pixels with CR charge ``≥ threshold_dn``.

        ``threshold_dn = 0`` marks every deposit (≥ 1 e⁻ unbinned); a detection-like
        mask uses a few read-noise sigmas, e.g. ``4 * truth.read_noise_dn``.
        """
        image = self.cr_image(file, extver)
        return (image > 0) & (image >= threshold_dn)

    def cr_table(self, file=None, extver: int | None = None, *,
                 threshold_dn: float = 0.0) -> dict[str, np.ndarray]:
        """One row per CR: ``cr_id, file, extver, n_pixels`` (deposits ≥ threshold),
        ``total_dn, peak_dn, y, x`` (charge-weighted centroid, trimmed) and
        ``length_px``; optionally only one file / imset."""
        n = self.cr_file.size
        q = self.cr_charge_dn.astype(np.float64)
        total = np.bincount(self.cr_id, weights=q, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            yc = np.bincount(self.cr_id, weights=q * self.cr_y, minlength=n) / total
            xc = np.bincount(self.cr_id, weights=q * self.cr_x, minlength=n) / total
        peak = np.zeros(n)
        np.maximum.at(peak, self.cr_id, q)
        above = self.cr_charge_dn >= threshold_dn
        table = {"cr_id": np.arange(n, dtype=np.int32), "file": self.cr_file,
                 "extver": self.cr_extver,
                 "n_pixels": np.bincount(self.cr_id[above], minlength=n).astype(np.int64),
                 "total_dn": total, "peak_dn": peak, "y": yc, "x": xc,
                 "length_px": self.cr_length_px}
        select = np.ones(n, bool)
        if file is not None:
            select &= self.cr_file == self.file_index(file)
        if extver is not None:
            select &= self.cr_extver == int(extver)
        return {key: np.asarray(v)[select] for key, v in table.items()}

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, name: str = "truth") -> tuple[Path, Path]:
        """Write ``<name>.json`` (metadata) and ``<name>.npz`` (arrays) into ``directory``.

        File paths are stored relative to ``directory`` when they lie inside it.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "expstart_mjd": self.expstart_mjd, "temperature_c": self.temperature_c,
            "bias_offset_dn": self.bias_offset_dn, "bias_trend_dn": self.bias_trend_dn,
            "bias_structure": self.bias_structure,
            "cr_y": self.cr_y, "cr_x": self.cr_x, "cr_charge_dn": self.cr_charge_dn,
            "cr_id": self.cr_id, "cr_file": self.cr_file, "cr_extver": self.cr_extver,
            "cr_length_px": self.cr_length_px,
            **_hot_pixels_npz("bias_hot", self.bias_hot_pixels),
            **_hot_columns_npz("bias_hotcol", self.bias_hot_columns),
        }
        if self.dark_rate is not None:
            arrays.update(dark_rate=self.dark_rate, dark_hot_onset_mjd=self.dark_hot_onset_mjd,
                          **_hot_pixels_npz("dark_hot", self.dark_hot_pixels),
                          **_hot_columns_npz("dark_hotcol", self.dark_hot_columns))
        npz_path = directory / f"{name}.npz"
        with _atomic(npz_path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        meta = {
            "format": _TRUTH_FORMAT, "version": 1, "detector": STIS_CCD.name,
            "kind": self.kind, "gain": self.gain, "binning": self.binning, "seed": self.seed,
            "files": [_relative(p, directory) for p in self.files], "rootnames": self.rootnames,
            "nimsets": self.nimsets, "exptime_s": self.exptime_s, "atodgain": self.atodgain,
            "read_noise_e": self.read_noise_e, "bias_dn": self.bias_dn,
            "raw_shape": list(self.raw_shape), "trim_rows": list(self.trim_rows),
            "trim_cols": list(self.trim_cols), "arrays": npz_path.name,
            "units": {"bias_structure": "DN", "bias_hot": "DN", "cr_charge_dn": "DN",
                      "dark_rate": "e-/s at 18 C per binned pixel", "dark_hot": "e-/s at 18 C",
                      "coordinates": "trimmed binned pixels, 0-based (y, x)"},
            "parameters": self.parameters,
        }
        json_path = directory / f"{name}.json"
        with _atomic(json_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        return json_path, npz_path

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str = "truth") -> "SimTruth":
        """Read a truth written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / f"{name}.json").read_text())
        if meta.get("format") != _TRUTH_FORMAT or meta.get("kind") not in KINDS:
            raise ValueError(f"{directory / (name + '.json')} is not a STIS bias/dark truth file")
        with np.load(directory / meta["arrays"]) as npz:
            a = {k: npz[k] for k in npz.files}
        dark = "dark_rate" in a
        return cls(
            kind=meta["kind"], gain=int(meta["gain"]), binning=meta["binning"],
            seed=int(meta["seed"]), files=[directory / f for f in meta["files"]],
            rootnames=list(meta["rootnames"]), nimsets=int(meta["nimsets"]),
            exptime_s=float(meta["exptime_s"]), atodgain=float(meta["atodgain"]),
            read_noise_e=float(meta["read_noise_e"]), bias_dn=float(meta["bias_dn"]),
            raw_shape=tuple(meta["raw_shape"]), trim_rows=tuple(meta["trim_rows"]),
            trim_cols=tuple(meta["trim_cols"]),
            expstart_mjd=a["expstart_mjd"], temperature_c=a["temperature_c"],
            bias_offset_dn=a["bias_offset_dn"], bias_trend_dn=a["bias_trend_dn"],
            bias_structure=a["bias_structure"],
            bias_hot_pixels=HotPixels(a["bias_hot_y"], a["bias_hot_x"], a["bias_hot_excess"]),
            bias_hot_columns=HotColumns(a["bias_hotcol_x"], a["bias_hotcol_excess"]),
            cr_y=a["cr_y"], cr_x=a["cr_x"], cr_charge_dn=a["cr_charge_dn"], cr_id=a["cr_id"],
            cr_file=a["cr_file"], cr_extver=a["cr_extver"], cr_length_px=a["cr_length_px"],
            dark_rate=a["dark_rate"] if dark else None,
            dark_hot_pixels=(HotPixels(a["dark_hot_y"], a["dark_hot_x"], a["dark_hot_excess"])
                             if dark else None),
            dark_hot_columns=(HotColumns(a["dark_hotcol_x"], a["dark_hotcol_excess"])
                              if dark else None),
            dark_hot_onset_mjd=a["dark_hot_onset_mjd"] if dark else None,
            parameters=meta.get("parameters", {}),
        )


def _relative(path: Path, directory: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(directory.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class _atomic:
    """Yield a temporary path beside ``path``; rename it into place on success."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- headers

def _base36(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 36)
        out = _BASE36[digit] + out
    return out


def _program_id(kind: str, gain: int, binning: str, seed: int) -> str:
    digest = hashlib.blake2b(f"{kind}|{gain}|{binning}|{seed}".encode(), digest_size=8).digest()
    return _base36(int.from_bytes(digest, "big") % 36**3, 3)


def _iso(mjd: float) -> datetime:
    return Time(mjd, format="mjd", scale="utc").to_datetime()


def _primary_header(*, kind, rootname, gain, binx, biny, nimsets, expstart, expend,
                    exptime, seed) -> fits.Header:
    t0 = _iso(float(expstart[0]))
    cards = [
        ("SIMPLE", True, "data conform to FITS standard"),
        ("BITPIX", 16, "bits per data value"),
        ("NAXIS", 0, "number of data axes"),
        ("EXTEND", True, "File may contain standard extensions"),
        ("NEXTEND", 3 * nimsets, "Number of standard extensions"),
        ("DATE", _iso(float(expend[-1])).strftime("%Y-%m-%d"), "date this file was written"),
        ("FILENAME", f"{rootname}_raw.fits", "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "STIS", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("PRIMESI", "STIS", "instrument designated as prime"),
        ("TARGNAME", kind.upper(), "proposer's target name"),
        ("RA_TARG", 0.0, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", 0.0, "declination of the target (deg) (J2000)"),
        ("PROPOSID", _PROPOSID[kind], "PEP proposal identifier"),
        ("LINENUM", "1.001", "proposal logsheet line number"),
        ("PR_INV_L", "Synthetic", "last name of principal investigator"),
        ("PROPTTL1", _PROPTTL1[kind], "proposal title"),
        ("TDATEOBS", t0.strftime("%Y-%m-%d"), "UT date of start of first exposure in file"),
        ("TTIMEOBS", t0.strftime("%H:%M:%S"), "UT start time of first exposure in file"),
        ("TEXPSTRT", float(expstart[0]), "start time (MJD) of 1st exposure in file"),
        ("TEXPEND", float(expend[-1]), "end time (MJD) of last exposure in the file"),
        ("TEXPTIME", float(exptime * nimsets), "total exposure time (seconds)"),
        ("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", nimsets, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", "CCD", "detector in use: NUV-MAMA, FUV-MAMA, or CCD"),
        ("OPT_ELEM", "MIRVIS", "optical element in use"),
        ("APERTURE", "50CCD", "aperture name"),
        ("PROPAPER", "50CCD", "proposed aperture name"),
        ("FILTER", "Clear", "filter in use"),
        ("CRSPLIT", 1, "number of cosmic ray split exposures"),
        ("CCDAMP", _AMP, "CCD amplifier read out (A,B,C,D)"),
        ("CCDGAIN", gain, "commanded gain of CCD"),
        ("CCDOFFST", 3, "commanded CCD bias offset"),
        ("CENTERA1", _CCD_CENTER[0], "subarray axis1 center pt in unbinned dect. pix"),
        ("CENTERA2", _CCD_CENTER[1], "subarray axis2 center pt in unbinned dect. pix"),
        ("SIZAXIS1", _SIZAXIS[0], "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", _SIZAXIS[1], "subarray axis2 size in unbinned detector pixels"),
        ("BINAXIS1", binx, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", biny, "axis2 data bin size in unbinned detector pixels"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("BLEVCORR", "PERFORM", "subtract bias level computed from overscan img"),
        ("BIASCORR", "PERFORM", "Subtract bias image"),
        ("CRCORR", "PERFORM", "combine observations to reject cosmic rays"),
        ("DARKCORR", "PERFORM", "Subtract dark image"),
        ("CRREJTAB", "oref$j3m1403io_crr.fits", "cosmic ray rejection parameters"),
        ("ATODGAIN", 0.0, "calibrated CCD amplifier gain value"),
        ("READNSE", 0.0, "calibrated CCD read noise value"),
    ]
    header = fits.Header(cards)
    header.add_history(f"Synthetic STIS CCD {kind} written by hstcal_stis.simulate (seed {seed}).")
    return header


def _ext_header(extname: str, extver: int, *, rootname: str, expname: str,
                layout: _Layout, data: bool) -> list[tuple]:
    ltv1, ltv2, ltm1, ltm2 = layout.ltv()
    ny, nx = layout.raw_shape
    cards = [("INHERIT", True, "inherit the primary header"),
             ("EXTNAME", extname, "extension name"),
             ("EXTVER", extver, "extension version number"),
             ("ROOTNAME", rootname, "rootname of the observation set"),
             ("EXPNAME", expname, "exposure identifier"),
             ("BUNIT", "UNITLESS" if extname == "DQ" else "COUNTS", "brightness units")]
    if not data:
        cards += [("NPIX1", nx, "length of constant array axis 1"),
                  ("NPIX2", ny, "length of constant array axis 2"),
                  ("PIXVALUE", 0 if extname == "DQ" else 0.0, "values of pixels in constant array")]
    cards += [("LTV1", ltv1, "offset in X to subsection start"),
              ("LTV2", ltv2, "offset in Y to subsection start"),
              ("LTM1_1", ltm1, "reciprocal of sampling rate in X"),
              ("LTM2_2", ltm2, "reciprocal of sampling rate in Y")]
    return cards


def _empty_hdu(cards: list[tuple]) -> fits.ImageHDU:
    """An ImageHDU without data and BITPIX = 16, as calstis raw ERR/DQ extensions."""
    header = fits.Header([("XTENSION", "IMAGE", "extension type"),
                          ("BITPIX", 16, "bits per data value"),
                          ("NAXIS", 0, "number of data axes"),
                          ("PCOUNT", 0, "number of group parameters"),
                          ("GCOUNT", 1, "number of groups"), *cards])
    return fits.ImageHDU.fromstring(header.tostring().encode())


# ------------------------------------------------------------------------- simulation

def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, str)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        as_float = float(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    result = int(as_float)
    if result < low or (high is not None and result > high):
        bound = f">= {low}" if high is None else f"within {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return result


def _check_float(name: str, value, *, low: float = -math.inf, strict: bool = False) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(result) or result < low or (strict and result == low):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be finite and {op} {low}, got {value!r}")
    return result


def simulate_stis_ccd(
    out_dir: str | os.PathLike,
    *,
    kind: str = "bias",
    count: int = 4,
    seed: int = 0,
    gain: int = 1,
    binning: str = "1x1",
    start_mjd: float = 55600.0,
    nimsets: int | None = None,
    exptime: float | None = None,
    cadence_days: float = 1.0,
    start_times_mjd: Sequence[float] | None = None,
    cr_rate_per_cm2_s: float = HST_CR_RATE,
    dark_rate_e_s: float = 0.03,
    dark_gradient: float = 0.2,
    hot_pixel_fraction: float = 0.003,
    hot_pixel_range: tuple[float, float] = (0.02, 5.0),
    hot_columns: int = 4,
    hot_column_range: tuple[float, float] = (0.01, 0.1),
    hot_pixel_growth_per_day: float = 0.0,
    temperature_c: tuple[float, float] = (18.0, 3.0),
    program_id: str | None = None,
    detector_seed: int = DETECTOR_SEED,
    truth_name: str = "truth",
) -> SimTruth:
    """Write ``count`` synthetic STIS CCD raw biases or darks and their truth.

    Parameters
    ----------
    out_dir : path
        Output directory (created); receives ``<rootname>_raw.fits`` files and
        ``<truth_name>.json`` / ``<truth_name>.npz``.
    kind : {"bias", "dark"}
        TARGNAME of the files.
    count : int
        Number of files (1..1296).
    seed : int
        Seed of everything that varies between calls (noise, CRs, temperatures,
        dark hot pixels); the bias structure depends only on ``detector_seed``.
    gain : {1, 4}
        CCDGAIN; amp D constants from :data:`hstcal_stis.detectors.STIS_CCD`.
    binning : {"1x1", "1x2", "2x1", "2x2"}
        ``BINAXIS1xBINAXIS2``.
    start_mjd, cadence_days : float
        File ``i`` starts at ``start_mjd + i·cadence_days`` ...
    start_times_mjd : sequence of float, optional
        ... unless explicit start times (one per file) are given.
    nimsets : int, optional
        Imsets per file (NRPTEXP); default 2 for biases, 1 for darks.
    exptime : float, optional
        EXPTIME per imset, s; default 0 for biases (must be 0), 1100 for darks.
    cr_rate_per_cm2_s : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_rate_e_s, dark_gradient : float
        Mean dark current at 18 °C (e⁻/s) and its fractional change from the bottom
        to the top of the detector (higher at the bottom).  The rate grows with
        radiation damage (IHB §7.3.1: 0.0015 e⁻/s at launch, 0.004 by 2001; STIS ISR
        2012-02 for the post-SM4 rise); 0.03 stands for a recent epoch.
    hot_pixel_fraction, hot_pixel_range : float, (float, float)
        Fraction of hot pixels and the range of their excess (e⁻/s, log-uniform).
    hot_columns, hot_column_range : int, (float, float)
        Number of dark hot columns and their per-pixel excess range (e⁻/s).
    hot_pixel_growth_per_day : float
        Fraction of pixels turning hot per day during the series (0: the hot-pixel
        population is constant); their onset times are in the truth.
    temperature_c : (float, float)
        Mean and sigma of the per-imset OCCDHTAV, °C (housing temperatures of
        Side-2 operation scatter by a few degrees around the 18 °C reference of
        STIS TIR 2004-01).
    program_id : str, optional
        Three base-36 characters for ROOTNAME ``o<ppp><ss>01<t>``; derived from
        (kind, gain, binning, seed) by default.
    detector_seed : int
        Seed of the fixed bias structure.
    truth_name : str
        Stem of the truth files.

    Returns
    -------
    SimTruth
        The files written and everything that went into them (also saved).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    count = _check_int("count", count, 1, 36**2)
    seed = _check_int("seed", seed, 0)
    gain = _check_int("gain", gain, 1)
    if gain not in STIS_CCD.gains:
        raise ValueError(f"gain must be one of {list(STIS_CCD.gains)}, got {gain!r}")
    binx, biny = parse_binning(binning)
    binning = f"{binx}x{biny}"
    nimsets = _check_int("nimsets", _DEFAULT_NIMSETS[kind] if nimsets is None else nimsets, 1, 99)
    exptime = _check_float("exptime", _DEFAULT_EXPTIME[kind] if exptime is None else exptime,
                           low=0.0)
    if kind == "bias" and exptime != 0.0:
        raise ValueError(f"exptime must be 0 for kind='bias', got {exptime!r}")
    if kind == "dark" and exptime <= 0.0:
        raise ValueError(f"exptime must be > 0 for kind='dark', got {exptime!r}")
    start_mjd = _check_float("start_mjd", start_mjd)
    cadence_days = _check_float("cadence_days", cadence_days, low=0.0, strict=True)
    if start_times_mjd is None:
        starts = start_mjd + cadence_days * np.arange(count)
    else:
        starts = np.asarray([_check_float("start_times_mjd", t) for t in start_times_mjd])
        if starts.size != count:
            raise ValueError(f"start_times_mjd must have count={count} entries, got {starts.size}")
    cr_rate = _check_float("cr_rate_per_cm2_s", cr_rate_per_cm2_s, low=0.0)
    dark_rate_e_s = _check_float("dark_rate_e_s", dark_rate_e_s, low=0.0)
    dark_gradient = _check_float("dark_gradient", dark_gradient, low=-2.0)
    if abs(dark_gradient) >= 2.0:
        raise ValueError(f"dark_gradient must be within (-2, 2), got {dark_gradient!r}")
    hot_pixel_fraction = _check_float("hot_pixel_fraction", hot_pixel_fraction, low=0.0)
    if hot_pixel_fraction > 1.0:
        raise ValueError(f"hot_pixel_fraction must be within [0, 1], got {hot_pixel_fraction!r}")
    for name, bounds in (("hot_pixel_range", hot_pixel_range),
                         ("hot_column_range", hot_column_range)):
        if (len(bounds) != 2 or not 0 < float(bounds[0]) <= float(bounds[1])
                or not math.isfinite(float(bounds[1]))):
            raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {bounds!r}")
    hot_columns = _check_int("hot_columns", hot_columns, 0, CCD_NPIX)
    growth = _check_float("hot_pixel_growth_per_day", hot_pixel_growth_per_day, low=0.0)
    if len(temperature_c) != 2 or float(temperature_c[1]) < 0:
        raise ValueError(f"temperature_c must be (mean, sigma >= 0), got {temperature_c!r}")
    prog = _program_id(kind, gain, binning, seed) if program_id is None else str(program_id)
    if len(prog) != 3 or any(c not in _BASE36 for c in prog):
        raise ValueError(f"program_id must be 3 lowercase alphanumerics, got {program_id!r}")
    detector_seed = _check_int("detector_seed", detector_seed, 0)
    if not isinstance(truth_name, str) or not truth_name or Path(truth_name).name != truth_name:
        raise ValueError(f"truth_name must be a plain file stem, got {truth_name!r}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = _layout(binx, biny)
    amp = STIS_CCD.amplifier(gain, _AMP)
    readout_s = float(STIS_CCD.readout_time_s)
    structure, bias_hot, bias_cols = _bias_structure(gain, layout, detector_seed)
    step_days = (exptime + _IMSET_OVERHEAD_S) / 86400.0
    expstart = starts[:, None] + step_days * np.arange(nimsets)[None, :]
    expend = expstart + exptime / 86400.0

    dark = None
    if kind == "dark":
        dark = _dark_model(
            np.random.default_rng([seed, 0xDA4C]), dark_rate_e_s=dark_rate_e_s,
            dark_gradient=dark_gradient, hot_pixel_fraction=hot_pixel_fraction,
            hot_pixel_range=tuple(map(float, hot_pixel_range)), hot_columns=hot_columns,
            hot_column_range=tuple(map(float, hot_column_range)),
            hot_pixel_growth_per_day=growth, span_mjd=(float(expstart.min()), float(expend.max())))

    ny, nx = layout.raw_shape
    rows = np.arange(ny, dtype=np.float64)
    trend_shape = (rows - (ny - 1) / 2.0) / (ny - 1)
    temperature = np.zeros((count, nimsets))
    offset = np.zeros((count, nimsets))
    trend = np.zeros((count, nimsets))
    crs_truth: list[tuple] = []
    files, rootnames = [], []
    t_mean, t_sigma = float(temperature_c[0]), float(temperature_c[1])
    for i in range(count):
        rng = np.random.default_rng([seed, _KIND_CODE[kind], gain, binx, biny, i])
        visit = _base36(i, 2)
        rootname = f"o{prog}{visit}01{'0' if nimsets > 1 else 'q'}"
        hdus = [fits.PrimaryHDU.fromstring(_primary_header(
            kind=kind, rootname=rootname, gain=gain, binx=binx, biny=biny, nimsets=nimsets,
            expstart=expstart[i], expend=expend[i], exptime=exptime,
            seed=seed).tostring().encode())]
        for k in range(nimsets):
            temperature[i, k] = t_mean + t_sigma * rng.standard_normal()
            # Bias drifts a little between imsets and along the readout (a few DN).
            offset[i, k] = rng.normal(0.0, 1.0)
            trend[i, k] = 3.0 + rng.normal(0.0, 0.5)
            electrons = np.zeros(layout.raw_shape)
            if dark is not None:
                factor = max(0.0, 1.0 + _T_COEF * (temperature[i, k] - _T_REF))
                expected = layout.to_raw(dark.rate_at(float(expstart[i, k])) * factor * exptime)
                electrons += rng.poisson(expected)
            crs = make_cosmic_rays((CCD_NPIX, CCD_NPIX), exptime + 0.5 * readout_s, cr_rate,
                                   STIS_CCD.pixel_pitch_um, rng)
            binned = rebin(crs, biny, binx, offset_y=layout.lead_y, offset_x=layout.lead_x,
                           shape=layout.raw_shape)
            electrons += render(binned)
            crs_truth.append((i, k, binned, crs.length_px))
            level = amp.bias + offset[i, k] + trend[i, k] * trend_shape
            image = np.repeat(level[:, None], nx, axis=1)
            layout.trim(image)[...] += structure
            image += electrons / amp.gain
            image += rng.normal(0.0, amp.read_noise / amp.gain, image.shape)
            sci = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
            expname = f"o{prog}{visit}{_base36(k + 1, 2)}q"
            t_k = _iso(float(expstart[i, k]))
            sci_cards = _ext_header("SCI", k + 1, rootname=rootname, expname=expname,
                                    layout=layout, data=True)
            sci_cards += [("DATE-OBS", t_k.strftime("%Y-%m-%d"), "UT date of start of observation"),
                          ("TIME-OBS", t_k.strftime("%H:%M:%S"), "UT time of start of observation"),
                          ("EXPSTART", float(expstart[i, k]), "exposure start time (MJD)"),
                          ("EXPEND", float(expend[i, k]), "exposure end time (MJD)"),
                          ("EXPTIME", float(exptime), "exposure duration (seconds)--calculated"),
                          ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
                          ("NCOMBINE", 1, "number of image sets combined"),
                          ("OCCDHTAV", round(float(temperature[i, k]), 4),
                           "average CCD housing temperature (degC)"),
                          ("SDQFLAGS", int(STIS_CCD.extra["sdqflags_default"]),
                           "serious data quality flags")]
            hdus.append(fits.ImageHDU(data=sci, header=fits.Header(sci_cards)))
            for extname in ("ERR", "DQ"):
                hdus.append(_empty_hdu(_ext_header(extname, k + 1, rootname=rootname,
                                                   expname=expname, layout=layout, data=False)))
        path = out_dir / f"{rootname}_raw.fits"
        with _atomic(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, output_verify="exception")
        files.append(path)
        rootnames.append(rootname)
        log.debug("wrote %s (%s, gain %d, %s, %d imsets)", path.name, kind, gain, binning, nimsets)

    truth = _assemble_truth(
        kind=kind, gain=gain, binning=binning, seed=seed, files=files, rootnames=rootnames,
        nimsets=nimsets, exptime=exptime, amp=amp, layout=layout, expstart=expstart,
        temperature=temperature, offset=offset, trend=trend, structure=structure,
        bias_hot=bias_hot, bias_cols=bias_cols, dark=dark, crs_truth=crs_truth,
        parameters=dict(kind=kind, count=count, seed=seed, gain=gain, binning=binning,
                        start_mjd=start_mjd, cadence_days=cadence_days,
                        start_times_mjd=[float(t) for t in starts], nimsets=nimsets,
                        exptime=exptime, cr_rate_per_cm2_s=cr_rate, dark_rate_e_s=dark_rate_e_s,
                        dark_gradient=dark_gradient, hot_pixel_fraction=hot_pixel_fraction,
                        hot_pixel_range=list(map(float, hot_pixel_range)), hot_columns=hot_columns,
                        hot_column_range=list(map(float, hot_column_range)),
                        hot_pixel_growth_per_day=growth,
                        temperature_c=[t_mean, t_sigma], program_id=prog,
                        detector_seed=detector_seed, readout_time_s=readout_s,
                        imset_overhead_s=_IMSET_OVERHEAD_S))
    truth.save(out_dir, truth_name)
    log.info("simulated %d STIS CCD %s file(s) (gain %d, %s) in %s", count, kind, gain, binning,
             out_dir)
    return truth


def _assemble_truth(*, kind, gain, binning, seed, files, rootnames, nimsets, exptime, amp, layout,
                    expstart, temperature, offset, trend, structure, bias_hot, bias_cols, dark,
                    crs_truth, parameters) -> SimTruth:
    ys, xs, qs, ids, cr_file, cr_extver, cr_len = [], [], [], [], [], [], []
    next_id = 0
    for i, k, binned, length in crs_truth:
        ty = binned.y - layout.trim_rows[0]
        tx = binned.x - layout.trim_cols[0]
        ny, nx = layout.trimmed_shape
        inside = (ty >= 0) & (ty < ny) & (tx >= 0) & (tx < nx)
        ys.append(ty[inside].astype(np.int16))
        xs.append(tx[inside].astype(np.int16))
        qs.append((binned.charge_e[inside] / amp.gain).astype(np.float32))
        ids.append((binned.cr_id[inside] + next_id).astype(np.int32))
        n = binned.n_crs
        cr_file.append(np.full(n, i, np.int32))
        cr_extver.append(np.full(n, k + 1, np.int16))
        cr_len.append(np.asarray(length, np.float32))
        next_id += n

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    fields: dict[str, Any] = {}
    if dark is not None:
        shape = layout.trimmed_shape
        fields["dark_rate"] = layout.trim(layout.to_raw(dark.static_rate)).astype(np.float32)
        hy, hx, hin = layout.to_trimmed(dark.hot_y, dark.hot_x)
        fields["dark_hot_pixels"] = HotPixels(hy[hin].astype(np.int32), hx[hin].astype(np.int32),
                                              dark.hot_excess[hin])
        fields["dark_hot_onset_mjd"] = dark.hot_onset_mjd[hin]
        _, cx, cin = layout.to_trimmed(np.zeros_like(dark.col_x), dark.col_x)
        cin &= (cx >= 0) & (cx < shape[1])
        # A binned pixel sums biny pixels of the column.
        fields["dark_hot_columns"] = HotColumns(cx[cin].astype(np.int32),
                                                dark.col_excess[cin] * layout.biny)
    return SimTruth(
        kind=kind, gain=gain, binning=binning, seed=seed, files=files, rootnames=rootnames,
        nimsets=nimsets, exptime_s=float(exptime), atodgain=float(amp.gain),
        read_noise_e=float(amp.read_noise), bias_dn=float(amp.bias),
        raw_shape=tuple(layout.raw_shape), trim_rows=tuple(layout.trim_rows),
        trim_cols=tuple(layout.trim_cols), expstart_mjd=expstart, temperature_c=temperature,
        bias_offset_dn=offset, bias_trend_dn=trend, bias_structure=structure,
        bias_hot_pixels=bias_hot, bias_hot_columns=bias_cols,
        cr_y=cat(ys, np.int16), cr_x=cat(xs, np.int16), cr_charge_dn=cat(qs, np.float32),
        cr_id=cat(ids, np.int32), cr_file=cat(cr_file, np.int32),
        cr_extver=cat(cr_extver, np.int16),
        cr_length_px=cat(cr_len, np.float32), parameters=parameters, **fields)


# -------------------------------------------------------------------------- the month

@dataclass(eq=False)
class MonthTruth:
    """A simulated anneal month: one :class:`SimTruth` per group and the anneal table.

    Attributes
    ----------
    groups : dict of str to SimTruth
        ``bias_g1_1x1``, ``bias_g1_2x2``, ``bias_g4_1x1``, ``dark_g1_1x1``.
    anneal_table : Path
        ``anneal_table.yml`` (refstis v2 format) with the month and its neighbours.
    anneal_index : int
        ``index`` of the simulated month in the table.
    start_mjd, end_mjd : float
        The month as written in the table (whole seconds).
    seed : int
        Seed of the month.
    """

    groups: dict[str, SimTruth]
    anneal_table: Path
    anneal_index: int
    start_mjd: float
    end_mjd: float
    seed: int

    @property
    def files(self) -> list[Path]:
        """Every raw file of the month."""
        return [f for truth in self.groups.values() for f in truth.files]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``truth.json`` naming each group's ``truth_<group>.json/.npz``."""
        directory = Path(directory)
        for name, truth in self.groups.items():
            truth.save(directory, f"truth_{name}")
        meta = {"format": _TRUTH_FORMAT, "version": 1, "detector": STIS_CCD.name, "kind": "month",
                "seed": self.seed, "anneal_table": _relative(self.anneal_table, directory),
                "anneal_index": self.anneal_index, "start_mjd": self.start_mjd,
                "end_mjd": self.end_mjd, "groups": {n: f"truth_{n}" for n in self.groups}}
        path = directory / "truth.json"
        with _atomic(path) as tmp:
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "MonthTruth":
        directory = Path(directory)
        meta = json.loads((directory / "truth.json").read_text())
        if meta.get("format") != _TRUTH_FORMAT or meta.get("kind") != "month":
            raise ValueError(f"{directory / 'truth.json'} is not a STIS anneal-month truth file")
        return cls(groups={n: SimTruth.load(directory, stem) for n, stem in meta["groups"].items()},
                   anneal_table=directory / meta["anneal_table"],
                   anneal_index=int(meta["anneal_index"]), start_mjd=float(meta["start_mjd"]),
                   end_mjd=float(meta["end_mjd"]), seed=int(meta["seed"]))


def load_truth(directory: str | os.PathLike) -> SimTruth | MonthTruth:
    """Read ``truth.json`` of a simulation directory (single series or anneal month)."""
    directory = Path(directory)
    kind = json.loads((directory / "truth.json").read_text()).get("kind")
    return MonthTruth.load(directory) if kind == "month" else SimTruth.load(directory)


def _whole_second(mjd: float) -> datetime:
    """UTC datetime of ``mjd`` rounded to the second (YAML timestamps of refstis tables)."""
    return (_iso(mjd) + timedelta(microseconds=500_000)).replace(microsecond=0)


def simulate_anneal_month(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    start_mjd: float = 55600.0,
    days: float = 28.3,
    bias_files_per_week: int = 3,
    binned_bias_files: int = 4,
    gain4_files_per_biweek: int = 2,
    darks_per_week: int = 2,
    dark_exptime: float = 1100.0,
    neighbour_days: float = 28.0,
    **kwargs: Any,
) -> MonthTruth:
    """Write a complete anneal month of STIS CCD raws and an anneal table.

    Contents (refstis weekly products): gain-1 1x1 biases spread over the four
    weeks (``bias_files_per_week`` × 2 imsets), gain-1 2x2 biases in the first
    week (``binned_bias_files`` × 2 imsets, above the refbias minimum of 7 imsets),
    gain-4 1x1 biases per bi-week (``gain4_files_per_biweek`` × 2 imsets) and gain-1
    1x1 darks (``darks_per_week`` × 1 imset of ``dark_exptime`` s).  Every exposure
    lies well inside its week (≥ 0.5 day from the edges of equal-length weeks), so
    any sensible week split assigns it the same way, and never in the first or last
    hour of the month.

    Parameters
    ----------
    out_dir : path
        Receives the raws, ``anneal_table.yml`` and ``truth.json`` (+ one
        ``truth_<group>.json/.npz`` per group).
    seed : int
        Seed of the month; each group gets its own seed derived from it.
    start_mjd, days : float
        Start (end of the previous anneal) and length of the month (≥ 8 days).
    bias_files_per_week, binned_bias_files, gain4_files_per_biweek, darks_per_week : int
        Files per group (0 leaves a group out).
    dark_exptime : float
        EXPTIME of the darks, s.
    neighbour_days : float
        Length of the neighbouring months written to the anneal table.
    **kwargs
        Passed to every :func:`simulate_stis_ccd` call (e.g. ``cr_rate_per_cm2_s``,
        ``hot_pixel_growth_per_day`` for the darks).

    Returns
    -------
    MonthTruth
    """
    seed = _check_int("seed", seed, 0)
    start_mjd = _check_float("start_mjd", start_mjd)
    days = _check_float("days", days, low=8.0)
    neighbour_days = _check_float("neighbour_days", neighbour_days, low=0.0, strict=True)
    counts = {name: _check_int(name, value, 0, 36**2) for name, value in (
        ("bias_files_per_week", bias_files_per_week), ("binned_bias_files", binned_bias_files),
        ("gain4_files_per_biweek", gain4_files_per_biweek), ("darks_per_week", darks_per_week))}
    for forbidden in ("kind", "count", "gain", "binning", "start_times_mjd", "truth_name",
                      "program_id", "nimsets", "exptime"):
        if forbidden in kwargs:
            raise ValueError(f"{forbidden} is set by simulate_anneal_month for each group; "
                             "it cannot be passed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t_start = _whole_second(start_mjd)
    t_end = _whole_second(start_mjd + days)
    start = float(Time(t_start, scale="utc").mjd)
    end = float(Time(t_end, scale="utc").mjd)
    week = (end - start) / 4.0
    biweek = (end - start) / 2.0
    # Offsets (days) from the start of each (bi-)week, 0.5..5.5 d: inside a 7-day week
    # whether the weeks are equal (7.075 d) or refstis-like (7, 7, 7, 7.3 d).
    plan = {
        "bias_g1_1x1": ("bias", 1, "1x1", 2, 0.0, [start + w * week + o for w in range(4)
                        for o in np.linspace(1.0, 5.0, counts["bias_files_per_week"])]),
        "bias_g1_2x2": ("bias", 1, "2x2", 2, 0.0, [start + o for o in
                        np.linspace(0.5, 5.5, counts["binned_bias_files"])]),
        "bias_g4_1x1": ("bias", 4, "1x1", 2, 0.0, [start + b * biweek + o for b in range(2)
                        for o in np.linspace(1.5, 8.5, counts["gain4_files_per_biweek"])]),
        "dark_g1_1x1": ("dark", 1, "1x1", 1, dark_exptime, [start + w * week + o for w in range(4)
                        for o in np.linspace(1.25, 4.25, counts["darks_per_week"])]),
    }
    groups: dict[str, SimTruth] = {}
    used: set[str] = set()
    jitter_rng = np.random.default_rng([seed, 0x3047])
    for n, (name, (kind, gain, binning, nimsets, exptime, times)) in enumerate(plan.items()):
        if not times:
            continue
        # Up to ±0.2 d of scheduling jitter keeps ≥ 0.3 d from every week edge.
        times = list(np.asarray(times) + jitter_rng.uniform(-0.2, 0.2, len(times)))
        group_seed = int(np.random.SeedSequence([seed, n]).generate_state(1)[0])
        salt = 0
        prog = _program_id(kind, gain, binning, group_seed)
        while prog in used:  # keep ROOTNAMEs of the month unique
            salt += 1
            prog = _program_id(kind, gain, binning, group_seed + salt)
        used.add(prog)
        groups[name] = simulate_stis_ccd(
            out_dir, kind=kind, count=len(times), seed=group_seed, gain=gain, binning=binning,
            nimsets=nimsets, exptime=exptime, start_times_mjd=times, program_id=prog,
            truth_name=f"truth_{name}", **kwargs)

    darks = []
    if "dark_g1_1x1" in groups:
        truth = groups["dark_g1_1x1"]
        for root, t0 in zip(truth.rootnames, truth.expstart_mjd[:, 0]):
            darks.append({"datetime": _whole_second(float(t0)), "exposure": root.upper(),
                          "exptime": float(truth.exptime_s), "proposid": _PROPOSID["dark"]})
    t_prev = _whole_second(start - neighbour_days)
    t_next = _whole_second(end + neighbour_days)
    table = [{"index": 0, "start": t_prev, "end": t_start, "darks": []},
             {"index": 1, "start": t_start, "end": t_end, "darks": darks},
             {"index": 2, "start": t_end, "end": t_next, "darks": []}]
    table_path = out_dir / "anneal_table.yml"
    with _atomic(table_path) as tmp:
        tmp.write_text(yaml.safe_dump(table, default_flow_style=False, sort_keys=True))
    month = MonthTruth(groups=groups, anneal_table=table_path, anneal_index=1, start_mjd=start,
                       end_mjd=end, seed=seed)
    month.save(out_dir)
    log.info("simulated anneal month %.3f–%.3f: %d files in %s", start, end, len(month.files),
             out_dir)
    return month


# ------------------------------------------------------------------------- dispatcher

def simulate(out_dir: str | os.PathLike, *, kind: str = "bias",
             **kwargs: Any) -> SimTruth | MonthTruth:
    """The ``stis_ccd`` simulator: ``kind`` = ``"bias"``, ``"dark"`` or ``"month"``.

    ``bias``/``dark`` go to :func:`simulate_stis_ccd`; ``month`` goes to
    :func:`simulate_anneal_month` (``count`` is ignored there; ``gain`` and
    ``binning`` are fixed by the month's plan and rejected).
    """
    if kind == "month":
        count = kwargs.pop("count", None)
        if count is not None:
            log.debug("simulate(kind='month'): count=%r ignored; the month plan sets the counts",
                      count)
        for name in ("gain", "binning"):
            if kwargs.get(name) is not None:
                raise ValueError(f"{name} does not apply to kind='month' "
                                 "(the month holds gain 1 and 4, 1x1 and 2x2)")
            kwargs.pop(name, None)
        return simulate_anneal_month(out_dir, **kwargs)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS + ('month',)}, got {kind!r}")
    return simulate_stis_ccd(out_dir, kind=kind, **kwargs)
