"""Synthetic calibrated WFPC2 darks (c0 + c1 + SHM) with the truth of every cosmic ray.

Four 800×800 chips (PC1, WF2-WF4; size configurable for tests) in DN, written in one
of WFPC2's layouts (see :mod:`hstcal_wfpc2.reader`): ``"mef"`` (``_c0m.fits`` +
``_c1m.fits``), ``"waiver"`` (``_c0f.fits`` + ``_c1f.fits``: a 3-D primary and a group
table) or ``"geis"`` (``.c0h``/``.c0d`` + ``.c1h``/``.c1d``); an ``_shm.fits`` companion
(the WFPC2 SPT) carries the orbital elements when :mod:`hstcal_core.algorithms.orbit`
is available.

Signal, per chip (electrons, then DN): dark current of ``dark_e_per_s`` (a few 10⁻³
e⁻/s/px; the level hardly matters for the census) and warm pixels from
:func:`hstcal_core.simulate.darks.dark_chip_electrons`; cosmic rays at HST's rate; read
noise per chip (WFPC2 IHB §4.12).  The 12-bit ADC quantises to whole DN above the EED
bias (``BIASEVEN``); calwp2 subtracts that bias and a per-pixel reference dark (the
mean dark plus the known warm pixels, with the reference's own noise of
``reference_noise_dn``), both as floats, so c0 values are off the integer lattice, as
real c0 files are — thresholds in MADs depend on that.  Known warm pixels (above
``warm_flag_e_per_s``) carry DQ 512 ("unrepaired warm pixel") in the c1 file; the
weaker ones stay unflagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.time import Time

from hstcal_core.errors import ConfigError
from hstcal_core.fitsio import atomic_path, write_atomic
from hstcal_core.simulate.darks import (
    DarkChip,
    DarkLayout,
    DarkTruth,
    dark_chip_electrons,
    spt_header,
)
from hstcal_core.simulate.defects import make_hot_pixels

from .detectors import DETECTORS

__all__ = ["simulate", "wfpc2_layout", "LAYOUTS"]

LAYOUTS = ("mef", "waiver", "geis")
_SECONDS_PER_DAY = 86400.0
_BIAS_DN = {1: 316.6452, 2: 354.0573, 3: 306.6676, 4: 311.7072}  # DEZERO of u5780205r


def wfpc2_layout(*, shape: Sequence[int] | str | None = None, atodgain: float = 7.0,
                 dark_e_per_s: float = 0.0045, warm_fraction: float = 2e-3,
                 warm_flag_e_per_s: float = 0.02) -> DarkLayout:
    """Signal levels and chips (``extver`` = chip number) as a :class:`DarkLayout`."""
    if shape is None:
        ny, nx = 800, 800
    else:
        if isinstance(shape, str):
            shape = shape.lower().replace("x", ",").split(",")
        ny, nx = (int(s) for s in shape)
    chips = tuple(DarkChip(d.extra["chip"], d.extra["chip"], (ny, nx),
                           (d.amplifier(float(atodgain)),)) for d in DETECTORS)
    return DarkLayout(instrument="WFPC2", detector="WFPC2", pixel_pitch_um=15.0, chips=chips,
                      ccdamp="", gain_setting=float(atodgain), gain_keyword="ATODGAIN",
                      chip_keyword="DETECTOR", bunit="COUNTS", rootname_prefix="u",
                      dark_e_per_s=dark_e_per_s, hot_fraction=warm_fraction,
                      hot_e_per_s=(0.005, 1.0), hot_flag_e_per_s=warm_flag_e_per_s,
                      hot_dq=512, amp_keywords=False)


def _primary(root: str, exptime: float, start: float, end: float, atodgain: float,
             name: str) -> fits.Header:
    iso = Time(start, format="mjd", scale="utc").isot
    hdr = fits.Header()
    hdr["FILENAME"] = name
    hdr["FILETYPE"] = "SCI"
    hdr["TELESCOP"] = "HST"
    hdr["INSTRUME"] = "WFPC2"
    hdr["ROOTNAME"] = root
    hdr["IMAGETYP"] = "DARK"
    hdr["TARGNAME"] = "DARK"
    hdr["MODE"] = "FULL"
    hdr["SERIALS"] = "OFF"
    hdr["SHUTTER"] = "A"
    hdr["ATODGAIN"] = float(atodgain)
    for switch in ("MASKCORR", "ATODCORR", "BLEVCORR", "BIASCORR", "DARKCORR"):
        hdr[switch] = "COMPLETE"
    hdr["FLATCORR"] = "OMIT"
    hdr["SATURATE"] = 4095
    hdr["DATE-OBS"] = iso[:10]
    hdr["TIME-OBS"] = iso[11:19]
    hdr["EXPSTART"] = start
    hdr["EXPEND"] = end
    hdr["EXPTIME"] = float(exptime)
    hdr["EXPFLAG"] = "NORMAL"
    hdr.add_history("Synthetic WFPC2 dark written by hstcal_wfpc2.simulate (not HST data)")
    return hdr


def _write_mef(path: Path, primary: fits.Header, arrays: dict[int, np.ndarray],
               dtype) -> None:
    hdus = [fits.PrimaryHDU(header=primary)]
    for chip, data in arrays.items():
        hdr = fits.Header({"DETECTOR": chip, "BUNIT": "COUNTS" if dtype == np.float32
                           else "UNITLESS"})
        hdus.append(fits.ImageHDU(data.astype(dtype), header=hdr, name="SCI", ver=chip))
    hdus[0].header["NEXTEND"] = len(arrays)
    write_atomic(fits.HDUList(hdus), path)


def _write_waiver(path: Path, primary: fits.Header, arrays: dict[int, np.ndarray],
                  dtype) -> None:
    chips = sorted(arrays)
    cube = np.stack([arrays[c] for c in chips]).astype(dtype)
    hdr = primary.copy()
    hdr["DETECTOR"] = chips[0]  # the primary holds the first group's parameters
    hdr["SDASMGNU"] = (len(chips), "Number of groups in original image")
    table = fits.TableHDU.from_columns(
        [fits.Column(name="DETECTOR", format="I12", array=np.array(chips)),
         fits.Column(name="BIASEVEN", format="E15.7",
                     array=np.array([_BIAS_DN[c] for c in chips]))],
        name=f"{primary['ROOTNAME']}_cvt.c0h.tab")
    write_atomic(fits.HDUList([fits.PrimaryHDU(cube, header=hdr), table]), path)


def _write_geis(path: Path, primary: fits.Header, arrays: dict[int, np.ndarray],
                dtype) -> None:
    """GEIS: FITS-like header cards in ``path`` (.c0h), big-endian groups in .c0d."""
    chips = sorted(arrays)
    ny, nx = arrays[chips[0]].shape
    big = ">f4" if dtype == np.float32 else ">i2"
    cards = [("SIMPLE", False), ("BITPIX", -32 if dtype == np.float32 else 16),
             ("DATATYPE", "REAL*4" if dtype == np.float32 else "INTEGER*2"), ("NAXIS", 2),
             ("NAXIS1", nx), ("NAXIS2", ny), ("GROUPS", True), ("GCOUNT", len(chips)),
             ("PCOUNT", 2), ("PSIZE", 64), ("PTYPE1", "DETECTOR"), ("PDTYPE1", "INTEGER*4"),
             ("PSIZE1", 32), ("PTYPE2", "BIASEVEN"), ("PDTYPE2", "REAL*4"), ("PSIZE2", 32)]
    header = fits.Header(cards)
    for card in primary.cards:
        if card.keyword and card.keyword not in header and card.keyword not in ("HISTORY",
                                                                                 "COMMENT"):
            header[card.keyword] = card.value
    text = "\n".join(card.image for card in header.cards) + "\n" + "END".ljust(80) + "\n"
    blob = b"".join(arrays[c].astype(big).tobytes() + np.array([c], ">i4").tobytes()
                    + np.array([_BIAS_DN[c]], ">f4").tobytes() for c in chips)
    data_path = path.with_suffix(path.suffix[:-1] + "d")
    with atomic_path(data_path) as tmp:
        tmp.write_bytes(blob)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _reference_dark(spec: DarkLayout, warm, shape, exptime: float, gain: float,
                    noise_dn: float, rng: np.random.Generator) -> np.ndarray:
    """The DARKFILE calwp2 subtracts, in DN: mean dark, known warm pixels, its own noise."""
    ref = np.full(shape, spec.dark_e_per_s * exptime / gain, np.float64)
    known = warm.excess >= spec.hot_flag_e_per_s
    ref[warm.y[known], warm.x[known]] += warm.excess[known] * exptime / gain
    return ref + rng.normal(0.0, noise_dn, shape)


_WRITERS = {"mef": ("_c0m.fits", "_c1m.fits", _write_mef),
            "waiver": ("_c0f.fits", "_c1f.fits", _write_waiver),
            "geis": (".c0h", ".c1h", _write_geis)}


def simulate(out_dir: str | Path, *, kind: str = "dark", count: int = 1, seed: int = 0,
             start_mjd: float = 50500.0, exptime: float | str = 1000.0,
             shape: Sequence[int] | str | None = None, layout: str = "mef",
             gain: float | str | None = None, cadence_days: float = 1.0,
             reference_noise_dn: float = 0.3, **unused) -> DarkTruth:
    """Write ``count`` WFPC2 darks (all four chips each) and their truth.

    Parameters
    ----------
    out_dir : path
        Output directory.
    kind : str
        ``"dark"`` only.
    count, seed, start_mjd, exptime, cadence_days
        Number of files, random seed, EXPSTART of the first, EXPTIME, days between files.
    shape : (ny, nx) or str, optional
        Chip size (default 800×800).
    layout : str
        ``"mef"``, ``"waiver"`` or ``"geis"``.
    gain : float, optional
        ATODGAIN setting, 7 (default) or 15.
    reference_noise_dn : float
        Per-pixel noise of the reference dark calwp2 subtracts, DN.

    Returns
    -------
    DarkTruth
        ``crs`` keyed by ``(rootname, chip)``; ``files`` are the c0 files.
    """
    if kind != "dark":
        raise ConfigError(f"WFPC2 simulates kind='dark' only (cosmic-ray census), got {kind!r}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    unused.pop("binning", None)
    if unused:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unused)}")
    atodgain = float(gain) if gain is not None else 7.0
    spec = wfpc2_layout(shape=shape, atodgain=atodgain)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    warm_rng = np.random.default_rng([int(seed), 2])
    warm = {c.extver: make_hot_pixels(c.shape, spec.hot_fraction, warm_rng,
                                      low=spec.hot_e_per_s[0], high=spec.hot_e_per_s[1])
            for c in spec.chips}
    t_exp = float(exptime)
    truth = DarkTruth(files=[], rootnames=[], exptime=[], expstart=[], layout=spec.summary(),
                      crs={}, hot=warm,
                      parameters={"count": int(count), "exptime": t_exp, "seed": int(seed),
                                  "start_mjd": float(start_mjd), "layout": layout,
                                  "atodgain": atodgain})
    sci_suffix, dq_suffix, writer = _WRITERS[layout]
    for k in range(int(count)):
        root = f"u{int(seed) % 1000:03d}{k:04d}r"
        start = float(start_mjd) + k * float(cadence_days)
        end = start + t_exp / _SECONDS_PER_DAY
        science, quality = {}, {}
        for chip in spec.chips:
            electrons, _, dq, crs = dark_chip_electrons(chip, spec, t_exp, warm[chip.extver], rng)
            gain_e = chip.amps[0].gain
            bias = _BIAS_DN[chip.ccdchip]
            raw = np.clip(np.rint(electrons / gain_e + bias), 0, 4095)  # 12-bit ADC
            reference = _reference_dark(spec, warm[chip.extver], chip.shape, t_exp, gain_e,
                                        reference_noise_dn, rng)
            science[chip.ccdchip] = (raw - bias - reference).astype(np.float32)
            quality[chip.ccdchip] = dq.astype(np.int16)
            truth.crs[(root, chip.extver)] = crs
        name = f"{root}{sci_suffix}"
        primary = _primary(root, t_exp, start, end, atodgain, name)
        writer(out / name, primary, science, np.float32)
        dq_primary = primary.copy()
        dq_primary["FILENAME"] = f"{root}{dq_suffix}"
        dq_primary["FILETYPE"] = "DQ"
        writer(out / f"{root}{dq_suffix}", dq_primary, quality, np.int16)
        shm = spt_header("WFPC2", root, start)
        shm["FILENAME"] = f"{root}_shm.fits"
        shm["FILETYPE"] = "SHP"
        write_atomic(fits.HDUList([fits.PrimaryHDU(header=shm)]), out / f"{root}_shm.fits")
        truth.files.append(name)
        truth.rootnames.append(root)
        truth.exptime.append(t_exp)
        truth.expstart.append(start)
    truth.save(out, "truth")
    return truth
