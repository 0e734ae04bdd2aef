"""What COS asks the archive for: the ``query`` hook's table, per detector and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.

``file_types`` lists only the products every wanted exposure has, because an exposure
lacking one of them is rejected.  The FUV x1d covers both segments, but one segment can
be off (header ``SEGMENT`` = FUVA or FUVB rather than BOTH), so ``CORRTAG_B`` is not
required; it and the raw event lists, which a TIME-TAG stage may use when present, are
in each detector's ``extra["optional_file_types"]["timetag"]``.  FUVB-only exposures
have no ``corrtag_a`` and are found only with a ``file_types`` override
(``["CORRTAG_B", "X1D"]``).
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import COS_FUV, COS_NUV

__all__ = ["QUERY_TABLE", "query"]

# hstlc download_hstlc: sci_operating_mode TIME-TAG, science targets only (no DARK,
# BIAS, WAVE, ...), the calibrated event lists (corrtag; corrtag_a for FUV, from which
# the lightcurve library also reads segment B) and the x1d used for the extraction;
# data_checks drops EXPTIME < 1 s.
_TIMETAG = dict(intent="science", header={"OBSMODE": "TIME-TAG"}, exptime=(1.0, 1e5))

QUERY_TABLE: dict[str, dict[str, dict]] = {
    COS_FUV.name: {"timetag": dict(_TIMETAG, instrument_name=("COS/FUV",),
                                   file_types=("CORRTAG_A", "X1D"))},
    COS_NUV.name: {"timetag": dict(_TIMETAG, instrument_name=("COS/NUV",),
                                   file_types=("CORRTAG", "X1D"))},
}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
