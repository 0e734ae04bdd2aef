"""The ``drizzle`` stage: runastrodriz's recipe, made dependable.

``hstcal run --instrument wfc3_uvis --stage drizzle INPUT... --out DIR [--catalog FILE]
[--aposteriori/--no-aposteriori] [--apriori/--no-apriori] [--force]`` or
``run_stage("drizzle", detector=..., inputs=[...], out=DIR, catalog=...)``.

The recipe (:func:`drizzle_exposures`, the core's ``drizzle`` hook implementation):

1. **Inputs** (:mod:`.inputs`): ASN / RAW / FLT / FLC, WFPC2 D0M / C0M (+ C1M);
   DRIZCORR=OMIT skips (``force`` overrides); unusable exposures skipped with the
   reason; bad input is an error naming the file.
2. **Scratch**: everything happens in ``DIR/.<root>.drizzle-*`` on copies — the inputs
   are never touched — and only a finished run moves its files into ``DIR``.  A
   failed run leaves the trailer ``DIR/<root>.tra`` (saying why) and nothing else.
   WFPC2 c0m/c1m pairs become ``<root>_flt.fits`` there first (drizzlepac
   ``wfpc2_to_flt`` and ``photeq``, :func:`~.inputs.convert_wfpc2`).
3. **Pipeline-default WCS** (:mod:`.wcs`) on the copies.
4. **Candidates**, each in its own sub-directory (runastrodriz's ``verify_alignment``):
   the pipeline default (AstroDrizzle with CR identification, then a verification
   drizzle whose product is the reference), the a priori solutions when asked for
   (failure → fallback, drizzlepac #2003), the a posteriori fit (:mod:`.align`) applied
   to copies of the best solution so far.  A candidate whose fit or application fails
   is discarded whole — a half-updated set cannot reach the products.
5. **Verification** (:mod:`.verify`) of every candidate; the verified one with the best
   quality wins (ties go to the later, more refined solution); when none beyond the
   default is verified, the earlier (default) WCS is kept.
6. **Final AstroDrizzle** (:mod:`.astrodrizzle`) with the user's kernel, pixfrac,
   scale, rotation, cores, in-memory choice — ``_drz`` from FLTs, ``_drc`` from FLCs
   (``_drw`` for WFPC2, drizzlepac's names) with SCI/WHT/CTX; headerlets of the final
   WCS; WCSNAME/WCSTYPE and the verification figures in the headers; provenance.
7. **Commit**: products, updated FLT/FLC copies and headerlets renamed into ``DIR``
   (same file system: atomic per file), then the trailer.

Header keywords written (primary of the products and of the updated exposures):
ALIGNSOL (winning solution), ALIGNVER (verified), ALIGNQUA (runastrodriz
alignment_quality), OVERLAPD (max overlap difference), SIMINDX (similarity to the
default product, -1 when not measured), FOCUSCHK (focus check: PASSED/FAILED/NOTUSED),
REGSHIFT (largest offset between an exposure and the others, pixels; -1 not measured).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits

from ..errors import ConfigError, HstcalError, InputError
from ..fitsio import add_provenance
from ..options import (
    Param,
    as_bool,
    as_optional_float,
    as_optional_path,
    as_optional_str,
)
from ._thirdparty import library_warnings
from .astrodrizzle import FinalParameters, run_astrodrizzle, single_images
from .inputs import DrizzleInputs, convert_wfpc2, resolve_inputs
from .switches import Switches, astrometry_environment, resolve_switches
from .trailer import Trailer, trailer_root
from .wcs import set_card

__all__ = ["DRIZZLE_PARAMS", "Candidate", "drizzle_exposures", "run_drizzle"]

log = logging.getLogger(__name__)

#: drizzlepac's final kernels (AstroDrizzle ``final_kernel``).
FINAL_KERNELS = ("square", "point", "turbo", "gaussian", "tophat", "lanczos2", "lanczos3")
# runastrodriz focus_pars when drizzlepac has no entry for the instrument/detector
_DEFAULT_FOCUS = {"sigma": 1.5, "good_bits": 1360}


def _optional_bool(value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return as_bool(value)


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    return number


def _pixfrac(value: Any) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError(f"pixfrac must be in (0, 1], got {value!r}")
    return number


DRIZZLE_PARAMS: tuple[Param, ...] = (
    Param("catalog", as_optional_path, None,
          "local reference catalog (FITS/ECSV: ra, dec[, pm_ra, pm_dec, epoch]) for "
          "a posteriori alignment"),
    Param("catalog_name", as_optional_str, None,
          "frame name written in WCSNAME (default LOCAL for a file, else the service's)"),
    Param("reference_catalog", lambda v: str(v), "GAIAeDR3",
          "catalog service used when a posteriori alignment is on without --catalog "
          "(needs the network)"),
    Param("aposteriori", _optional_bool, None,
          "fit to a reference catalog (flag > $ASTROMETRY_COMPUTE_APOSTERIORI > on "
          "when --catalog is given)"),
    Param("apriori", _optional_bool, None,
          "apply astrometry-database solutions (network; flag > "
          "$ASTROMETRY_APPLY_APRIORI > off)"),
    Param("force", as_bool, False, "drizzle even when DRIZCORR=OMIT"),
    Param("kernel", lambda v: str(v).strip().lower(), "square", "final drizzle kernel",
          choices=FINAL_KERNELS),
    Param("pixfrac", _pixfrac, 1.0, "final drizzle pixfrac (0 < pixfrac <= 1)"),
    Param("final_scale", as_optional_float, None, "output pixel scale, arcsec (default: native)"),
    Param("final_rot", as_optional_float, None,
          "output orientation, degrees E of N (default: AstroDrizzle's)"),
    Param("num_cores", _positive_int, 1, "processes for AstroDrizzle and threads for checks"),
    Param("in_memory", as_bool, True, "AstroDrizzle in_memory for the final drizzle"),
    Param("steps", lambda v: str(v).strip().lower(), "all",
          "final AstroDrizzle steps: all, or final (final drizzle only)",
          choices=("all", "final")),
    Param("registration_limit", as_optional_float, 1.0,
          "largest offset (px) between an exposure and the others for a solution to be "
          "verified (hstcal's check beside runastrodriz's; none: the anchor's rule alone)"),
    Param("headerlets", as_bool, True, "write <exposure>_hlet.fits of the final WCS"),
    Param("keep_scratch", as_bool, False, "keep the scratch directory (debugging)"),
    Param("allow_missing_c1m", as_bool, False,
          "WFPC2: drizzle a c0m whose c1m is missing with an all-zero DQ, as drizzlepac's "
          "wfpc2_to_flt does (default: an error)"),
)


@dataclass
class Candidate:
    """One WCS solution, its private copies and its verdict."""

    name: str
    directory: Path
    sets: dict[str, list[Path]]
    product: Path | None = None
    verification: Any = None  # verify.Verification
    fit: Any = None  # align.FitResult
    note: str = ""
    stamped: bool = False  # verdict cards already in the exposures' headers

    @property
    def files(self) -> list[Path]:
        return [f for kind in ("flt", "flc") for f in self.sets.get(kind, [])]

    def record(self) -> dict[str, Any]:
        v = self.verification
        return {"name": self.name, "note": self.note,
                "verified": None if v is None else v.verified,
                "quality": None if v is None else v.quality,
                "max_overlap_diff": None if v is None else v.max_overlap_diff,
                "similarity": None if v is None else v.similarity,
                "fit": None if self.fit is None else self.fit.summary()}


# --------------------------------------------------------------------------- entry points
def run_drizzle(ctx) -> Any:
    """The stage: call the ``drizzle`` hook and turn its report into a StageResult."""
    from ..stages import StageResult

    if ctx.out is None:
        raise ConfigError("stage 'drizzle' needs --out DIR (the output directory)")
    report = ctx.hooks.drizzle(detector=ctx.detector, exposures=list(ctx.inputs),
                               options=ctx.options.replace(out=str(ctx.out)))
    written = [*report["products"], *report["exposures"], *report["headerlets"]]
    if report.get("trailer"):
        written.append(report["trailer"])
    return StageResult("drizzle", ctx.detector.name, products=written,
                       skipped=list(report["skipped"]), details=dict(report))


def drizzle_exposures(detector, exposures: Sequence[Any], options: Mapping[str, Any]
                      ) -> dict[str, Any]:
    """Drizzle one association (see the module docstring); the report as a mapping.

    ``options`` are the stage's, plus ``out`` (the output directory).

    Returns
    -------
    dict
        ``products`` (drizzled files), ``exposures`` (updated FLT/FLC), ``headerlets``,
        ``trailer``, ``skipped`` ((what, why) pairs), ``solution`` (winning candidate),
        ``candidates`` (each one's verdict) — all paths in the output directory.
    """
    if options.get("out") is None:
        raise ConfigError("stage 'drizzle' needs --out DIR (the output directory)")
    out = Path(options["out"])
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: the drizzle stage writes several files; give a "
                          "directory")
    paths = [Path(getattr(e, "path", e)) for e in exposures]
    out.mkdir(parents=True, exist_ok=True)
    root = trailer_root(paths[0]) if paths else "drizzle"
    scratch = Path(tempfile.mkdtemp(prefix=f".{root}.drizzle-", dir=out))
    trailer_path = scratch / f"{root}.tra"
    final_trailer = out / f"{root}.tra"
    report: dict[str, Any] = {}
    try:
        with Trailer(trailer_path):
            try:
                switches = resolve_switches(options.get("aposteriori"), options.get("apriori"),
                                            catalog=options.get("catalog"))
                with astrometry_environment(switches.apriori):
                    report = _DrizzleRun(detector, paths, options, switches, scratch,
                                         out, root).execute()
            except HstcalError as exc:
                log.error("drizzle stage stopped: %s", exc)
                log.error("nothing was written to %s but this trailer", out)
                raise
            except Exception as exc:
                log.exception("drizzle stage FAILED: %s", type(exc).__name__)
                log.error("nothing was written to %s but this trailer", out)
                raise
    finally:
        if trailer_path.exists():
            os.replace(trailer_path, final_trailer)
        if options.get("keep_scratch"):
            log.info("scratch directory kept: %s", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report["trailer"] = final_trailer
    return report


# --------------------------------------------------------------------------- the run
class _DrizzleRun:
    def __init__(self, detector, paths: list[Path], options: Mapping[str, Any],
                 switches: Switches, scratch: Path, out: Path, root: str):
        self.detector = detector
        self.paths = paths
        self.options = options
        self.switches = switches
        self.scratch = scratch
        self.out = out
        self.root = root
        self.final = FinalParameters(
            kernel=options.get("kernel") or "square", pixfrac=float(options.get("pixfrac", 1.0)),
            final_scale=options.get("final_scale"), final_rot=options.get("final_rot"),
            num_cores=int(options.get("num_cores") or 1),
            in_memory=bool(options.get("in_memory", True)), steps=options.get("steps") or "all")
        self.workers = self.final.num_cores

    def execute(self) -> dict[str, Any]:
        started = time.time()
        log.info("hstcal drizzle stage for %s on %d input(s): %s", self.detector.name,
                 len(self.paths), ", ".join(str(p) for p in self.paths))
        log.info("switches: %s", self.switches.describe())
        log.info("final drizzle: %s", self.final)
        report: dict[str, Any] = {"products": [], "exposures": [], "headerlets": [],
                                  "skipped": [], "solution": None, "candidates": []}
        inputs = resolve_inputs(self.paths, self.detector,
                                allow_missing_c1m=bool(self.options.get("allow_missing_c1m")))
        report["skipped"].extend(inputs.skipped)
        self._log_inputs(inputs)
        if inputs.drizcorr == "OMIT":
            where = inputs.drizcorr_source.name if inputs.drizcorr_source else "the header"
            if not self.options.get("force"):
                reason = (f"DRIZCORR=OMIT in {where}: drizzle processing not requested "
                          "(--force drizzles anyway)")
                log.warning("astrodrizzle skipped: %s", reason)
                report["skipped"].append((inputs.product_root, reason))
                return report
            log.warning("DRIZCORR=OMIT in %s overridden by --force", where)
        if not inputs.exposures:
            reason = "no usable exposure (EXPTIME > 0 and NGOODPIX > 0): nothing to drizzle"
            log.warning("astrodrizzle skipped: %s", reason)
            report["skipped"].append((inputs.product_root, reason))
            return report
        if inputs.to_convert:  # WFPC2 c0m/c1m -> FLT (runastrodriz process)
            inputs = convert_wfpc2(inputs, self.scratch / "wfpc2")

        focus = self._focus_pars(inputs)
        default = self._default_candidate(inputs)
        candidates = [default]
        if self.switches.apriori or self.switches.aposteriori:
            self._verify(default, inputs, focus, reference=None)
            if self.switches.apriori:
                candidates.append(self._apriori_candidate(default, inputs, focus))
            if self.switches.aposteriori:
                base = _best(candidates)
                candidates.append(self._aposteriori_candidate(base, default, inputs, focus))
        winner = _best(candidates)
        report["candidates"] = [c.record() for c in candidates]
        report["solution"] = winner.name
        log.info("solution chosen: %s%s", winner.name,
                 "" if winner.verification is None else f" ({winner.verification.summary()})")
        for c in candidates:
            if c is not winner and c.name != "pipeline-default":
                log.info("candidate %s not used: %s", c.name,
                         c.note or (c.verification.summary() if c.verification else "failed"))
        staged = self._final(winner, inputs, focus)
        report.update(self._commit(staged))
        log.info("drizzle stage finished in %.1f s: %s", time.time() - started,
                 ", ".join(p.name for p in report["products"]))
        return report

    # ----------------------------------------------------------------- steps
    def _log_inputs(self, inputs: DrizzleInputs) -> None:
        for kind, exposures in inputs.sets.items():
            log.info("%s list (%d): %s", kind.upper(), len(exposures),
                     ", ".join(e.path.name for e in exposures))
        for what, why in inputs.skipped:
            log.warning("skipped %s: %s", what, why)
        log.info("product %s, DRIZCORR=%s%s", inputs.product_root, inputs.drizcorr or "?",
                 f" (from {inputs.drizcorr_source.name})" if inputs.drizcorr_source else "")

    def _focus_pars(self, inputs: DrizzleInputs) -> dict[str, float]:
        from ._thirdparty import import_drizzlepac

        table = import_drizzlepac("runastrodriz").focus_pars
        key = f"{inputs.instrument}/{inputs.detector}"
        return dict(table.get(key, _DEFAULT_FOCUS))

    def _copy_sets(self, sets: Mapping[str, Sequence[Path]], directory: Path
                   ) -> dict[str, list[Path]]:
        directory.mkdir(parents=True, exist_ok=True)
        copied: dict[str, list[Path]] = {}
        for kind, files in sets.items():
            copied[kind] = []
            for f in files:
                target = directory / Path(f).name
                shutil.copyfile(f, target)
                copied[kind].append(target)
        return copied

    def _default_candidate(self, inputs: DrizzleInputs) -> Candidate:
        from .wcs import pipeline_default_wcs

        sets = self._copy_sets({k: [e.path for e in v] for k, v in inputs.sets.items()},
                               self.scratch / "pipeline-default")
        candidate = Candidate("pipeline-default", self.scratch / "pipeline-default", sets)
        aligning = self.switches.apriori or self.switches.aposteriori
        # without alignment the verdict cards are known now: stamp them in the same update
        figures = None if aligning else _figures(candidate)
        for f in candidate.files:
            pipeline_default_wcs(f, wcscorr=aligning, primary=figures)
        candidate.stamped = figures is not None
        return candidate

    def _verify(self, candidate: Candidate, inputs: DrizzleInputs, focus, *, reference,
                fit=None) -> None:
        from .verify import verify_products

        files = candidate.sets[inputs.align_set]
        if reference is None:  # the default: flag cosmic rays first (runastrodriz find_crs)
            run_astrodrizzle(files, candidate.directory, inputs.product_root, "crs",
                             good_bits=int(focus["good_bits"]))
        product = run_astrodrizzle(files, candidate.directory, inputs.product_root, "verify",
                                   good_bits=int(focus["good_bits"]))
        candidate.product = product
        if len(files) < 2:  # runastrodriz: nothing to compare a single exposure with
            log.info("%s: one exposure, alignment verification not applicable",
                     candidate.name)
            return
        num_sources, fraction = -1, 1.0
        if fit is not None:
            first = fit.chips[0].rootname
            num_sources = sum(c.nmatches for c in fit.chips if c.rootname == first)
            fraction = num_sources / fit.catalog_sources if fit.catalog_sources else 0.0
        started = time.time()
        candidate.verification = verify_products(
            single_images(files), product, reference_product=reference,
            num_sources=num_sources, fraction_matched=fraction,
            focus_sigma=float(focus["sigma"]), workers=self.workers,
            registration_limit=self.options.get("registration_limit"))
        log.info("verification of %s alignment (%.2f s): %s", candidate.name,
                 time.time() - started, candidate.verification.summary())

    def _apriori_candidate(self, default: Candidate, inputs: DrizzleInputs, focus) -> Candidate:
        from .wcs import apply_apriori

        candidate = Candidate("apriori", self.scratch / "apriori",
                              self._copy_sets(default.sets, self.scratch / "apriori"))
        try:
            for f in candidate.files:
                name = apply_apriori(f)
                log.info("%s: a priori WCS %s", f.name, name)
            self._verify(candidate, inputs, focus, reference=default.product)
        except Exception as exc:  # noqa: BLE001 - network, database, stwcs: fall back (#2003)
            candidate.note = (f"a priori solutions unavailable ({type(exc).__name__}: {exc}); "
                              "falling back to the pipeline-default WCS")
            log.warning("%s", candidate.note)
            candidate.verification = None
        return candidate

    def _aposteriori_candidate(self, base: Candidate, default: Candidate,
                               inputs: DrizzleInputs, focus) -> Candidate:
        from . import align

        directory = self.scratch / "aposteriori"
        candidate = Candidate("aposteriori", directory, self._copy_sets(base.sets, directory))
        align_files = candidate.sets[inputs.align_set]
        try:
            epoch = align.observation_epoch(align_files)
            catalog = self.options.get("catalog")
            if catalog:
                reference = align.read_reference_catalog(
                    catalog, epoch, name=self.options.get("catalog_name") or "LOCAL")
            else:
                service = self.options.get("reference_catalog") or "GAIAeDR3"
                log.info("a posteriori: no --catalog given, asking the %s service (network)",
                         service)
                reference = align.network_reference_catalog(align_files, service, epoch)
            pars = align.alignment_parameters(inputs.instrument, inputs.detector)
            fit = align.fit_aposteriori(align_files, reference, pars,
                                        good_bits=int(focus["good_bits"]))
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure keeps the earlier WCS
            candidate.note = (f"a posteriori alignment failed ({type(exc).__name__}: {exc}); "
                              f"keeping the {base.name} WCS")
            log.warning("%s", candidate.note)
            return candidate
        if fit is None or not fit.valid:
            why = "no fit" if fit is None else fit.summary()
            candidate.note = f"no valid a posteriori fit ({why}); keeping the {base.name} WCS"
            log.warning("%s", candidate.note)
            candidate.fit = fit
            return candidate
        candidate.fit = fit
        targets: dict[str, list[Path]] = {}
        for e in inputs.exposures:
            targets.setdefault(e.rootname, []).append(directory / e.path.name)
        try:
            align.apply_fit(fit, targets)
        except Exception as exc:  # noqa: BLE001 - the candidate is discarded whole
            candidate.note = (f"applying the a posteriori fit failed ({type(exc).__name__}: "
                              f"{exc}); candidate discarded, keeping the {base.name} WCS")
            log.error("%s", candidate.note)
            candidate.fit = None
            return candidate
        self._verify(candidate, inputs, focus, reference=default.product, fit=fit)
        return candidate

    def _final(self, winner: Candidate, inputs: DrizzleInputs, focus) -> dict[str, list[Path]]:
        """The final drizzle, in the winner's own directory (its files are private copies
        already; what earlier drizzles left there is cleared first)."""
        from .wcs import record_wcstype, write_headerlet

        directory = winner.directory
        keep = {f.name for f in winner.files}
        for leftover in directory.iterdir():
            if leftover.name not in keep:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        sets = winner.sets
        figures = _figures(winner)
        if not winner.stamped:
            for f in winner.files:
                record_wcstype(f, primary=figures)
        products = []
        for files in sets.values():
            product = run_astrodrizzle(files, directory, inputs.product_root, "final",
                                       good_bits=int(focus["good_bits"]), final=self.final)
            self._finish_product(product, files, figures)
            products.append(product)
        headerlets = []
        if self.options.get("headerlets", True):
            with library_warnings():  # one garbage collection for all of them
                for f in winner.files:
                    headerlets.append(write_headerlet(f, collect=False))
        return {"products": products, "exposures": list(winner.files),
                "headerlets": headerlets}

    def _finish_product(self, product: Path, files: Sequence[Path], figures) -> None:
        with fits.open(product, mode="update") as hdul:
            names = [h.name for h in hdul]
            missing = [e for e in ("SCI", "WHT", "CTX") if e not in names]
            if missing:
                raise RuntimeError(f"{product.name} lacks the {'/'.join(missing)} "
                                   "extension(s)")
            with fits.open(files[0]) as first:
                sci = next(h for h in first if h.name == "SCI").header
                wcsname, wcstype = sci.get("WCSNAME", "OPUS"), sci.get("WCSTYPE", "")
            header = hdul[0].header
            for key, value in figures.items():
                set_card(header, key, *value)
            set_card(header, "EXPWCSNM", wcsname, "WCSNAME of the drizzled exposures")
            set_card(header, "EXPWCSTY", str(wcstype)[:68], "WCSTYPE of the drizzled exposures")
            parameters = {k: v for k, v in self.options.items() if k != "out"}
            add_provenance(header, stage="drizzle", detector=self.detector.name,
                           inputs=[Path(f).name for f in files], parameters=parameters,
                           distributions=["drizzlepac", "stwcs", "tweakwcs", "photutils"])

    def _commit(self, staged: Mapping[str, list[Path]]) -> dict[str, list[Path]]:
        """Rename every staged file into the output directory (same file system)."""
        committed: dict[str, list[Path]] = {}
        for key, files in staged.items():
            committed[key] = []
            for f in files:
                target = self.out / f.name
                os.replace(f, target)
                committed[key].append(target)
                log.info("wrote %s", target)
        return committed


def _best(candidates: Sequence[Candidate]) -> Candidate:
    """The verified candidate of best (lowest) quality; ties to the later one; the
    pipeline default when no other candidate is verified."""
    best = candidates[0]
    for c in candidates[1:]:
        v = c.verification
        if v is None or not v.verified:
            continue
        if best.verification is None or not best.verification.verified \
                or v.quality <= best.verification.quality:
            best = c
    return best


def _figures(candidate: Candidate) -> dict[str, Any]:
    v = candidate.verification
    figures: dict[str, Any] = {"ALIGNSOL": (candidate.name, "WCS solution drizzled (hstcal)")}
    if v is None:
        figures["ALIGNVER"] = ("N/A", "alignment verified? (not measured)")
        return figures
    focus = ("PASSED" if v.focus_verified else "FAILED") if v.focus_checked else "NOTUSED"
    figures.update({
        "ALIGNVER": (bool(v.verified), "alignment verified (runastrodriz rule)"),
        "ALIGNQUA": (int(v.quality), "alignment quality: 0 best, +3 per failed check"),
        "OVERLAPD": (round(float(v.max_overlap_diff), 6), "max overlap difference (<= 1)"),
        "SIMINDX": (-1.0 if v.similarity is None else round(float(v.similarity), 6),
                    "similarity index to default product"),
        "FOCUSCHK": (focus, "focus check (few matches only)"),
        "REGSHIFT": (-1.0 if v.max_offset_px is None else round(float(v.max_offset_px), 4),
                     "max offset between exposures, px"),
    })
    return figures
