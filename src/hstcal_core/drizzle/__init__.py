"""Drizzle stage: runastrodriz's job, on drizzlepac and stwcs, offline and dependable.

``hstcal run --instrument wfc3_uvis --stage drizzle INPUT... --out DIR [--catalog FILE]
[--aposteriori/--no-aposteriori] [--apriori/--no-apriori] [--force]``; the recipe is in
:mod:`.stage` (the core's ``drizzle`` hook implementation, registered ``trylast``), one
module per step:

* :mod:`.inputs` — ASN / RAW / FLT / FLC (WFPC2: D0M / C0M + C1M) resolution, DRIZCORR,
  FLT and FLC lists, bad input rejected early naming the file (runastrodriz ``process``,
  ``_analyze_exposure``); WFPC2 c0m/c1m converted to FLTs by drizzlepac;
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
* WFPC2: the stage is registered for the four chips; run for any of them it drizzles
  every chip of the files (runastrodriz drizzles whole exposures).  Inputs:
  ``<root>_c0m.fits`` with ``<root>_c1m.fits`` beside it, an ``_asn`` naming WFPC2 members (c0m preferred, else ``_flt``), a
  ``_d0m`` (DRIZCORR read there, as runastrodriz), or FLTs already converted.  Each c0m
  is checked (INSTRUME, the groups NEXTEND announces, one chip per group, the stage's
  chip present; its c1m with the same groups) and converted on a private copy in the
  scratch directory by drizzlepac's own ``wfpc2Data.wfpc2_to_flt`` then ``photeq``
  (``ref_phot_ext`` WF3), as runastrodriz ``process`` does; products are ``<asn>_drw``
  plus the updated ``<root>_flt`` and their headerlets.  A missing c1m is an error
  (``wfpc2_to_flt`` would use an all-zero DQ); ``-p allow_missing_c1m=true`` accepts
  that.  The cosmic-ray step takes the WFPC2 thresholds runastrodriz takes from
  ``config_utils.get_wfpc2_pars`` (:func:`.astrodrizzle.cr_parameters`; AstroDrizzle's
  defaults flagged most PC1 star cores).  Not done: ``wfpc2Data.apply_bestrefs`` (CRDS:
  network), the rest of that WFPC2 parameter set (the final drizzle's settings are the
  same for every instrument; the default output scale is PC1's, 0.0455"), c0f/GEIS
  layouts (``wfpc2_to_flt`` takes MEF only).  Proven on simulated c0m/c1m
  (``simulate_flt_asn(..., layout="c0m")``), not on archive files: none are in
  ``../shared/data``.  A chip with no source found gets no fitted WCS from :mod:`.align`,
  so that exposure's a posteriori fit cannot be applied and the candidate is discarded
  (default WCS kept); drizzlepac applies a group's fit to all its chips.
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
