"""Read one WFPC2 chip from a calibrated (c0) or raw (d0) file in any of its layouts.

WFPC2 data come in three layouts (WFPC2 Data Handbook §2.2; the archive's "waiver
FITS" and multi-extension FITS products):

* **MEF** (``_c0m.fits``): a data-less primary and one ``SCI`` extension per chip; each
  extension header says which chip it holds (``DETECTOR`` = 1 PC1, 2-4 WF2-WF4).
* **Waiver FITS** (``_c0f.fits``, ``*_cvt.c0h``): the GEIS groups stacked in one 3-D
  primary array ``(groups, 800, 800)`` and an ASCII table extension with one row of
  group parameters per group (``DETECTOR``, WCS, ``BIASEVEN``...).  The primary header
  carries the first group's parameters.  A single-group file has a 2-D primary.
* **GEIS** (``.c0h`` header + ``.c0d`` data): the header is 80-character FITS-like
  cards (``GROUPS = T``, ``GCOUNT``, ``PSIZE``, ``PTYPEn``/``PDTYPEn``); the data file
  holds, per group, the pixels (``BITPIX``, big-endian IEEE) followed by ``PSIZE`` bits
  of group parameters.

Data quality lives in a sibling file of the same layout (``c1m``/``c1f``/``c1h``);
when present it becomes the imset's DQ, else DQ is zero.  WFPC2 products carry no
error array: ERR is the noise model ``sqrt(RN² + max(g·DN, 0)) / g`` in DN with the
chip's gain and read noise for the file's ATODGAIN (WFPC2 IHB §4.12).

:func:`read_chip` returns an :class:`~hstcal_core.images.Exposure` holding that chip
only, with ``DETECTOR`` set to the chip number in the primary header (the registry
checks it against the registered detector) — one registered detector per chip.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits

from hstcal_core.detectors import Detector
from hstcal_core.errors import InputError
from hstcal_core.images import Exposure, ImSet

__all__ = ["read_chip", "chip_reader", "read_geis", "dq_companion", "layout_of"]

_STRUCTURAL = ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "GROUPS",
               "GCOUNT", "PCOUNT", "PSIZE", "BSCALE", "BZERO", "XTENSION", "EXTNAME",
               "EXTVER", "CHECKSUM", "DATASUM", "NEXTEND")
_TRUNCATION = ("truncated", "unexpected end", "not enough data", "shorter than")
_GEIS_SUFFIXES = (".c0h", ".c1h", ".d0h", ".q0h", ".hhh")


@contextmanager
def _open(path: Path) -> Iterator[fits.HDUList]:
    """Open read-only; astropy's complaints about the old STSDAS tables are not errors
    (the group tables carry TDISP formats FITS no longer allows), truncation is."""
    if not path.exists():
        raise InputError(path, "file does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=False)
        except Exception as exc:
            raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})"
                             ) from None
        try:
            yield hdul
        finally:
            hdul.close()
    for w in caught:
        if any(h in str(w.message).lower() for h in _TRUNCATION):
            raise InputError(path, f"FITS file is truncated or corrupt ({w.message})")


def layout_of(path: str | Path) -> str:
    """``"geis"``, ``"mef"``, ``"waiver"`` or ``"single"`` (one 2-D group in the primary)."""
    path = Path(path)
    if path.suffix.lower() in _GEIS_SUFFIXES:
        return "geis"
    with _open(path) as hdul:
        naxis = int(hdul[0].header.get("NAXIS", 0))
        if any(h.header.get("EXTNAME", "").strip().upper() == "SCI" for h in hdul[1:]):
            return "mef"
        return {3: "waiver", 2: "single"}.get(naxis, "unknown")


def _clean(header: fits.Header) -> fits.Header:
    out = header.copy()
    for key in _STRUCTURAL:
        out.remove(key, ignore_missing=True, remove_all=True)
    for key in list(out.keys()):
        if key.startswith(("PTYPE", "PDTYPE", "PSIZE")) and key[-1:].isdigit():
            out.remove(key, ignore_missing=True, remove_all=True)
    return out


def _group_table(path: Path, hdul: fits.HDUList) -> list[dict]:
    """Rows of the waiver-FITS group-parameter table (empty if there is none)."""
    for hdu in hdul[1:]:
        if isinstance(hdu, (fits.TableHDU, fits.BinTableHDU)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                names = list(hdu.columns.names)
                data = hdu.data
            return [{n: _plain(row[n]) for n in names} for row in data]
    return []


def _plain(value):
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _chip_number(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- GEIS
_GEIS_TYPES = {"REAL*4": ">f4", "REAL*8": ">f8", "INTEGER*2": ">i2", "INTEGER*4": ">i4",
               "LOGICAL*4": ">i4"}


def _geis_header(path: Path) -> fits.Header:
    text = path.read_bytes().decode("ascii", "replace")
    lines = text.splitlines()
    if len(lines) <= 1:  # cards without newlines
        lines = [text[i:i + 80] for i in range(0, len(text), 80)]
    cards = [line.ljust(80)[:80] for line in lines if line.strip()]
    cards = [c for c in cards if not c.startswith("END     ") and c.strip() != "END"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        return fits.Header.fromstring("".join(cards))


def read_geis(path: str | Path) -> tuple[fits.Header, list[np.ndarray], list[dict]]:
    """Read a GEIS image: ``(header, [group arrays], [group parameters])``.

    Raises
    ------
    InputError
        Missing data file, unsupported data type or a data file of the wrong size.
    """
    path = Path(path)
    header = _geis_header(path)
    data_path = path.with_suffix(path.suffix[:-1] + "d")
    if not data_path.exists():
        raise InputError(path, f"GEIS header without its data file {data_path.name}")
    bitpix = int(header.get("BITPIX", -32))
    datatype = str(header.get("DATATYPE", "REAL*4" if bitpix == -32 else "")).strip().upper()
    dtype = _GEIS_TYPES.get(datatype) or {-32: ">f4", -64: ">f8", 16: ">i2",
                                          32: ">i4"}.get(bitpix)
    if dtype is None:
        raise InputError(path, f"GEIS data type {datatype or bitpix} is not supported")
    nx, ny = int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0))
    gcount = int(header.get("GCOUNT", 1))
    psize = int(header.get("PSIZE", 0))
    pix_bytes = nx * ny * np.dtype(dtype).itemsize
    group_bytes = pix_bytes + psize // 8
    raw = data_path.read_bytes()
    if len(raw) < gcount * group_bytes:
        raise InputError(data_path, f"GEIS data file holds {len(raw)} bytes, {gcount} groups "
                                    f"of {ny}x{nx} need {gcount * group_bytes}")
    params = []
    nparams = int(header.get("PCOUNT", 0))
    arrays = []
    for g in range(gcount):
        start = g * group_bytes
        arrays.append(np.frombuffer(raw, dtype=dtype, count=nx * ny, offset=start)
                      .reshape(ny, nx).astype(np.float32))
        offset, values = start + pix_bytes, {}
        for p in range(1, nparams + 1):
            name = str(header.get(f"PTYPE{p}", f"P{p}")).strip()
            ptype = str(header.get(f"PDTYPE{p}", "REAL*4")).strip().upper()
            nbytes = int(header.get(f"PSIZE{p}", 32)) // 8
            chunk = raw[offset:offset + nbytes]
            if ptype.startswith("CHARACTER"):
                values[name] = chunk.decode("ascii", "replace").strip()
            elif ptype in _GEIS_TYPES:
                values[name] = np.frombuffer(chunk, dtype=_GEIS_TYPES[ptype], count=1)[0].item()
            offset += nbytes
        params.append(values)
    return header, arrays, params


# --------------------------------------------------------------------------- chips
def _select(path: Path, chip: int) -> tuple[fits.Header, np.ndarray, fits.Header]:
    """``(primary, chip array, chip header)`` in whichever layout the file uses."""
    kind = layout_of(path)
    if kind == "geis":
        header, arrays, params = read_geis(path)
        chips = [_chip_number(p.get("DETECTOR")) for p in params]
        if chip not in chips:
            if len(arrays) == 4 and all(c is None for c in chips):
                chips = [1, 2, 3, 4]  # no DETECTOR parameter: groups in chip order
            else:
                raise InputError(path, f"has no group for chip {chip} (groups hold chips "
                                       f"{chips})")
        k = chips.index(chip)
        sci_header = _clean(header)
        sci_header.update({k2: v for k2, v in params[k].items() if len(k2) <= 8})
        return _clean(header), arrays[k], sci_header
    with _open(path) as hdul:
        primary = hdul[0].header
        if kind == "mef":
            found = []
            for hdu in hdul[1:]:
                if hdu.header.get("EXTNAME", "").strip().upper() != "SCI":
                    continue
                number = _chip_number(hdu.header.get("DETECTOR", hdu.header.get("EXTVER")))
                found.append(number)
                if number == chip:
                    if hdu.data is None or hdu.data.ndim != 2:
                        raise InputError(path, f"SCI extension of chip {chip} holds no image")
                    return primary.copy(), np.array(hdu.data, np.float32), hdu.header.copy()
            raise InputError(path, f"has no SCI extension for chip {chip} (chips {found})")
        if kind == "waiver":
            cube = hdul[0].data
            rows = _group_table(path, hdul)
            chips = [_chip_number(r.get("DETECTOR")) for r in rows]
            if not rows:
                chips = list(range(1, cube.shape[0] + 1))
            if chip not in chips:
                raise InputError(path, f"has no group for chip {chip} (groups hold chips "
                                       f"{chips})")
            k = chips.index(chip)
            sci_header = _clean(primary)
            if rows:
                sci_header.update({n: v for n, v in rows[k].items() if len(n) <= 8})
            return _clean(primary), np.array(cube[k], np.float32), sci_header
        if kind == "single":
            number = _chip_number(primary.get("DETECTOR"))
            if number != chip:
                raise InputError(path, f"holds chip {number} only, not chip {chip}")
            return _clean(primary), np.array(hdul[0].data, np.float32), _clean(primary)
    raise InputError(path, "is not a WFPC2 image in MEF, waiver-FITS or GEIS layout")


def dq_companion(path: str | Path) -> Path | None:
    """The data-quality file beside a c0/d0 file (``c0m``→``c1m``, ``c0f``→``c1f``,
    ``c0h``→``c1h``, ``d0*``→``q0*``), if it exists."""
    path = Path(path)
    name = path.name
    for science, quality in (("c0m", "c1m"), ("c0f", "c1f"), ("c0h", "c1h"), ("d0m", "q0m"),
                             ("d0f", "q0f"), ("d0h", "q0h")):
        if science in name:
            candidate = path.with_name(name.replace(science, quality))
            if candidate.exists():
                return candidate
    return None


def read_chip(path: str | Path, chip: int, detector: Detector | None = None) -> Exposure:
    """One chip of a WFPC2 file as an :class:`Exposure` with a single imset.

    Parameters
    ----------
    path : path
        A c0m/c0f/c0h (or d0) file in MEF, waiver-FITS or GEIS layout.
    chip : int
        1 (PC1) to 4 (WF4).
    detector : Detector, optional
        The registered chip; its gain and read noise for the file's ATODGAIN give ERR.

    Raises
    ------
    InputError
        Unreadable file, a layout we do not know, no such chip, non-finite pixels.
    """
    path = Path(path)
    primary, data, sci_header = _select(path, int(chip))
    if primary.get("INSTRUME", "WFPC2").strip().upper() != "WFPC2":
        raise InputError(path, f"is INSTRUME={primary.get('INSTRUME')}, not WFPC2")
    nbad = int(np.count_nonzero(~np.isfinite(data)))
    if nbad:
        raise InputError(path, f"chip {chip} contains {nbad} NaN/inf pixels")
    primary = primary.copy()
    primary["DETECTOR"] = (int(chip), "chip of this imset: 1 PC1, 2-4 WF2-WF4")
    sci_header = sci_header.copy()
    sci_header["EXTNAME"] = "SCI"
    sci_header["EXTVER"] = 1
    sci_header["DETECTOR"] = int(chip)
    sci_header.setdefault("BUNIT", "COUNTS")
    for key in ("EXPTIME", "EXPSTART", "EXPEND"):
        if key not in sci_header and key in primary:
            sci_header[key] = primary[key]
    dq = np.zeros(data.shape, np.uint16)
    dq_path = dq_companion(path)
    if dq_path is not None:
        _, dq_data, _ = _select(dq_path, int(chip))
        if dq_data.shape != data.shape:
            raise InputError(dq_path, f"chip {chip} has shape {dq_data.shape}, the science "
                                      f"file {data.shape}")
        dq = np.clip(dq_data, 0, 65535).astype(np.uint16)
    err = _noise_dn(data, primary, detector)
    return Exposure(path=path, primary=primary,
                    imsets=(ImSet(sci=data.astype(np.float32), err=err, dq=dq,
                                  header=sci_header),))


def _noise_dn(data: np.ndarray, primary: fits.Header, detector: Detector | None) -> np.ndarray:
    if detector is None:
        return np.zeros(data.shape, np.float32)
    setting = primary.get(detector.gain_keyword, detector.gains[0])
    try:
        amp = detector.amplifier(float(setting))
    except (KeyError, TypeError, ValueError):
        amp = detector.amplifier(detector.gains[0])
    electrons = np.maximum(data * np.float32(amp.gain), 0)
    return (np.sqrt(np.float32(amp.read_noise) ** 2 + electrons) / np.float32(amp.gain)
            ).astype(np.float32)


def chip_reader(detector: Detector):
    """``reader(path) -> Exposure`` for ``Registrar.detector(..., reader=)``."""
    chip = int(detector.extra["chip"])

    def reader(path):
        return read_chip(path, chip, detector)

    reader.__doc__ = f"Read chip {chip} ({detector.name}) of a WFPC2 file."
    return reader
