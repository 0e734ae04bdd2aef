"""What STIS asks the archive for: the ``query`` hook's table, per detector and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import STIS_CCD, STIS_FUV_MAMA, STIS_NUV_MAMA

__all__ = ["QUERY_TABLE", "query"]

# refstis pipeline.get_new_obs: amplifier D only, TARGNAME BIAS/DARK, duration between
# -1 and 100 s (biases; MAST t_exptime of a bias is 0) or 1000 and 1200 s (darks).
_REFSTIS_HEADER = {"CCDAMP": "D"}

# HSTcosmicrays download.py: every dark ('DARK*', 0.5-10000 s, intentType calibration);
# raw + spt rather than its flt because calibration is ours (the calibrate hook).
_CRDARK = dict(intent="calibration", target_name=("DARK*",), exptime=(0.5, 10000.0),
               file_types=("RAW", "SPT"))

# hstlc download_hstlc: sci_operating_mode TIME-TAG, science targets only, the event
# list (tag) and its x1d (used for the extraction); data_checks drops EXPTIME < 1 s.
_TIMETAG = dict(intent="science", header={"OBSMODE": "TIME-TAG"}, exptime=(1.0, 1e5),
                file_types=("TAG", "X1D"))

QUERY_TABLE: dict[str, dict[str, dict]] = {
    STIS_CCD.name: {
        "bias": dict(intent="calibration", instrument_name=("STIS/CCD",),
                     target_name=("BIAS",), exptime=(-1.0, 100.0), file_types=("RAW",),
                     header=_REFSTIS_HEADER),
        "dark": dict(intent="calibration", instrument_name=("STIS/CCD",),
                     target_name=("DARK",), exptime=(1000.0, 1200.0), file_types=("RAW",),
                     header=_REFSTIS_HEADER),
        "crdark": dict(_CRDARK, instrument_name=("STIS/CCD",)),
    },
    STIS_FUV_MAMA.name: {"timetag": dict(_TIMETAG, instrument_name=("STIS/FUV-MAMA",))},
    STIS_NUV_MAMA.name: {"timetag": dict(_TIMETAG, instrument_name=("STIS/NUV-MAMA",))},
}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
