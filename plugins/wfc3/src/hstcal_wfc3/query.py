"""What WFC3 asks the archive for: the ``query`` hook's table, per detector and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import WFC3_IR, WFC3_UVIS

__all__ = ["QUERY_TABLE", "query"]

# HSTcosmicrays download.py: intentType calibration, target 'DARK*', t_exptime
# 0.5-10000 s.  Its pipeline_config.yaml: FLT + SPT for UVIS; IMA + SPT for IR, whose
# cosmic rays are found between the reads of the ramp.
_CRDARK = dict(intent="calibration", target_name=("DARK*",), exptime=(0.5, 10000.0))

QUERY_TABLE: dict[str, dict[str, dict]] = {
    WFC3_UVIS.name: {"crdark": dict(_CRDARK, instrument_name=("WFC3/UVIS",),
                                    file_types=("FLT", "SPT"))},
    WFC3_IR.name: {"crdark": dict(_CRDARK, instrument_name=("WFC3/IR",),
                                  file_types=("IMA", "SPT"))},
}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
