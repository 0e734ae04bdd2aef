"""Synthetic NICMOS dark ramps (calnica IMA files) with known cosmic rays.

Each exposure is written as calnica writes an IMA (NICMOS Data Handbook ch. 2): NSAMP
SCI/ERR/DQ/SAMP/TIME imsets of 256×256 pixels, **newest read first** (EXTVER 1 the last
read, EXTVER NSAMP the zeroth read at SAMPTIME 0, stored as zeros after ZOFFCORR), each
SCI the average rate since the zeroth read in ``COUNTS/S`` as in the real
``HST_NICMOS.fits`` header (or, with ``bunit=``, ``COUNTS``, ``ELECTRONS`` or
``ELECTRONS/S``).  Counts are electrons over the camera's NICMOS IHB Table 7.1 gain,
which is also written as ADCGAIN.

Signal per pixel and interval between reads: dark current (0.3 e⁻/s, NICMOS IHB Table
7.1) plus unflagged hot pixels (log-uniform 0.5–50 e⁻/s), Poisson-drawn; cosmic rays
from the core generator (:func:`hstcal_core.simulate.make_cosmic_rays`, 40 µm pixels,
``cr_rate`` cm⁻² s⁻¹ over the interval), each landing in one interval; read noise of
RN/√2 per read (Table 7.1 quotes RN for a read pair) with the zeroth read's noise
subtracted from every read.  Amplifier glow, shading and the bias "pedestal" of real
NICMOS ramps are not modelled.

Sample sequences (NICMOS IHB ch. 8, approximately): ``SPARS<s>`` reads at 0.203 s then
every ``s`` seconds; ``STEP<s>`` reads at 0.303 and 0.606 s, doubles from 1 s up to
``s`` and then reads every ``s`` seconds (``STEP32`` with NSAMP 10 ends at 64 s after a
32 s step, as the real N4HK12010 header: SAMPTIME 63.96, DELTATIM 32.0).

The writer, the signal model and the truth files (``truth.json``, ``truth.npz``;
coordinates in the 256×256 array) are :mod:`hstcal_core.simulate.ramps`; this module
describes each camera to it.
"""

from __future__ import annotations

import numpy as np

from hstcal_core import ConfigError
from hstcal_core.simulate import HST_CR_RATE
from hstcal_core.simulate.ramps import (
    RampLayout,
    check_ramp_arguments,
    simulate_ramp_darks,
)

from .detectors import DETECTORS

__all__ = ["simulate_nicmos_darks", "sample_sequence", "BUNITS"]

BUNITS = ("COUNTS/S", "COUNTS", "ELECTRONS", "ELECTRONS/S")
_FIRST_READ_S = 0.203  # one read of the array, the shortest MULTIACCUM spacing
_CAMERAS = {int(det.extra["camera"]): det for det in DETECTORS}
_CALIBRATED = ("ZSIGCORR", "ZOFFCORR", "MASKCORR", "BIASCORR", "NOISCALC", "NLINCORR",
               "DARKCORR", "UNITCORR")


def sample_sequence(samp_seq: str, nsamp: int) -> np.ndarray:
    """SAMPTIME of each read (zeroth read first, at 0), for SPARS<s> or STEP<s>.

    Raises
    ------
    ValueError
        Unknown sequence name or NSAMP outside 2..26.
    """
    if not 2 <= int(nsamp) <= 26:
        raise ValueError(f"nsamp must be within 2..26 (NICMOS MULTIACCUM), got {nsamp!r}")
    name = str(samp_seq).strip().upper()
    kind, step = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
    if kind not in ("SPARS", "STEP") or not step:
        raise ValueError(f"samp_seq must be SPARS<s> or STEP<s> (e.g. STEP64), got {samp_seq!r}")
    step_s = float(step)
    times = [0.0]
    if kind == "SPARS":
        times.append(_FIRST_READ_S)
        while len(times) < int(nsamp):
            times.append(times[-1] + step_s)
        return np.asarray(times)
    times += [0.303, 0.606]
    t = 1.0
    while len(times) < int(nsamp):
        times.append(t)
        t = t * 2.0 if t * 2.0 <= step_s else t + step_s
    return np.asarray(times[: int(nsamp)])


def simulate_nicmos_darks(out_dir, *, camera: int = 2, kind: str = "dark", count: int = 1,
                          seed: int = 0, start_mjd: float = 52800.0, cadence_days: float = 1.0,
                          samp_seq: str = "STEP64", nsamp: int = 16, bunit: str = "COUNTS/S",
                          cr_rate: float = HST_CR_RATE, dark_e_per_s: float | None = None,
                          hot_fraction: float = 0.001, gain: float | None = None,
                          binning: str | None = None, **unknown) -> dict:
    """Write ``count`` NICMOS dark IMAs (and SPT companions) with known cosmic rays.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    camera : int
        1, 2 or 3.
    kind : str
        Only ``"dark"``.
    count, seed : int
        Number of exposures and the random seed.
    start_mjd, cadence_days : float
        EXPSTART of the first exposure and the spacing of the others.
    samp_seq, nsamp : str, int
        Sample sequence and reads including the zeroth.
    bunit : str
        BUNIT of the SCI arrays, one of :data:`BUNITS`.
    cr_rate : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_e_per_s : float, optional
        Dark current; the camera's 0.3 e⁻/s by default.
    hot_fraction : float
        Fraction of hot pixels.
    gain, binning
        Accepted for ``hstcal simulate``; only the camera's gain and 1x1 exist.

    Returns
    -------
    dict
        The content of ``truth.json`` plus ``"truth_npz"``, the path of the deposits.

    Raises
    ------
    ConfigError
        An unknown argument or an invalid value, naming it.
    """
    if int(camera) not in _CAMERAS:
        raise ConfigError(f"camera must be 1, 2 or 3, got {camera!r}")
    det = _CAMERAS[int(camera)]
    bunit = check_ramp_arguments(det, BUNITS, unknown=unknown, kind=kind, gain=gain,
                                 binning=binning, bunit=bunit)
    dark_rate = float(det.extra["dark_current_e_per_s"] if dark_e_per_s is None else dark_e_per_s)
    try:
        times = sample_sequence(samp_seq, nsamp)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return simulate_ramp_darks(out_dir, _layout(det), times, samp_seq=samp_seq, bunit=bunit,
                               count=count, seed=seed, start_mjd=start_mjd,
                               cadence_days=cadence_days, cr_rate=cr_rate,
                               dark_e_per_s=dark_rate, hot_fraction=hot_fraction)


def _layout(det) -> RampLayout:
    """One camera's files: its Table 7.1 gain (also written as ADCGAIN) and read noise."""
    amp = det.amplifier(det.gains[0])
    camera = int(det.extra["camera"])
    return RampLayout(
        detector=det, science_shape=tuple(det.shape), gain=amp.gain, read_noise=amp.read_noise,
        root_prefix=f"n{camera}s", instrument={"INSTRUME": "NICMOS", "CAMERA": camera},
        aperture=str(det.extra["aperture_prefix"]),
        setup={"ADCGAIN": (amp.gain, "A-to-D gain (e-/ADU), NICMOS IHB Table 7.1")},
        calibration={**dict.fromkeys(_CALIBRATED, "COMPLETE"), "CRIDCALC": "OMIT"},
        history="Synthetic NICMOS dark ramp written by hstcal_nicmos.simulate",
        spt_instrument={"INSTRUME": "NICMOS", "CAMERA": camera})
