"""COS detectors (FUV XDL, NUV MAMA) and their constants.

Both COS detectors count photons (TIME-TAG or ACCUM); there is no gain setting, read
noise or readout time in the CCD sense.

Sources
-------
* COS Instrument Handbook §1.3, Tables 1.1-1.2: FUV is a windowless cross-delay-line
  (XDL) detector of two segments (A, B), each 85 × 10 mm active, digitized to
  16,384 × 1,024 pixels of 6 × 24 µm; dead time 7.4 µs, global count-rate limit
  60,000 counts/s.  NUV is a MAMA (STIS NUV flight spare), 25.6 × 25.6 mm active,
  1,024 × 1,024 pixels of 25 µm; dead time 280 ns, limit 770,000 counts/s; plate
  scale 23.5 mas/px.  FUV plate scale ~0.1″/px (cross-dispersion; calcos
  ``XD_PLATE_SCALE`` 11.9 px/″ for the FUV gratings).  §4.1-4.2 (detectors).
* calcos ``calcosparam.py``: FUV_X × FUV_Y = 16384 × 1024 per segment, NUV 1024 ×
  1024, and the DQ flag values (DQ_SOFTERR … DQ_GAIN_SAG_HOLE).
* Real headers (``../shared/data/hst/cos``): INSTRUME = COS, DETECTOR = FUV,
  SEGMENT = FUVA for the rawtag_a event lists.

Pixel pitch: the FUV pixel is 6 µm (dispersion) × 24 µm (cross-dispersion); the
Detector holds one pitch, so it is the equal-area pitch √(6·24) = 12 µm and
``extra["pixel_size_um"]`` keeps the true (6, 24).

Area finding: the digitized format is larger than the photocathode.  Two segments of
16384 × 1024 pixels of 6 × 24 µm are 2 × 24.16 = 48.3 cm², but the sensitive area is
2 × 85 × 10 mm = 17.0 cm²; ``area_cm2`` is set to the sensitive 17.0 cm² and the
mismatch with pixel count × pitch² is asserted in the tests.  NUV: 1024² × (25 µm)²
= 6.554 cm² = 25.6 mm × 25.6 mm, consistent.

Inactive windows (``Detector.inactive``): from launch (1990-04-24) until COS was
installed on SM4 EVA 3 (2009-05-16, STS-125 status report 11).  Short safe-mode
suspensions are not listed.

Not verified here: the TIME-TAG time resolution of 32 ms (COS IHB, TIME-TAG mode)
and the FUV plate scale beyond "~0.1″".
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector
from hstcal_core.detectors import DQ_STANDARD_HST

__all__ = ["COS_DQ", "COS_FUV", "COS_NUV", "DETECTORS", "COS_INACTIVE"]

# First day inactive, first day back (UTC dates, end exclusive).
COS_INACTIVE = (
    ("1990-04-24", "2009-05-16"),  # HST launch (STS-31) to installation on SM4 EVA 3 (STS-125)
)

# calcosparam.py DQ_* constants.  COS meanings share almost nothing with the CCD
# pipelines, so every bit is restated.
COS_DQ: dict[int, str] = {
    **DQ_STANDARD_HST,
    1: "Reed-Solomon error",
    2: "unused by calcos",
    4: "detector shadow (FUV grid wire, NUV vignetting)",
    8: "poorly calibrated region (incl. detector edge)",
    16: "very low response region (> 80 % depression)",
    32: "background feature",
    64: "burst (FUV count-rate burst)",
    128: "pixel out of bounds",
    256: "fill data (telemetry drop-out)",
    512: "pulse height out of bounds",
    1024: "low response region (> 50 % depression)",
    2048: "bad time interval",
    4096: "low pulse-height feature",
    8192: "gain-sag hole",
    16384: "unused by calcos",
}

_SEGMENT_AREA_CM2 = 8.5 * 1.0  # 85 mm x 10 mm active area per FUV segment

COS_FUV = Detector(
    name="cos_fuv",
    instrument="COS",
    detector="FUV",
    kind="xdl",
    shape=(1024 * 2, 16384),  # segments A and B, each 1024 x 16384 digitized pixels
    pixel_pitch_um=12.0,  # equal-area pitch of the 6 x 24 um pixel; see docstring
    pixel_scale_arcsec=0.1,
    gain_keyword="",
    # No gain: one photon, one count.  One "amplifier" per segment, named as SEGMENT.
    amplifiers={1.0: (Amplifier("FUVA", gain=1.0, read_noise=0.0),
                      Amplifier("FUVB", gain=1.0, read_noise=0.0))},
    readout_time_s=0.0,
    dq_flags=COS_DQ,
    area_cm2=2 * _SEGMENT_AREA_CM2,  # sensitive area, not the digitized format
    description="COS FUV cross-delay-line detector, two segments (FUVA, FUVB), photon counting",
    inactive=COS_INACTIVE,
    extra={
        "timetag": True,
        "time_resolution_s": 0.032,
        "segments": ("FUVA", "FUVB"),
        "segment_keyword": "SEGMENT",
        "segment_shape": (1024, 16384),
        "pixel_size_um": (6.0, 24.0),  # (dispersion, cross-dispersion)
        "active_area_mm": (85.0, 10.0),  # per segment
        "digitized_area_cm2": 2 * 16384 * 1024 * 6e-4 * 24e-4,
        "dead_time_s": 7.4e-6,
        "global_count_rate_limit": 60000.0,
        # Products a TIME-TAG stage may use when present; the query does not require them
        # (hstcal_cos.query): segment B may be off, raw event lists allow recalibration.
        "optional_file_types": {"timetag": ("CORRTAG_B", "RAWTAG_A", "RAWTAG_B")},
    },
)

COS_NUV = Detector(
    name="cos_nuv",
    instrument="COS",
    detector="NUV",
    kind="mama",
    shape=(1024, 1024),
    pixel_pitch_um=25.0,
    pixel_scale_arcsec=0.0235,
    gain_keyword="",
    amplifiers={1.0: (Amplifier("MAMA", gain=1.0, read_noise=0.0),)},
    readout_time_s=0.0,
    dq_flags=COS_DQ,
    description="COS NUV MAMA (Cs2Te, STIS NUV flight spare), photon counting",
    inactive=COS_INACTIVE,
    extra={
        "timetag": True,
        "time_resolution_s": 0.032,
        "active_area_mm": (25.6, 25.6),
        "dead_time_s": 280e-9,
        "global_count_rate_limit": 770000.0,
        "stripes": 3,  # calcos NUV_SPECTRA
        "optional_file_types": {"timetag": ("RAWTAG",)},  # see hstcal_cos.query
    },
)

DETECTORS = (COS_FUV, COS_NUV)
