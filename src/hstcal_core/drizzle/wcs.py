"""The pipeline-default WCS, a priori solutions, WCSNAME/WCSTYPE and headerlets.

* :func:`pipeline_default_wcs` — ``stwcs.updatewcs.updatewcs(f, use_db=False)``, as
  runastrodriz does before anything else, when the distortion reference files
  (IDCTAB, NPOLFILE, D2IMFILE) resolve to files (``iref$name`` through ``$iref``,
  ``jref$`` through ``$jref``, ... as stwcs/``fileutil.osfn`` read them).  When one is
  named but absent, the exposure's own WCS is kept with a message saying which file
  is missing, and the keyword set to ``N/A`` (the old value kept in a comment) so no
  later drizzlepac/stwcs step goes looking for it.
* :func:`apply_apriori` — ``updatewcs(use_db=True)``: the astrometry database's
  solutions.  Needs the network; the caller runs it on copies and falls back on any
  failure (drizzlepac #2003).
* :func:`record_wcstype` — WCSTYPE from WCSNAME in every SCI header (drizzlepac
  ``updatehdr.interpret_wcsname_type``), WCSNAME defaulting to OPUS as runastrodriz.
* :func:`write_headerlet` — the exposure's primary WCS as ``<file>_hlet.fits``.

All functions update the file they are given: call them on copies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from ._thirdparty import import_drizzlepac, library_warnings, require
from .trailer import Trailer

__all__ = [
    "DISTORTION_KEYWORDS",
    "WcsReport",
    "apply_apriori",
    "pipeline_default_wcs",
    "record_wcstype",
    "resolve_reference_file",
    "sci_extensions",
    "set_card",
    "write_headerlet",
]

log = logging.getLogger(__name__)

DISTORTION_KEYWORDS = ("IDCTAB", "NPOLFILE", "D2IMFILE")
_NOT_APPLICABLE = {"", "N/A", "NONE", "NA"}


@dataclass
class WcsReport:
    """What :func:`pipeline_default_wcs` did to one file."""

    path: Path
    method: str  # "updatewcs" or "own"
    wcsname: str
    missing: dict[str, str] = field(default_factory=dict)


def resolve_reference_file(value: str) -> Path | None:
    """``iref$x_idc.fits`` → ``$iref/x_idc.fits`` (or a plain path); None when the
    environment variable is unset or the file does not exist."""
    value = str(value).strip()
    if "$" in value:
        var, name = value.split("$", 1)
        directory = os.environ.get(var) or os.environ.get(var.lower())
        if not directory:
            return None
        candidate = Path(os.path.expandvars(os.path.expanduser(directory))) / name
    else:
        candidate = Path(os.path.expanduser(value))
    return candidate if candidate.is_file() else None


def sci_extensions(hdul: fits.HDUList) -> list[int]:
    """Indices of the SCI extensions, in file order."""
    return [i for i, h in enumerate(hdul)
            if str(h.header.get("EXTNAME", "")).strip().upper() == "SCI"]


def pipeline_default_wcs(path: str | Path, *, wcscorr: bool = True,
                         primary: Mapping[str, tuple] | None = None) -> WcsReport:
    """Give ``path`` its pipeline-default WCS (see the module docstring).

    Parameters
    ----------
    wcscorr : bool
        Start the WCSCORR table and archive the OPUS WCS now (needed before a fit is
        archived; headerlets do not need it).
    primary : mapping, optional
        Primary cards ``{key: (value, comment)}`` to set in the same update.
    """
    path = Path(path)
    with fits.open(path) as hdul:
        header = hdul[0].header
        named = {k: str(header.get(k, "")).strip() for k in DISTORTION_KEYWORDS}
    named = {k: v for k, v in named.items() if v.upper() not in _NOT_APPLICABLE}
    missing = {k: v for k, v in named.items() if resolve_reference_file(v) is None}
    if "IDCTAB" in named and not missing:
        updatewcs = require("stwcs.updatewcs")
        with library_warnings(), Trailer.capture_stdout():
            updatewcs.updatewcs(str(path), use_db=False, checkfiles=False)
        wcsname = record_wcstype(path, primary)
        log.info("%s: pipeline-default WCS from updatewcs (IDCTAB %s): %s", path.name,
                 named["IDCTAB"], wcsname)
        return WcsReport(path, "updatewcs", wcsname)
    if missing:
        listing = ", ".join(f"{k}={v}" for k, v in missing.items())
        log.warning("%s: distortion reference file(s) not available (%s; set the $iref/$jref "
                    "directories to use them): keeping the exposure's own WCS, %s set to N/A",
                    path.name, listing, "/".join(missing))
    else:
        log.info("%s: no distortion reference file named (IDCTAB N/A): keeping the "
                 "exposure's own WCS", path.name)
    with fits.open(path, mode="update") as hdul:  # one update (a header that grows
        for key, value in missing.items():  # past its padding rewrites the whole file)
            hdul[0].header[key] = ("N/A", f"was {value}: not available"[:47])
        if wcscorr:
            _init_wcscorr(hdul)
        wcsname = _record_wcstype(hdul, primary)
    return WcsReport(path, "own", wcsname, missing)


def _init_wcscorr(hdul: fits.HDUList) -> None:
    """Archive the OPUS WCS (key O) and start the WCSCORR table, as updatewcs does.

    Later archiving (a posteriori fits) expects both; stwcs' ``init_wcscorr`` cannot
    make them once the OPUS WCS sits under another key.
    """
    init = require("stwcs.wcsutil.wcscorr").init_wcscorr
    with library_warnings(collect=False), Trailer.capture_stdout():  # we own the handle
        init(hdul)


def apply_apriori(path: str | Path) -> str:
    """``updatewcs(use_db=True)``: apply the astrometry database's best a priori solution.

    Returns the new WCSNAME.  Raises whatever stwcs raises (network, database): the
    caller falls back to the default WCS.
    """
    path = Path(path)
    with fits.open(path) as hdul:
        idctab = str(hdul[0].header.get("IDCTAB", "")).strip()
    if idctab.upper() in _NOT_APPLICABLE:
        raise RuntimeError("a priori solutions are defined for the IDCTAB distortion model; "
                           f"{path.name} has IDCTAB={idctab or 'N/A'}")
    updatewcs = require("stwcs.updatewcs")
    with library_warnings():
        updatewcs.updatewcs(str(path), use_db=True, checkfiles=False)
    return record_wcstype(path)


def record_wcstype(path: str | Path, primary: Mapping[str, tuple] | None = None) -> str:
    """Set WCSTYPE (and WCSNAME=OPUS where missing) in every SCI header, and the
    ``primary`` cards (``{key: (value, comment)}``), in one update; return the first
    WCSNAME."""
    with fits.open(path, mode="update") as hdul:
        return _record_wcstype(hdul, primary)


def _record_wcstype(hdul: fits.HDUList, primary: Mapping[str, tuple] | None = None) -> str:
    updatehdr = import_drizzlepac("updatehdr")
    names = []
    for index in sci_extensions(hdul):
        header = hdul[index].header
        name = str(header.get("WCSNAME", "")).strip() or "OPUS"
        header["WCSNAME"] = name
        header["WCSTYPE"] = updatehdr.interpret_wcsname_type(name)
        names.append(name)
    for key, card in (primary or {}).items():
        set_card(hdul[0].header, key, *card)
    return names[0] if names else ""


def set_card(header: fits.Header, key: str, value, comment: str = "") -> None:
    """Set a card, shortening the comment to what fits in 80 characters."""
    card = fits.Card(key, value)
    room = 80 - len(card.image.rstrip()) - 3
    header[key] = (value, comment[:room]) if room > 0 else value


def write_headerlet(path: str | Path, *, author: str = "hstcal", collect: bool = True) -> Path:
    """The primary WCS of ``path`` as ``<path stem>_hlet.fits`` beside it.

    What stwcs ``write_headerlet(attach=False)`` writes (HDRNAME the file name, DESCRIP
    the WCSTYPE of the WCSNAME, every SCI extension): its ``create_headerlet`` on the file
    opened read-only, then written under a temporary name and renamed into place.
    ``write_headerlet`` itself first builds a WCSCORR table in memory that a headerlet
    does not carry (0.1 s a file, most of the stage's overhead on a final drizzle).
    """
    path = Path(path)
    headerlet = require("stwcs.wcsutil.headerlet")
    updatehdr = import_drizzlepac("updatehdr")
    out = path.with_name(path.name.replace(".fits", "_hlet.fits"))
    partial = out.with_name(f".{out.name}.partial")
    # collect=False: callers writing several headerlets collect garbage once, after them
    with library_warnings(collect=collect), Trailer.capture_stdout(), fits.open(path) as hdul:
        sci = sci_extensions(hdul)
        wcsname = str(hdul[sci[0]].header.get("WCSNAME", "OPUS")) if sci else "OPUS"
        extensions = [("SCI", int(hdul[i].header.get("EXTVER", 1))) for i in sci]
        built = headerlet.create_headerlet(
            hdul, sciext=extensions or [0], wcsname=wcsname, wcskey=" ", hdrname=out.name,
            author=author, descrip=updatehdr.interpret_wcsname_type(wcsname), logging=False)
        try:
            built.tofile(str(partial), clobber=True)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return out
