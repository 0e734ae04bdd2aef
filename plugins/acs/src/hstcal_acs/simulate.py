"""Synthetic ACS/WFC and ACS/HRC darks (FLT-like) for the cosmic-ray census.

A thin layer over :func:`hstcal_core.simulate.darks.simulate_darks`: the ACS chip
layout (WFC: ``SCI,1`` is WFC2 = CCDCHIP 2 read by amps C/D, ``SCI,2`` is WFC1 =
CCDCHIP 1 read by A/B, ACS DHB §2.2; HRC: one chip, amp C) with the CCDTAB constants
registered in :mod:`hstcal_acs.detectors`.  The array size is configurable, so tests
can simulate a small frame (``shape=(256, 512)`` per chip) in well under a second.

Dark current and hot pixels: WFC ~0.006 e⁻/s/px and HRC ~0.004 e⁻/s/px early in the
mission (ACS IHB §4.3.2, Cycle 14); ACS flags pixels above 0.14 e⁻/s as hot (DQ 16).
Subarrays: ``subarray=True`` writes one chip read by one amplifier (``ccdamp``) with
its LTV offsets, as ACS subarray FLTs are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hstcal_core.detectors import Detector
from hstcal_core.errors import ConfigError
from hstcal_core.simulate.darks import DarkChip, DarkLayout, DarkTruth, simulate_darks

from .detectors import ACS_HRC, ACS_WFC

__all__ = ["simulate", "acs_layout"]

_DARK_E_PER_S = {ACS_WFC.name: 0.006, ACS_HRC.name: 0.004}


def _shape(value, default: tuple[int, int]) -> tuple[int, int]:
    """``(ny, nx)`` from a tuple or a string ``"256x512"`` / ``"256,512"``."""
    if value is None:
        return default
    if isinstance(value, str):
        value = value.lower().replace("x", ",").split(",")
    ny, nx = (int(v) for v in value)
    return ny, nx


def acs_layout(detector: Detector, *, shape: Sequence[int] | str | None = None,
               gain: float | None = None, bunit: str = "ELECTRONS", subarray: bool = False,
               ccdamp: str | None = None, flashdur: float = 0.0,
               hot_fraction: float = 5e-4) -> DarkLayout:
    """The :class:`DarkLayout` of an ACS CCD.

    Parameters
    ----------
    detector : Detector
        ``ACS_WFC`` or ``ACS_HRC``.
    shape : (ny, nx) or str, optional
        Array size per chip (default: WFC 2048×4096 per chip, HRC 1024×1024).
    gain : float, optional
        CCDGAIN setting (default: WFC 2.0, HRC 2.0).
    bunit : str
        ``"ELECTRONS"`` (calacs since 2012) or ``"COUNTS"``.
    subarray : bool
        One chip, one amplifier (``ccdamp``, default C), LTV offsets of a corner subarray.
    """
    if detector.name not in (ACS_WFC.name, ACS_HRC.name):
        raise ValueError(f"not an ACS CCD: {detector.name}")
    setting = float(gain if gain is not None else 2.0)
    amps = {a.name: a for a in detector.amplifiers[setting]}
    if detector.name == ACS_WFC.name:
        ny, nx = _shape(shape, tuple(detector.extra["chip_shape"]))
        if subarray:
            amp = (ccdamp or "C").upper()
            chip_no = 1 if amp in "AB" else 2
            chips = (DarkChip(1, chip_no, (ny, nx), (amps[amp],),
                              {"LTV1": -float(4096 - nx) if amp in "BD" else 0.0,
                               "LTV2": 0.0}),)
            amp_string = amp
        else:
            chips = (DarkChip(1, 2, (ny, nx), (amps["C"], amps["D"])),
                     DarkChip(2, 1, (ny, nx), (amps["A"], amps["B"])))
            amp_string = "ABCD"
    else:
        ny, nx = _shape(shape, detector.shape)
        amp_string = (ccdamp or "C").upper()
        chips = (DarkChip(1, 1, (ny, nx), (amps.get(amp_string, amps["C"]),)),)
    return DarkLayout(
        instrument="ACS", detector=detector.detector, pixel_pitch_um=detector.pixel_pitch_um,
        chips=chips, ccdamp=amp_string, gain_setting=setting, bunit=bunit.upper(),
        rootname_prefix="j", subarray=bool(subarray), flashdur=float(flashdur),
        dark_e_per_s=_DARK_E_PER_S[detector.name], hot_fraction=float(hot_fraction),
        primary={"APERTURE": f"{detector.detector}{'-SUB' if subarray else ''}"})


def simulate(out_dir: str | Path, *, detector: Detector = ACS_WFC, kind: str = "dark",
             count: int = 2, seed: int = 0, start_mjd: float = 54000.0,
             exptime: float | str = 1000.0, shape: Sequence[int] | str | None = None,
             gain: float | str | None = None, bunit: str = "ELECTRONS",
             subarray: bool | str = False, ccdamp: str | None = None, **unused) -> DarkTruth:
    """Write ``count`` ACS darks (pairs) and their truth; the registered simulator.

    Parameters are those of :func:`acs_layout` and
    :func:`hstcal_core.simulate.darks.simulate_darks`; strings (``hstcal simulate -p
    shape=256x512``) are accepted.

    Raises
    ------
    ConfigError
        For a ``kind`` other than ``"dark"`` or an unknown argument.
    """
    if kind != "dark":
        raise ConfigError(f"{detector.name} simulates kind='dark' only (cosmic-ray census "
                         f"darks), got {kind!r}")
    unused.pop("binning", None)
    if unused:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unused)}")
    if isinstance(subarray, str):
        subarray = subarray.strip().lower() in ("1", "true", "yes", "t")
    layout = acs_layout(detector, shape=shape, gain=None if gain is None else float(gain),
                        bunit=bunit, subarray=bool(subarray), ccdamp=ccdamp)
    return simulate_darks(out_dir, layout, count=int(count), exptime=float(exptime),
                          seed=int(seed), start_mjd=float(start_mjd))
