"""What WFPC2 asks the archive for: the ``query`` hook's table, per detector and purpose.

Field names are MAST's (CAOM) vocabulary; see :class:`hstcal_core.archive.base.QueryCriteria`.
A campaign's ``criteria`` (proposals, exptime, target_name, file_types) replace these
defaults; a purpose not listed for a detector is a ``ConfigError``.

The four chips share one exposure (a ``c0m`` file holds all four groups), so every
chip answers with the same criteria.
"""

from __future__ import annotations

from hstcal_core import hookimpl
from hstcal_core.archive.base import criteria_for

from .detectors import DETECTORS

__all__ = ["QUERY_TABLE", "query"]

# HSTcosmicrays download.py: intentType calibration, target 'DARK*', t_exptime
# 0.5-10000 s; pipeline_config.yaml (WFPC2): C0M + SHM.  MAST's instrument_name is
# WFPC2, WFPC2/WFC or WFPC2/PC, hence the wildcard.
_CRDARK = dict(intent="calibration", instrument_name=("WFPC2*",), target_name=("DARK*",),
               exptime=(0.5, 10000.0), file_types=("C0M", "SHM"))

QUERY_TABLE: dict[str, dict[str, dict]] = {det.name: {"crdark": _CRDARK} for det in DETECTORS}


@hookimpl
def query(detector, criteria):
    table = QUERY_TABLE.get(detector.name)
    return None if table is None else criteria_for(detector, criteria, table)
