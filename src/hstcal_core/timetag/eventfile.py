"""Opening a TIME-TAG event file: what the COS and STIS readers share.

Both formats keep their photons in an ``EVENTS`` binary table whose header holds the
exposure keywords (EXPTIME, EXPFLAG, the extraction keywords of a calibrated file), and
their good-time intervals in an optional ``GTI`` table (START, STOP).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import InputError

__all__ = ["open_event_file"]


def open_event_file(path: Path, instrument: str, detector: str, files: ExitStack, *,
                    memmap: bool = True
                    ) -> tuple[fits.HDUList, fits.Header, np.ndarray | None]:
    """Open ``path`` (kept open on ``files``) and check it holds this detector's events.

    Returns
    -------
    hdul : HDUList
    header : Header
        The primary header updated with the EVENTS header (structural keys stripped).
    gti : ndarray (n, 2) or None
        START/STOP of the GTI table; None when the file has none (or it is empty).

    Raises
    ------
    InputError
        Naming the file: unreadable, no EVENTS extension, or INSTRUME/DETECTOR other
        than ``instrument``/``detector``.
    """
    try:
        hdul = files.enter_context(fits.open(path, memmap=memmap))
    except OSError as exc:
        raise InputError(path, f"unreadable FITS file ({exc})") from None
    names = [h.name for h in hdul]
    if "EVENTS" not in names:
        raise InputError(path, f"no EVENTS extension (extensions: {', '.join(names)})")
    header = hdul[0].header.copy()
    header.extend(hdul["EVENTS"].header, update=True, strip=True)
    header.remove("EXTNAME", ignore_missing=True)
    found_instrument = str(header.get("INSTRUME", "")).strip().upper()
    found_detector = str(header.get("DETECTOR", "")).strip().upper()
    if found_instrument != instrument or found_detector != detector:
        raise InputError(path, f"INSTRUME/DETECTOR = {found_instrument or '?'}/"
                               f"{found_detector or '?'}, expected {instrument}/{detector}")
    gti = None
    if "GTI" in names and hdul["GTI"].data is not None and len(hdul["GTI"].data):
        g = hdul["GTI"].data
        gti = np.column_stack([np.asarray(g["START"], float), np.asarray(g["STOP"], float)])
    return hdul, header, gti
