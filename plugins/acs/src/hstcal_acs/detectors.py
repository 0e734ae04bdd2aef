"""ACS detectors (WFC, HRC) and their constants.

Sources
-------
* ACS Instrument Handbook (Cycle 14, 2005) §4.2, Table 4.1: WFC two butted 2048×4096
  SITe CCDs, 15 µm pixels, 0.05″/px, full well ~84,700 e⁻, read noise ~5 e⁻; HRC
  1024×1024, 21 µm, 0.027″/px (0.028″×0.025″ with distortion), full well
  ~155,000 e⁻, read noise ~4.7 e⁻; 16-bit ADC (65,535 DN).  The gain discussion
  beside Table 4.2: GAIN=2 is the WFC default from Cycle 14 and its read noise is
  "on average only 0.28 e⁻ higher per amplifier" than at GAIN=1.
* ACS IHB (current) §7.6: post-SM4 WFC gains 0.5, 1.0, 1.4, 2.0 e⁻/DN, only 2.0
  supported.
* CCDTAB values as calacs wrote them into real headers (``../shared/data/hst/acs``):
  WFC gain 1 from ``jref$o151506fj_ccd.fits`` (j94f05bgq_flt, 2005-03-07: ATODGN*,
  READNSE*, BIASLEV*); HRC gain 2 amp C from ``jref$o1515069j_ccd.fits``
  (j8bt06nyq_flt, 2002-04-13).  HRC raw geometry 1044×1062 with LTV1=19 from
  j8bt05njq_raw.
* DQ bits: hstcal ``pkg/acs/include/acsdq.h`` and the STScI "ACS Data Quality Flags"
  page (flag 32 = unstable dark current since ACS ISR 2017-05; 4096 = AstroDrizzle
  cosmic rays).
* Cosmic-ray census areas and readout padding: HSTcosmicrays ``pipeline_config.yaml``
  (Miles et al.): ``detector_size`` 37.748 (WFC) and 4.624 cm² (HRC); it adds
  ``readout_time`` 50 s (WFC) / 15 s (HRC) to EXPTIME as extra cosmic-ray exposure,
  which we read as half a full-frame read (a pixel waits half the read on average).

Area check: 4096·4096·(15 µm)² = 37.749 cm² and 1024·1024·(21 µm)² = 4.624 cm², so
both census areas equal pixel count × pitch² (tests assert this within 1 %).

Inactive windows (``Detector.inactive``): both channels from launch (1990-04-24) to
the installation of ACS on SM3B EVA 4 (2002-03-07, STS-109) and from the Side-2
electronics failure of 2007-01-27 (HSTcosmicrays ``download.py`` inactive range, the
HRC ``date_range`` end); WFC came back with the SM4 EVA 3 repair (2009-05-16, STS-125
status report 11), HRC never did.  The SBC is not registered by this plugin.  Short
suspensions (e.g. 2009-06-24 to 07-06 during SMOV, NASA HST status report of 2009-07-13)
are not listed.

Not verified here: the post-SM4 per-amplifier CCDTAB values at GAIN=2.0 (the gain-2
row below is the nominal gain with the handbook's +0.28 e⁻ read-noise offset), the
full-frame readout times (taken as twice the census padding), and the WFC raw chip
format (ACS Data Handbook §2.2).
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["ACS_DQ", "ACS_WFC", "ACS_HRC", "DETECTORS"]

# First day inactive, first day back (UTC dates, end exclusive); see the docstring.
_BEFORE_ACS = ("1990-04-24", "2002-03-07")  # HST launch to ACS installation, SM3B EVA 4
_SIDE2_FAILURE = "2007-01-27"  # HSTcosmicrays download.py inactive range (ACS)

# acsdq.h plus the ACS DQ flag page; every bit is restated so that no STIS meaning
# from DQ_STANDARD_HST survives where calacs means something else.
ACS_DQ: dict[int, str] = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon decoding error",
    2: "data replaced by fill value",
    4: "bad detector pixel or beyond aperture",
    8: "masked by aperture feature (HRC occulting finger)",
    16: "hot pixel (dark current > 0.14 e-/s)",
    32: "unstable dark current (telegraph / fading hot pixel)",
    64: "warm pixel (0.06-0.14 e-/s)",
    128: "bias structure (bad or unstable column)",
    256: "full-well saturated pixel",
    512: "bad pixel in reference file",
    1024: "small blemish / charge trap",
    2048: "A-to-D saturated pixel",
    4096: "cosmic ray rejected by AstroDrizzle",
    8192: "rejected during image combination (cosmic ray)",
    16384: "unused by calacs",
}

# WFC GAIN=1: CCDTAB o151506fj_ccd.fits as applied to j94f05bgq (2005): ATODGNx,
# READNSEx (e-) and the overscan bias BIASLEVx (DN) of that frame.
_WFC_GAIN1 = (
    Amplifier("A", gain=0.9999, read_noise=4.97, bias=2428.18),
    Amplifier("B", gain=0.9721, read_noise=4.85, bias=2518.93),
    Amplifier("C", gain=1.0107, read_noise=5.24, bias=2441.78),
    Amplifier("D", gain=1.0180, read_noise=4.85, bias=2469.94),
)
# WFC GAIN=2 (default since Cycle 14): nominal 2.0 e-/DN; read noise = gain-1 value
# + 0.28 e- (ACS IHB 2005, gain discussion beside Table 4.2).  WFC frames always
# carry overscan, so no nominal bias is needed.
_WFC_GAIN2 = tuple(Amplifier(a.name, gain=2.0, read_noise=round(a.read_noise + 0.28, 2))
                   for a in _WFC_GAIN1)

ACS_WFC = Detector(
    name="acs_wfc",
    instrument="ACS",
    detector="WFC",
    kind="ccd",
    shape=(4096, 4096),  # two 2048x4096 chips, trimmed
    pixel_pitch_um=15.0,
    pixel_scale_arcsec=0.05,
    gain_keyword="CCDGAIN",
    amplifiers={1.0: _WFC_GAIN1, 2.0: _WFC_GAIN2},
    # Twice HSTcosmicrays' 50 s readout padding (half a read on average); see docstring.
    readout_time_s=100.0,
    # GAIN=1: the 16-bit ADC saturates first (75 % of full well, IHB §7.3.1);
    # GAIN=2: full well 84,700 e- / 2.0 e-/DN.
    saturation_dn={1.0: 65535.0, 2.0: 42350.0},
    dq_flags=ACS_DQ,
    area_cm2=37.748,  # HSTcosmicrays detector_size; = 4096^2 x (15 um)^2
    description="ACS Wide Field Channel: two 2048x4096 SITe CCDs, 15 um pixels, amps A-D",
    # Repaired on SM4 EVA 3 (2009-05-16); HSTcosmicrays rounds the end to 2009-05-01.
    inactive=(_BEFORE_ACS, (_SIDE2_FAILURE, "2009-05-16")),
    extra={
        "frame_keyword": "TARGNAME",
        "mode_keywords": ("CCDAMP", "CCDGAIN"),
        "chips": 2,
        "chip_keyword": "CCDCHIP",
        "chip_shape": (2048, 4096),
        # WFC1 (CCDCHIP=1, SCI ext 4) is read by A/B, WFC2 (CCDCHIP=2, SCI ext 1) by C/D.
        "chip_amps": {1: ("A", "B"), 2: ("C", "D")},
        "raw_chip_shape": (2068, 4144),  # ACS DHB §2.2
        "overscan_leading": 24,  # physical prescan columns per amplifier
        "overscan_trailing": 24,
        "overscan_virtual": 20,  # virtual rows per chip
        "full_well_e": 84700.0,
        "supported_gains_post_sm4": (0.5, 1.0, 1.4, 2.0),
        "census_readout_time_s": 50.0,  # HSTcosmicrays readout_time
    },
)

ACS_HRC = Detector(
    name="acs_hrc",
    instrument="ACS",
    detector="HRC",
    kind="ccd",
    shape=(1024, 1024),
    pixel_pitch_um=21.0,
    pixel_scale_arcsec=0.027,
    gain_keyword="CCDGAIN",
    # CCDTAB o1515069j_ccd.fits (j8bt06nyq, 2002): ATODGNC 2.216, READNSEC 4.71;
    # bias is BIASLEVC of that frame's overscan.  Amp C is the HRC default.
    amplifiers={2.0: (Amplifier("C", gain=2.216, read_noise=4.71, bias=1132.95),)},
    readout_time_s=30.0,  # twice HSTcosmicrays' 15 s padding; see docstring
    # 2.216 e-/DN x 65,535 DN = 145,000 e- < 155,000 e- full well: the ADC saturates first.
    saturation_dn={2.0: 65535.0},
    dq_flags=ACS_DQ,
    area_cm2=4.624,  # HSTcosmicrays detector_size; = 1024^2 x (21 um)^2
    description="ACS High Resolution Channel: SITe 1024x1024 CCD (STIS flight spare), amp C",
    inactive=(_BEFORE_ACS, (_SIDE2_FAILURE, None)),  # not recovered by the SM4 repair
    extra={
        "frame_keyword": "TARGNAME",
        "mode_keywords": ("CCDAMP", "CCDGAIN"),
        "raw_shape": (1044, 1062),  # j8bt05njq_raw, LTV1 = 19
        "overscan_leading": 19,
        "overscan_trailing": 19,
        "overscan_virtual": 20,
        "full_well_e": 155000.0,
        "last_use_mjd": 54127.0,  # 2007-01-27, HRC failure (HSTcosmicrays date range)
        "census_readout_time_s": 15.0,  # HSTcosmicrays readout_time
    },
)

DETECTORS = (ACS_WFC, ACS_HRC)
