"""Drizzle stage: runastrodriz's job, on drizzlepac and stwcs, offline and dependable.

Status (issue 6, foundation)
----------------------------
Done here:

* :mod:`.kernels` — one image drizzled by drizzlepac's own C drizzle (``cdriz.tdriz``,
  the code AstroDrizzle's ``adrizzle.do_driz`` calls) from a pixel map; reproduces the
  five drizzlepac products in ``../shared/data/hst/wfc3/drizzle_kernel_test`` (turbo,
  point, lanczos3 bit-identical, square within 3.5e-6; the file named "gaussian"
  records ``D001KERN = square`` and is the square product — read kernels from headers,
  not file names).  :func:`pixmap_from_wcs` is drizzlepac's ``WCSMap``.
* :mod:`._thirdparty` — importing drizzlepac without stregion's pyparsing warnings and
  :func:`~._thirdparty.library_warnings` around AstroDrizzle calls (known housekeeping
  warnings logged, anything else re-emitted).
* :mod:`hstcal_core.simulate.flt` — dithered FLT/FLC associations of a star field with
  real-looking headers, an injected header-WCS error and the truth catalog (ECSV).
  AstroDrizzle runs on them offline (``tests/test_drizzle_astrodrizzle.py``).

Plan: the flow, module by module
--------------------------------
Each step is a plain function on paths/arrays; the stage (``stages.py``, hook
``drizzle`` in ``hookspecs.py``) only strings them together, writes the trailer and
records provenance.  Numbers in brackets are where the behaviour comes from.

1. ``inputs.py`` — resolve the input: ``*_asn.fits`` (EXP-* members with MEMPRSNT true;
   product name from the PROD-* row), a ``*_raw.fits`` or calibrated FLT/FLC.  Honour
   DRIZCORR from the RAW primary header: OMIT → skip with a message (``--force``
   overrides); a missing RAW is a warning.  Build the FLT and FLC lists (both when both
   exist → ``_drz`` and ``_drc``; ``_drw`` for WFPC2: the suffix belongs on the
   Detector, not in an ``if``).  Reject early, naming the file: missing member, mixed
   INSTRUME/DETECTOR, EXPTIME 0 everywhere, NGOODPIX 0, unreadable FITS
   [runastrodriz ``process``, ``_analyze_exposure``].
2. ``switches.py`` — ``ASTROMETRY_COMPUTE_APOSTERIORI`` and ``ASTROMETRY_APPLY_APRIORI``
   (on/yes/true, off/no/false; drizzlepac ``util.get_envvar_switch``), overridden by
   CLI flags / API options.  The a priori (astrometry database) step is **off** unless
   asked for: it needs the network and stalls ~120 s offline; when on, its failure falls
   back to the default WCS [drizzlepac #2003].  Always export
   ``ASTROMETRY_STEP_CONTROL=off`` to stwcs unless a priori was requested (stwcs
   ``astrometry_utils`` accepts only "on"/"off" there and raises ValueError otherwise,
   so translate yes/no/true/false before exporting).
3. ``wcs.py`` — pipeline-default WCS: ``stwcs.updatewcs.updatewcs(f, use_db=False)``
   when IDCTAB/NPOLFILE/D2IMFILE resolve to files (``iref$``/``jref$`` via the
   environment); otherwise log why, set the missing ones to ``N/A`` and keep the
   exposure's own WCS (what :mod:`hstcal_core.simulate.flt` writes).  Save a headerlet
   of every WCS tried (``stwcs.wcsutil.headerlet``).
4. ``align.py`` — a posteriori: per candidate solution, **in its own scratch directory
   on copies** (inputs are only replaced after a verified success, so "Successfully
   aligned" after a failed ``apply_fit`` cannot happen): find sources with photutils,
   read the reference catalog — a local FITS/ECSV table (ra, dec[, pm_ra, pm_dec,
   epoch], proper motion applied to the exposure epoch, as
   ``simulate.starfield.positions_at_epoch``) or the network service — match and fit
   with tweakwcs (``rscale``, ≥ 4 matches, RMS limits from drizzlepac's alignment
   parameters, ``pars/hap_pars``) [drizzlepac ``align.perform_align``].
5. ``verify.py`` — ported exactly from runastrodriz ``verify_alignment``: drizzle each
   candidate, overlap/similarity rule decides (``max_overlap_diff`` ≤ 1.0,
   haputils ``astrometric_utils``), focus index (``determine_focus_index``) only when
   matches are few, similarity advisory; the verified solution with the best quality
   wins; WCSNAME/WCSTYPE and the verification figures go into the headers.  Target:
   5× faster than the anchor's 10-14 s for three images, same pass/fail answers
   (compute the overlap masks once, drizzle at reduced scale, vectorise the mask
   statistics).
6. ``final.py`` — final AstroDrizzle with the user's kernel, pixfrac, final scale and
   rotation, ``num_cores``, ``in_memory``; products with SCI/WHT/CTX; trailer
   ``<root>.tra`` holding the whole run (runastrodriz writes the same).  Always call
   drizzlepac inside :func:`~._thirdparty.library_warnings`, with ``updatewcs=False``
   (step 3 did it), ``preserve=False`` and ``runfile`` under the scratch directory.

Proof to build (issue 6 §2): simulated ASNs with a known injected
:class:`~hstcal_core.simulate.flt.WcsError` recovered within 5 mas against a local
catalog made from the truth; a 2-pixel misregistration failing verification (earlier WCS
kept); the real ``flt_cutouts`` through the WCS handling and a drizzle of the two UVIS
FLCs of IB4606060; the bad-input list; the benchmark against a bare AstroDrizzle call.

Notes for the next engineer
---------------------------
* drizzlepac 3.11 ships its own ``cdriz`` (callback API, 1-based coordinates) and does
  not depend on the ``drizzle`` package; if a later drizzlepac moves to
  ``drizzle.cdrizzle`` (pixel-map API), only :func:`~.kernels.drizzle_image` changes.
* AstroDrizzle writes into the working directory and edits its inputs (DQ, MDRIZSKY):
  run it on copies in a scratch directory.
* ``import drizzlepac`` takes 3-6 s here; import it lazily (:func:`~._thirdparty.import_drizzlepac`).
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
