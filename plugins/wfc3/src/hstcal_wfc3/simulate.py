"""Synthetic WFC3/IR dark ramps (calwf3 IMA files) with known cosmic rays.

Each exposure is written as calwf3 writes an IMA after ZOFFCORR/UNITCORR (WFC3 Data
Handbook ch. 2-3): NSAMP SCI/ERR/DQ/SAMP/TIME imsets, **newest read first** (EXTVER 1
is the last read, EXTVER NSAMP the zeroth read at SAMPTIME 0, stored as zeros), each
SCI the average rate since the zeroth read in ``ELECTRONS/S`` (or, with ``bunit=``,
cumulative ``ELECTRONS``, ``COUNTS`` = DN through ATODGN{A..D}, or ``COUNTS/S``), with
the 5-pixel reference border around the science pixels (full frame 1024×1024, or a
centred ``SQ<n>SUB`` subarray of n+10 pixels, like the real ``iccz11q4q_ima``).

The signal, per science pixel and interval between reads:

* dark current (0.05 e⁻/s, WFC3 IHB ch. 5, IR dark current) plus hot pixels (a fraction of pixels with
  a log-uniform 0.5–50 e⁻/s, left unflagged in DQ so the Poisson term is exercised),
  Poisson-drawn per interval;
* cosmic rays from the core generator (:func:`hstcal_core.simulate.make_cosmic_rays`,
  18 µm pixels, ``cr_rate`` cm⁻² s⁻¹ over the interval's duration), each landing in
  one interval and kept by every later read;
* read noise: each read gets Gaussian noise of READNSE/√2 (READNSE{A..D}, per quadrant,
  is the noise of a read pair), and every read has the zeroth read's noise subtracted
  as ZOFFCORR does.

Sample sequences (WFC3 IHB ch. 7, approximately): ``RAPID`` reads every frame time,
``SPARS<s>`` reads once at the frame time and then every ``s`` seconds.  The frame time
(one read of the array) is 2.932 s full frame and 0.853 / 0.278 / 0.113 / 0.061 s for
the 512 / 256 / 128 / 64 subarrays (0.2778 s in the real SQ256SUB IMA).

The writer, the signal model and the truth files (``truth.json``, ``truth.npz``;
coordinates in the trimmed science array that ``calibrate`` returns) are
:mod:`hstcal_core.simulate.ramps`; this module describes WFC3/IR to it.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from hstcal_core import ConfigError
from hstcal_core.simulate import HST_CR_RATE
from hstcal_core.simulate.ramps import (
    RampLayout,
    check_ramp_arguments,
    simulate_ramp_darks,
)

from .detectors import WFC3_IR
from .ir import quadrant_map

__all__ = ["simulate_ir_darks", "sample_sequence", "FRAME_TIME_S", "BUNITS"]

#: Time of one read of the array (RAPID spacing), s, by science size.
FRAME_TIME_S = {1014: 2.932, 512: 0.853, 256: 0.278, 128: 0.113, 64: 0.061}
BUNITS = ("ELECTRONS/S", "ELECTRONS", "COUNTS", "COUNTS/S")
DARK_E_PER_S = 0.05
_SUBTYPE = {1014: "FULLIMAG", 512: "SQ512SUB", 256: "SQ256SUB", 128: "SQ128SUB", 64: "SQ64SUB"}
_APERTURE = {1014: "IR", 512: "IRSUB512", 256: "IRSUB256", 128: "IRSUB128", 64: "IRSUB64"}
_CALIBRATED = ("DQICORR", "ZSIGCORR", "BLEVCORR", "ZOFFCORR", "NLINCORR", "DARKCORR", "UNITCORR")


def sample_sequence(samp_seq: str, nsamp: int, frame_time: float) -> np.ndarray:
    """SAMPTIME of each read (zeroth read first, at 0), for RAPID or SPARS<s>.

    Raises
    ------
    ValueError
        Unknown sequence name or NSAMP outside 2..16.
    """
    if not 2 <= int(nsamp) <= 16:
        raise ValueError(f"nsamp must be within 2..16 (WFC3/IR ramps), got {nsamp!r}")
    name = str(samp_seq).strip().upper()
    k = np.arange(int(nsamp), dtype=np.float64)
    if name == "RAPID":
        return k * frame_time
    if name.startswith("SPARS") and name[5:].isdigit():
        step = float(name[5:])
        return np.where(k == 0, 0.0, frame_time + np.maximum(k - 1, 0) * step)
    raise ValueError(f"samp_seq must be RAPID or SPARS<seconds> (e.g. SPARS25), got {samp_seq!r}")


def simulate_ir_darks(out_dir, *, kind: str = "dark", count: int = 1, seed: int = 0,
                      start_mjd: float = 55800.0, cadence_days: float = 1.0,
                      samp_seq: str = "SPARS25", nsamp: int = 16, subarray: int | None = None,
                      bunit: str = "ELECTRONS/S", cr_rate: float = HST_CR_RATE,
                      dark_e_per_s: float = DARK_E_PER_S, hot_fraction: float = 0.001,
                      gain: float | None = None, binning: str | None = None,
                      **unknown) -> dict:
    """Write ``count`` WFC3/IR dark IMAs (and SPT companions) with known cosmic rays.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    kind : str
        Only ``"dark"``.
    count, seed : int
        Number of exposures and the random seed.
    start_mjd, cadence_days : float
        EXPSTART of the first exposure and the spacing of the others.
    samp_seq, nsamp : str, int
        Sample sequence (``RAPID`` or ``SPARS<s>``) and reads including the zeroth.
    subarray : int, optional
        Science size of a centred square subarray (512, 256, 128, 64); full frame if None.
    bunit : str
        BUNIT of the SCI arrays, one of :data:`BUNITS`.
    cr_rate : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_e_per_s, hot_fraction : float
        Dark current and the fraction of hot pixels.
    gain, binning
        Accepted for ``hstcal simulate``; only 2.5 and 1x1 exist.

    Returns
    -------
    dict
        The content of ``truth.json`` plus ``"truth_npz"``, the path of the deposits.

    Raises
    ------
    ConfigError
        An unknown argument or an invalid value, naming it.
    """
    bunit = check_ramp_arguments(WFC3_IR, BUNITS, unknown=unknown, kind=kind, gain=gain,
                                 binning=binning, bunit=bunit)
    size = WFC3_IR.shape[0] if subarray is None else int(subarray)
    if size not in FRAME_TIME_S:
        raise ConfigError(f"subarray must be one of {sorted(s for s in FRAME_TIME_S if s < 1014)} "
                         f"or None (full frame), got {subarray!r}")
    try:
        times = sample_sequence(samp_seq, nsamp, FRAME_TIME_S[size])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return simulate_ramp_darks(out_dir, _layout(size), times, samp_seq=samp_seq, bunit=bunit,
                               count=count, seed=seed, start_mjd=start_mjd,
                               cadence_days=cadence_days, cr_rate=cr_rate,
                               dark_e_per_s=dark_e_per_s, hot_fraction=hot_fraction)


def _layout(size: int) -> RampLayout:
    """WFC3/IR files of a ``size``² science array: quadrant gains, the reference border."""
    border = int(WFC3_IR.extra["reference_pixels"])
    ltv = float(border - (WFC3_IR.shape[0] - size) // 2)
    amps = {a.name: a for a in WFC3_IR.amplifiers[2.5]}
    grid_header = fits.Header({"LTV1": ltv - border, "LTV2": ltv - border})
    gain_map = quadrant_map(grid_header, (size, size), {k: a.gain for k, a in amps.items()},
                            WFC3_IR.shape)
    rn_map = quadrant_map(grid_header, (size, size),
                          {k: a.read_noise for k, a in amps.items()}, WFC3_IR.shape)
    calibration = {"CCDGAIN": 2.5,
                   **{f"ATODGN{name}": amp.gain for name, amp in amps.items()},
                   **{f"READNSE{name}": amp.read_noise for name, amp in amps.items()},
                   **dict.fromkeys(_CALIBRATED, "COMPLETE"), "CRCORR": "OMIT"}
    return RampLayout(
        detector=WFC3_IR, science_shape=(size, size), gain=gain_map, read_noise=rn_map,
        root_prefix="ixs", instrument={"INSTRUME": "WFC3", "DETECTOR": "IR"},
        aperture=_APERTURE[size],
        setup={"SUBARRAY": size != WFC3_IR.shape[0], "SUBTYPE": _SUBTYPE[size],
               "CENTERA1": 513, "CENTERA2": 513,
               "SIZAXIS1": size + 2 * border, "SIZAXIS2": size + 2 * border},
        calibration=calibration,
        history="Synthetic WFC3/IR dark ramp written by hstcal_wfc3.simulate",
        spt_instrument={"INSTRUME": "WFC3"}, name_keywords=("ROOTNAME", "EXPNAME"),
        sci_cards={"LTV1": ltv, "LTV2": ltv}, reference_border=border,
        constant_samp_time=True)
