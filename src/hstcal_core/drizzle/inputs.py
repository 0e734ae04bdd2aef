"""What to drizzle: an association, one exposure, or a list of calibrated files.

:func:`resolve_inputs` turns the stage's input paths into :class:`DrizzleInputs` — the
FLT and FLC lists (both when both exist: ``_drz`` from the FLTs, ``_drc`` from the
FLCs), the product and trailer names, the DRIZCORR switch — and rejects bad input
early, naming the file (runastrodriz ``process``, ``_analyze_exposure``):

* ``*_asn.fits``: the EXP-* members with MEMPRSNT true; the product is the PROD-* row
  (or the association id).  A present member with neither ``_flt`` nor ``_flc``
  (WFPC2: nor ``_c0m``) beside the table is an error; a member marked not present is
  skipped, saying so.
* ``*_raw.fits`` (WFPC2: ``*_d0m.fits``): its calibrated file(s) beside it.
* ``*_flt.fits`` / ``*_flc.fits`` / ``*_c0m.fits``: those files (an FLC and FLT of one
  exposure pair up); the product is named after their common ASN_ID, else the first
  rootname.
* DRIZCORR comes from the RAW (WFPC2: D0M) primary header (the first member's, as
  runastrodriz); a missing RAW is a warning and the calibrated file's DRIZCORR is used;
  OMIT skips the run unless ``force``.
* Unreadable or truncated FITS, no SCI extension, INSTRUME or detector different from
  the stage's detector or mixed among inputs: :class:`~hstcal_core.errors.InputError`.
* EXPTIME ≤ 0, or NGOODPIX (WFPC2: GPIXELS) 0 in every SCI extension, or (WFPC2) no
  filter named: the exposure is skipped with the reason; when no exposure is left the
  run is skipped (nothing to drizzle), as runastrodriz turns DRIZCORR to OMIT.

WFPC2 (runastrodriz ``process``: ``d0m`` → ``c0m``, ``wfpc2Data.wfpc2_to_flt``, then
``photeq``).  The archive's calibrated WFPC2 exposure is ``<root>_c0m.fits`` (one SCI
group per chip, in DN) with its data quality in ``<root>_c1m.fits``; for a WFPC2 member
or D0M the c0m is used when present (runastrodriz always converts it), else an FLT.
:func:`resolve_inputs` checks each c0m — INSTRUME, every group its NEXTEND announces,
one chip per group, the stage's chip among them — and its c1m (same groups, same
shapes: ``wfpc2_to_flt`` pairs them by position).  A missing c1m is an error naming it:
``wfpc2_to_flt`` would carry on with an all-zero DQ, drizzling saturated, bad and
missing pixels as data; ``allow_missing_c1m`` accepts that, with a warning.
:func:`convert_wfpc2` then runs drizzlepac's own ``wfpc2_to_flt`` and ``photeq``
(``ref_phot_ext`` WF3, as runastrodriz) on private copies in the scratch directory and
hands back ``<root>_flt.fits`` files, whose primary DETECTOR is ``PC`` (what
``wfpc2_to_flt`` writes, and the ``WFPC2/PC`` key of runastrodriz ``focus_pars``).
Not done: ``wfpc2Data.apply_bestrefs`` (asks CRDS, i.e. the network): distortion files
named in the header are used when ``$uref`` holds them, as for every instrument.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..detectors import Detector
from ..errors import InputError
from ..fitsio import _data, _opened

__all__ = ["CALIBRATED_SUFFIXES", "WFPC2_SUFFIXES", "DrizzleInputs", "Exposure",
           "convert_wfpc2", "resolve_inputs"]

log = logging.getLogger(__name__)

#: Calibrated-file suffixes, CTE-uncorrected first: (suffix, product kind).
CALIBRATED_SUFFIXES = ("_flt", "_flc")
#: WFPC2's calibrated science, its data quality and its raw file (runastrodriz
#: ``process``: d0m → c0m; drizzlepac ``wfpc2Data.wfpc2_to_flt``: c0m + c1m → flt).
WFPC2_SUFFIXES = {"science": "_c0m", "quality": "_c1m", "raw": "_d0m"}
# runastrodriz FILTER_NAMES / _analyze_exposure: the filter keywords of WFPC2 files
_WFPC2_FILTER_KEYWORDS = ("FILTNAM1", "FILTNAM2")
# photeq reference chip: runastrodriz calls photeq(ref_phot_ext=3), extension 3 of the
# FLT wfpc2_to_flt writes, which is WF3 (DETECTOR 3) when the four chips are there
_PHOTEQ_REFERENCE_CHIP = 3


@dataclass(frozen=True)
class Exposure:
    """One calibrated file to drizzle.

    ``path`` is an FLT/FLC file, or a WFPC2 ``_c0m`` (``dq_path`` its ``_c1m``, None when
    missing and allowed) until :func:`convert_wfpc2` replaces it by its FLT.
    """

    path: Path
    rootname: str
    kind: str  # "flt" or "flc"
    exptime: float
    expstart: float
    dq_path: Path | None = None

    @property
    def is_c0m(self) -> bool:
        """A WFPC2 c0m still to convert."""
        return self.path.name.lower().endswith(WFPC2_SUFFIXES["science"] + ".fits")


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

    @property
    def to_convert(self) -> list[Exposure]:
        """WFPC2 c0m exposures :func:`convert_wfpc2` still has to turn into FLTs."""
        return [e for e in self.exposures if e.is_c0m]


def resolve_inputs(paths: Sequence[str | Path], detector: Detector, *,
                   allow_missing_c1m: bool = False) -> DrizzleInputs:
    """Resolve and check the stage inputs (see the module docstring).

    Parameters
    ----------
    paths : sequence of path
    detector : Detector
        The stage's detector.
    allow_missing_c1m : bool
        WFPC2: accept a c0m without its c1m (all-zero DQ, as ``wfpc2_to_flt``).

    Raises
    ------
    InputError
        Naming the file: missing, unreadable, wrong or mixed instrument, bad ASN,
        malformed c0m, missing or mismatched c1m.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(None, "stage 'drizzle': no input given (an _asn, _raw, _flt or "
                               "_flc file; WFPC2: _d0m or _c0m)")
    from .trailer import trailer_root

    first = paths[0]
    name = first.name.lower()
    raw: Path | None = None
    raw_suffixes = ("_raw.fits", WFPC2_SUFFIXES["raw"] + ".fits")
    if len(paths) == 1 and name.endswith("_asn.fits"):
        product_root, rootnames, skipped = _read_asn(first)
        calibrated = [_calibrated_of(first.parent, r, first, detector) for r in rootnames]
        raw = _raw_of(first.parent, rootnames[0], detector)
    elif len(paths) == 1 and name.endswith(raw_suffixes):
        root = _root_of(first)
        product_root, skipped = root, []
        calibrated = [_calibrated_of(first.parent, root, first, detector)]
        raw = first
    else:
        for p in paths:
            if p.name.lower().endswith(("_asn.fits", *raw_suffixes)):
                raise InputError(p, "an association or RAW file must be the only input")
            _check_name(p)
        product_root, skipped = _root_of(first), []
        calibrated = [[p] for p in paths]
        raw = _raw_of(first.parent, _root_of(first), detector)
    files = [f for group in calibrated for f in group]
    headers = {f: _check_readable(f) for f in files}
    if len(paths) > 1 or not name.endswith(("_asn.fits", *raw_suffixes)):
        # calibrated files of one association make that association's product
        asn_ids = {str(h[0].get("ASN_ID", "")).strip().lower() for h in headers.values()}
        if len(asn_ids) == 1 and asn_ids != {""} and asn_ids != {"none"} and len(files) > 1:
            product_root = asn_ids.pop()
    instrument, det = _check_instrument(headers, detector)
    dq_files = {f: _check_c0m(f, *headers[f], detector, allow_missing_c1m)
                for f in files if f.name.lower().endswith(WFPC2_SUFFIXES["science"] + ".fits")}
    _check_distinct(files)
    drizcorr, source = _drizcorr(raw, files[0], headers[files[0]])

    sets: dict[str, list[Exposure]] = {"flt": [], "flc": []}
    for f in files:
        primary, sci = headers[f]
        kind = "flc" if f.name.lower().endswith("_flc.fits") else "flt"  # c0m -> an FLT
        rootname = str(primary.get("ROOTNAME", _root_of(f))).strip().lower()
        exptime = float(primary.get("EXPTIME", 0.0) or 0.0)
        reason = _unusable(primary, sci, instrument)
        if reason:
            log.warning("%s: %s; exposure skipped", f.name, reason)
            skipped.append((f.name, reason))
            continue
        sets[kind].append(Exposure(path=f, rootname=rootname, kind=kind, exptime=exptime,
                                   expstart=float(primary.get("EXPSTART", 0.0) or 0.0),
                                   dq_path=dq_files.get(f)))
    return DrizzleInputs(trailer_root=trailer_root(first), product_root=product_root,
                         sets={k: v for k, v in sets.items() if v}, instrument=instrument,
                         detector=det, drizcorr=drizcorr, drizcorr_source=source,
                         skipped=skipped)


def convert_wfpc2(inputs: DrizzleInputs, workdir: Path) -> DrizzleInputs:
    """Turn the WFPC2 c0m/c1m exposures of ``inputs`` into FLT files in ``workdir``.

    drizzlepac's ``wfpc2Data.wfpc2_to_flt`` then ``photeq`` (runastrodriz ``process``)
    on private copies; the inputs are not touched.  Returns ``inputs`` with each c0m
    replaced by ``workdir/<root>_flt.fits`` and ``detector`` as the FLTs name it (PC).

    Raises
    ------
    RuntimeError
        When ``wfpc2_to_flt`` fails or writes no FLT (the message names the c0m).
    """
    todo = inputs.to_convert
    if not todo:
        return inputs
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    converted = {e.path: _to_flt(e, workdir) for e in todo}
    sets = {kind: [converted.get(e.path, e) for e in exposures]
            for kind, exposures in inputs.sets.items()}
    with fits.open(next(iter(converted.values())).path) as hdul:
        detector = str(hdul[0].header.get("DETECTOR", inputs.detector)).strip().upper()
    return dataclasses.replace(inputs, sets=sets, detector=detector or inputs.detector)


# --------------------------------------------------------------------------- WFPC2
def _to_flt(exposure: Exposure, workdir: Path) -> Exposure:
    """One c0m (+ c1m) → ``workdir/<root>_flt.fits`` by drizzlepac, as runastrodriz."""
    from ._thirdparty import import_drizzlepac, library_warnings
    from .astrodrizzle import _working_directory
    from .trailer import Trailer

    wfpc2data = import_drizzlepac("wfpc2Data")
    root = _root_of(exposure.path)
    target = workdir / f"{root}_flt.fits"
    private = workdir / f".{root}.wfpc2"
    private.mkdir()
    # neutral names: wfpc2_to_flt finds the c1m and names the FLT by replacing "c0m"
    # anywhere in the path it is given
    c0m = private / "in_c0m.fits"
    shutil.copyfile(exposure.path, c0m)
    if exposure.dq_path is not None:
        shutil.copyfile(exposure.dq_path, private / "in_c1m.fits")
    else:
        log.warning("%s: no c1m; wfpc2_to_flt writes an all-zero DQ (every pixel good), "
                    "as allowed by allow_missing_c1m", exposure.path.name)
    with fits.open(c0m, mode="update") as hdul:  # wfpc2_to_flt names the FLT's FILENAME
        if str(hdul[0].header.get("FILENAME", "")) != f"{root}_c0m.fits":  # after it
            hdul[0].header["FILENAME"] = f"{root}_c0m.fits"
    # ERR = sqrt(DN) in wfpc2_to_flt: NaN where DN < 0, which numpy reports as invalid
    with _working_directory(private), Trailer.capture_stdout(), library_warnings(), \
            np.errstate(invalid="ignore"):
        try:
            written = wfpc2data.wfpc2_to_flt(c0m.name)
        except Exception as exc:
            raise RuntimeError(f"drizzlepac wfpc2_to_flt failed on {exposure.path.name}: "
                               f"{type(exc).__name__}: {exc}") from exc
    flt = private / written
    if not flt.is_file():
        raise RuntimeError(f"drizzlepac wfpc2_to_flt wrote no FLT for {exposure.path.name}")
    equalised = _photeq(flt, exposure.path.name)
    os.replace(equalised or flt, target)
    shutil.rmtree(private)
    log.info("%s%s -> %s (drizzlepac wfpc2_to_flt%s)", exposure.path.name,
             f" + {exposure.dq_path.name}" if exposure.dq_path else "", target.name,
             ", photeq" if equalised else "")
    return dataclasses.replace(exposure, path=target, dq_path=None)


def _photeq(flt: Path, source: str) -> Path | None:
    """drizzlepac ``photeq`` on a copy of ``flt`` (PHOTFLAM of every chip made WF3's, the
    data scaled to match: runastrodriz ``process``); the equalised file, or None when
    photeq failed (runastrodriz logs it and goes on with the FLT as converted)."""
    from ._thirdparty import import_drizzlepac, library_warnings
    from .astrodrizzle import _working_directory

    photeq = import_drizzlepac("photeq")
    with fits.open(flt) as hdul:
        reference = next((int(h.ver) for h in hdul if h.name == "SCI"
                          and h.header.get("DETECTOR") == _PHOTEQ_REFERENCE_CHIP), None)
    copy = flt.with_name("eq_" + flt.name)
    shutil.copyfile(flt, copy)
    try:
        with _working_directory(flt.parent), _without_console(photeq.__name__), \
                library_warnings():
            # with WF3 absent photeq takes its own default: the first PHOTFLAM it finds
            photeq.photeq(files=copy.name, readonly=False, logfile=None,
                          ref_phot_ext=None if reference is None else ("SCI", reference))
    except Exception as exc:  # noqa: BLE001 - runastrodriz: log, keep the unequalised FLT
        log.warning("PHOTEQ was unable to run on %s (%s: %s); chips keep their own "
                    "PHOTFLAM", source, type(exc).__name__, exc)
        copy.unlink(missing_ok=True)
        return None
    with fits.open(copy, mode="update") as hdul:
        hdul[0].header["PHOTEQ"] = (True, "chips equalised to one PHOTFLAM (photeq)")
    return copy


@contextlib.contextmanager
def _without_console(logger_name: str) -> Iterator[None]:
    """photeq gives its logger a stderr handler of its own; its records still reach the
    trailer through the ``drizzlepac`` logger."""
    logger = logging.getLogger(logger_name)
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    for handler in consoles:
        logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in consoles:
            logger.addHandler(handler)


def _check_c0m(path: Path, primary: fits.Header, sci: list[fits.Header], detector: Detector,
               allow_missing_c1m: bool) -> Path | None:
    """A c0m's groups and its c1m (see the module docstring); the c1m, or None when it is
    missing and ``allow_missing_c1m``."""
    announced = primary.get("NEXTEND")
    if announced is not None and int(announced) != len(sci):
        raise InputError(path, f"announces {announced} groups (NEXTEND) but holds "
                               f"{len(sci)} SCI extension(s): a group is missing")
    chips = []
    for header in sci:
        where = f"SCI,{header.get('EXTVER', 1)}"
        chip = header.get("DETECTOR")
        if not isinstance(chip, int) or isinstance(chip, bool):
            raise InputError(path, f"group {where} names no chip (DETECTOR={chip!r}); "
                                   "a WFPC2 c0m group has DETECTOR 1-4")
        if header.get("NAXIS") != 2:
            raise InputError(path, f"group {where} is not an image (NAXIS="
                                   f"{header.get('NAXIS')})")
        chips.append(chip)
    if len(set(chips)) != len(chips):
        raise InputError(path, f"groups name chips {chips}: one chip twice")
    wanted = detector.extra.get("chip")
    if wanted is not None and int(wanted) not in chips:
        raise InputError(path, f"has no group for chip {wanted} ({detector.name}); its "
                               f"groups are chips {chips}")
    cut = len(path.name) - len(WFPC2_SUFFIXES["science"] + ".fits")
    tail = path.name[cut:]  # "_c0m.fits" in the file's own case
    quality = path.with_name(path.name[:cut] + tail[:2] + "1" + tail[3:])  # _c1m.fits
    if not quality.exists():
        if allow_missing_c1m:
            log.warning("%s: its data quality file %s is missing; drizzled with an all-zero "
                        "DQ (allow_missing_c1m)", path.name, quality.name)
            return None
        raise InputError(quality, f"missing: the data quality of {path.name}.  drizzlepac's "
                                  "wfpc2_to_flt would carry on with an all-zero DQ, "
                                  "drizzling saturated, bad and missing pixels as data; "
                                  "put the c1m beside the c0m, or accept that with "
                                  "-p allow_missing_c1m=true")
    _, groups = _check_readable(quality, extname=None)
    if len(groups) != len(sci):
        raise InputError(quality, f"holds {len(groups)} group(s), {path.name} {len(sci)}: "
                                  "wfpc2_to_flt pairs them by position")
    for s_hdr, q_hdr in zip(sci, groups):
        shape = (s_hdr.get("NAXIS2"), s_hdr.get("NAXIS1"))
        if (q_hdr.get("NAXIS2"), q_hdr.get("NAXIS1")) != shape or \
                q_hdr.get("DETECTOR", s_hdr.get("DETECTOR")) != s_hdr.get("DETECTOR"):
            raise InputError(quality, f"group {q_hdr.get('EXTVER', '?')} (chip "
                                      f"{q_hdr.get('DETECTOR', '?')}, {q_hdr.get('NAXIS2')}x"
                                      f"{q_hdr.get('NAXIS1')}) does not match {path.name}'s "
                                      f"(chip {s_hdr.get('DETECTOR')}, {shape[0]}x{shape[1]})")
    return quality


def _check_name(path: Path) -> None:
    """WFPC2 files the stage cannot take, said plainly."""
    name = path.name.lower()
    if name.endswith(WFPC2_SUFFIXES["quality"] + ".fits"):
        raise InputError(path, "is a WFPC2 data-quality file: give its _c0m (the c1m is "
                               "found beside it)")
    if name.endswith(("_c0f.fits", ".c0h")):
        raise InputError(path, "is WFPC2 waiver-FITS/GEIS: drizzlepac's wfpc2_to_flt takes "
                               "the multi-extension _c0m.fits the archive also delivers")


def _check_distinct(files: Sequence[Path]) -> None:
    """Two inputs that would be drizzled under one name (an FLT and the c0m it came from)."""
    seen: dict[str, Path] = {}
    for f in files:
        name = f.name.lower()
        if name.endswith(WFPC2_SUFFIXES["science"] + ".fits"):
            name = f"{_root_of(f)}_flt.fits"
        if name in seen and seen[name] != f:
            raise InputError(f, f"and {seen[name].name} are one exposure ({name}); give one")
        seen[name] = f


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


def _calibrated_of(directory: Path, rootname: str, named_by: Path,
                   detector: Detector) -> list[Path]:
    found = [directory / f"{rootname}{s}.fits" for s in CALIBRATED_SUFFIXES]
    found = [f for f in found if f.exists()]
    if _is_wfpc2(detector):
        c0m = directory / f"{rootname}{WFPC2_SUFFIXES['science']}.fits"
        if c0m.exists():  # runastrodriz converts the c0m whatever FLT is beside it
            if found:
                log.info("member %s: converting %s (runastrodriz's input); %s not used",
                         rootname, c0m.name, ", ".join(f.name for f in found))
            return [c0m]
        if not found:
            raise InputError(named_by, f"member {rootname}: neither {c0m.name} nor "
                                       f"{rootname}_flt.fits nor {rootname}_flc.fits exists "
                                       f"in {directory}")
    if not found:
        raise InputError(named_by, f"member {rootname}: neither {rootname}_flt.fits nor "
                                   f"{rootname}_flc.fits exists in {directory}")
    return found


def _raw_of(directory: Path, rootname: str, detector: Detector) -> Path:
    """The RAW file DRIZCORR is read from: ``_raw``, for WFPC2 ``_d0m`` (runastrodriz
    ``raw_suffix``)."""
    suffix = WFPC2_SUFFIXES["raw"] if _is_wfpc2(detector) else "_raw"
    return directory / f"{rootname}{suffix}.fits"


def _is_wfpc2(detector: Detector) -> bool:
    return detector.instrument.strip().upper() == "WFPC2"  # runastrodriz wfpc2_input


def _check_readable(path: Path, extname: str | None = "SCI"
                    ) -> tuple[fits.Header, list[fits.Header]]:
    """Primary and SCI headers (every image extension's with ``extname=None``); the file
    must hold every byte its headers announce (truncated or garbled files fail here,
    without reading the pixels)."""
    size = path.stat().st_size if path.exists() else 0
    with _opened(path) as hdul:
        primary = hdul[0].header.copy()
        sci = []
        for hdu in hdul[1:]:
            name = str(hdu.header.get("EXTNAME", "")).strip().upper()
            offset = getattr(hdu, "_data_offset", None)
            length = getattr(hdu, "_data_size", None)
            if offset is None or length is None:  # astropy internals moved: read the data
                _data(path, hdu, f"{name},{hdu.header.get('EXTVER', 1)}")
            elif offset + length > size:
                raise InputError(path, f"FITS file is truncated: extension {name},"
                                       f"{hdu.header.get('EXTVER', 1)} needs {offset + length} "
                                       f"bytes, the file has {size}")
            if name == extname or (extname is None and hdu.is_image):
                sci.append(hdu.header.copy())
    if not sci:
        raise InputError(path, f"has no {extname or 'image'} extension: not a calibrated "
                               "FLT/FLC/c0m/c1m file")
    return primary, sci


def _check_instrument(headers, detector: Detector) -> tuple[str, str]:
    keyword = str(detector.extra.get("detector_keyword", "DETECTOR"))
    seen: dict[tuple[str, str], Path] = {}
    named: dict[str, str] = {}
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
        if _chip_detector(detector):
            # one camera: c0m (no primary DETECTOR) and FLTs (DETECTOR=PC) mix
            if det:
                named.setdefault(inst, det)
            det = ""
        seen.setdefault((inst, det), path)
    if len(seen) > 1:
        listing = ", ".join(f"{p.name}: {i}/{d or '?'}" for (i, d), p in seen.items())
        raise InputError(None, f"mixed instruments/detectors in one drizzle run ({listing})")
    (inst, det), = seen
    return inst, det or named.get(inst) or str(detector.detector)


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


def _unusable(primary: fits.Header, sci: list[fits.Header], instrument: str = "") -> str:
    exptime = primary.get("EXPTIME")
    try:
        exptime = float(exptime)
    except (TypeError, ValueError):
        return f"EXPTIME={exptime!r} is not a number"
    if not np.isfinite(exptime) or exptime <= 0:
        return f"EXPTIME={exptime:g}: nothing was exposed"
    # runastrodriz goodpix_name: NGOODPIX, GPIXELS for WFPC2
    key = "GPIXELS" if instrument == "WFPC2" and "NGOODPIX" not in sci[0] else "NGOODPIX"
    goodpix = [h.get(key) for h in sci]
    if all(g is not None for g in goodpix) and all(float(g) <= 0 for g in goodpix):
        return f"{key}=0 in every SCI extension: no good pixel to drizzle"
    # runastrodriz _analyze_exposure: no filter named, not drizzled ("Inappropriate filter")
    if instrument == "WFPC2" and all(k in primary for k in _WFPC2_FILTER_KEYWORDS) and \
            not any(str(primary[k]).strip() for k in _WFPC2_FILTER_KEYWORDS):
        return "FILTNAM1 and FILTNAM2 blank: no filter, not drizzled (runastrodriz)"
    return ""
