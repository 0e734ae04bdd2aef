"""WFC3/IR MULTIACCUM ramps: split an IMA into increments, find cosmic-ray jumps.

The shared IMA → increments → jumps logic is :mod:`hstcal_core.ramps` (its docstring
describes the increments); this module holds what is WFC3/IR's own:

* calwf3's IMA (WFC3 Data Handbook ch. 2): BUNIT ``ELECTRONS/S`` or ``COUNTS/S`` after
  UNITCORR (WFC3 DHB ch. 3), or cumulative ``ELECTRONS``/``COUNTS``; the zeroth read's
  signal (ZSIGCORR's estimate) is in no increment, as in calwf3.
* gain and read noise per amplifier quadrant: ATODGN{A..D} and READNSE{A..D} (the noise
  of a read pair, WFC3 IHB ch. 5, IR detector) or the detector's constants; calwf3
  ``noiscalc``: amp B lower-left, C lower-right, A upper-left, D upper-right.
* the 5-pixel reference border is trimmed (the science array is 1014×1014, or the
  subarray's inner part); LTV1/2 and CRPIX1/2 shift by 5 as calwf3 does for the FLT.
* jumps are flagged DQ 8192 in the combined DQ: HSTcosmicrays left WFC3/IR as
  NotImplemented; calwf3 CRCORR flags jumps (DQ 8192) inside its ramp fit (WFC3 DHB
  ch. 3), which is what this mirrors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core import CombinedImage, Detector, Exposure, Options, Param
from hstcal_core import ramps as _ramps
from hstcal_core.ramps import RAMP_PARAMS, RampFormat, combine_ramps

from .detectors import WFC3_IR

__all__ = ["IR_PARAMS", "CR_FLAG", "BAD_DQ", "calibrate_ima", "reject_ramp_crs", "combine_ramps",
           "read_ima", "quadrant_map", "amp_constants", "sample_times"]

#: wf3dq.h: "cosmic ray found in up-the-ramp fit" (set in the combined DQ where a jump was).
CR_FLAG = 8192
#: Increments never used or flagged (wf3dq.h): bad detector pixel 4, deviant zero read 8,
#: unstable 32 (telegraph pixels jump by themselves), bad reference pixel 128, saturated 256.
BAD_DQ = 4 | 8 | 32 | 128 | 256

IR_PARAMS: tuple[Param, ...] = RAMP_PARAMS

_AMPS = "ABCD"


# --------------------------------------------------------------------------- quadrants
def quadrant_map(header: fits.Header, shape: tuple[int, int], values: dict[str, float],
                 science_shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel value of each amplifier's quadrant for a (trimmed) science array.

    ``header`` is the trimmed SCI header: array index = science-grid coordinate + LTV
    (the 1014×1014 grid; a subarray's LTV locates it).  Quadrant boundaries are the
    grid's middle row and column; B lower-left, C lower-right, A upper-left, D
    upper-right (calwf3 ``noiscalc``).
    """
    ny, nx = shape
    ltv1 = float(header.get("LTV1", 0.0))
    ltv2 = float(header.get("LTV2", 0.0))
    col = np.arange(nx) - ltv1
    row = np.arange(ny) - ltv2
    left = (col < science_shape[1] / 2)[None, :]
    lower = (row < science_shape[0] / 2)[:, None]
    return np.where(lower, np.where(left, values["B"], values["C"]),
                    np.where(left, values["A"], values["D"])).astype(np.float32)


def amp_constants(primary: fits.Header, detector: Detector) -> tuple[dict, dict]:
    """``({amp: gain}, {amp: read noise})``: ATODGN*/READNSE* or the detector's constants."""
    setting = primary.get(detector.gain_keyword, detector.gains[0])
    try:
        amps = {a.name: a for a in detector.amplifiers[float(setting)]}
    except (KeyError, TypeError, ValueError):
        amps = {a.name: a for a in detector.amplifiers[detector.gains[0]]}
    gains, noise = {}, {}
    for amp in _AMPS:
        g = float(primary.get(f"ATODGN{amp}", 0.0) or 0.0)
        r = float(primary.get(f"READNSE{amp}", 0.0) or 0.0)
        gains[amp] = g if g > 0 else amps[amp].gain
        noise[amp] = r if r > 0 else amps[amp].read_noise
    return gains, noise


def _gain_map(exposure: Exposure, detector: Detector, header: fits.Header,
              shape: tuple[int, int]) -> np.ndarray:
    gains, _ = amp_constants(exposure.primary, detector)
    return quadrant_map(header, shape, gains, tuple(detector.shape))


def _read_noise_map(exposure: Exposure, detector: Detector, header: fits.Header,
                    shape: tuple[int, int]) -> np.ndarray:
    _, noise = amp_constants(exposure.primary, detector)
    return quadrant_map(header, shape, noise, tuple(detector.shape))


IMA_FORMAT = RampFormat(
    gain=_gain_map, read_noise=_read_noise_map,
    reference_border=int(WFC3_IR.extra["reference_pixels"]), check_deltatim=True,
    samptime_writer="calwf3/calnica write", processed_products="_flt/_cal/_mos")


# --------------------------------------------------------------------------- stages
def read_ima(path: str | Path) -> Exposure:
    """Read an IMA (``read_exposure``), explaining what a file lacking SCI extensions is."""
    return _ramps.read_ima(path, IMA_FORMAT)


def sample_times(exposure: Exposure) -> np.ndarray:
    """SAMPTIME of every imset (file order); see :func:`hstcal_core.ramps.sample_times`."""
    return _ramps.sample_times(exposure, IMA_FORMAT)


def calibrate_ima(detector: Detector, exposure: Exposure, options: Options) -> Exposure:
    """Split a WFC3/IR IMA into read-to-read increments in electrons (module docstring).

    Raises
    ------
    InputError
        Not a MULTIACCUM IMA, an unknown BUNIT, or sample times that repeat.
    """
    return _ramps.calibrate_ramp(detector, exposure, IMA_FORMAT)


def reject_ramp_crs(detector: Detector, exposures, options: Options) -> CombinedImage:
    """Find the jumps of each exposure's increments (:func:`calibrate_ima` output).

    See :func:`hstcal_core.ramps.combine_ramps`; the combined DQ carries 8192 where a
    jump was found.
    """
    return combine_ramps(detector, exposures, options, cr_flag=CR_FLAG, bad_dq=BAD_DQ,
                         read_noise=_read_noise)


def _read_noise(exposure: Exposure, detector: Detector) -> np.ndarray:
    first = exposure.imsets[0]
    return _read_noise_map(exposure, detector, first.header, first.shape)
