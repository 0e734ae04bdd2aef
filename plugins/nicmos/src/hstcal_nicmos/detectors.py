"""NICMOS detectors (cameras NIC1, NIC2, NIC3) and their constants.

NICMOS headers name the camera with ``CAMERA = 1 | 2 | 3`` and carry no DETECTOR
keyword; the registered ``detector`` values are those camera numbers as strings,
and ``extra["detector_keyword"] = "CAMERA"`` says which keyword holds them.

Sources
-------
* NICMOS Instrument Handbook (Cycle 14/17) §7.2, Table 7.1 "Flight array
  characteristics": 256×256 HgCdTe arrays in four independently read 128×128
  quadrants; conversion gain 5.4 / 5.4 / 6.5 e⁻/ADU, read noise ~26 / ~26 / ~29 e⁻
  (RMS of a differenced pair of reads), dark 0.3 e⁻/s, well depth 26,900 / 28,200 /
  32,800 ADU and saturation (5 % from linear) 21,500 / 22,500 / 26,200 ADU for
  NIC1 / NIC2 / NIC3.  The same gains and read noises are hard-coded in drizzlepac
  ``nicmosData`` (NIC1/2/3InputImage).  Pixel pitch 40 µm (NICMOS3 design).
* Plate scales 0.043″ (NIC1), 0.075″ (NIC2), 0.20″ (NIC3): NICMOS IHB camera table.
* DQ bits: the NQUALnn keyword comments calnica writes (n8xtzcawq, 2005, in
  ``../shared/data/hst/nicmos``): Reed-Solomon, non-linearity, dark, flat, grot,
  defective, saturated, missing, bad pixel, cosmic ray, source, zero-read signal,
  USER1, USER2, high curvature, reserved, for bits 1 … 32768.
* Real headers: ADCGAIN 6.5 for a 2005 NIC3 image (matches Table 7.1) but 5.0 for
  a 1998 NIC2 MULTIACCUM (N4HK12010), below the 5.4 measured value: the header gain
  is a commanded/nominal value, so stages must look gains up by camera, not trust
  ADCGAIN.  Amplifiers are keyed by the Table 7.1 gain of each camera.

Area: 256·256·(40 µm)² = 1.049 cm² per camera.  HSTcosmicrays lists NICMOS but gives
no ``detector_size``, so the geometric area is used (no census value to compare).

Inactive windows (``Detector.inactive``, all three cameras):

* launch (1990-04-24) to installation on SM2 EVA 1 (1997-02-14, STS-82);
* end of cryogen: exhausted 1999-01-03, the warm-up monitoring ran until 1999-01-11
  (STScI "NICMOS End Of Cryogen" page), until the NICMOS Cooling System was installed
  on SM3B EVA 5 (2002-03-08, STS-109; science resumed in June 2002);
* NCS down from 2008-09-10 (NASA HST status report of 2009-08-05) until the detector
  electronics were enabled again on 2009-09-15 (STAN 43);
* from 2009-10-23, after the last NICMOS data (HSTcosmicrays' NICMOS ``date_range`` ends
  on 2009-10-22; SMOV ran "through October", STAN 43); not offered since Cycle 18.

Not verified here: the full-array read time of 0.203 s (the shortest MULTIACCUM
sample spacing, NICMOS IHB §8) and the plate scales to better than 2 digits.
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["NICMOS_DQ", "NICMOS_NIC1", "NICMOS_NIC2", "NICMOS_NIC3", "DETECTORS",
           "NICMOS_INACTIVE"]

# First day inactive, first day back (UTC dates, end exclusive); sources in the docstring.
NICMOS_INACTIVE = (
    ("1990-04-24", "1997-02-14"),  # HST launch to installation (SM2 EVA 1)
    ("1999-01-12", "2002-03-08"),  # end of cryogen to the NCS (SM3B EVA 5)
    ("2008-09-10", "2009-09-15"),  # NCS restart failures to the post-SM4 recovery
    ("2009-10-23", None),  # after the last data (HSTcosmicrays date_range)
)

# calnica NQUAL01..NQUAL16 keyword comments, in bit order.
NICMOS_DQ: dict[int, str] = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon decoding error",
    2: "poor or uncertain linearity correction",
    4: "poor or uncertain dark correction",
    8: "poor or uncertain flat-field correction",
    16: "grot (particulate on the detector)",
    32: "defective pixel (hot or cold)",
    64: "saturated pixel",
    128: "missing data",
    256: "bad pixel",
    512: "cosmic ray hit",
    1024: "pixel contains source",
    2048: "signal in zero read (zero-read signal correction)",
    4096: "USER1",
    8192: "USER2",
    16384: "high curvature in the ramp",
}

# NICMOS IHB Table 7.1, per camera: (gain e-/ADU, read noise e-, saturation ADU,
# well depth ADU, plate scale arcsec).
_CAMERAS = {
    1: (5.4, 26.0, 21500.0, 26900.0, 0.043),
    2: (5.4, 26.0, 22500.0, 28200.0, 0.075),
    3: (6.5, 29.0, 26200.0, 32800.0, 0.20),
}


def _camera(camera: int) -> Detector:
    gain, read_noise, saturation, well, scale = _CAMERAS[camera]
    return Detector(
        name=f"nicmos_nic{camera}",
        instrument="NICMOS",
        detector=str(camera),
        kind="ir",
        shape=(256, 256),
        pixel_pitch_um=40.0,
        pixel_scale_arcsec=scale,
        gain_keyword="ADCGAIN",
        # Four quadrant amplifiers, named as in the QAMEAN..QDMEAN statistics keywords.
        amplifiers={gain: tuple(Amplifier(q, gain=gain, read_noise=read_noise)
                                for q in "ABCD")},
        readout_time_s=0.203,  # shortest MULTIACCUM sample spacing (one array read)
        saturation_dn={gain: saturation},
        dq_flags=NICMOS_DQ,
        description=f"NICMOS camera {camera} (NIC{camera}): 256x256 HgCdTe, 40 um pixels",
        inactive=NICMOS_INACTIVE,
        extra={
            "detector_keyword": "CAMERA",
            "camera": camera,
            "aperture_prefix": f"NIC{camera}",
            "quadrants": 4,
            "quadrant_shape": (128, 128),
            "multiaccum": True,
            "well_depth_dn": well,
            "dark_current_e_per_s": 0.3,
            "mode_keywords": ("SAMP_SEQ", "NSAMP"),
        },
    )


NICMOS_NIC1 = _camera(1)
NICMOS_NIC2 = _camera(2)
NICMOS_NIC3 = _camera(3)

DETECTORS = (NICMOS_NIC1, NICMOS_NIC2, NICMOS_NIC3)
