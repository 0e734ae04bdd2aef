"""What an archive is asked for (:class:`QueryCriteria`) and what it answers (:class:`Dataset`).

Plugins answer the ``query`` hook with a :class:`QueryCriteria` for a detector and
a purpose (``"dark"``, ``"bias"``, ``"timetag"``, ...).  The field names follow
MAST's CAOM columns (``instrument_name``, ``intentType``, ``target_name``,
``t_exptime``, ``t_min``/``t_max``, ``productSubGroupDescription``) so the MAST
backend passes them straight through; the local archive answers the same
criteria from its index.  A campaign narrows the criteria to one chunk with
:meth:`QueryCriteria.between`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["QueryCriteria", "ArchiveFile", "Dataset", "Archive", "match_name"]


def match_name(value: str, patterns: tuple[str, ...]) -> bool:
    """Case-insensitive match of ``value`` against ``*``/``%`` wildcard patterns (any)."""
    if not patterns:
        return True
    v = value.strip().upper()
    return any(fnmatch.fnmatchcase(v, p.strip().upper().replace("%", "*")) for p in patterns)


@dataclass(frozen=True)
class QueryCriteria:
    """Backend-neutral description of the exposures and files to fetch.

    Attributes
    ----------
    detector : str
        Registered detector name (``"stis_ccd"``).
    purpose : str
        What the files are for (``"dark"``, ``"bias"``, ``"timetag"``).
    instrument_name : tuple of str
        MAST ``instrument_name`` values or wildcard patterns (``"STIS/CCD"``, ``"WFPC2*"``).
    intent : str or None
        MAST ``intentType``: ``"calibration"`` or ``"science"`` (None: either).
    target_name : tuple of str
        Target name patterns (``"DARK*"``); empty: any.
    exptime : (float, float) or None
        Inclusive exposure-time range in seconds.
    file_types : tuple of str
        Product subgroups wanted per exposure, upper case (``("FLT", "SPT")``).  The
        first is the primary file; an exposure lacking any of them is rejected.
    proposals : tuple of str
        Proposal IDs to restrict to; empty: any.
    header : mapping
        Extra header keyword equalities checked on the primary file
        (``{"CCDAMP": "D"}``); MAST cannot filter on these, so they are checked after
        download (the local index checks them before).
    time : (float, float) or None
        Exposure start in ``[start, end)`` (MJD); set per chunk.
    project : str
        MAST ``project`` (``"HST"``).
    """

    detector: str
    purpose: str
    instrument_name: tuple[str, ...]
    file_types: tuple[str, ...]
    intent: str | None = "calibration"
    target_name: tuple[str, ...] = ()
    exptime: tuple[float, float] | None = None
    proposals: tuple[str, ...] = ()
    header: Mapping[str, str] = field(default_factory=dict)
    time: tuple[float, float] | None = None
    project: str = "HST"

    def between(self, start_mjd: float, end_mjd: float) -> "QueryCriteria":
        """The same criteria restricted to exposures starting in ``[start, end)``."""
        return replace(self, time=(float(start_mjd), float(end_mjd)))

    def header_mismatch(self, header: Mapping) -> str | None:
        """Why a primary header fails :attr:`header` (None when it passes)."""
        for key, wanted in self.header.items():
            got = str(header.get(key, "")).strip().upper()
            if got != str(wanted).strip().upper():
                return f"{key}={got or '?'}, wanted {key}={wanted}"
        return None


@dataclass(frozen=True)
class ArchiveFile:
    """One file of a dataset as the archive knows it.

    ``location`` is a local path for the local archive and a ``mast:`` data URI for
    MAST.  ``size`` in bytes and ``checksum`` (``"md5:<hex>"``) when known.
    """

    file_type: str
    name: str
    location: str
    size: int | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class Dataset:
    """One exposure (rootname) and the files of it that the criteria asked for."""

    rootname: str
    instrument_name: str
    target: str
    start_mjd: float
    end_mjd: float
    exptime: float
    files: tuple[ArchiveFile, ...]
    proposal: str = ""

    def file(self, file_type: str) -> ArchiveFile | None:
        return next((f for f in self.files if f.file_type == file_type.upper()), None)


@runtime_checkable
class Archive(Protocol):
    """A place exposures come from.

    ``query`` lists datasets matching criteria (sorted by start time, then rootname);
    ``fetch`` makes their files available locally and returns ``{file_type: path}``
    (downloading into ``scratch`` if needed); ``local`` tells whether fetched files
    are the archive's own (never deleted) or scratch copies.
    """

    name: str
    local: bool

    def query(self, criteria: QueryCriteria) -> list[Dataset]: ...

    def fetch(self, dataset: Dataset, scratch: Path) -> dict[str, Path]: ...
