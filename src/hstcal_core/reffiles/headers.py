"""CRDS header conventions for HST reference files.

Formats checked by CRDS certify for HST (and written by refstis):
``USEAFTER = 'Mon DD YYYY HH:MM:SS'``, ``PEDIGREE = 'INFLIGHT dd/mm/yyyy dd/mm/yyyy'``,
``DESCRIP`` of exactly 67 characters (padded with '-', as refstis does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from astropy.io import fits

from .anneal import mjd_to_datetime

__all__ = [
    "DESCRIP_LENGTH",
    "useafter",
    "pedigree",
    "descrip",
    "parse_useafter",
    "check_crds_header",
]

DESCRIP_LENGTH = 67
_USEAFTER_RE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                          r"\d{2} \d{4} \d{2}:\d{2}:\d{2}$")
_PEDIGREE_RE = re.compile(r"^INFLIGHT \d{2}/\d{2}/\d{4} \d{2}/\d{2}/\d{4}$")


def useafter(mjd: float) -> str:
    """``'Mar 01 1997 09:24:06'`` for an MJD (UTC), seconds truncated."""
    return mjd_to_datetime(mjd).strftime("%b %d %Y %H:%M:%S")


def parse_useafter(text: str):
    """Inverse of :func:`useafter` (a naive UTC datetime)."""
    from datetime import datetime

    return datetime.strptime(text, "%b %d %Y %H:%M:%S")


def pedigree(start_mjd: float, end_mjd: float) -> str:
    """``'INFLIGHT dd/mm/yyyy dd/mm/yyyy'`` spanning the input data."""
    if end_mjd < start_mjd:
        raise ValueError(f"pedigree end {end_mjd} precedes start {start_mjd}")
    a, b = mjd_to_datetime(start_mjd), mjd_to_datetime(end_mjd)
    return f"INFLIGHT {a:%d/%m/%Y} {b:%d/%m/%Y}"


def descrip(text: str, fill: str = "-") -> str:
    """Pad ``text`` to exactly 67 characters; longer text is an error naming it."""
    if len(text) > DESCRIP_LENGTH:
        raise ValueError(f"DESCRIP is {len(text)} characters, at most {DESCRIP_LENGTH}: {text!r}")
    return text + fill * (DESCRIP_LENGTH - len(text))


def check_crds_header(header: fits.Header, required: Iterable[str]) -> list[str]:
    """Problems CRDS certify would raise on a reference primary header (empty if none)."""
    problems = [f"missing keyword {k}" for k in required if k not in header]
    ua = header.get("USEAFTER")
    if ua is not None and not _USEAFTER_RE.match(str(ua)):
        problems.append(f"USEAFTER {ua!r} is not 'Mon DD YYYY HH:MM:SS'")
    ped = header.get("PEDIGREE")
    if ped is not None and not _PEDIGREE_RE.match(str(ped)):
        problems.append(f"PEDIGREE {ped!r} is not 'INFLIGHT dd/mm/yyyy dd/mm/yyyy'")
    desc = header.get("DESCRIP")
    if desc is not None and len(str(desc)) != DESCRIP_LENGTH:
        problems.append(f"DESCRIP has {len(str(desc))} characters, not {DESCRIP_LENGTH}")
    return problems
