"""Reference-file assembly: superbias/superdark algorithms, CRDS headers, anneal periods."""

from . import anneal, headers, superbias, superdark
from .anneal import AnnealPeriod, Week, read_anneal_table, split_period

__all__ = ["anneal", "headers", "superbias", "superdark", "AnnealPeriod", "Week",
           "read_anneal_table", "split_period"]
