"""Synthetic STIS CCD raw biases and darks, with the truth that went into them.

Modules, one idea each:

* :mod:`.layout` — where the sensitive area sits in a raw readout, per binning;
* :mod:`.detector_model` — the fixed bias structure and the dark current;
* :mod:`.headers` — FITS headers, ROOTNAMEs and program ids of the raws;
* :mod:`.frames` — a series of raw biases or darks (the signal model is described there);
* :mod:`.month` — a complete anneal month and its anneal table;
* :mod:`.truth` — what went into a simulation, saved beside the raws and read back;
* :mod:`.dispatch` — :func:`simulate`, the ``stis_ccd`` simulator entry point;
* :mod:`.checks` — argument checks (files are written atomically with
  :func:`hstcal_core.fitsio.atomic_path`).
"""

from .detector_model import DETECTOR_SEED
from .dispatch import simulate
from .frames import simulate_stis_ccd
from .layout import BINNINGS, parse_binning
from .month import simulate_anneal_month, simulate_anneal_months
from .truth import MonthTruth, SimTruth, load_truth

__all__ = [
    "simulate",
    "simulate_stis_ccd",
    "simulate_anneal_month",
    "simulate_anneal_months",
    "SimTruth",
    "MonthTruth",
    "load_truth",
    "parse_binning",
    "BINNINGS",
    "DETECTOR_SEED",
]
