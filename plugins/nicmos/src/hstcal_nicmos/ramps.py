"""NICMOS MULTIACCUM ramps: split an IMA into increments, find cosmic-ray jumps.

The shared IMA → increments → jumps logic is :mod:`hstcal_core.ramps` (its docstring
describes the increments); this module holds what is NICMOS's own:

* calnica's IMA (NICMOS Data Handbook ch. 2): the zeroth read last, ``COUNTS/S`` after
  UNITCORR; charge that arrived before the zeroth read is in no increment (NICMOS
  Instrument Handbook ch. 8: the zeroth read follows the reset by ~0.2 s).
* one gain and read noise per camera: the measured values of NICMOS IHB Table 7.1
  (5.4 / 5.4 / 6.5 e⁻/ADU), not the header's ADCGAIN, which is a commanded setting
  (5.0 in the 1998 NIC2 file of ``../shared/data``; see :mod:`hstcal_nicmos.detectors`).
  The read noise is that of a read pair.
* no reference border.
* jumps are flagged DQ 512 ("cosmic ray hit", calnica's CRIDCALC flag) in the combined DQ.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core import CombinedImage, Detector, Exposure, Options, Param
from hstcal_core import ramps as _ramps
from hstcal_core.ramps import RAMP_PARAMS, RampFormat, combine_ramps

__all__ = ["IR_PARAMS", "CR_FLAG", "BAD_DQ", "calibrate_ima", "reject_ramp_crs", "read_ima",
           "sample_times", "camera_gain", "camera_read_noise"]

log = logging.getLogger(__name__)

#: calnica DQ "cosmic ray hit" (NQUAL10).
CR_FLAG = 512
#: Increments never used or flagged: Reed-Solomon 1, defective 32, saturated 64,
#: missing 128, bad pixel 256 (calnica NQUAL keywords).
BAD_DQ = 1 | 32 | 64 | 128 | 256

IR_PARAMS: tuple[Param, ...] = RAMP_PARAMS


def camera_gain(detector: Detector) -> float:
    """The camera's measured gain, e⁻/ADU (NICMOS IHB Table 7.1)."""
    return float(detector.amplifier(detector.gains[0]).gain)


def camera_read_noise(detector: Detector) -> float:
    """The camera's read noise of a read pair, e⁻ (NICMOS IHB Table 7.1)."""
    return float(detector.amplifier(detector.gains[0]).read_noise)


def _gain(exposure: Exposure, detector: Detector, header: fits.Header,
          shape: tuple[int, int]) -> float:
    gain = camera_gain(detector)
    header_gain = exposure.primary.get("ADCGAIN")
    if header_gain is not None and abs(float(header_gain) - gain) > 0.05:
        log.info("%s: ADCGAIN=%s in the header; the camera's measured %.2f e-/ADU is used",
                 exposure.path.name, header_gain, gain)
    return gain


IMA_FORMAT = RampFormat(
    gain=_gain, read_noise=lambda exposure, detector, header, shape: camera_read_noise(detector),
    samptime_writer="calnica writes",
    obsmode_note=" (ACCUM and BRIGHTOBJ exposures have no intermediate reads)",
    describe_keywords=("SAMP_SEQ", "NSAMP"))


def read_ima(path: str | Path) -> Exposure:
    """Read an IMA (``read_exposure``), explaining what a file lacking SCI extensions is."""
    return _ramps.read_ima(path, IMA_FORMAT)


def sample_times(exposure: Exposure) -> np.ndarray:
    """SAMPTIME of every imset (file order); see :func:`hstcal_core.ramps.sample_times`."""
    return _ramps.sample_times(exposure, IMA_FORMAT)


def calibrate_ima(detector: Detector, exposure: Exposure, options: Options) -> Exposure:
    """Split a NICMOS IMA into read-to-read increments in electrons (module docstring).

    Raises
    ------
    InputError
        Not a MULTIACCUM IMA, an unknown BUNIT, or sample times that repeat.
    """
    return _ramps.calibrate_ramp(detector, exposure, IMA_FORMAT)


def reject_ramp_crs(detector: Detector, exposures, options: Options) -> CombinedImage:
    """Find the jumps of each exposure's increments (:func:`calibrate_ima` output).

    See :func:`hstcal_core.ramps.combine_ramps`; the combined DQ carries 512 where a
    jump was found.
    """
    return combine_ramps(detector, exposures, options, cr_flag=CR_FLAG, bad_dq=BAD_DQ,
                         read_noise=lambda exposure, det: camera_read_noise(det))
