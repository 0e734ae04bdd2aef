"""Synthetic WFC3/UVIS darks (FLT-like) for the cosmic-ray census.

A thin layer over :func:`hstcal_core.simulate.darks.simulate_darks` with the UVIS chip
layout (``SCI,1`` is UVIS2 = CCDCHIP 2 read by amps C/D, ``SCI,2`` is UVIS1 = CCDCHIP 1
read by A/B; WFC3 DHB §2.2) and the CCDTAB constants of :mod:`hstcal_wfc3.detectors`
(gain 1.56 e⁻/DN, read noise 3.03-3.18 e⁻).  The array size is configurable (tests use
``shape=(256, 512)`` per chip).  Dark current 0.003 e⁻/s/px, a few e⁻/hr as UVIS has
(the exact level does not matter for the census); pixels above 0.1 e⁻/s carry DQ 16,
"hot pixel" (wf3dq.h).  ``subarray=True`` writes one
chip read by one amplifier with LTV offsets, as UVIS subarray FLTs are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hstcal_core.errors import ConfigError
from hstcal_core.simulate.darks import DarkChip, DarkLayout, DarkTruth, simulate_darks

from .detectors import WFC3_UVIS

__all__ = ["simulate_uvis_darks", "uvis_layout"]


def _shape(value, default) -> tuple[int, int]:
    if value is None:
        return tuple(int(v) for v in default)
    if isinstance(value, str):
        value = value.lower().replace("x", ",").split(",")
    ny, nx = (int(v) for v in value)
    return ny, nx


def uvis_layout(*, shape: Sequence[int] | str | None = None, bunit: str = "ELECTRONS",
                subarray: bool = False, ccdamp: str | None = None,
                hot_fraction: float = 5e-4, flashdur: float = 0.0) -> DarkLayout:
    """The :class:`DarkLayout` of WFC3/UVIS (``shape`` per chip, default 2051×4096)."""
    amps = {a.name: a for a in WFC3_UVIS.amplifiers[1.5]}
    ny, nx = _shape(shape, WFC3_UVIS.extra["chip_shape"])
    if subarray:
        amp = (ccdamp or "C").upper()
        chips = (DarkChip(1, 1 if amp in "AB" else 2, (ny, nx), (amps[amp],),
                          {"LTV1": -float(4096 - nx) if amp in "BD" else 0.0, "LTV2": 0.0}),)
        amp_string = amp
    else:
        chips = (DarkChip(1, 2, (ny, nx), (amps["C"], amps["D"])),
                 DarkChip(2, 1, (ny, nx), (amps["A"], amps["B"])))
        amp_string = "ABCD"
    return DarkLayout(
        instrument="WFC3", detector="UVIS", pixel_pitch_um=WFC3_UVIS.pixel_pitch_um,
        chips=chips, ccdamp=amp_string, gain_setting=1.5, bunit=bunit.upper(),
        rootname_prefix="i", subarray=bool(subarray), flashdur=float(flashdur),
        dark_e_per_s=0.003, hot_fraction=float(hot_fraction), hot_flag_e_per_s=0.1,
        primary={"APERTURE": "UVIS" + ("-SUB" if subarray else "")})


def simulate_uvis_darks(out_dir: str | Path, *, kind: str = "dark", count: int = 2,
                        seed: int = 0, start_mjd: float = 56000.0, exptime: float | str = 900.0,
                        shape: Sequence[int] | str | None = None, bunit: str = "ELECTRONS",
                        subarray: bool | str = False, ccdamp: str | None = None,
                        **unused) -> DarkTruth:
    """Write ``count`` UVIS darks (pairs) and their truth; the registered simulator.

    Raises
    ------
    ConfigError
        For a ``kind`` other than ``"dark"`` or an unknown argument.
    """
    if kind != "dark":
        raise ConfigError(f"wfc3_uvis simulates kind='dark' only (cosmic-ray census darks), "
                         f"got {kind!r}")
    unused.pop("binning", None)
    unused.pop("gain", None)
    if unused:
        raise ConfigError(f"unknown simulator argument(s) {sorted(unused)}")
    if isinstance(subarray, str):
        subarray = subarray.strip().lower() in ("1", "true", "yes", "t")
    layout = uvis_layout(shape=shape, bunit=bunit, subarray=bool(subarray), ccdamp=ccdamp)
    return simulate_darks(out_dir, layout, count=int(count), exptime=float(exptime),
                          seed=int(seed), start_mjd=float(start_mjd))
