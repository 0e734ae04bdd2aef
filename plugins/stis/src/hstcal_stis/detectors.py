"""STIS detectors and their constants.

Sources: STIS Instrument Handbook (IHB) §7.2 Table 7.1 (CCD: 1024×1024 illuminated,
21 µm, 0.05078″/px, saturation 33,000 e⁻ at gain 1), §7.5 / Table 7.6 (MAMAs:
1024×1024, 25 µm, 0.0246″/px); CCDTAB values for amplifier D (ATODGAIN 1.000 and
4.016 e⁻/DN; read noise 6.2 e⁻ at gain 1 per IHB Table 7.1, 7.7 e⁻ at gain 4);
stisdq.h for DQ bits; hstcal stissizes.h for the overscan geometry.

Inactive windows (``Detector.inactive``, all three detectors): before installation
(launch 1990-04-24 to SM2 EVA 1, 1997-02-14) and the Side-2 power-supply failure
(2004-08-03, STIS DHB §1.4) until the SM4 EVA 4 repair (2009-05-17).  The switch to
Side-2 after the Side-1 failure of May 2001 is not listed: STIS IHB §2.1 gives no days.
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["STIS_CCD", "STIS_FUV_MAMA", "STIS_NUV_MAMA", "DETECTORS", "STIS_INACTIVE"]

# stisdq.h
STIS_DQ = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon decoding error",
    2: "data replaced by fill value",
    4: "bad detector pixel or beyond aperture",
    8: "masked by occulting bar",
    16: "hot pixel",
    32: "large blemish",
    128: "overscan pixel (bias level)",
    256: "saturated pixel",
    512: "bad pixel in reference file",
    1024: "small blemish",
    2048: "bad pixels in background region",
    4096: "pixel discarded from extraction region",
    8192: "rejected during image combination",
    16384: "not CTI corrected",
}

# First day inactive, first day back (UTC dates, end exclusive).
STIS_INACTIVE = (
    ("1990-04-24", "1997-02-14"),  # HST launch (STS-31) to installation on SM2 EVA 1 (STS-82)
    # Side-2 LVPS failure, STIS DHB §1.4; repaired on SM4 EVA 4 (STS-125), GSFC STIS repair page.
    # HSTcosmicrays download.py rounds the end to 2009-05-01.
    ("2004-08-03", "2009-05-17"),
)

# Nominal bias levels (DN) seen in the overscan of real amp-D frames at CCDOFFST=3
# (o56502010_raw: 1124 DN at gain 1); used only when a frame has no overscan.
_CCD_AMPS = {
    1: tuple(Amplifier(a, gain=1.000, read_noise=rn, bias=1124.0)
             for a, rn in (("D", 6.2), ("A", 6.0), ("B", 6.4), ("C", 6.1))),
    4: tuple(Amplifier(a, gain=4.016, read_noise=rn, bias=1500.0)
             for a, rn in (("D", 7.7), ("A", 7.5), ("B", 8.0), ("C", 7.6))),
}

STIS_CCD = Detector(
    name="stis_ccd",
    instrument="STIS",
    detector="CCD",
    kind="ccd",
    shape=(1024, 1024),
    pixel_pitch_um=21.0,
    pixel_scale_arcsec=0.05078,
    gain_keyword="CCDGAIN",
    amplifiers=_CCD_AMPS,
    readout_time_s=29.0,  # full-frame unbinned readout, IHB §7.2.6 (~29 s incl. overhead)
    saturation_dn={1: 33000.0, 4: 65535.0},  # IHB: 33,000 e- at gain 1; 16-bit ADC at gain 4
    dq_flags=STIS_DQ,
    description="STIS SITe CCD, 1024x1024, 21 um pixels, amp D for science",
    inactive=STIS_INACTIVE,
    extra={
        "frame_keyword": "TARGNAME",
        "mode_keywords": ("CCDAMP", "CCDGAIN", "BINAXIS1", "BINAXIS2"),
        "temperature_keyword": "OCCDHTAV",
        "census_readout_time_s": 15.0,  # HSTcosmicrays readout_time for STIS/CCD
        "overscan_leading": 19,   # stissizes.h OVERSCAN_LEFT
        "overscan_trailing": 19,  # OVERSCAN_RIGHT
        "overscan_virtual": 20,   # OVERSCAN_TOP (parallel, virtual)
        "raw_shape": (1044, 1062),
        "dark_reference_temperature": 18.0,  # S2_REF_TEMP, STIS TIR 2004-01
        "dark_temperature_coefficient": 0.07,  # DRK_VS_T per degree C
        "side2_start_mjd": 52091.0,  # July 1 2001: temperature scaling applies after
        "sdqflags_default": 31743,
        "blev_clip": 5.0,
    },
)

_MAMA_DQ = dict(STIS_DQ)

STIS_FUV_MAMA = Detector(
    name="stis_fuv_mama",
    instrument="STIS",
    detector="FUV-MAMA",
    kind="mama",
    shape=(1024, 1024),
    pixel_pitch_um=25.0,
    pixel_scale_arcsec=0.0246,
    gain_keyword="",
    amplifiers={1: (Amplifier("MAMA", gain=1.0, read_noise=0.0),)},
    readout_time_s=0.0,
    dq_flags=_MAMA_DQ,
    description="STIS FUV-MAMA (CsI photocathode), photon counting, TIME-TAG capable",
    inactive=STIS_INACTIVE,
    extra={"timetag": True, "time_resolution_s": 125e-6},
)

STIS_NUV_MAMA = Detector(
    name="stis_nuv_mama",
    instrument="STIS",
    detector="NUV-MAMA",
    kind="mama",
    shape=(1024, 1024),
    pixel_pitch_um=25.0,
    pixel_scale_arcsec=0.0246,
    gain_keyword="",
    amplifiers={1: (Amplifier("MAMA", gain=1.0, read_noise=0.0),)},
    readout_time_s=0.0,
    dq_flags=_MAMA_DQ,
    description="STIS NUV-MAMA (Cs2Te photocathode), photon counting, TIME-TAG capable",
    inactive=STIS_INACTIVE,
    extra={"timetag": True, "time_resolution_s": 125e-6},
)

DETECTORS = (STIS_CCD, STIS_FUV_MAMA, STIS_NUV_MAMA)
