"""What ACS asks the archive for: the ``query`` hook's table, per detector and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import ACS_HRC, ACS_WFC

__all__ = ["QUERY_TABLE", "query"]

# HSTcosmicrays download.py and pipeline_config.yaml (ACS_WFC, ACS_HRC): intentType
# calibration, target 'DARK*', t_exptime 0.5-10000 s, products FLT + SPT.
_CRDARK = dict(intent="calibration", target_name=("DARK*",), exptime=(0.5, 10000.0),
               file_types=("FLT", "SPT"))

QUERY_TABLE: dict[str, dict[str, dict]] = {
    ACS_WFC.name: {"crdark": dict(_CRDARK, instrument_name=("ACS/WFC",))},
    ACS_HRC.name: {"crdark": dict(_CRDARK, instrument_name=("ACS/HRC",))},
}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
