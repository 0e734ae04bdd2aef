"""What to drizzle: an association, one exposure, or a list of calibrated files.

:func:`resolve_inputs` turns the stage's input paths into :class:`DrizzleInputs` — the
FLT and FLC lists (both when both exist: ``_drz`` from the FLTs, ``_drc`` from the
FLCs), the product and trailer names, the DRIZCORR switch — and rejects bad input
early, naming the file (runastrodriz ``process``, ``_analyze_exposure``):

* ``*_asn.fits``: the EXP-* members with MEMPRSNT true; the product is the PROD-* row
  (or the association id).  A present member with neither ``_flt`` nor ``_flc``
  beside the table is an error; a member marked not present is skipped, saying so.
* ``*_raw.fits``: its calibrated ``_flt``/``_flc`` beside it.
* ``*_flt.fits`` / ``*_flc.fits``: those files (an FLC and FLT of one exposure pair up);
  the product is named after their common ASN_ID, else the first rootname.
* DRIZCORR comes from the RAW primary header (the first member's, as runastrodriz);
  a missing RAW is a warning and the calibrated file's DRIZCORR is used; OMIT skips the
  run unless ``force``.
* Unreadable or truncated FITS, no SCI extension, INSTRUME or detector different from
  the stage's detector or mixed among inputs: :class:`~hstcal_core.errors.InputError`.
* EXPTIME ≤ 0, or NGOODPIX 0 in every SCI extension: the exposure is skipped with the
  reason; when no exposure is left the run is skipped (nothing to drizzle), as
  runastrodriz turns DRIZCORR to OMIT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..detectors import Detector
from ..errors import InputError
from ..fitsio import _data, _opened

__all__ = ["CALIBRATED_SUFFIXES", "DrizzleInputs", "Exposure", "resolve_inputs"]

log = logging.getLogger(__name__)

#: Calibrated-file suffixes, CTE-uncorrected first: (suffix, product kind).
CALIBRATED_SUFFIXES = ("_flt", "_flc")


@dataclass(frozen=True)
class Exposure:
    """One calibrated file to drizzle."""

    path: Path
    rootname: str
    kind: str  # "flt" or "flc"
    exptime: float
    expstart: float


@dataclass
class DrizzleInputs:
    """The resolved input of one drizzle run.

    Attributes
    ----------
    trailer_root : str
        ``<root>`` of the trailer ``<root>.tra``.
    product_root : str
        Rootname of the products (``<product_root>_drz.fits`` ...), lower case.
    sets : dict
        ``{"flt": [Exposure...], "flc": [Exposure...]}`` — only non-empty lists.
    instrument, detector : str
    drizcorr : str
        PERFORM, OMIT or COMPLETE (or "" when no header says).
    drizcorr_source : Path or None
        The file DRIZCORR was read from.
    skipped : list of (str, str)
        Exposures left out and why.
    """

    trailer_root: str
    product_root: str
    sets: dict[str, list[Exposure]]
    instrument: str
    detector: str
    drizcorr: str = ""
    drizcorr_source: Path | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exposures(self) -> list[Exposure]:
        return [e for kind in ("flt", "flc") for e in self.sets.get(kind, [])]

    @property
    def align_set(self) -> str:
        """The set alignment is measured on: FLC when present (runastrodriz)."""
        return "flc" if self.sets.get("flc") else "flt"


def resolve_inputs(paths: Sequence[str | Path], detector: Detector) -> DrizzleInputs:
    """Resolve and check the stage inputs (see the module docstring).

    Raises
    ------
    InputError
        Naming the file: missing, unreadable, wrong or mixed instrument, bad ASN.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(None, "stage 'drizzle': no input given (an _asn, _raw, _flt or "
                               "_flc file)")
    from .trailer import trailer_root

    first = paths[0]
    name = first.name.lower()
    raw: Path | None = None
    if len(paths) == 1 and name.endswith("_asn.fits"):
        product_root, rootnames, skipped = _read_asn(first)
        calibrated = [_calibrated_of(first.parent, r, first) for r in rootnames]
        raw = first.parent / f"{rootnames[0]}_raw.fits"
    elif len(paths) == 1 and name.endswith("_raw.fits"):
        root = name[:-len("_raw.fits")]
        product_root, skipped = root, []
        calibrated = [_calibrated_of(first.parent, root, first)]
        raw = first
    else:
        for p in paths:
            if p.name.lower().endswith(("_asn.fits", "_raw.fits")):
                raise InputError(p, "an association or RAW file must be the only input")
        product_root, skipped = _root_of(first), []
        calibrated = [[p] for p in paths]
        raw = first.parent / f"{_root_of(first)}_raw.fits"
    files = [f for group in calibrated for f in group]
    headers = {f: _check_readable(f) for f in files}
    if len(paths) > 1 or not name.endswith(("_asn.fits", "_raw.fits")):
        # calibrated files of one association make that association's product
        asn_ids = {str(h[0].get("ASN_ID", "")).strip().lower() for h in headers.values()}
        if len(asn_ids) == 1 and asn_ids != {""} and asn_ids != {"none"} and len(files) > 1:
            product_root = asn_ids.pop()
    instrument, det = _check_instrument(headers, detector)
    drizcorr, source = _drizcorr(raw, files[0], headers[files[0]])

    sets: dict[str, list[Exposure]] = {"flt": [], "flc": []}
    for f in files:
        primary, sci = headers[f]
        kind = "flc" if f.name.lower().endswith("_flc.fits") else "flt"
        rootname = str(primary.get("ROOTNAME", _root_of(f))).strip().lower()
        exptime = float(primary.get("EXPTIME", 0.0) or 0.0)
        reason = _unusable(primary, sci)
        if reason:
            log.warning("%s: %s; exposure skipped", f.name, reason)
            skipped.append((f.name, reason))
            continue
        sets[kind].append(Exposure(path=f, rootname=rootname, kind=kind, exptime=exptime,
                                   expstart=float(primary.get("EXPSTART", 0.0) or 0.0)))
    return DrizzleInputs(trailer_root=trailer_root(first), product_root=product_root,
                         sets={k: v for k, v in sets.items() if v}, instrument=instrument,
                         detector=det, drizcorr=drizcorr, drizcorr_source=source,
                         skipped=skipped)


def _root_of(path: Path) -> str:
    stem = path.name.lower()
    stem = stem.removesuffix(".fits")
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def _read_asn(path: Path) -> tuple[str, list[str], list[tuple[str, str]]]:
    """Product rootname, present member rootnames and the members skipped."""
    with _opened(path) as hdul:
        table = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)), None)
        if table is None or table.data is None:
            raise InputError(path, "association table has no table extension")
        columns = [c.upper() for c in table.columns.names]
        for needed in ("MEMNAME", "MEMTYPE"):
            if needed not in columns:
                raise InputError(path, f"association table lacks the {needed} column")
        names = [str(n).strip().lower() for n in table.data["MEMNAME"]]
        types = [str(t).strip().upper() for t in table.data["MEMTYPE"]]
        present = (list(np.asarray(table.data["MEMPRSNT"], dtype=bool))
                   if "MEMPRSNT" in columns else [True] * len(names))
        asn_id = str(hdul[0].header.get("ASN_ID", path.name[:-len("_asn.fits")])).strip().lower()
    product = next((n for n, t in zip(names, types) if t.startswith("PROD")), asn_id)
    members, skipped = [], []
    for n, t, p in zip(names, types, present):
        if not t.startswith("EXP"):
            continue
        if not p:
            log.warning("%s: member %s is marked not present (MEMPRSNT=F); skipped",
                        path.name, n)
            skipped.append((n, "MEMPRSNT=F in the association table"))
            continue
        members.append(n)
    if not members:
        raise InputError(path, "association table lists no present exposure (EXP-* with "
                               "MEMPRSNT=T)")
    return product, members, skipped


def _calibrated_of(directory: Path, rootname: str, named_by: Path) -> list[Path]:
    found = [directory / f"{rootname}{s}.fits" for s in CALIBRATED_SUFFIXES]
    found = [f for f in found if f.exists()]
    if not found:
        raise InputError(named_by, f"member {rootname}: neither {rootname}_flt.fits nor "
                                   f"{rootname}_flc.fits exists in {directory}")
    return found


def _check_readable(path: Path) -> tuple[fits.Header, list[fits.Header]]:
    """Primary and SCI headers; the file must hold every byte its headers announce
    (truncated or garbled files fail here, without reading the pixels)."""
    size = path.stat().st_size if path.exists() else 0
    with _opened(path) as hdul:
        primary = hdul[0].header.copy()
        sci = []
        for hdu in hdul[1:]:
            extname = str(hdu.header.get("EXTNAME", "")).strip().upper()
            offset = getattr(hdu, "_data_offset", None)
            length = getattr(hdu, "_data_size", None)
            if offset is None or length is None:  # astropy internals moved: read the data
                _data(path, hdu, f"{extname},{hdu.header.get('EXTVER', 1)}")
            elif offset + length > size:
                raise InputError(path, f"FITS file is truncated: extension {extname},"
                                       f"{hdu.header.get('EXTVER', 1)} needs {offset + length} "
                                       f"bytes, the file has {size}")
            if extname == "SCI":
                sci.append(hdu.header.copy())
    if not sci:
        raise InputError(path, "has no SCI extension: not a calibrated FLT/FLC file")
    return primary, sci


def _check_instrument(headers, detector: Detector) -> tuple[str, str]:
    keyword = str(detector.extra.get("detector_keyword", "DETECTOR"))
    seen: dict[tuple[str, str], Path] = {}
    for path, (primary, _) in headers.items():
        inst = str(primary.get("INSTRUME", "")).strip().upper()
        det = str(primary.get(keyword, "")).strip().upper()
        if inst != detector.instrument.upper():
            raise InputError(path, f"is INSTRUME={inst or '?'}, not {detector.instrument} "
                                   f"({detector.name})")
        # files whose primary names no detector (WFPC2: one per chip) pass on INSTRUME
        if (det and det != str(detector.detector).upper() and keyword in primary
                and not _chip_detector(detector)):
            raise InputError(path, f"is {keyword}={det}, not {detector.detector} "
                                   f"({detector.name})")
        seen.setdefault((inst, det), path)
    if len(seen) > 1:
        listing = ", ".join(f"{p.name}: {i}/{d or '?'}" for (i, d), p in seen.items())
        raise InputError(None, f"mixed instruments/detectors in one drizzle run ({listing})")
    (inst, det), = seen
    return inst, det or str(detector.detector)


def _chip_detector(detector: Detector) -> bool:
    """A detector registered per chip (its DETECTOR is a chip number): a calibrated file
    holds every chip, so the file's detector keyword is not compared."""
    return detector.extra.get("chip_keyword") == detector.extra.get("detector_keyword",
                                                                    "DETECTOR")


def _drizcorr(raw: Path | None, calibrated: Path, headers) -> tuple[str, Path | None]:
    if raw is not None and raw.exists():
        with _opened(raw) as hdul:
            value = str(hdul[0].header.get("DRIZCORR", "")).strip().upper()
        return value, raw
    if raw is not None:
        log.warning("RAW file %s not found: DRIZCORR taken from %s", raw.name, calibrated.name)
    value = str(headers[0].get("DRIZCORR", "")).strip().upper()
    return value, calibrated if value else None


def _unusable(primary: fits.Header, sci: list[fits.Header]) -> str:
    exptime = primary.get("EXPTIME")
    try:
        exptime = float(exptime)
    except (TypeError, ValueError):
        return f"EXPTIME={exptime!r} is not a number"
    if not np.isfinite(exptime) or exptime <= 0:
        return f"EXPTIME={exptime:g}: nothing was exposed"
    goodpix = [h.get("NGOODPIX") for h in sci]
    if all(g is not None for g in goodpix) and all(float(g) <= 0 for g in goodpix):
        return "NGOODPIX=0 in every SCI extension: no good pixel to drizzle"
    return ""
