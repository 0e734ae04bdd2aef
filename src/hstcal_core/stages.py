"""Stages: named recipes over the hooks, and :func:`run_stage`, the public entry point.

A stage is glue (stpipe's rule): it reads inputs, calls hooks through the typed
façade, and writes products atomically.  Algorithms live in ``algorithms/`` and
``reffiles/``; detector specifics live in plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .detectors import Detector
from .errors import ConfigError, InputError
from .fitsio import add_provenance, read_exposure, write_atomic, write_product
from .images import CombinedImage, Exposure, Product
from .options import (
    Options,
    Param,
    as_bool,
    as_float_list,
    as_optional_float,
    as_optional_path,
    as_optional_str,
    as_period_modes,
    as_threshold_table,
    load_config,
    resolve_options,
)
from .registry import DetectorEntry, Registry, get_registry

__all__ = [
    "Stage",
    "StageContext",
    "StageResult",
    "ReffileInputs",
    "STAGES",
    "CRREJECT_PARAMS",
    "stage",
    "stage_params",
    "run_stage",
    "make_context",
    "load_inputs",
    "check_same_mode",
    "check_detector",
    "check_header_detector",
    "check_frame",
    "write_reffile",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class ReffileInputs:
    """What ``build_reffile`` receives.

    Attributes
    ----------
    exposures : tuple of Exposure
        Calibrated inputs, in input order.
    references : mapping
        Auxiliary reference files already read (``{"basebias": Exposure}``, ...).
    combine : callable
        ``combine(exposures, options=None) -> CombinedImage``: runs the
        ``reject_crs`` hook for this detector.
    period : tuple of float or None
        ``(start_mjd, end_mjd)`` of the period the file serves, if known.
    """

    exposures: tuple[Exposure, ...]
    references: Mapping[str, Exposure]
    combine: Callable[..., CombinedImage]
    period: tuple[float, float] | None = None


@dataclass
class StageResult:
    """Outcome of a stage: products written, inputs that failed (with the reason)."""

    stage: str
    detector: str
    products: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class StageContext:
    """Everything a recipe needs: the registry, the detector, inputs and options."""

    registry: Registry
    entry: DetectorEntry
    stage: "Stage"
    inputs: list[Path]
    options: Options
    out: Path | None

    @property
    def detector(self) -> Detector:
        return self.entry.detector

    @property
    def hooks(self):
        return self.registry.hooks

    def combine(self, exposures: Sequence[Exposure], options: Options | None = None
                ) -> CombinedImage:
        return self.hooks.reject_crs(detector=self.detector, exposures=list(exposures),
                                     options=options or self.options)


@dataclass(frozen=True)
class Stage:
    """A named recipe with its declared parameters."""

    name: str
    description: str
    run: Callable[[StageContext], StageResult]
    params: tuple[Param, ...] = ()
    needs_out: str = "file"  # "file", "dir" or "none"
    # Campaigns: what to ask the archive for (``query`` hook purposes), and optionally
    # how to split one chunk into tasks for many workers (see :mod:`hstcal_core.tasks`):
    # ``plan(ctx) -> list[Task]``; ``finish(ctx, outputs) -> StageResult`` runs in the
    # driver after every task of the chunk is done (it may write under ``ctx.out``).
    purposes: tuple[str, ...] = ()
    plan: Callable[[StageContext], list] | None = None
    finish: Callable[[StageContext, Mapping], StageResult] | None = None


# --------------------------------------------------------------------------- parameters
CRREJECT_PARAMS: tuple[Param, ...] = (
    Param("crrejtab", as_optional_path, None,
          "CRREJTAB to take rejection parameters from (row matched on CRSPLIT/MEANEXP)"),
    Param("crsigmas", lambda v: None if v is None else as_float_list(v), None,
          "rejection thresholds per iteration, e.g. 5,4,3 (overrides the table)"),
    Param("crradius", as_optional_float, None, "radius (px) of neighbour rejection"),
    Param("crthresh", as_optional_float, None, "neighbour rejection threshold (fraction of sigma)"),
    Param("initgues", as_optional_str, None, "initial guess: median or minimum",
          choices=(None, "median", "minimum")),
    Param("skysub", as_optional_str, None, "sky subtraction: mode or none",
          choices=(None, "mode", "none")),
    Param("scalense", as_optional_float, None, "multiplicative noise, percent"),
    Param("badinpdq", lambda v: None if v is None else int(v), None,
          "DQ bits excluded from the combination"),
    Param("scale_by_exptime", as_bool, True, "weight images by EXPTIME (False: equal weights)"),
)

CALIBRATE_PARAMS: tuple[Param, ...] = (
    Param("bias", as_optional_path, None, "superbias to subtract (BIASCORR)"),
)

REFFILE_PARAMS: tuple[Param, ...] = (
    Param("useafter", as_optional_str, None,
          "USEAFTER of the product: 'Mon DD YYYY HH:MM:SS' or an MJD; default: first input"),
)


def stage_params(stage_obj: "Stage", entry: DetectorEntry) -> tuple[Param, ...]:
    """The stage's own parameters followed by the plugin's for this detector."""
    params = {p.name: p for p in stage_obj.params}
    for p in entry.stages.get(stage_obj.name, ()):
        params[p.name] = p
    return tuple(params.values())


# --------------------------------------------------------------------------- input helpers
def load_inputs(ctx: StageContext, paths: Sequence[Path] | None = None,
                *, frame: str | None = None) -> list[Exposure]:
    """Read and validate inputs: readable, of this detector, one readout mode.

    Parameters
    ----------
    frame : str, optional
        Required frame type (``"BIAS"`` / ``"DARK"``), checked against the keyword the
        detector declares in ``extra["frame_keyword"]``.
    """
    paths = list(ctx.inputs if paths is None else paths)
    if not paths:
        raise InputError(None, f"stage '{ctx.stage.name}': the input list is empty")
    exposures = [read_exposure(p) for p in paths]
    for exp in exposures:
        check_detector(exp, ctx.detector)
        if frame is not None:
            check_frame(exp, ctx.detector, frame)
    check_same_mode(exposures, ctx.detector)
    return exposures


def check_header_detector(path: Path, primary, detector: Detector) -> None:
    """Raise :class:`InputError` naming ``path`` unless INSTRUME and the detector keyword
    match ``detector``.

    The keyword is DETECTOR unless the plugin names another in
    ``extra["detector_keyword"]`` (NICMOS files say CAMERA = 1, 2 or 3).
    """
    keyword = str(detector.extra.get("detector_keyword", "DETECTOR"))
    inst = str(primary.get("INSTRUME", "")).strip().upper()
    det = str(primary.get(keyword, "")).strip().upper()
    if inst != detector.instrument.upper() or det != str(detector.detector).upper():
        raise InputError(path, f"is INSTRUME={inst or '?'} {keyword}={det or '?'}, not "
                               f"{detector.instrument}/{detector.detector} ({detector.name})")


def check_detector(exposure: Exposure, detector: Detector) -> None:
    """Raise :class:`InputError` unless the exposure's INSTRUME/DETECTOR match ``detector``."""
    check_header_detector(exposure.path, exposure.primary, detector)


def check_frame(exposure: Exposure, detector: Detector, frame: str) -> None:
    keyword = str(detector.extra.get("frame_keyword", "TARGNAME"))
    value = str(exposure.primary.get(keyword, "")).strip().upper()
    if value != frame.upper():
        raise InputError(exposure.path, f"{keyword}={value or '?'}: expected a {frame} frame")


def check_same_mode(exposures: Sequence[Exposure], detector: Detector) -> None:
    """All inputs share the detector's mode keywords (gain, binning, amplifier)."""
    keys = tuple(detector.extra.get("mode_keywords", ()))
    if not keys or not exposures:
        return
    first = exposures[0]
    ref = {k: first.key(k) for k in keys}
    for exp in exposures[1:]:
        for k in keys:
            if exp.key(k) != ref[k]:
                raise InputError(
                    exp.path,
                    f"{k}={exp.key(k)} differs from {k}={ref[k]} of {first.path.name}; "
                    f"one stage combines a single readout mode (mixed {k})")


def _read_reference(ctx: StageContext, name: str, required: bool) -> Exposure | None:
    value = ctx.options.get(name)
    if value is None:
        if required:
            raise ConfigError(f"stage '{ctx.stage.name}' needs --{name.replace('_', '-')} "
                              f"(parameter '{name}')")
        return None
    exp = read_exposure(value)
    check_detector(exp, ctx.detector)
    return exp


def write_reffile(ctx: StageContext, product: Product, out: Path, inputs: Sequence[str]) -> Path:
    """Write a product atomically with provenance (software, parameters, inputs) in HISTORY."""
    header = product.primary.copy()
    add_provenance(header, stage=ctx.stage.name, detector=ctx.detector.name,
                   inputs=inputs, parameters=ctx.options.to_dict(),
                   distributions=[ctx.entry.distribution])
    return write_product(replace(product, primary=header), out)


def _require_out(ctx: StageContext) -> Path:
    if ctx.out is None:
        raise ConfigError(f"stage '{ctx.stage.name}' needs --out")
    return ctx.out


# --------------------------------------------------------------------------- recipes
def calibrate_exposures(ctx: StageContext, exposures: Sequence[Exposure],
                        options: Options | None = None) -> list[Exposure]:
    opts = options or ctx.options
    return [ctx.hooks.calibrate(detector=ctx.detector, exposure=e, options=opts)
            for e in exposures]


def _reffile_recipe(kind: str, frame: str, references: Mapping[str, bool]):
    def run(ctx: StageContext) -> StageResult:
        out = _require_out(ctx)
        refs = {name: _read_reference(ctx, name, required) for name, required in references.items()}
        raw = load_inputs(ctx, frame=frame)
        exposures = calibrate_exposures(ctx, raw)
        inputs = ReffileInputs(exposures=tuple(exposures),
                               references={k: v for k, v in refs.items() if v is not None},
                               combine=ctx.combine)
        product = ctx.hooks.build_reffile(detector=ctx.detector, kind=kind, inputs=inputs,
                                          options=ctx.options)
        path = write_reffile(ctx, product, out, [e.path.name for e in raw])
        log.info("%s written: %s", kind, path)
        return StageResult(ctx.stage.name, ctx.detector.name, products=[path])

    return run


def _run_calibrate(ctx: StageContext) -> StageResult:
    out = _require_out(ctx)
    if len(ctx.inputs) != 1:
        raise ConfigError("stage 'calibrate' takes exactly one input file (one --out file)")
    raw = load_inputs(ctx)
    cal = calibrate_exposures(ctx, raw)[0]
    hdul = _exposure_hdulist(cal)
    add_provenance(hdul[0].header, stage="calibrate", detector=ctx.detector.name,
                   inputs=[raw[0].path.name], parameters=ctx.options.to_dict(),
                   distributions=[ctx.entry.distribution])
    hdul[0].header["FILENAME"] = out.name
    return StageResult("calibrate", ctx.detector.name, products=[write_atomic(hdul, out)])


def _run_crreject(ctx: StageContext) -> StageResult:
    out = _require_out(ctx)
    raw = load_inputs(ctx)
    combined = ctx.combine(calibrate_exposures(ctx, raw))
    product = Product(primary=combined.primary, sci=combined.sci, err=combined.err,
                      dq=combined.dq, sci_header=combined.header,
                      inputs=tuple(combined.rootnames), kind="crj")
    path = write_reffile(ctx, product, out, [e.path.name for e in raw])
    return StageResult("crreject", ctx.detector.name, products=[path],
                       details={"n_rejected": combined.n_rejected,
                                "parameters": combined.parameters})


def _exposure_hdulist(exposure: Exposure):
    import numpy as np
    from astropy.io import fits

    hdus = [fits.PrimaryHDU(header=exposure.primary.copy())]
    for ver, imset in enumerate(exposure.imsets, start=1):
        for name, data in (("SCI", imset.sci), ("ERR", imset.err), ("DQ", imset.dq)):
            hdr = imset.header.copy() if name == "SCI" else fits.Header()
            for key in ("BZERO", "BSCALE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2",
                        "CHECKSUM", "DATASUM"):
                hdr.remove(key, ignore_missing=True, remove_all=True)
            hdr["EXTNAME"] = name
            hdr["EXTVER"] = ver
            array = data.astype(np.uint16) if name == "DQ" else data.astype(np.float32)
            hdus.append(fits.ImageHDU(array, header=hdr))
    hdus[0].header["NEXTEND"] = len(hdus) - 1
    return fits.HDUList(hdus)


def _run_anneal(ctx: StageContext) -> StageResult:
    from .reffiles.anneal_set import run_anneal_set

    return run_anneal_set(ctx)


def _plan_anneal(ctx: StageContext) -> list:
    from .reffiles.anneal_set import plan_anneal

    return plan_anneal(ctx)


def _finish_anneal(ctx: StageContext, outputs: Mapping) -> StageResult:
    from .reffiles.anneal_set import finish_anneal

    return finish_anneal(ctx, outputs)


STAGES: dict[str, Stage] = {}


def _add(stage_obj: Stage) -> None:
    STAGES[stage_obj.name] = stage_obj


_add(Stage("calibrate", "basic calibration of one exposure (overscan, DQ, ERR, bias)",
           _run_calibrate, CALIBRATE_PARAMS))
_add(Stage("crreject", "combine exposures with cosmic-ray rejection (ocrreject's crj)",
           _run_crreject, CALIBRATE_PARAMS + CRREJECT_PARAMS))
_add(Stage("basebias", "baseline superbias of an anneal month (hot columns/pixels smoothed)",
           _reffile_recipe("basebias", "BIAS", {}),
           CRREJECT_PARAMS + REFFILE_PARAMS))
_add(Stage("refbias", "superbias from many biases, hot pixels flagged (DQ 16)",
           _reffile_recipe("refbias", "BIAS", {}),
           CRREJECT_PARAMS + REFFILE_PARAMS))
_add(Stage("weekbias", "weekly superbias: basebias plus this week's hot columns",
           _reffile_recipe("weekbias", "BIAS", {"basebias": True}),
           CRREJECT_PARAMS + REFFILE_PARAMS
           + (Param("basebias", as_optional_path, None, "baseline superbias (required)"),)))
_add(Stage("basedark", "baseline superdark of an anneal month in e-/s, hot pixels flagged",
           _reffile_recipe("basedark", "DARK", {}),
           CALIBRATE_PARAMS + CRREJECT_PARAMS + REFFILE_PARAMS))
_add(Stage("weekdark", "weekly superdark: basedark plus this week's hot pixels",
           _reffile_recipe("weekdark", "DARK", {"basedark": True}),
           CALIBRATE_PARAMS + CRREJECT_PARAMS + REFFILE_PARAMS
           + (Param("basedark", as_optional_path, None, "baseline superdark (required)"),)))
_add(Stage("anneal", "the whole reference-file set of each anneal month in a directory",
           _run_anneal,
           CALIBRATE_PARAMS + CRREJECT_PARAMS
           + (Param("anneal_table", as_optional_path, None,
                    "refstis anneal table (.yml or .db) (required)"),
              Param("bias_thresholds", lambda v: None if v is None else as_threshold_table(v),
                    None, "imsets per week needed for a refbias, by 'gain,bin1,bin2'"),
              Param("period_modes", lambda v: None if v is None else as_period_modes(v), None,
                    "period per gain: {1: WK, 4: BIWK} (weekly / bi-weekly)")),
           needs_out="dir", purposes=("bias", "dark"), plan=_plan_anneal,
           finish=_finish_anneal))


def _run_crstats(ctx: StageContext) -> StageResult:
    from .census.stage import run_crstats

    return run_crstats(ctx)


def _plan_crstats(ctx: StageContext) -> list:
    from .census.stage import plan_crstats

    return plan_crstats(ctx)


def _finish_crstats(ctx: StageContext, outputs: Mapping) -> StageResult:
    from .census.stage import finish_crstats

    return finish_crstats(ctx, outputs)


CRSTATS_PARAMS: tuple[Param, ...] = (
    Param("store", as_optional_path, None, "HDF5 census store to append to (required)"),
    Param("store_batch", as_optional_str, None,
          "batch key of this run in the store (campaigns set it; a committed key is skipped)"),
    Param("grouping", as_optional_str, "auto",
          "rejection groups: 'pairs' (same mode and EXPTIME, consecutive), 'single' (each "
          "file alone) or 'auto' (CR-split files alone, others paired)",
          choices=("auto", "pairs", "single")),
    # A pair loses every CR that overlaps one in its partner (~1/3 of STIS 1100 s darks'
    # CRs touch one); HSTcosmicrays combined up to 30 darks per call.
    Param("group_size", lambda v: int(v), 4,
          "darks combined per rejection group when pairing (2 = strict pairs)"),
    Param("darks_only", as_bool, True,
          "refuse frames whose frame keyword (TARGNAME/IMAGETYP) does not start with DARK"),
    Param("min_cr_size", lambda v: int(v), 3, "smallest cosmic ray kept, pixels (anchor: > 2)"),
    Param("max_cr_size", lambda v: int(v), 100_000,
          "cosmic rays of this many pixels or more are cut (anchor: < 1e5)"),
)

_add(Stage("crstats", "cosmic-ray census of darks: reject, label, measure, append to HDF5",
           _run_crstats, CALIBRATE_PARAMS + CRREJECT_PARAMS + CRSTATS_PARAMS,
           needs_out="none", purposes=("crdark",), plan=_plan_crstats, finish=_finish_crstats))


def _run_lightcurve(ctx: StageContext) -> StageResult:
    from .timetag.stage import run_lightcurve

    return run_lightcurve(ctx)


def _run_composite(ctx: StageContext) -> StageResult:
    from .timetag.stage import run_composite

    return run_composite(ctx)


def _lightcurve_params() -> tuple[Param, ...]:
    from .timetag.stage import LIGHTCURVE_PARAMS

    return LIGHTCURVE_PARAMS


_add(Stage("lightcurve", "TIME-TAG events to a flux-calibrated lightcurve per exposure",
           _run_lightcurve, _lightcurve_params(), needs_out="file", purposes=("timetag",)))
_add(Stage("composite", "TIME-TAG exposures of one target and setup joined (HLSP-named)",
           _run_composite, _lightcurve_params(), needs_out="dir", purposes=("timetag",)))


def _run_drizzle(ctx: StageContext) -> StageResult:
    from .drizzle.stage import run_drizzle

    return run_drizzle(ctx)


def _drizzle_params() -> tuple[Param, ...]:
    from .drizzle.stage import DRIZZLE_PARAMS

    return DRIZZLE_PARAMS


_add(Stage("drizzle", "align and combine dithered exposures: WCS, verification, AstroDrizzle",
           _run_drizzle, _drizzle_params(), needs_out="dir"))


def stage(name: str) -> Stage:
    """Return the stage ``name`` or raise :class:`ConfigError` listing the known ones."""
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError(f"unknown stage '{name}'; stages: {', '.join(sorted(STAGES))}") from None


# --------------------------------------------------------------------------- public API
def run_stage(name: str, *, detector: str, inputs: Sequence[str | Path] = (),
              out: str | Path | None = None, config: str | Path | Mapping | None = None,
              save_config: str | Path | None = None, registry: Registry | None = None,
              **params: Any) -> StageResult:
    """Run one stage for one detector.

    Parameters
    ----------
    name : str
        Stage name (``hstcal stages`` lists them), e.g. ``"weekbias"``.
    detector : str
        Registered detector, e.g. ``"stis_ccd"``.
    inputs : sequence of path
        Input files (or, for ``anneal``, one directory).
    out : path
        Output file (or directory for set-producing stages).
    config : path or mapping, optional
        YAML parameter file (or an already-loaded mapping).
    save_config : path, optional
        Write the effective parameters here (YAML) before running.
    **params
        Stage parameters (highest precedence), e.g. ``basebias="base.fits"``.

    Returns
    -------
    StageResult
    """
    ctx = make_context(name, detector=detector, inputs=inputs, out=out, config=config,
                       save_config=save_config, registry=registry, **params)
    log.info("running stage %s for %s on %d input(s)", name, detector, len(ctx.inputs))
    return ctx.stage.run(ctx)


def make_context(name: str, *, detector: str, inputs: Sequence[str | Path] = (),
                 out: str | Path | None = None, config: str | Path | Mapping | None = None,
                 save_config: str | Path | None = None, registry: Registry | None = None,
                 **params: Any) -> StageContext:
    """The :class:`StageContext` :func:`run_stage` runs (parameters resolved: ``params``
    > ``config`` > plugin defaults > stage defaults)."""
    registry = registry or get_registry()
    stage_obj = stage(name)
    entry = registry.entry(detector)
    entry.require_stage(name)
    if isinstance(config, Mapping):
        config_values, origin = dict(config), "config mapping"
    elif config is not None:
        config_values, origin = load_config(config), str(config)
    else:
        config_values, origin = {}, "config"
    options = resolve_options(stage_params(stage_obj, entry),
                              plugin_defaults=entry.defaults.get(name, {}),
                              config=config_values, config_origin=origin,
                              cli={k: v for k, v in params.items()}, cli_origin="arguments")
    if save_config is not None:
        from .fitsio import atomic_path

        with atomic_path(save_config) as tmp:
            tmp.write_text(options.to_yaml(header=f"hstcal parameters for stage '{name}', "
                                                  f"detector {detector}"))
    return StageContext(registry=registry, entry=entry, stage=stage_obj,
                        inputs=[Path(p) for p in inputs], options=options,
                        out=None if out is None else Path(out))

