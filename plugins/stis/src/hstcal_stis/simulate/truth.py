"""What went into a simulation, and how it is saved next to the raws and read back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hstcal_core.simulate import HotColumns, HotPixels

from ..detectors import STIS_CCD
from hstcal_core.fitsio import atomic_path
from .detector_model import _T_COEF, _T_REF
from .layout import parse_binning

KINDS = ("bias", "dark")
_TRUTH_FORMAT = "hstcal-stis-simulation-truth"


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
        with atomic_path(npz_path) as tmp:
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
        with atomic_path(json_path) as tmp:
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
        with atomic_path(path) as tmp:
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
