"""Drizzle stage: runastrodriz's job, on drizzlepac and stwcs, offline and dependable.

``hstcal run --instrument wfc3_uvis --stage drizzle INPUT... --out DIR [--catalog FILE]
[--aposteriori/--no-aposteriori] [--apriori/--no-apriori] [--force]``; the recipe is in
:mod:`.stage` (the core's ``drizzle`` hook implementation, registered ``trylast``), one
module per step:

* :mod:`.inputs` — ASN / RAW / FLT / FLC resolution, DRIZCORR, FLT and FLC lists, bad
  input rejected early naming the file (runastrodriz ``process``, ``_analyze_exposure``);
* :mod:`.trailer` — ``<root>.tra``: our log, the libraries' logs and what AstroDrizzle
  prints;
* :mod:`.switches` — ``ASTROMETRY_COMPUTE_APOSTERIORI`` / ``ASTROMETRY_APPLY_APRIORI``
  (on/yes/true, off/no/false), flags win; a priori off unless asked (network,
  drizzlepac #2003);
* :mod:`.wcs` — ``updatewcs(use_db=False)`` when IDCTAB/NPOLFILE/D2IMFILE resolve, else
  the exposure's own WCS with those keywords set to N/A; WCSTYPE; headerlets;
* :mod:`.align` — a posteriori: photutils sources, local (FITS/ECSV with proper motions
  carried to the observation epoch) or service reference catalog, tweakwcs fits with
  drizzlepac's methods and fit-quality rules;
* :mod:`.verify` — runastrodriz ``verify_alignment``'s overlap/focus/similarity rule
  ported exactly (same numbers as drizzlepac's functions, ≥ 5× faster), plus a
  registration check the overlap rule lacks (:mod:`.registration`; the rule passes
  misregistrations of several pixels on star fields — measured, see :mod:`.verify`);
* :mod:`.astrodrizzle` — the three AstroDrizzle calls (CR flagging, verification,
  final with the user's kernel/pixfrac/scale/rotation/cores/in-memory);
* :mod:`.kernels` — one image drizzled by drizzlepac's C drizzle from a pixel map
  (reproduces ``../shared/data/hst/wfc3/drizzle_kernel_test``; read kernels from
  headers, not file names: the file named "gaussian" is the square product);
* :mod:`._thirdparty` — importing drizzlepac quietly, and :func:`~._thirdparty.library_warnings`
  around its calls.

Every candidate WCS solution works on private copies in its own scratch directory under
the output directory; only a finished run renames its products into place.

Notes for the next engineer
---------------------------
* drizzlepac 3.11 ships its own ``cdriz``; if a later drizzlepac moves to
  ``drizzle.cdrizzle`` (pixel-map API), only :func:`~.kernels.drizzle_image` changes.
* AstroDrizzle writes into the working directory and edits its inputs (DQ, MDRIZSKY):
  :mod:`.astrodrizzle` runs it on copies, chdir'ed into their directory.
* ``import drizzlepac`` takes 3-6 s here; import it lazily (:func:`~._thirdparty.import_drizzlepac`).
* WFPC2: the stage is registered for the four chips; calibrated inputs must already be
  in drizzlepac's FLT layout (``wfpc2Data.wfpc2_to_flt``); c0m/c1m conversion is not
  wired in (no such files to test on).
"""

from __future__ import annotations

from .kernels import (
    KERNELS,
    DrizzleOutput,
    DrizzleParameters,
    drizzle_image,
    drizzle_parameters,
    empty_output,
    pixmap_from_wcs,
    pixmap_mapping,
)

__all__ = [
    "KERNELS",
    "DrizzleOutput",
    "DrizzleParameters",
    "drizzle_image",
    "drizzle_parameters",
    "empty_output",
    "pixmap_from_wcs",
    "pixmap_mapping",
]
