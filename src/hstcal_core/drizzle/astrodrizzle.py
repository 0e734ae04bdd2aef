"""Calling drizzlepac's AstroDrizzle the three ways the drizzle stage needs.

* ``"crs"`` — every step with runastrodriz's verification settings (turbo separate
  drizzle, fill 0, INDEF final fill, ``resetbits=0``): flags cosmic rays in the inputs'
  DQ and makes the pipeline-default product (runastrodriz ``verify_alignment``'s first
  ``run_driz``);
* ``"verify"`` — separate and final drizzle only, single images kept on disk
  (``reset_mdriztab_nocr``): what a candidate solution is verified on;
* ``"final"`` — the user's kernel, pixfrac, scale, rotation, ``num_cores`` and
  ``in_memory``; all steps (or the final drizzle alone), ``resetbits=4096`` and
  ``clean`` as runastrodriz's last call.

Every call runs inside ``workdir`` (AstroDrizzle writes into the working directory and
edits its inputs' DQ and MDRIZSKY), with ``updatewcs=False`` (the WCS is ours to set),
library warnings handled by :func:`~._thirdparty.library_warnings` and its printout sent
to the trailer.  The product is the ``<root>_drz``/``_drc``/``_drw`` file drizzlepac
names (it chooses the suffix from the inputs: FLC → drc, WFPC2 → drw).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._thirdparty import import_drizzlepac, library_warnings
from .trailer import Trailer

__all__ = ["PRODUCT_SUFFIXES", "WFPC2_CR_KEYS", "FinalParameters", "cr_parameters",
           "run_astrodrizzle", "single_images"]

log = logging.getLogger(__name__)

#: What AstroDrizzle may call a product (processInput: FLC → drc, WFPC2 → drw).
PRODUCT_SUFFIXES = ("drz", "drc", "drw")


@dataclass(frozen=True)
class FinalParameters:
    """The user's say over the final drizzle (stage parameters of the same names)."""

    kernel: str = "square"
    pixfrac: float = 1.0
    final_scale: float | None = None
    final_rot: float | None = None
    num_cores: int = 1
    in_memory: bool = True
    steps: str = "all"  # "all" or "final"

    def astrodrizzle_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"final_kernel": self.kernel, "final_pixfrac": self.pixfrac,
                                  "num_cores": int(self.num_cores),
                                  "in_memory": bool(self.in_memory)}
        if self.final_scale is not None or self.final_rot is not None:
            kwargs["final_wcs"] = True
            kwargs["final_scale"] = self.final_scale
            kwargs["final_rot"] = self.final_rot
        if self.steps == "final":
            kwargs.update(driz_separate=False, median=False, blot=False, driz_cr=False)
        return kwargs


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


#: The cosmic-ray step's parameters runastrodriz takes for WFPC2 from drizzlepac's own
#: configuration (``runastrodriz.process``: ``config_utils.get_wfpc2_pars(files)
#: ['astrodrizzle'].outpars``; ACS and WFC3 take them from their MDRIZTAB reference
#: file instead, which is not read here: AstroDrizzle's defaults stand in).  AstroDrizzle's
#: defaults (``driz_cr_snr`` "3.5 3.0", ``driz_cr_scale`` "1.2 0.7") flag most star
#: cores of the undersampled PC1 (20-73 % of its pixels on simulated fields).
WFPC2_CR_KEYS = ("combine_type", "combine_nsigma", "combine_nlow", "combine_nhigh",
                 "combine_maskpt", "combine_grow", "driz_cr_snr", "driz_cr_scale",
                 "driz_cr_grow", "driz_cr_ctegrow")


def cr_parameters(files: Sequence[Path]) -> dict[str, Any]:
    """Instrument-specific parameters of the cosmic-ray step (WFPC2: drizzlepac's, see
    :data:`WFPC2_CR_KEYS`; others: none, AstroDrizzle's defaults)."""
    from astropy.io import fits

    instrument = str(fits.getval(files[0], "INSTRUME", 0)).strip().upper() if files else ""
    if instrument != "WFPC2":
        return {}
    config_utils = import_drizzlepac("haputils.config_utils")
    with library_warnings(collect=False):
        pars = config_utils.get_wfpc2_pars([str(f) for f in files])["astrodrizzle"].outpars
    return {key: pars[key] for key in WFPC2_CR_KEYS if key in pars}


def run_astrodrizzle(files: Sequence[Path], workdir: Path, root: str, mode: str, *,
                     good_bits: int = 0, final: FinalParameters | None = None) -> Path:
    """Run AstroDrizzle on ``files`` (all in ``workdir``); return the product path.

    Parameters
    ----------
    files : sequence of Path
        Calibrated exposures of one kind (all FLT or all FLC), inside ``workdir``.
    workdir : Path
    root : str
        Product rootname (``<root>_drz.fits``...).
    mode : {"crs", "verify", "final"}
    good_bits : int
        DQ bits treated as good (runastrodriz ``focus_pars`` good_bits).
    final : FinalParameters, optional
        For ``mode="final"``.

    Raises
    ------
    RuntimeError
        When AstroDrizzle fails or writes no product (the message says which).
    """
    names = [Path(f).name for f in files]
    missing = [n for n in names if not (workdir / n).exists()]
    if missing:
        raise RuntimeError(f"inputs not in the working directory {workdir}: {missing}")
    common: dict[str, Any] = {"output": root, "updatewcs": False, "preserve": False,
                              "build": True, "runfile": "", "mdriztab": False,
                              "context": True, "driz_sep_bits": good_bits,
                              "final_bits": good_bits}
    if mode == "crs":
        common.update(driz_sep_kernel="turbo", driz_sep_fillval=0.0, final_fillval="INDEF",
                      resetbits=0, in_memory=True, clean=True, num_cores=1)
        common.update(cr_parameters([workdir / n for n in names]))
    elif mode == "verify":
        # runastrodriz reset_mdriztab_nocr: no CR identification, single images on disk
        common.update(resetbits=0, static=False, skysub=True, driz_separate=True,
                      driz_sep_kernel="turbo", driz_sep_fillval=0.0, median=False,
                      blot=False, driz_cr=False, final_fillval="INDEF", in_memory=False,
                      clean=False, num_cores=1)
    elif mode == "final":
        common.update(resetbits=4096, clean=True)
        common.update((final or FinalParameters()).astrodrizzle_kwargs())
    else:
        raise ValueError(f"mode must be 'crs', 'verify' or 'final', got {mode!r}")
    astrodrizzle = import_drizzlepac("astrodrizzle")
    log.info("AstroDrizzle (%s) on %s -> %s_*", mode, ", ".join(names), root)
    with _working_directory(workdir), Trailer.capture_stdout(), library_warnings():
        try:
            astrodrizzle.AstroDrizzle(names, configobj=None, **common)
        except Exception as exc:
            raise RuntimeError(f"AstroDrizzle ({mode}) failed on {', '.join(names)}: "
                               f"{type(exc).__name__}: {exc}") from exc
    products = [workdir / f"{root}_{s}.fits" for s in PRODUCT_SUFFIXES]
    products = [p for p in products if p.exists()]
    if not products:
        raise RuntimeError(f"AstroDrizzle ({mode}) wrote no {root}_drz/drc/drw product in "
                           f"{workdir}")
    # FLT and FLC sets share a work directory: the product is the one just written
    return max(products, key=lambda p: p.stat().st_mtime_ns)


def single_images(files: Sequence[Path]) -> list[Path]:
    """The ``*_single_sci.fits`` a ``"verify"`` run left beside each input."""
    out = []
    for f in files:
        stem = Path(f).name
        for suffix in ("_flt.fits", "_flc.fits"):
            stem = stem.replace(suffix, "_single_sci.fits")
        out.append(Path(f).with_name(stem))
    missing = [p.name for p in out if not p.exists()]
    if missing:
        raise RuntimeError(f"AstroDrizzle left no single-exposure images {missing}")
    return out
