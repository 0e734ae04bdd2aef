"""STIS MAMA TIME-TAG (``_tag.fits``) → corrtag-like event lists for the lightcurve.

What the lightcurve package's ``stis.stis_corrtag`` did, on current astropy, with its
gaps filled:

* **Coordinates.**  AXIS1/AXIS2 are 1-based *high-resolution* pixels (1..2048; AXIS1
  Doppler-corrected, DETAXIS1 not — ``stis_corrtag``'s "Y data is same in raw and
  corrected coordinates").  The x1d is extracted from the *low-resolution* image that
  stistools ``inttag`` bins them into (``histogram2d(axis2, axis1, bins=[n, n],
  range=[[1, 2·n], [1, 2·n]])``: image-relative, the subarray corner
  ``((CENTERA1 - SIZAXIS1/2) - 1)·2`` only enters its LTV keywords).  Events here are
  in continuous low-res, 0-based coordinates ``x = (AXIS1 - 1.5)/2``, so low-res pixel
  ``j`` spans ``[j - 0.5, j + 0.5)`` and x1d element ``i`` sits at ``x = i``; the corner
  is added only to look pixels up in full-detector flats and bad-pixel tables.
  (``stis_corrtag`` looked wavelengths up at ``round(AXIS1)//2``: half a low-res pixel
  off for every odd AXIS1.)
* **Wavelengths** from the matching ``_x1d.fits``: first-order spectra give every event
  a wavelength (as ``stis_corrtag`` did); echelle events get theirs from the order
  that claims them (:func:`~hstcal_core.timetag.events.classify`) — ``stis_corrtag``
  left echelle events at 0.
* **Extraction geometry** per x1d row (one row first-order, one per SPORDER echelle):
  the source box is EXTRSIZE rows about the trace, the backgrounds BK1SIZE/BK2SIZE
  rows centred BK1OFFST/BK2OFFST from it (calstis ``x1d``; the x1d columns are
  1-based rows).  The trace is a straight line fitted to EXTRLOCY (calstis' per-column
  spectrum location) when the x1d has it, else the row A2CENTER; the largest
  deviation of EXTRLOCY from the line is stated in the notes.
* **Flat field**: option ``flat`` — a PFLTFILE-like image (2048² high-res or 1024²
  low-res, in extension 1 or the primary), ``epsilon = 1/flat`` at the event pixel
  (``stis.epsilon`` *multiplied* by the flat: a flat-field correction divides).
  Pixels with flat ≤ 0 get epsilon 1 and DQ 512.  Without a flat, epsilon = 1 and a
  note says so.
* **DQ**: option ``bpixtab`` — a STIS BPIXTAB-like table (PIX1, PIX2, LENGTH, AXIS,
  VALUE; 1-based low-res pixels) mapped onto the events as ``stis.dqinit`` did; else
  0.  ``sdqflags`` from the header (SDQFLAGS), default 31743 (STIS pipeline default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstcal_core.errors import InputError
from hstcal_core.timetag.eventfile import open_event_file
from hstcal_core.timetag.events import EventList, Extraction, Region, TimeTagInput

__all__ = ["read_stis_timetag", "lowres_coordinates", "subarray_corner", "STIS_SDQFLAGS"]

STIS_SDQFLAGS = 31743
_DQ_BAD_REFERENCE = 512  # stisdq.h: bad pixel in reference file


def _find(exposure: TimeTagInput, suffix: str) -> Path | None:
    pattern = re.compile(rf"^{exposure.rootname}_{suffix}\.fits(\.gz)?$", re.IGNORECASE)
    for path in exposure.files:
        if pattern.match(Path(path).name):
            return Path(path)
    return None


def _companion(near: Path, name: str) -> Path | None:
    for ext in (".fits", ".fits.gz"):
        candidate = near.parent / f"{name}{ext}"
        if candidate.exists():
            return candidate
    return None


def subarray_corner(header: Mapping[str, Any]) -> tuple[float, float]:
    """High-res (x, y) corner of the subarray (stistools ``inttag``: ``((CENTERA1 -
    SIZAXIS1/2) - 1)·2``); (0, 0) for the full frame (CENTERA 513, SIZAXIS 1024)."""
    cx, cy = float(header.get("CENTERA1", 513)), float(header.get("CENTERA2", 513))
    nx, ny = float(header.get("SIZAXIS1", 1024)), float(header.get("SIZAXIS2", 1024))
    return ((cx - nx / 2) - 1) * 2, ((cy - ny / 2) - 1) * 2


def lowres_coordinates(axis1: np.ndarray, axis2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Continuous 0-based low-res (x, y) of 1-based high-res AXIS1/AXIS2."""
    x = (np.asarray(axis1, dtype=np.float64) - 1.5) / 2
    y = (np.asarray(axis2, dtype=np.float64) - 1.5) / 2
    return x, y


def _read_tag(path: Path, detector: str):
    with ExitStack() as files:
        hdul, header, gti = open_event_file(path, "STIS", detector, files, memmap=False)
        data = hdul["EVENTS"].data
        missing = [c for c in ("TIME", "AXIS1", "AXIS2")
                   if data is None or c not in data.columns.names]
        if missing:
            raise InputError(path, f"EVENTS has no {', '.join(missing)} column")
        time = np.asarray(data["TIME"], dtype=np.float64)
        axis1 = np.asarray(data["AXIS1"], dtype=np.float64)
        axis2 = np.asarray(data["AXIS2"], dtype=np.float64)
    if not len(time):
        raise InputError(path, "zero events in the EVENTS table")
    if np.any(np.diff(time) < 0):
        first = int(np.argmax(np.diff(time) < 0))
        raise InputError(path, f"TIME is not monotonic (event {first + 1} at {time[first + 1]} s "
                               f"follows {time[first]} s)")
    if gti is None:
        gti = np.array([[0.0, float(header.get("EXPTIME", time[-1]))]])
    return header, time, axis1, axis2, gti


def _extractions(x1d: Path, echelle: bool, notes: list[str]) -> tuple[Extraction, ...]:
    try:
        with fits.open(x1d) as hdul:
            table = hdul[1].data if len(hdul) > 1 else None
            if table is None or not len(table):
                raise InputError(x1d, "x1d has no spectrum table in extension 1")
            columns = set(table.columns.names)
            need = {"WAVELENGTH", "NET", "FLUX", "A2CENTER", "EXTRSIZE"}
            if need - columns:
                raise InputError(x1d, f"x1d lacks column(s) {', '.join(sorted(need - columns))}")
            rows = [{name: np.asarray(row[name]) for name in columns} for row in table]
    except OSError as exc:
        raise InputError(x1d, f"unreadable x1d ({exc})") from None
    out = []
    worst = 0.0
    traced = "EXTRLOCY" in columns
    for row in rows:
        wavelength = np.asarray(row["WAVELENGTH"], dtype=np.float64)
        nelem = int(row.get("NELEM", len(wavelength)))
        wavelength = wavelength[:nelem]
        pixel = np.arange(nelem, dtype=np.float64)
        if traced and np.all(np.isfinite(row["EXTRLOCY"][:nelem])):
            locy = np.asarray(row["EXTRLOCY"][:nelem], dtype=np.float64) - 1.0
            slope, intercept = np.polyfit(pixel, locy, 1)
            worst = max(worst, float(np.max(np.abs(locy - (slope * pixel + intercept)))))
        else:
            slope, intercept = 0.0, float(row["A2CENTER"]) - 1.0
        source = Region(float(intercept), float(row["EXTRSIZE"]), float(slope))
        backgrounds = []
        for n in (1, 2):
            size, offset = row.get(f"BK{n}SIZE"), row.get(f"BK{n}OFFST")
            if size is not None and offset is not None and float(size) > 0:
                backgrounds.append(Region(float(intercept) + float(offset), float(size),
                                          float(slope)))
        net = np.asarray(row["NET"], dtype=np.float64)[:nelem]
        flux = np.asarray(row["FLUX"], dtype=np.float64)[:nelem]
        with np.errstate(divide="ignore", invalid="ignore"):
            sens = np.where((flux != 0) & np.isfinite(flux) & np.isfinite(net), net / flux, 0.0)
        order = int(row.get("SPORDER", 1))
        out.append(Extraction(name=f"order {order}" if echelle else f"SPORDER {order}",
                              segment=0, source=source, background=tuple(backgrounds),
                              pixel=pixel, wavelength=wavelength,
                              sensitivity=np.where(sens > 0, sens, 0.0)))
    notes.append("trace: straight line per x1d row " + (
        f"fitted to EXTRLOCY (largest deviation {worst:.2f} low-res px)" if traced
        else "at A2CENTER (no EXTRLOCY)"))
    return tuple(out)


def _flat_epsilon(flat_path: Path, axis1: np.ndarray, axis2: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    try:
        with fits.open(flat_path) as hdul:
            image = next((h.data for h in hdul[1:] if getattr(h, "is_image", False)
                          and h.data is not None), hdul[0].data)
    except OSError as exc:
        raise InputError(flat_path, f"unreadable flat ({exc})") from None
    if image is None or image.ndim != 2 or image.shape not in ((2048, 2048), (1024, 1024)):
        shape = None if image is None else image.shape
        raise InputError(flat_path, f"flat must be a 2048x2048 (high-res) or 1024x1024 (low-res) "
                                    f"image, got {shape}")
    scale = 1 if image.shape[0] == 2048 else 2
    col = np.clip(((axis1 - 1) // scale).astype(np.int64), 0, image.shape[1] - 1)
    row = np.clip(((axis2 - 1) // scale).astype(np.int64), 0, image.shape[0] - 1)
    value = np.asarray(image, dtype=np.float64)[row, col]
    bad = ~(np.isfinite(value) & (value > 0))
    epsilon = np.where(bad, 1.0, 1.0 / np.where(bad, 1.0, value))
    return epsilon.astype(np.float32), bad


def _bpix_dq(table_path: Path, axis1: np.ndarray, axis2: np.ndarray) -> np.ndarray:
    """Per-event DQ from a BPIXTAB-like table (lightcurve ``stis.dqinit``; low-res, 1-based)."""
    try:
        with fits.open(table_path) as hdul:
            rows = hdul[1].data
            entries = [(int(r["PIX1"]), int(r["PIX2"]), int(r["LENGTH"]), int(r["AXIS"]),
                        int(r["VALUE"])) for r in rows]
    except (OSError, KeyError, IndexError) as exc:
        raise InputError(table_path, f"not a BPIXTAB-like table (PIX1, PIX2, LENGTH, AXIS, "
                                     f"VALUE): {exc}") from None
    dq_image = np.zeros((1024, 1024), dtype=np.int32)
    for pix1, pix2, length, axis, value in entries:
        if axis == 1:
            dq_image[pix2 - 1, pix1 - 1:pix1 - 1 + length] |= value
        else:
            dq_image[pix2 - 1:pix2 - 1 + length, pix1 - 1] |= value
    col = np.clip(((axis1 - 1) // 2).astype(np.int64), 0, 1023)
    row = np.clip(((axis2 - 1) // 2).astype(np.int64), 0, 1023)
    return dq_image[row, col]


def read_stis_timetag(detector_name: str, exposure: TimeTagInput,
                      options: Mapping[str, Any] | None = None) -> EventList:
    """Read one STIS MAMA TIME-TAG exposure into an :class:`EventList`.

    Parameters
    ----------
    detector_name : str
        ``"FUV-MAMA"`` or ``"NUV-MAMA"``.
    exposure : TimeTagInput
        ``<root>_tag.fits`` (and the x1d, else found next to it).
    options : mapping, optional
        ``flat`` (path to a PFLTFILE-like image), ``bpixtab`` (BPIXTAB-like table).

    Raises
    ------
    InputError
        Naming the file: no tag file, no EVENTS, wrong INSTRUME/DETECTOR, zero events,
        non-monotonic TIME, missing x1d, bad flat or bad-pixel table.
    """
    options = options or {}
    tag = _find(exposure, "tag")
    if tag is None:
        first = exposure.files[0] if exposure.files else None
        raise InputError(first, f"no STIS TIME-TAG file ({exposure.rootname}_tag.fits) among "
                                "the inputs")
    header, time, axis1, axis2, gti = _read_tag(tag, detector_name.upper())
    x1d = _find(exposure, "x1d") or _companion(tag, f"{exposure.rootname}_x1d")
    if x1d is None:
        raise InputError(tag, f"missing x1d: {exposure.rootname}_x1d.fits not found next to it "
                              "(wavelengths and the sensitivity NET/FLUX come from the x1d)")
    notes: list[str] = []
    echelle = str(header.get("OPT_ELEM", "")).strip().upper().startswith("E")
    extractions = _extractions(x1d, echelle, notes)
    x, y = lowres_coordinates(axis1, axis2)
    corner = subarray_corner(header)
    detector_axis1, detector_axis2 = axis1 + corner[0], axis2 + corner[1]
    n = len(time)
    if echelle:
        wavelength = np.full(n, np.nan)
        notes.append("echelle: event wavelengths from the order whose region holds the event")
    else:
        wavelength = extractions[0].wavelength_at(x)
    dq = np.zeros(n, dtype=np.int32)
    sources = [tag, x1d]
    flat = options.get("flat")
    if flat:
        epsilon, bad = _flat_epsilon(Path(flat), detector_axis1, detector_axis2)
        dq[bad] |= _DQ_BAD_REFERENCE
        notes.append(f"epsilon = 1/flat from {Path(flat).name} ({int(bad.sum())} events on "
                     f"flat <= 0: epsilon 1, DQ {_DQ_BAD_REFERENCE})")
        sources.append(Path(flat))
    else:
        epsilon = np.ones(n, dtype=np.float32)
        notes.append("epsilon=1 (no flat)")
    bpixtab = options.get("bpixtab")
    if bpixtab:
        dq |= _bpix_dq(Path(bpixtab), detector_axis1, detector_axis2)
        sources.append(Path(bpixtab))
    else:
        notes.append("DQ = 0 (no bad-pixel table)")
    sdqflags = int(header.get("SDQFLAGS", STIS_SDQFLAGS) or STIS_SDQFLAGS)
    return EventList(path=tag, header=header, time=time, x=x.astype(np.float32),
                     y=y.astype(np.float32), wavelength=wavelength, epsilon=epsilon, dq=dq,
                     segment=np.zeros(n, dtype=np.int8), gti=gti, extractions=extractions,
                     sdqflags=sdqflags, notes=notes, sources=sources)
