"""Calling drizzlepac and stwcs without their noise turning into our failures.

**At import.**  ``import drizzlepac`` runs ``drizzlepac/__init__.py``, which imports
``mapreg`` and through it ``stregion``; stregion 1.1 builds its grammar with pyparsing's
camelCase API (``leaveWhitespace``), deprecated since pyparsing 3.3, so every import
emits a handful of ``PyparsingDeprecationWarning``.  :func:`require` silences exactly
that warning, from that module.

**While running.**  AstroDrizzle 3.11 emits warnings about its own housekeeping, none
about the data: :func:`library_warnings` logs those (at DEBUG, on this module's logger)
and re-emits every other warning after the call, so an unexpected one still reaches the
caller (and fails a test under ``filterwarnings = error``).  The known ones, each seen
on simulated WFC3/UVIS and IR associations:

* ``VerifyWarning: Card is too long, comment will be truncated`` — drizzlepac writes
  header comments longer than a FITS card (outputimage, HDRTAB);
* ``AstropyDeprecationWarning: chararray is deprecated`` — drizzlepac/stsci.tools read
  string table columns through ``chararray`` methods;
* ``ResourceWarning: unclosed file`` — drizzlepac (``adrizzle``, ``check_files``) leaves
  FITS handles to the inputs open; :func:`library_warnings` collects garbage before it
  returns so they surface inside the block, not in whatever test runs next;
* ``RuntimeWarning: invalid value encountered in cast`` — stsci.image ``combine``
  casting NaN (output pixels no input covers) in drizzlepac's median step;
* ``VerifyWarning: Keyword name 'IDCSCALEO' is greater than 8 characters`` — stwcs
  ``altwcs.archive_wcs`` appending the alternate-WCS key letter to 8-character keywords
  when it archives a WCS (WCSCORR set-up before writing a headerlet);
* ``FITSFixedWarning: 'datfix' made the change 'Set MJD-OBS ... from DATE-OBS'`` —
  astropy completing the headers of drizzlepac's ``*_single_sci`` images (DATE-OBS
  without MJD-OBS) when drizzlepac's footprint code reads their WCS;
* ``UserWarning: IDCSCALE is missing`` — stwcs computing the plate scale from the CD
  matrix of an exposure without IDCTAB (our simulator writes IDCSCALE; real FLTs that
  never went through ``updatewcs`` lack it).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import re
import warnings
from collections.abc import Iterator
from types import ModuleType

from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyDeprecationWarning
from astropy.wcs import FITSFixedWarning

__all__ = ["KNOWN_LIBRARY_WARNINGS", "import_drizzlepac", "library_warnings", "require"]

log = logging.getLogger(__name__)

#: (category, message regex) of the warnings drizzlepac/stwcs emit about themselves.
KNOWN_LIBRARY_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (VerifyWarning, r"Card is too long, comment will be truncated"),
    (AstropyDeprecationWarning, r"chararray is deprecated"),
    (ResourceWarning, r"unclosed file"),
    (RuntimeWarning, r"invalid value encountered in cast"),
    (UserWarning, r"IDCSCALE is missing"),
    (VerifyWarning, r"Keyword name .* is greater than 8 characters"),
    (FITSFixedWarning, r"'datfix' made the change"),
)


def require(module: str) -> ModuleType:
    """Import ``module`` (``drizzlepac``, ``drizzlepac.cdriz``, ``stwcs.wcsutil``, ...).

    Raises
    ------
    ImportError
        Naming the distribution to install when the package is missing.
    """
    with warnings.catch_warnings():
        # stregion's pyparsing camelCase calls (see the module docstring).
        warnings.filterwarnings("ignore", message=r".*deprecated - use .*",
                                category=DeprecationWarning, module=r"stregion(\.|$)")
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            dist = module.split(".")[0]
            raise ImportError(f"{module} is needed for the drizzle stage: "
                              f"pip install {dist} ({exc})") from exc


def import_drizzlepac(submodule: str = "") -> ModuleType:
    """``drizzlepac`` or one of its submodules (``"cdriz"``, ``"astrodrizzle"``)."""
    module = require("drizzlepac" + (f".{submodule}" if submodule else ""))
    _freeze_imports()
    return module


_frozen = False


def _freeze_imports() -> None:
    """Move the objects alive now (drizzlepac, stwcs, astropy, ... once imported) out of
    the garbage collector's sight, once per process.

    :func:`library_warnings` collects garbage after every call so drizzlepac's unclosed
    files warn inside the block; with drizzlepac loaded a full collection walks ~10⁶
    objects (0.12–0.2 s, two per drizzle stage: 8% of a final drizzle of three 2048²
    images).  Frozen (``gc.freeze``, what pre-forking servers do after their imports),
    they are not walked again; objects made later, drizzlepac's open HDULists among
    them, are collected as before.  Reference counting is unaffected: only cyclic
    garbage that exists at this moment is never reclaimed, and one collection first
    leaves none.
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


def _known(caught: warnings.WarningMessage) -> bool:
    return any(issubclass(caught.category, category) and re.search(pattern, str(caught.message))
               for category, pattern in KNOWN_LIBRARY_WARNINGS)


@contextlib.contextmanager
def library_warnings(collect: bool = True) -> Iterator[list[warnings.WarningMessage]]:
    """Run drizzlepac/stwcs code: log their known housekeeping warnings, re-emit the rest.

    Yields the list the warnings are recorded into (complete once the block exits).
    ``collect=False`` skips the garbage collection for calls that open no file (it is
    cheap once :func:`import_drizzlepac` has frozen the imports).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield caught
        finally:
            if collect:
                gc.collect()  # surface drizzlepac's unclosed-file ResourceWarnings here
    unknown = []
    for message in caught:
        if _known(message):
            log.debug("%s from %s:%s: %s", message.category.__name__, message.filename,
                      message.lineno, message.message)
        else:
            unknown.append(message)
    for message in unknown:
        warnings.warn_explicit(message.message, message.category, message.filename,
                               message.lineno)
