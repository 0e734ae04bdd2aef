"""What an archive needs to know about one HST file, read from its headers.

Used by the local archive index and by the loopback MAST server in
:mod:`hstcal_core.testing`, so both describe a file the same way MAST does:
``instrument_name`` as in CAOM (``STIS/CCD``, ``ACS/WFC``, ``WFC3/IR``,
``NICMOS/NIC2``, ``WFPC2``), the product subgroup as the file-name suffix upper
cased (``RAW``, ``FLT``, ``SPT``, ``RAWTAG_A``, ``C0M``), times as MJD.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from astropy.io import fits

from ..errors import InputError

__all__ = ["FileFacts", "describe_file", "split_name", "file_checksum", "FITS_SUFFIXES",
           "HEADER_KEYWORDS"]

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fits.fz")

# Primary-header keywords kept in the index for criteria such as CCDAMP=D.
HEADER_KEYWORDS = ("CCDAMP", "CCDGAIN", "BINAXIS1", "BINAXIS2", "OBSTYPE", "OBSMODE",
                   "APERTURE", "OPT_ELEM", "FILTER1", "FILTER2", "FILTNAM1", "SAMP_SEQ",
                   "IMAGETYP", "SEGMENT", "CENWAVE", "LIFE_ADJ", "SUBARRAY", "NRPTEXP", "CRSPLIT")

# Internal calibration targets (CAOM intentType "calibration").
_CALIBRATION_TARGETS = re.compile(r"^(BIAS|DARK|FLAT|WAVE|TUNGSTEN|DEUTERIUM|KSPOTS|CCDFLAT|"
                                  r"NONE|ANY|INTFLAT|EARTH-CALIB)", re.IGNORECASE)

_NAME = re.compile(r"^(?P<root>[A-Za-z0-9]+)_(?P<type>[A-Za-z0-9_]+?)(?P<ext>\.fits(\.gz|\.fz)?|\.fit)$")


def split_name(name: str) -> tuple[str, str] | None:
    """``("o8u201u2q", "RAW")`` from ``o8u201u2q_raw.fits.gz``; None for other names."""
    m = _NAME.match(name)
    if m is None:
        return None
    return m["root"].lower(), m["type"].upper()


def file_checksum(path: Path, algorithm: str = "md5") -> str:
    """``"md5:<hex>"`` of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{algorithm}:{h.hexdigest()}"


class FileFacts(dict):
    """Plain mapping of one file's facts (JSON/SQL friendly); keys as in :func:`describe_file`."""


def _first(headers, *keys):
    for key in keys:
        for h in headers:
            value = h.get(key)
            if value not in (None, ""):
                return value
    return None


def instrument_name(primary) -> str:
    """CAOM-style instrument name from a primary header."""
    inst = str(primary.get("INSTRUME", "")).strip().upper()
    det = str(primary.get("DETECTOR", "") or "").strip().upper()
    if det:
        return f"{inst}/{det}"
    camera = primary.get("CAMERA")
    if inst == "NICMOS" and camera not in (None, ""):
        return f"NICMOS/NIC{int(camera)}"
    return inst


def describe_file(path: str | Path) -> FileFacts:
    """Read the headers of one file and return what the archive index stores.

    Returns
    -------
    FileFacts
        ``rootname, file_type, instrument, detector, instrument_name, target, intent,
        obstype, proposal, start_mjd, end_mjd, exptime, header`` (dict of
        :data:`HEADER_KEYWORDS` present).  Times and exposure time are None when the
        file has none (SPT, ASN, jitter files).

    Raises
    ------
    InputError
        When the file is not a readable FITS file; the message names it.
    """
    path = Path(path)
    parts = split_name(path.name)
    try:
        with fits.open(path, memmap=False) as hdul:
            primary = hdul[0].header
            sci = hdul[1].header if len(hdul) > 1 else fits.Header()
            headers = (primary, sci)
            facts = FileFacts(
                rootname=str(primary.get("ROOTNAME") or (parts[0] if parts else path.stem))
                .strip().lower(),
                file_type=parts[1] if parts else str(primary.get("FILETYPE", "")).upper(),
                instrument=str(primary.get("INSTRUME", "")).strip().upper(),
                detector=str(primary.get("DETECTOR", "") or "").strip().upper(),
                instrument_name=instrument_name(primary),
                target=str(primary.get("TARGNAME", "") or "").strip().upper(),
                obstype=str(primary.get("OBSTYPE", "") or "").strip().upper(),
                proposal=str(primary.get("PROPOSID", "") or "").strip(),
                start_mjd=_float(_first(headers, "TEXPSTRT", "EXPSTART")),
                end_mjd=_float(_first(headers, "TEXPEND", "EXPEND")),
                exptime=_float(_first(headers, "TEXPTIME", "EXPTIME")),
                header={k: _plain(primary[k]) for k in HEADER_KEYWORDS if k in primary},
            )
    except OSError as exc:
        raise InputError(path, f"not a readable FITS file ({exc})") from None
    if parts is not None and len(parts[0]) == 9 and facts["rootname"] != parts[0]:
        # Association products (x1dsum) carry a member's ROOTNAME; an HST file name
        # (9-character rootname) is the key.  Other names keep the ROOTNAME keyword.
        facts["rootname"] = parts[0]
    facts["intent"] = ("calibration" if _CALIBRATION_TARGETS.match(facts["target"] or "NONE")
                       else "science")
    return facts


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _plain(value):
    return value if isinstance(value, (bool, int, float, str)) else str(value)
