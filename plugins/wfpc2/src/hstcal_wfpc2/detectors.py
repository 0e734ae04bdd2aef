"""WFPC2 detectors (PC1, WF2, WF3, WF4) and their constants.

WFPC2 has four cameras, each with its own 800×800 Loral CCD of 15 µm pixels; the
header keyword DETECTOR holds the chip number (1 = PC1, 2-4 = WF2-WF4), per group or
SCI extension.  Each chip is registered as its own detector.

Sources
-------
* WFPC2 Instrument Handbook (Cycle 14) §1.1: 800×800 Loral CCD per camera,
  0.1″/px (WF) and 0.046″/px (PC), saturation above ~53,000 detected photons;
  v4.0 §4.12 (Read Noise and Gain Settings): gain and read noise per chip at
  ATODGAIN 7 and 15, as tabulated in drizzlepac ``wfpc2Data.WFPC2_GAINS`` (PC1
  7.12/5.24 and 13.99/7.02; WF2 7.12/5.51 and 14.50/7.84; WF3 6.90/5.22 and
  13.95/6.99; WF4 7.10/5.19 and 13.95/8.32 e⁻/DN / e⁻).  Plate scales 0.0455″ (PC,
  the handbook's 0.046″) and 0.0996″ (WF, drizzlepac's reference scale).
* WFPC2 Data Handbook Table 3.4 ("WFPC2 data quality flags"): 2 calibration file
  defect, 4 permanent camera defect, 8 A/D saturation (full scale 4095 DN, values
  above ~3500 DN likely saturated), 16 missing data, 32 other bad pixel, 128
  permanent charge trap, 256 questionable pixel above a trap, 512 unrepaired warm
  pixel, 1024 repaired warm pixel, 2048 whole chip masked.  Bit 64 is not defined.
* Real headers (``../shared/data/hst/wfpc2``): ATODGAIN = 7.0, SATURATE = 4095,
  DETECTOR = 1..4, READTIME = 464 clock ticks, and bias from the extended register
  BIASEVEN ≈ 316.7 DN (PC1) / 311.8 DN (WF4) for u5780205r (1999, gain 7).
* HSTcosmicrays ``pipeline_config.yaml``: WFPC2 ``detector_size`` 5.76 cm² with
  ``extnums [1, 2, 3, 4]`` and 30 s readout padding.

Area finding: one chip is 800·800·(15 µm)² = 1.44 cm².  HSTcosmicrays' 5.76 cm² is
4 × 1.44, the whole four-chip camera: it labels all four SCI extensions of a c0m file
together and divides by the summed area.  Registering per chip, the physically right
area is 1.44 cm² each; the four chips together give 5.76 cm² (a test asserts this).
A per-chip rate computed with 5.76 cm² would be 4× too low.

Inactive windows (``Detector.inactive``, all four chips): from launch (1990-04-24)
until WFPC2 was installed on SM1 EVA 3 (1993-12-07 UTC, STS-61), and from its removal
on SM4 EVA 1 (2009-05-14, STS-125), when WFC3 took its bay; HSTcosmicrays' WFPC2
``date_range`` is 1994-01-01 to 2009-06-01.

Not verified here: the full-frame readout time (taken as twice the census padding,
~60 s; the READTIME tick length is not known to us) and the per-chip full well.
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["WFPC2_DQ", "WFPC2_PC", "WFPC2_WF2", "WFPC2_WF3", "WFPC2_WF4", "DETECTORS",
           "CAMERA_AREA_CM2", "WFPC2_INACTIVE"]

# First day inactive, first day back (UTC dates, end exclusive).
WFPC2_INACTIVE = (
    ("1990-04-24", "1993-12-07"),  # HST launch (STS-31) to installation on SM1 EVA 3 (STS-61)
    ("2009-05-14", None),  # removed on SM4 EVA 1 (STS-125)
)

# WFPC2 Data Handbook Table 3.4.  Every bit is restated: WFPC2 meanings differ from
# the calstis/calacs ones in DQ_STANDARD_HST almost everywhere.
WFPC2_DQ: dict[int, str] = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon decoding error",
    2: "calibration file defect",
    4: "permanent camera defect",
    8: "A/D converter saturation",
    16: "missing data",
    32: "bad pixel (other)",
    64: "unused by calwp2",
    128: "permanent charge trap",
    256: "questionable pixel (above a charge trap)",
    512: "unrepaired warm pixel",
    1024: "repaired warm pixel",
    2048: "entire chip masked",
    4096: "cosmic ray rejected by AstroDrizzle",  # drizzlepac wfpc2Data cr_bits_value
    8192: "rejected during image combination (cosmic ray)",  # hstcal_core crreject
    16384: "unused by calwp2",
}

#: HSTcosmicrays' WFPC2 detector_size: the four chips together (4 x 1.44 cm^2).
CAMERA_AREA_CM2 = 5.76

# drizzlepac wfpc2Data.WFPC2_GAINS (WFPC2 IHB §4.12): {ATODGAIN: (gain e-/DN, read noise e-)}.
_GAINS = {
    1: {7.0: (7.12, 5.24), 15.0: (13.99, 7.02)},
    2: {7.0: (7.12, 5.51), 15.0: (14.50, 7.84)},
    3: {7.0: (6.90, 5.22), 15.0: (13.95, 6.99)},
    4: {7.0: (7.10, 5.19), 15.0: (13.95, 8.32)},
}
_CHIP_NAMES = {1: "PC1", 2: "WF2", 3: "WF3", 4: "WF4"}
# Bias is measured in every exposure from the EED extended register (BLEVFILE), so
# no nominal bias is set; these are BIASEVEN of u5780205r (gain 7) for reference.
_TYPICAL_BIAS_DN = {1: 316.67, 4: 311.76}


def _chip(chip: int, scale: float, description: str) -> Detector:
    name = _CHIP_NAMES[chip]
    return Detector(
        name=f"wfpc2_{'pc' if chip == 1 else name.lower()}",
        instrument="WFPC2",
        detector=str(chip),
        kind="ccd",
        shape=(800, 800),
        pixel_pitch_um=15.0,
        pixel_scale_arcsec=scale,
        gain_keyword="ATODGAIN",
        amplifiers={setting: (Amplifier(name, gain=g, read_noise=rn),)
                    for setting, (g, rn) in _GAINS[chip].items()},
        readout_time_s=60.0,  # twice HSTcosmicrays' 30 s padding; see docstring
        # 12-bit ADC full scale (SATURATE = 4095); DQ 8 marks it.
        saturation_dn={7.0: 4095.0, 15.0: 4095.0},
        dq_flags=WFPC2_DQ,
        area_cm2=1.44,  # 800^2 x (15 um)^2 per chip; see the area finding above
        description=description,
        inactive=WFPC2_INACTIVE,
        extra={
            "chip": chip,
            "chip_keyword": "DETECTOR",
            "frame_keyword": "IMAGETYP",
            "mode_keywords": ("ATODGAIN", "MODE"),
            "camera_area_cm2": CAMERA_AREA_CM2,
            "typical_bias_dn": _TYPICAL_BIAS_DN.get(chip),
            "bias_source": "EED extended register (BLEVFILE)",
            "adc_full_scale_dn": 4095,
            "likely_saturated_dn": 3500,  # WFPC2 DHB Table 3.4, flag 8
            "census_readout_time_s": 30.0,  # HSTcosmicrays readout_time
            # ... and 60 s for exposures longer than 180 s (issue 4; HSTcosmicrays' WFPC2 rule)
            "census_readout_long": (180.0, 60.0),
        },
    )


WFPC2_PC = _chip(1, 0.0455, "WFPC2 Planetary Camera PC1: 800x800 Loral CCD, 15 um pixels")
WFPC2_WF2 = _chip(2, 0.0996, "WFPC2 Wide Field camera WF2: 800x800 Loral CCD, 15 um pixels")
WFPC2_WF3 = _chip(3, 0.0996, "WFPC2 Wide Field camera WF3: 800x800 Loral CCD, 15 um pixels")
WFPC2_WF4 = _chip(4, 0.0996, "WFPC2 Wide Field camera WF4: 800x800 Loral CCD, 15 um pixels")

DETECTORS = (WFPC2_PC, WFPC2_WF2, WFPC2_WF3, WFPC2_WF4)
