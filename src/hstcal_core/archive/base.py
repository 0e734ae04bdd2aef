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


# --------------------------------------------------------------------------- plugin helper
# Imported here rather than at the top: this helper was appended to the module.
from ..errors import ConfigError  # noqa: E402

#: The keys a ``query`` hook's ``criteria`` may hold besides ``purpose``; each replaces
#: the plugin's default for that field.
CRITERIA_OVERRIDES = ("proposals", "exptime", "target_name", "file_types")


def criteria_for(detector, criteria: Mapping, table: Mapping[str, Mapping]) -> QueryCriteria:
    """Answer the ``query`` hook from a plugin's table of purposes.

    Parameters
    ----------
    detector : Detector
        The detector asked about; its ``name`` goes into the answer.
    criteria : mapping
        What the caller passed to the hook: ``purpose`` (required) and the optional
        overrides ``proposals`` (proposal IDs), ``exptime`` (``[lo, hi]`` seconds),
        ``target_name`` (name patterns) and ``file_types`` (product subgroups, the
        primary first).  A given override replaces the table's default; an absent or
        None one keeps it.
    table : mapping
        ``{purpose: {field: value}}`` with the :class:`QueryCriteria` fields other than
        ``detector`` and ``purpose`` (at least ``instrument_name`` and ``file_types``).

    Returns
    -------
    QueryCriteria

    Raises
    ------
    ConfigError
        When ``purpose`` is missing or not in ``table`` (the message names the
        detector, the purpose asked and the purposes supported), when ``criteria``
        holds an unknown key, or when an override is malformed.
    """
    name = getattr(detector, "name", str(detector))
    supported = ", ".join(sorted(table)) or "none"
    where = f"query criteria for detector {name}"
    purpose = criteria.get("purpose")
    if not purpose or not isinstance(purpose, str):
        raise ConfigError(f"{where}: 'purpose' must name one purpose, got {purpose!r} "
                          f"(supported purposes: {supported})")
    unknown = sorted(set(criteria) - {"purpose", *CRITERIA_OVERRIDES})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: "
                          f"{['purpose', *CRITERIA_OVERRIDES]}")
    if purpose not in table:
        raise ConfigError(f"detector {name} has no archive purpose '{purpose}' "
                          f"(supported purposes: {supported})")
    fields = dict(table[purpose])
    fields["header"] = dict(fields.get("header", {}))  # never share the table's dict
    for key in CRITERIA_OVERRIDES:
        value = criteria.get(key)
        if value is not None:
            fields[key] = _override(where, key, value)
    return QueryCriteria(detector=name, purpose=purpose, **fields)


def _override(where: str, key: str, value) -> tuple:
    """One validated override value, as the tuple :class:`QueryCriteria` holds."""
    if key == "exptime":
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: exptime must be [lo, hi] in seconds, "
                              f"got {value!r}") from None
        if lo > hi:
            raise ConfigError(f"{where}: exptime [{lo:g}, {hi:g}] has lo > hi")
        return (lo, hi)
    items = (value,) if isinstance(value, (str, int)) else value
    try:
        items = tuple(str(v).strip() for v in items)
    except TypeError:
        raise ConfigError(f"{where}: {key} must be a list, got {value!r}") from None
    if key == "file_types":
        if not items or not all(items):
            raise ConfigError(f"{where}: file_types must list at least one product "
                              f"subgroup (the first is the primary file), got {value!r}")
        return tuple(v.upper() for v in items)
    return items


__all__ += ["criteria_for", "CRITERIA_OVERRIDES"]
