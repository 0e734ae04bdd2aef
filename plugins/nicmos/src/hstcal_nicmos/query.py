"""What NICMOS asks the archive for: the ``query`` hook's table, per camera and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import DETECTORS

__all__ = ["QUERY_TABLE", "query"]

# HSTcosmicrays download.py: intentType calibration, target 'DARK*', t_exptime
# 0.5-10000 s; pipeline_config.yaml (NICMOS_NIC1..3): IMA + SPT, the MULTIACCUM reads in
# which cosmic rays are found.  MAST's instrument_name is NICMOS/NIC<camera>.
QUERY_TABLE: dict[str, dict[str, dict]] = {
    det.name: {"crdark": dict(intent="calibration",
                              instrument_name=(f"NICMOS/NIC{det.extra['camera']}",),
                              target_name=("DARK*",), exptime=(0.5, 10000.0),
                              file_types=("IMA", "SPT"))}
    for det in DETECTORS
}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
