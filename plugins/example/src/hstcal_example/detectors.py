"""The constants of the example plugin's one detector.

``example_cam`` is made up: a 64×64 CCD with a single amplifier, used to show plugin
authors where detector constants go.  A real plugin cites its sources here
(instrument handbooks, ISRs, CCDTAB headers) next to every number.
"""

from __future__ import annotations

from hstcal_core import Amplifier, Detector

__all__ = ["EXAMPLE_CAM", "DETECTORS"]

EXAMPLE_CAM = Detector(
    name="example_cam",  # registry key: lower case, unique across all installed plugins
    instrument="EXAMPLE",  # must equal the INSTRUME header value of its files
    detector="CAM",  # must equal the DETECTOR header value
    kind="ccd",
    shape=(64, 64),
    pixel_pitch_um=15.0,
    pixel_scale_arcsec=0.1,
    gain_keyword="CCDGAIN",
    # {gain setting: amplifiers}; used when a file carries no ATODGAIN/READNSE.
    amplifiers={1.0: (Amplifier("A", gain=1.0, read_noise=5.0, bias=100.0),)},
    readout_time_s=1.0,
    saturation_dn={1.0: 65535.0},
    description="Made-up 64x64 single-amplifier CCD of the example plugin",
    # Plugin-specific constants live here, not in `if detector == ...` branches.
    extra={"bias_keyword": "BIASLEVL"},
)

DETECTORS = (EXAMPLE_CAM,)
