"""FITS I/O: reading imsets with clear errors, atomic writes, provenance in HISTORY.

Inputs are opened read-only and copied into memory; nothing here ever writes to
an input file.  Products are written to a temporary file in the destination
directory, flushed, then renamed into place, so a crash never leaves half a file
under the product's name.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from .errors import InputError
from .images import Exposure, ImSet, Product

__all__ = [
    "read_exposure",
    "read_headers",
    "write_atomic",
    "atomic_path",
    "product_hdulist",
    "write_product",
    "add_provenance",
    "software_versions",
]

_TRUNCATION_HINTS = ("truncated", "unexpected end", "not enough data", "shorter than")


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[fits.HDUList]:
    """Open a FITS file read-only, turning every failure into :class:`InputError`."""
    if not path.exists():
        raise InputError(path, "file does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory, not a FITS file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=False)
        except Exception as exc:
            raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None
    try:
        _raise_on_truncation(path, caught)
        yield hdul
    finally:
        hdul.close()


def _raise_on_truncation(path: Path, caught: Iterable[warnings.WarningMessage]) -> None:
    for w in caught:
        text = str(w.message).lower()
        if any(h in text for h in _TRUNCATION_HINTS):
            raise InputError(path, f"FITS file is truncated or corrupt ({w.message})")


def read_headers(path: str | Path) -> tuple[fits.Header, list[fits.Header]]:
    """The primary header and every SCI extension header (copies), without pixel data."""
    path = Path(path)
    with _opened(path) as hdul:
        primary = hdul[0].header.copy()
        sci = [h.header.copy() for h in hdul[1:]
               if h.header.get("EXTNAME", "").strip().upper() == "SCI"]
    if not sci:
        raise InputError(path, "has no SCI extension (not an HST imset file?)")
    return primary, sci


def _data(path: Path, hdu, what: str) -> np.ndarray | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = hdu.data
        except Exception as exc:
            raise InputError(path, f"cannot read {what} data ({type(exc).__name__}: {exc}); "
                                   f"the file is truncated or corrupt") from None
    _raise_on_truncation(path, caught)
    return data


def _native(data: np.ndarray, dtype) -> np.ndarray:
    """``np.array(data, dtype)``, converted in the reader's own buffer where possible.

    FITS is big-endian, so every image needs a byte swap.  With ``memmap=False``
    astropy returns a fresh array that nothing else uses once the file is closed:
    swapping it in place (and reinterpreting int16 as uint16, as the C cast does)
    saves a second full-frame allocation and copy per extension.  Same values.
    """
    dtype = np.dtype(dtype)
    same_kind = data.dtype.kind == dtype.kind or {data.dtype.kind, dtype.kind} == {"i", "u"}
    if (type(data) is np.ndarray and data.dtype.byteorder == ">" and same_kind
            and data.dtype.itemsize == dtype.itemsize and data.flags.writeable
            and data.flags.c_contiguous):
        return data.byteswap(inplace=True).view(dtype)
    return np.array(data, dtype=dtype)


def _aux_array(path: Path, hdul: fits.HDUList, name: str, ver: int, shape, dtype) -> np.ndarray:
    """ERR/DQ of one imset; empty extensions (raw files) become PIXVALUE or zeros."""
    try:
        hdu = hdul[(name, ver)]
    except KeyError:
        return np.zeros(shape, dtype)
    data = _data(path, hdu, f"{name},{ver}")
    if data is None:
        fill = hdu.header.get("PIXVALUE", 0)
        return np.full(shape, fill, dtype)
    if data.shape != tuple(shape):
        raise InputError(path, f"{name},{ver} has shape {data.shape}, SCI,{ver} has {tuple(shape)}")
    return _native(data, dtype)


def read_exposure(path: str | Path, *, allow_nan: bool = False) -> Exposure:
    """Read every SCI/ERR/DQ imset of an HST file into memory.

    Parameters
    ----------
    path : str or Path
        A raw, flt or crj file (``.fits`` or ``.fits.gz``).
    allow_nan : bool
        Accept NaN pixels in SCI (they are an error by default).

    Raises
    ------
    InputError
        Missing file, not FITS, truncated, no SCI extension, shape mismatch, NaNs.
    """
    path = Path(path)
    with _opened(path) as hdul:
        primary = hdul[0].header.copy()
        sci_hdus = [h for h in hdul[1:] if h.header.get("EXTNAME", "").strip().upper() == "SCI"]
        if not sci_hdus:
            raise InputError(path, "has no SCI extension (not an HST imset file?)")
        imsets = []
        for hdu in sci_hdus:
            ver = int(hdu.header.get("EXTVER", 1))
            data = _data(path, hdu, f"SCI,{ver}")
            if data is None or data.ndim != 2:
                raise InputError(path, f"SCI,{ver} holds no 2-D image")
            sci = _native(data, np.float32)
            if not allow_nan:
                nbad = sci.size - int(np.count_nonzero(np.isfinite(sci)))
                if nbad:
                    raise InputError(path, f"SCI,{ver} contains {nbad} NaN/inf pixels")
            err = _aux_array(path, hdul, "ERR", ver, sci.shape, np.float32)
            dq = _aux_array(path, hdul, "DQ", ver, sci.shape, np.uint16)
            imsets.append(ImSet(sci=sci, err=err, dq=dq, header=hdu.header.copy()))
    return Exposure(path=path, primary=primary, imsets=tuple(imsets))


# --------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    The temporary file is removed if the block raises (or is interrupted).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_atomic(hdul: fits.HDUList, path: str | Path) -> Path:
    """Write an HDUList with checksums via a temporary file and an atomic rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, output_verify="exception", checksum=True)
    return path


def product_hdulist(product: Product) -> fits.HDUList:
    """Assemble PRIMARY + SCI/ERR/DQ extensions of a single-imset product."""
    primary = fits.PrimaryHDU(header=product.primary.copy())
    primary.header["NEXTEND"] = 3
    hdus = [primary]
    for name, data, header, dtype in (
        ("SCI", product.sci, product.sci_header, np.float32),
        ("ERR", product.err, product.err_header, np.float32),
        ("DQ", product.dq, product.dq_header, np.int16),
    ):
        hdr = (header or fits.Header()).copy()
        for key in ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BZERO", "BSCALE", "PCOUNT",
                    "GCOUNT", "XTENSION", "CHECKSUM", "DATASUM"):
            hdr.remove(key, ignore_missing=True, remove_all=True)
        hdr["EXTNAME"] = name
        hdr["EXTVER"] = 1
        array = np.asarray(data)
        if name == "DQ":
            # HST DQ is unsigned 16-bit, stored as int16 with BZERO=32768 by astropy.
            hdu = fits.ImageHDU(array.astype(np.uint16), header=hdr)
        else:
            hdu = fits.ImageHDU(array.astype(dtype), header=hdr)
        hdus.append(hdu)
    return fits.HDUList(hdus)


def write_product(product: Product, path: str | Path) -> Path:
    """Write a :class:`Product` atomically, setting FILENAME to the final name."""
    path = Path(path)
    hdul = product_hdulist(product)
    hdul[0].header["FILENAME"] = path.name
    return write_atomic(hdul, path)


# --------------------------------------------------------------------------- provenance
def software_versions(distributions: Iterable[str] = ()) -> dict[str, str]:
    """Versions of hstcal-core, the named distributions, numpy, scipy and astropy."""
    out = {}
    for dist in ("hstcal-core", *distributions, "numpy", "scipy", "astropy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def add_provenance(header: fits.Header, *, stage: str, detector: str,
                   inputs: Iterable[str], parameters: Mapping[str, Any],
                   distributions: Iterable[str] = ()) -> None:
    """Record software versions, parameters and every input in HISTORY (jwst finalize_result)."""
    versions = software_versions(distributions)
    header.add_history(f"Created by hstcal stage '{stage}' for detector {detector}")
    header.add_history("Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    header.add_history("Parameters:")
    for key, value in sorted(parameters.items()):
        header.add_history(f"  {key} = {value!r}")
    names = list(inputs)
    header.add_history(f"Inputs ({len(names)}):")
    for name in names:
        header.add_history(f"  {name}")
