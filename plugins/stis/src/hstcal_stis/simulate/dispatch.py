"""The ``stis_ccd`` simulator entry point: one call for every kind of series."""

from __future__ import annotations

import logging
import os
from typing import Any

from .frames import simulate_stis_ccd
from .month import simulate_anneal_month, simulate_anneal_months
from .truth import KINDS, MonthTruth, SimTruth

log = logging.getLogger(__name__)


def simulate(out_dir: str | os.PathLike, *, kind: str = "bias",
             **kwargs: Any) -> SimTruth | MonthTruth:
    """The ``stis_ccd`` simulator: ``kind`` = ``"bias"``, ``"dark"``, ``"month"`` or ``"months"``.

    ``bias``/``dark`` go to :func:`simulate_stis_ccd`; ``month`` goes to
    :func:`simulate_anneal_month` (``count`` is ignored there; ``gain`` and
    ``binning`` are fixed by the month's plan and rejected).
    """
    if kind in ("month", "months"):
        count = kwargs.pop("count", None)
        if count is not None:
            log.debug("simulate(kind='month'): count=%r ignored; the month plan sets the counts",
                      count)
        for name in ("gain", "binning"):
            if kwargs.get(name) is not None:
                raise ValueError(f"{name} does not apply to kind='month' "
                                 "(the month holds gain 1 and 4, 1x1 and 2x2)")
            kwargs.pop(name, None)
        if kind == "months":
            return simulate_anneal_months(out_dir, **kwargs)
        return simulate_anneal_month(out_dir, **kwargs)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS + ('month', 'months')}, got {kind!r}")
    return simulate_stis_ccd(out_dir, kind=kind, **kwargs)
