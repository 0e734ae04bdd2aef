"""COS TIME-TAG event lists for the lightcurve: corrtag (calcos output) and rawtag.

:func:`read_cos_timetag` is what the ``calibrate`` hook returns for ``cos_fuv`` and
``cos_nuv`` when it is given a :class:`~hstcal_core.timetag.events.TimeTagInput`.

Coordinates
    Events are placed in calcos' ``XFULL``/``YFULL`` frame: the frame calcos bins into
    the flt/counts images and extracts the x1d from (calcos ``timetag.py``
    ``writeImages(events.field(xfull), events.field(yfull), ...)``; ``extract.py``
    ``extractCorrtag`` uses ``xi``/``eta`` = XFULL/YFULL), in which the header's
    ``SP_LOC_*``/``B_BKG*_*`` are given and in which x1d element ``i`` sits at
    ``x = i - X_OFFSET + DPIXEL1*`` (calcos ``extract.py``: ``pixel = arange(nelem) -
    x_offset + dpixel1; wavelength = disp_rel.evalDisp(pixel)``).  XFULL already has the
    wavecal SHIFT1 removed (calcos ``timetag.py``: ``xi_full = xi - shift1``), so no
    SHIFT1 is applied again.  The lightcurve package used XCORR/YCORR, which differ
    from the x1d frame by SHIFT1/SHIFT2 (up to hundreds of pixels in x).
Extraction regions
    calcos ``extract.py``: ``SP_LOC_x`` is the spectrum centre where it crosses the
    middle of the flt image (``offset_to_middle = slope*(axis_length//2 - x_offset)``:
    8192 for FUV, 1274//2 - 100 = 537 for NUV); ``B_BKG1/2_x`` are shifted to the middle
    by ``slope*FUV_X/2`` or ``slope*NUV_X/2`` (``updateExtractionKeywords``).  Regions
    here are ``[centre - height/2, centre + height/2)``; calcos rounds the box to whole
    rows per column (at most half a row different).
Flux calibration
    Sensitivity = x1d ``NET / FLUX`` per element (the lightcurve issue #5 design:
    flux calibration from the x1d, not from FLUXTAB/TDSTAB reference files).
Data quality
    ``EventList.sdqflags`` = header ``SDQFLAGS`` | calcos ``SERIOUS_DQ_FLAGS``
    (burst 64 | PHA out of bounds 512 | bad time 2048: events calcos leaves out of the
    counts image, ``calcosparam.py``).
NUV stripes
    A, B and C (calcos ``NUV_SPECTRA = 3``); for G230L only A and B, as the lightcurve
    package's ``cos.collect_inputs`` does: G230L stripe C lies mostly above 3200 Å,
    where the COS IHB (G230L grating page) warns of second-order contamination.
Event order and reading
    Segment A's events, then segment B's, each in file (time) order: the two are not
    merged by time (the lightcurve bins each event by its own time).  Only the columns
    used are read, from the memory-mapped table, and each is byte-swapped and converted
    once, straight into the output arrays.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstcal_core.errors import InputError
from hstcal_core.timetag.eventfile import open_event_file
from hstcal_core.timetag.events import EventList, Extraction, Region, TimeTagInput

log = logging.getLogger(__name__)

__all__ = ["read_cos_timetag", "SERIOUS_DQ_FLAGS", "FUV_SEGMENT_CODE", "extraction_regions",
           "x1d_pixels", "find_companion"]

# calcosparam.py
FUV_X = 16384
NUV_X = 1024
NUV_X_OFFSET = 100
NUV_EXTENDED_X = NUV_X + 250
DQ_PIXEL_OUT_OF_BOUNDS = 128
DQ_PHA_OUT_OF_BOUNDS = 512
SERIOUS_DQ_FLAGS = 64 | DQ_PHA_OUT_OF_BOUNDS | 2048  # DQ_BURST | DQ_PHA_OUT_OF_BOUNDS | DQ_BAD_TIME

#: ``EventList.segment`` / ``Extraction.segment`` of each FUV segment (0: one-piece NUV).
FUV_SEGMENT_CODE = {"FUVA": 1, "FUVB": 2}

_EVENT_NAME = re.compile(
    r"^(?P<root>[a-z0-9]+)_(?P<kind>corrtag|rawtag)(?:_(?P<seg>[ab]))?\.fits(?:\.gz)?$", re.IGNORECASE)
_MISSING = -999.0


# --------------------------------------------------------------------------- files
def find_companion(near: Path, name: str) -> Path | None:
    """``name`` (without ``.fits``) next to ``near``, as ``.fits`` or ``.fits.gz``."""
    for suffix in (".fits", ".fits.gz"):
        candidate = near.parent / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


@dataclass(frozen=True)
class _EventFile:
    path: Path
    kind: str      # "corrtag" or "rawtag"
    segment: str   # "FUVA", "FUVB" or "NUV"


def _event_files(detector_name: str, exposure: TimeTagInput) -> list[_EventFile]:
    """The event files of one exposure: the given ones plus the other FUV segment."""
    given: list[_EventFile] = []
    for path in exposure.files:
        match = _EVENT_NAME.match(Path(path).name)
        if match:
            seg = match["seg"]
            segment = f"FUV{seg.upper()}" if seg else "NUV"
            given.append(_EventFile(Path(path), match["kind"].lower(), segment))
    if not given and exposure.files:
        # only companions given (x1d, spt, ...): look for the event files next to them
        near = Path(exposure.files[0])
        for kind in ("corrtag", "rawtag"):
            for suffix, segment in (("_a", "FUVA"), ("_b", "FUVB"), ("", "NUV")):
                found = find_companion(near, f"{exposure.rootname}_{kind}{suffix}")
                if found is not None:
                    given.append(_EventFile(found, kind, segment))
    if not given:
        first = exposure.files[0] if exposure.files else None
        raise InputError(first, "no COS event file (*_corrtag[_a|_b].fits or *_rawtag*.fits) "
                                f"among or next to the inputs of {exposure.rootname}")
    # calcos output wins over raw events when both are given (a corrtag is calibrated).
    kind = "corrtag" if any(f.kind == "corrtag" for f in given) else "rawtag"
    chosen = {f.segment: f for f in given if f.kind == kind}
    if detector_name == "FUV":
        anchor = next(iter(chosen.values()))
        for letter in ("a", "b"):
            segment = f"FUV{letter.upper()}"
            if segment not in chosen:
                partner = find_companion(anchor.path, f"{exposure.rootname}_{kind}_{letter}")
                if partner is not None:
                    chosen[segment] = _EventFile(partner, kind, segment)
        if "NUV" in chosen:
            raise InputError(chosen["NUV"].path, "a NUV-style event file name (no _a/_b) "
                                                 "given for the FUV detector")
    else:
        wrong = [f for f in chosen.values() if f.segment != "NUV"]
        if wrong:
            raise InputError(wrong[0].path, "a FUV segment event file given for the NUV detector")
    return [chosen[s] for s in sorted(chosen)]


def _x1d_path(exposure: TimeTagInput, event_path: Path) -> Path:
    for path in exposure.files:
        if re.match(rf"^{exposure.rootname}_x1d\.fits(\.gz)?$", Path(path).name, re.IGNORECASE):
            return Path(path)
    found = find_companion(event_path, f"{exposure.rootname}_x1d")
    if found is None:
        raise InputError(event_path, f"missing x1d: {exposure.rootname}_x1d.fits not found next "
                                     "to it (the lightcurve takes its wavelengths and "
                                     "sensitivity NET/FLUX from the x1d)")
    return found


# --------------------------------------------------------------------------- reading
# Rows converted per block: the block's records (~40 bytes each) stay in cache while each
# needed column is taken out of them, so the table is streamed from memory once, not once
# per column.
_BLOCK_ROWS = 65536
# Threads sharing the blocks: the copy is memory-bound, so a few are enough.
_THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
# What rawtag.rawtag_columns uses of a rawtag.
_RAWTAG_COLUMNS = ("TIME", "RAWX", "RAWY", "PHA")


@dataclass
class _Segment:
    """One event file, open: header, GTIs and the memory-mapped EVENTS rows (read only
    when the columns are copied out)."""

    file: _EventFile
    header: fits.Header          # primary + EVENTS
    table: fits.FITS_rec | None  # None: no rows
    gti: np.ndarray

    def __len__(self) -> int:
        return 0 if self.table is None else len(self.table)

    def column(self, name: str) -> np.ndarray | None:
        """A column of the file as stored (big-endian, a strided view: nothing copied)."""
        if self.table is None or name not in self.table.columns.names:
            return None
        return self.table.field(name)


def _open_event_file(event_file: _EventFile, detector: str, files: ExitStack) -> _Segment:
    """Open one event file (kept open on ``files``) and check its header."""
    path = event_file.path
    hdul, header, gti = open_event_file(path, "COS", detector, files)
    table = hdul["EVENTS"].data
    if table is None or "TIME" not in table.columns.names:
        raise InputError(path, "EVENTS extension has no TIME column")
    table = table if len(table) else None
    if gti is None:
        last = float(table.field("TIME")[-1]) if table is not None else 0.0
        gti = np.array([[0.0, float(header.get("EXPTIME", last))]])
    return _Segment(event_file, header, table, gti)


def _copy_columns(segment: _Segment, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                  start: int, wavelength: np.ndarray | None = None) -> None:
    """Copy file columns into ``out[start:start + len(segment)]``, byte-swapped and
    converted on the way, for each ``(out, column)`` of ``pairs``; the first pair is
    TIME, checked to be monotonic in the same pass.  calcos leaves WAVELENGTH at 0
    outside the PSA/WCA regions (computeWavelengths): those events of ``wavelength`` (one
    of the outputs) become NaN.

    Blocks of rows are independent, so they are shared among threads (numpy's casts
    release the GIL)."""
    n = len(segment)
    time_out, time_in = pairs[0]

    def copy(lo: int) -> int:
        """Copy rows lo:lo+_BLOCK_ROWS; the first row whose TIME decreases, or -1."""
        hi = min(n, lo + _BLOCK_ROWS)
        for out, column in pairs:
            out[start + lo:start + hi] = column[lo:hi]
        t = time_out[start + lo:start + hi]
        if lo and t[0] < time_in[lo - 1]:
            return lo - 1
        decreasing = t[1:] < t[:-1]
        if decreasing.any():
            return lo + int(np.argmax(decreasing))
        if wavelength is not None:
            w = wavelength[start + lo:start + hi]
            w[~(w > 0)] = np.nan
        return -1

    with ThreadPoolExecutor(_THREADS) as pool:
        for first in pool.map(copy, range(0, n, _BLOCK_ROWS)):
            if first >= 0:
                raise InputError(segment.file.path,
                                 f"TIME is not monotonic (event {first + 1} at "
                                 f"{time_in[first + 1]} s follows {time_in[first]} s)")


def _segment_columns(segment: _Segment, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of one file as native arrays of their own type (TIME checked)."""
    columns = {}
    for name in names:
        column = segment.column(name)
        if column is not None:
            columns[name] = np.empty(len(column), dtype=column.dtype.newbyteorder("="))
    _copy_columns(segment, [(columns[name], segment.column(name)) for name in columns], 0)
    return columns


def _x1d(path: Path) -> tuple[fits.Header, dict[str, dict[str, np.ndarray]]]:
    try:
        with fits.open(path) as hdul:
            if len(hdul) < 2 or hdul[1].data is None:
                raise InputError(path, "x1d has no spectrum table in extension 1")
            header = hdul[1].header.copy()
            table = hdul[1].data
            rows = {}
            for row in table:
                seg = str(row["SEGMENT"]).strip().upper()
                rows[seg] = {name: np.asarray(row[name], dtype=np.float64)
                             for name in ("WAVELENGTH", "NET", "FLUX", "GROSS", "GCOUNTS")
                             if name in table.columns.names}
                rows[seg]["EXPTIME"] = np.float64(row["EXPTIME"]) if "EXPTIME" in \
                    table.columns.names else np.float64(header.get("EXPTIME", 0.0))
    except OSError as exc:
        raise InputError(path, f"unreadable x1d ({exc})") from None
    return header, rows


def x1d_pixels(nelem: int, header: Mapping[str, Any], segment: str) -> np.ndarray:
    """XFULL coordinate of each x1d element (calcos ``extract.py``: ``arange(nelem) -
    x_offset + dpixel1``)."""
    x_offset = float(header.get("X_OFFSET", 0) or 0)
    dpixel = float(header.get(f"DPIXEL1{segment[-1]}", 0.0) or 0.0)
    return np.arange(nelem, dtype=np.float64) - x_offset + dpixel


def extraction_regions(header: Mapping[str, Any], segment: str
                       ) -> tuple[Region, tuple[Region, ...]] | None:
    """Source and background regions of one FUV segment / NUV stripe from the calcos
    keywords (None when the segment was not extracted: SP_LOC = -999 or absent).

    Region centres are intercepts at ``x = 0``; see the module docstring for the
    calcos conventions undone here."""
    letter = segment[-1]

    def value(key: str) -> float | None:
        v = header.get(f"{key}_{letter}")
        return None if v is None or float(v) == _MISSING else float(v)

    loc, height = value("SP_LOC"), value("SP_HGT")
    if loc is None or height is None or height <= 0:
        return None
    slope = value("SP_SLP") or 0.0
    if segment.startswith("FUV"):
        source_mid = background_mid = FUV_X / 2
    else:
        source_mid, background_mid = NUV_EXTENDED_X // 2 - NUV_X_OFFSET, NUV_X / 2
    source = Region(loc - slope * source_mid, height, slope)
    backgrounds = []
    for n in (1, 2):
        b_loc, b_hgt = value(f"B_BKG{n}"), value(f"B_HGT{n}")
        if b_loc is not None and b_hgt is not None and b_hgt > 0:
            backgrounds.append(Region(b_loc - slope * background_mid, b_hgt, slope))
    return source, tuple(backgrounds)


def _sensitivity(net: np.ndarray, flux: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = np.where((flux != 0) & np.isfinite(flux) & np.isfinite(net), net / flux, 0.0)
    return np.where(sens > 0, sens, 0.0)


def _extractions(x1d_header: fits.Header, rows: dict, segments: Sequence[str],
                 fallback: Mapping[str, fits.Header], x1d_path: Path
                 ) -> tuple[Extraction, ...]:
    out = []
    for segment in segments:
        row = rows.get(segment)
        if row is None:
            log.info("%s: no %s row in the x1d; segment not extracted", x1d_path, segment)
            continue
        regions = extraction_regions(x1d_header, segment)
        if regions is None and segment in fallback:
            regions = extraction_regions(fallback[segment], segment)
        if regions is None:
            raise InputError(x1d_path, f"no extraction keywords (SP_LOC_{segment[-1]}, "
                                       f"SP_HGT_{segment[-1]}) for {segment}")
        source, backgrounds = regions
        wavelength = row["WAVELENGTH"]
        out.append(Extraction(
            name=segment, segment=FUV_SEGMENT_CODE.get(segment, 0), source=source,
            background=backgrounds, pixel=x1d_pixels(len(wavelength), x1d_header, segment),
            wavelength=wavelength, sensitivity=_sensitivity(row["NET"], row["FLUX"])))
    return tuple(out)


def _nuv_stripes(header: Mapping[str, Any]) -> tuple[str, ...]:
    if str(header.get("OPT_ELEM", "")).strip().upper() == "G230L":
        return ("NUVA", "NUVB")
    return ("NUVA", "NUVB", "NUVC")


# --------------------------------------------------------------------------- assembly
def read_cos_timetag(detector_name: str, exposure: TimeTagInput,
                     options: Mapping[str, Any] | None = None) -> EventList:
    """Read one COS TIME-TAG exposure into an :class:`EventList`.

    Parameters
    ----------
    detector_name : str
        ``"FUV"`` or ``"NUV"`` (the Detector's ``detector`` attribute).
    exposure : TimeTagInput
        The exposure's files; the other FUV segment and the x1d are found next to them.
    options : mapping, optional
        Not used yet (kept for the hook's signature).

    Raises
    ------
    InputError
        Naming the file: no EVENTS extension, wrong INSTRUME/DETECTOR, non-monotonic
        TIME, zero events, missing x1d or x1d without the extraction keywords.
    """
    detector_name = detector_name.upper()
    files = _event_files(detector_name, exposure)
    if files[0].kind == "rawtag" and detector_name != "FUV":
        raise InputError(files[0].path, "only FUV rawtag can be registered on the x1d without "
                                        "calcos; give the NUV corrtag")
    with ExitStack() as opened:
        segments = [_open_event_file(f, detector_name, opened) for f in files]
        nonempty = [s for s in segments if len(s)]
        if not nonempty:
            raise InputError(segments[0].file.path, "zero events in the EVENTS table"
                             + (" (of every segment)" if len(segments) > 1 else ""))
        notes: list[str] = []
        for s in segments:
            if not len(s):
                notes.append(f"{s.file.path.name}: zero events (segment {s.file.segment} "
                             "skipped)")
        kind = files[0].kind
        if kind == "corrtag":
            columns = _corrtag_columns(nonempty, notes)
        else:
            raw_columns = [_segment_columns(s, _RAWTAG_COLUMNS) for s in nonempty]
        for s in segments:
            s.table = None  # the memory maps close with their files
    x1d_path = _x1d_path(exposure, files[0].path)
    x1d_header, rows = _x1d(x1d_path)
    if detector_name == "FUV":
        names = [s.file.segment for s in nonempty]
    else:
        names = list(_nuv_stripes(nonempty[0].header))
    fallback = {s.file.segment: s.header for s in nonempty} if detector_name == "FUV" else \
        {name: nonempty[0].header for name in names}
    extractions = _extractions(x1d_header, rows, names, fallback, x1d_path)
    if not extractions:
        raise InputError(x1d_path, f"missing x1d rows for {', '.join(names)}")

    if kind == "rawtag":
        from .rawtag import rawtag_columns

        by_name = {e.name: e for e in extractions}
        per_segment = []
        for seg, raw in zip(list(nonempty), raw_columns):
            if seg.file.segment not in by_name:
                # no x1d extraction to register on (e.g. G140L/1105 has segment B off)
                notes.append(f"{seg.file.path.name}: no {seg.file.segment} row in the x1d; "
                             "its events are left out")
                nonempty.remove(seg)
                continue
            per_segment.append(rawtag_columns(raw, seg.header, x1d_header, rows,
                                              [by_name[seg.file.segment]], seg.file.path,
                                              notes))
        if not per_segment:
            raise InputError(x1d_path, "no x1d extraction for any rawtag segment")
        columns = tuple(np.concatenate([c[k] for c in per_segment]) for k in range(7))
    header = _merged_header(nonempty, x1d_header, extractions)
    time, x, y, wavelength, epsilon, dq, segment = columns
    gti = _common_gti([s.gti for s in nonempty])
    sdqflags = int(header.get("SDQFLAGS", 0) or 0) | SERIOUS_DQ_FLAGS
    return EventList(
        path=files[0].path, header=header, time=time, x=x, y=y, wavelength=wavelength,
        epsilon=epsilon, dq=dq, segment=segment, gti=gti, extractions=extractions,
        sdqflags=sdqflags, notes=notes,
        sources=[s.file.path for s in segments] + [x1d_path])


def _corrtag_columns(segments: Sequence[_Segment], notes: list[str]
                     ) -> tuple[np.ndarray, ...]:
    """(time, x, y, wavelength, epsilon, dq, segment) of the corrtag segments, written
    straight into arrays over all of them: segment after segment, each in file order."""
    n = sum(len(s) for s in segments)
    # TIME and WAVELENGTH keep their stored precision (float32 in calcos corrtags): a
    # float64 copy would hold the same values in twice the bytes, to be read again.
    time = np.empty(n, _float_type(segments, "TIME"))
    wavelength = np.empty(n, _float_type(segments, "WAVELENGTH"))
    x, y, epsilon = (np.empty(n, np.float32) for _ in range(3))
    dq, segment = np.empty(n, np.int32), np.empty(n, np.int8)
    start = 0
    for s in segments:
        stop = start + len(s)
        if s.column("XFULL") is not None and s.column("YFULL") is not None:
            x_name, y_name = "XFULL", "YFULL"
        elif s.column("XCORR") is not None and s.column("YCORR") is not None:
            x_name, y_name = "XCORR", "YCORR"
            notes.append(f"{s.file.path.name}: no XFULL/YFULL; XCORR/YCORR used (SHIFT1/SHIFT2 "
                         "not removed, wavelengths may be offset)")
        else:
            raise InputError(s.file.path, "corrtag has neither XFULL/YFULL nor XCORR/YCORR "
                                          "columns")
        pairs = [(time, s.column("TIME")), (x, s.column(x_name)), (y, s.column(y_name))]
        for out, name, missing in ((wavelength, "WAVELENGTH", np.nan), (epsilon, "EPSILON", 1),
                                   (dq, "DQ", 0)):
            if s.column(name) is None:
                out[start:stop] = missing
            else:
                pairs.append((out, s.column(name)))
        segment[start:stop] = FUV_SEGMENT_CODE.get(s.file.segment, 0)
        _copy_columns(s, pairs, start,
                      wavelength if s.column("WAVELENGTH") is not None else None)
        start = stop
    return time, x, y, wavelength, epsilon, dq, segment


def _float_type(segments: Sequence[_Segment], name: str) -> np.dtype:
    """float32 when every segment stores column ``name`` as float32, else float64."""
    stored = [s.column(name) for s in segments]
    single = all(c is not None and c.dtype.kind == "f" and c.dtype.itemsize == 4
                 for c in stored)
    return np.dtype(np.float32 if single else np.float64)


def _merged_header(segments: Sequence[_Segment], x1d_header: fits.Header,
                   extractions: Sequence[Extraction]) -> fits.Header:
    header = segments[0].header.copy()
    for other in segments[1:]:
        for key in ("EXPTIME", "EXPEND"):
            if key in other.header and float(other.header[key]) > float(header.get(key, 0)):
                header[key] = other.header[key]
    # The x1d holds the extraction keywords calcos used (a rawtag has -999 there).
    for ext in extractions:
        letter = ext.name[-1]
        for key in ("SP_LOC", "SP_HGT", "SP_SLP", "B_BKG1", "B_BKG2", "B_HGT1", "B_HGT2"):
            full = f"{key}_{letter}"
            if full in x1d_header and float(header.get(full, _MISSING)) == _MISSING:
                header[full] = x1d_header[full]
    for key in ("SDQFLAGS", "EXPFLAG", "EXPTIME"):
        if key not in header and key in x1d_header:
            header[key] = x1d_header[key]
    return header


def _common_gti(gtis: Sequence[np.ndarray]) -> np.ndarray:
    """Intersection of the segments' GTIs: a time bin of the combined lightcurve is good
    only when every segment that contributes to it was recording."""
    common = np.asarray(gtis[0], float).reshape(-1, 2)
    for other in gtis[1:]:
        other = np.asarray(other, float).reshape(-1, 2)
        start = np.maximum(common[:, None, 0], other[None, :, 0])
        stop = np.minimum(common[:, None, 1], other[None, :, 1])
        keep = stop > start
        common = np.column_stack([start[keep], stop[keep]])
        common = common[np.argsort(common[:, 0])]
    return common if len(common) else np.zeros((0, 2))
