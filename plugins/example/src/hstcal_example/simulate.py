"""Synthetic ``example_cam`` darks with known cosmic rays: what a plugin's simulator looks like.

Each file holds ``imsets`` SCI/ERR/DQ imsets of ``exptime`` seconds on a constant
bias (header ``BIASLEVL``), with Poisson dark current, Gaussian read noise and
cosmic rays from the core's generator (:func:`hstcal_core.simulate.cosmic_rays.make_cosmic_rays`,
HST's 1.2 cm⁻² s⁻¹), plus an ``_spt.fits`` companion as HST datasets have.
``truth.json`` lists every file's start time and its cosmic-ray pixels per imset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core.fitsio import atomic_path, write_atomic
from hstcal_core.simulate.cosmic_rays import HST_CR_RATE, make_cosmic_rays, render

from .detectors import EXAMPLE_CAM

__all__ = ["simulate"]

BIAS_DN = 100.0
DARK_E_PER_S = 0.01


def _rootname(seed: int, k: int) -> str:
    return f"xe{seed % 1000:03d}{k:04d}"[:9].ljust(9, "q")


def simulate(out_dir, *, kind: str = "dark", count: int = 4, seed: int = 0,
             start_mjd: float = 55600.0, cadence_days: float = 7.0, exptime: float = 1000.0,
             imsets: int = 2, **unused) -> dict:
    """Write ``count`` darks starting at ``start_mjd``, one every ``cadence_days``.

    Returns
    -------
    dict
        The truth also written to ``truth.json``: ``files``, ``expstart_mjd``,
        ``cr_pixels`` (per file and imset).
    """
    if kind != "dark":
        raise ValueError(f"example_cam simulates kind='dark' only, got {kind!r}")
    unused.pop("gain", None), unused.pop("binning", None)
    if unused:
        raise ValueError(f"unknown simulator argument(s) {sorted(unused)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    amp = EXAMPLE_CAM.amplifiers[1.0][0]
    truth = {"files": [], "expstart_mjd": [], "cr_pixels": []}
    for k in range(int(count)):
        root = _rootname(seed, k)
        t0 = start_mjd + k * cadence_days + 0.25
        primary = fits.PrimaryHDU()
        primary.header.update(INSTRUME="EXAMPLE", DETECTOR="CAM", ROOTNAME=root,
                              TARGNAME="DARK", OBSTYPE="INTERNAL", PROPOSID=99999,
                              BIASLEVL=BIAS_DN, CCDGAIN=1, ATODGAIN=amp.gain,
                              READNSE=amp.read_noise, EXPSTART=t0,
                              EXPEND=t0 + imsets * exptime / 86400, EXPTIME=imsets * exptime)
        hdus, pixels = [primary], []
        for ver in range(1, imsets + 1):
            crs = make_cosmic_rays(EXAMPLE_CAM.shape, exptime, HST_CR_RATE,
                                   EXAMPLE_CAM.pixel_pitch_um, rng)
            electrons = rng.poisson(DARK_E_PER_S * exptime, EXAMPLE_CAM.shape) + render(crs)
            sci = (BIAS_DN + electrons / amp.gain
                   + rng.normal(0, amp.read_noise, EXAMPLE_CAM.shape)).astype(np.float32)
            pixels.append(int(np.count_nonzero(render(crs) > 0)))
            start = t0 + (ver - 1) * exptime / 86400
            header = fits.Header({"EXPTIME": exptime, "EXPSTART": start,
                                  "EXPEND": start + exptime / 86400})
            hdus += [fits.ImageHDU(sci, header=header, name="SCI", ver=ver),
                     fits.ImageHDU(np.full(EXAMPLE_CAM.shape, amp.read_noise, np.float32),
                                   name="ERR", ver=ver),
                     fits.ImageHDU(np.zeros(EXAMPLE_CAM.shape, np.int16), name="DQ", ver=ver)]
        write_atomic(fits.HDUList(hdus), out / f"{root}_raw.fits")
        spt = fits.PrimaryHDU()
        spt.header.update(INSTRUME="EXAMPLE", ROOTNAME=root, FILETYPE="SPT")
        write_atomic(fits.HDUList([spt]), out / f"{root}_spt.fits")
        truth["files"].append(f"{root}_raw.fits")
        truth["expstart_mjd"].append(t0)
        truth["cr_pixels"].append(pixels)
    with atomic_path(out / "truth.json") as tmp:
        tmp.write_text(json.dumps(truth, indent=1))
    return truth
