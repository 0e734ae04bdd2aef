"""WFC3 detectors (UVIS, IR) and their constants.

Sources
-------
* WFC3 Instrument Handbook §5.2-5.3: UVIS is two e2v 2051×4096 CCDs, 15 µm pixels,
  butted into a 4102×4096 array (31-pixel gap); each chip has 25 physical prescan
  columns per amplifier, 30 virtual overscan columns per amplifier and 19 virtual
  rows, so a raw chip is 2070×4206; chip 1 is read by amps A/B, chip 2 by C/D.
  §5.6: IR is a 1024×1024 HgCdTe array of 18 µm pixels with a 5-pixel reference
  border, 1014×1014 light-sensitive; four 512×512 quadrants.  §7.7.2: reading the
  full IR array takes 2.93 s.
* WFC3 Data Handbook §5.1: only UVIS gain 1.5 e⁻/DN is supported (measured 1.58-1.60
  in 2022, Table 5.1).  §5.6.1: UVIS full well 63,000-72,000 e⁻; calwf3 used a
  scalar CCDTAB SATURATE of 65,500 e⁻ until its saturation map (WFC3 ISR 2025-06).
  §7.2: IR nominal gain 2.5 e⁻/DN samples the ~80,000 e⁻ full well, ~32,000 DN.
* CCDTAB values as calwf3 wrote them into real headers
  (``../shared/data/hst/wfc3/flt_cutouts``): UVIS from ``iref$t291659mi_ccd.fits``
  (ib4606c6q_flc, 2011: ATODGN* 1.56, READNSE* 3.03-3.18 e⁻, BIASLEV*); IR from
  ``iref$t2c16200i_ccd.fits`` (ib4606cpq_flt, 2011: ATODGN* 2.31-2.38, READNSE*
  19.8-20.2 e⁻ for a CDS pair).
* DQ bits: hstcal ``pkg/wfc3/include/wf3dq.h`` (UVIS and IR meanings differ).
* Cosmic-ray census: HSTcosmicrays ``pipeline_config.yaml``: ``detector_size`` 37.804
  (UVIS) and 3.331 cm² (IR); readout padding 50 s (UVIS) and 0 s (IR, ramp fitted).

Area check: 4102·4096·(15 µm)² = 37.804 cm² and 1014·1014·(18 µm)² = 3.331 cm², so
both census areas equal pixel count × pitch² (tests assert this within 1 %).

Inactive windows (``Detector.inactive``): from launch (1990-04-24) until WFC3 was
installed on SM4 EVA 1 (2009-05-14, STS-125); HSTcosmicrays starts both channels at
2009-05-01.  Short safe-mode suspensions are not listed.

Not verified here: the UVIS full-frame readout time (taken as twice the census
padding) and the plate scales (0.0395″ UVIS, 0.13″ IR, the handbook's round values).
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["WFC3_UVIS_DQ", "WFC3_IR_DQ", "WFC3_UVIS", "WFC3_IR", "DETECTORS", "WFC3_INACTIVE"]

# First day inactive, first day back (UTC dates, end exclusive).
WFC3_INACTIVE = (
    ("1990-04-24", "2009-05-14"),  # HST launch (STS-31) to installation on SM4 EVA 1 (STS-125)
)

# wf3dq.h, UVIS meanings.
WFC3_UVIS_DQ: dict[int, str] = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon decoding error",
    2: "data replaced by fill value",
    4: "bad detector pixel or beyond aperture",
    8: "masked (DATAMASKED, unused by UVIS)",
    16: "hot pixel",
    32: "CTE tail of a hot pixel",
    64: "warm pixel",
    128: "bad bias value",
    256: "full-well saturated pixel",
    512: "bad flat-field value",
    1024: "charge trap / sink pixel",
    2048: "A-to-D saturated pixel",
    4096: "cosmic ray rejected by AstroDrizzle",
    8192: "rejected during image combination (cosmic ray)",
    16384: "ghost or crosstalk",
}

# wf3dq.h, IR meanings where they differ from UVIS.
WFC3_IR_DQ: dict[int, str] = {
    **WFC3_UVIS_DQ,
    8: "deviant zero-read (bias) value",
    32: "unstable response",
    128: "bad bias / reference-pixel value",
    1024: "cosmic-ray spike found in up-the-ramp fit",
    2048: "signal in zero read",
    8192: "cosmic ray found in up-the-ramp fit",
    16384: "more cosmic rays than the ramp fit allows (high curvature)",
}

# CCDTAB t291659mi_ccd.fits as applied to ib4606c6q (2011): ATODGNx, READNSEx (e-),
# and that frame's overscan bias BIASLEVx (DN).
_UVIS_AMPS = (
    Amplifier("A", gain=1.56, read_noise=3.03, bias=2555.77),
    Amplifier("B", gain=1.56, read_noise=3.13, bias=2542.76),
    Amplifier("C", gain=1.56, read_noise=3.08, bias=2503.02),
    Amplifier("D", gain=1.56, read_noise=3.18, bias=2604.72),
)

# CCDTAB t2c16200i_ccd.fits as applied to ib4606cpq (2011); the IR bias is removed
# with the zeroth read and reference pixels, so no nominal bias.
_IR_AMPS = (
    Amplifier("A", gain=2.34, read_noise=20.2),
    Amplifier("B", gain=2.37, read_noise=19.8),
    Amplifier("C", gain=2.31, read_noise=19.9),
    Amplifier("D", gain=2.38, read_noise=20.1),
)

WFC3_UVIS = Detector(
    name="wfc3_uvis",
    instrument="WFC3",
    detector="UVIS",
    kind="ccd",
    shape=(4102, 4096),  # two 2051x4096 chips, trimmed
    pixel_pitch_um=15.0,
    pixel_scale_arcsec=0.0395,
    gain_keyword="CCDGAIN",
    amplifiers={1.5: _UVIS_AMPS},
    readout_time_s=100.0,  # twice HSTcosmicrays' 50 s padding; see docstring
    # CCDTAB SATURATE 65,500 e- / 1.56 e-/DN (the full well, not the ADC, limits gain 1.5).
    saturation_dn={1.5: 41987.0},
    dq_flags=WFC3_UVIS_DQ,
    area_cm2=37.804,  # HSTcosmicrays detector_size; = 4102 x 4096 x (15 um)^2
    description="WFC3 UVIS channel: two e2v 2051x4096 CCDs, 15 um pixels, amps A-D",
    inactive=WFC3_INACTIVE,
    extra={
        "frame_keyword": "TARGNAME",
        "mode_keywords": ("CCDAMP", "CCDGAIN", "BINAXIS1", "BINAXIS2"),
        "chips": 2,
        "chip_keyword": "CCDCHIP",
        "chip_shape": (2051, 4096),
        "chip_gap_px": 31,
        # UVIS1 (CCDCHIP=1, SCI ext 4) is read by A/B, UVIS2 (CCDCHIP=2, SCI ext 1) by C/D.
        "chip_amps": {1: ("A", "B"), 2: ("C", "D")},
        "raw_chip_shape": (2070, 4206),
        "overscan_leading": 25,  # physical prescan columns per amplifier
        "overscan_trailing": 30,  # virtual serial overscan columns per amplifier
        "overscan_virtual": 19,  # virtual parallel rows per chip
        "full_well_e": (63000.0, 72000.0),
        "census_readout_time_s": 50.0,  # HSTcosmicrays readout_time
    },
)

WFC3_IR = Detector(
    name="wfc3_ir",
    instrument="WFC3",
    detector="IR",
    kind="ir",
    shape=(1014, 1014),  # 1024x1024 less the 5-pixel reference border
    pixel_pitch_um=18.0,
    pixel_scale_arcsec=0.13,  # 0.135 x 0.121 arcsec
    gain_keyword="CCDGAIN",
    amplifiers={2.5: _IR_AMPS},
    readout_time_s=2.93,  # WFC3 IHB §7.7.2, one full-array read
    saturation_dn={2.5: 32000.0},  # ~80,000 e- full well at the nominal 2.5 e-/DN (DHB §7.2)
    dq_flags=WFC3_IR_DQ,
    area_cm2=3.331,  # HSTcosmicrays detector_size; = 1014^2 x (18 um)^2
    description="WFC3 IR channel: Teledyne 1024x1024 HgCdTe, 18 um pixels, MULTIACCUM",
    inactive=WFC3_INACTIVE,
    extra={
        "frame_keyword": "TARGNAME",
        "mode_keywords": ("SAMP_SEQ", "NSAMP", "SUBTYPE"),
        "raw_shape": (1024, 1024),
        "reference_pixels": 5,
        "quadrants": 4,
        "multiaccum": True,
        "full_well_e": 80000.0,
        "census_readout_time_s": 1.0,  # issue 4: IR integration time = EXPTIME + 1 s
    },
)

DETECTORS = (WFC3_UVIS, WFC3_IR)
