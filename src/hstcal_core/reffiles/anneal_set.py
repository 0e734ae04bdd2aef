"""The ``anneal`` stage: every reference file of every anneal month found in a directory.

refstis ``make_pipeline_reffiles`` reorganised: inputs are grouped by anneal month
(from the anneal table), by frame type and by readout mode (gain, binning); each
mode's month is tiled into weeks (``period_modes``: weekly at gain 1, bi-weekly at
gain 4); each week gets a ``refbias`` when it has at least ``bias_thresholds[mode]``
imsets, else a ``weekbias`` on that mode's ``basebias``; darks are bias-subtracted
with their own week's bias, combined into one ``basedark`` per month and one
``weekdark`` per week.

Nothing is moved or modified in the input directory (refstis moved files around).
A failed input is recorded with its reason and the month goes on; products that
already exist are kept, so a rerun resumes where a crash stopped.

The month is planned from headers alone (:func:`plan_anneal`, in
:mod:`.anneal_plan`) into one task per product (:func:`build_product`), so a
campaign can spread a month over workers; :func:`finish_anneal` gathers the
outcomes in plan order, whatever order the tasks ran in, and writes each month's
``manifest.json``.  :func:`run_anneal_set` runs the same plan in this process.
The planning names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError, HstcalError, InputError
from ..fitsio import atomic_path, read_exposure
from ..options import Options
from ..registry import Registry, get_registry
from ..stages import (
    ReffileInputs,
    StageContext,
    StageResult,
    check_frame,
    check_same_mode,
    stage,
    write_reffile,
)
from ..tasks import TaskOutput, run_serially
from .anneal import AnnealPeriod
from .anneal_plan import (  # noqa: F401  (the planning names, re-exported)
    PLAN_KEY,
    SINGLE_IMSET,
    AnnealPlan,
    BiasChoice,
    Frame,
    Mode,
    MonthPlan,
    Note,
    ProductSpec,
    collect_inputs,
    describe_frame,
    mode_label,
    plan_anneal,
    report_plan,
)
from .headers import useafter

__all__ = [
    "PLAN_KEY",
    "Frame",
    "BiasChoice",
    "ProductSpec",
    "Note",
    "MonthPlan",
    "AnnealPlan",
    "describe_frame",
    "collect_inputs",
    "plan_anneal",
    "build_product",
    "report_plan",
    "finish_anneal",
    "run_anneal_set",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- one product
def _product(outputs: Mapping[str, TaskOutput], key: str) -> Path | None:
    """The file a task made, or None (it failed, was not needed, or did not run)."""
    out = outputs.get(key)
    if isinstance(out, TaskOutput) and out.products:
        return Path(out.products[0])
    return None


def _fail(result: TaskOutput, month: str, what: str, reason: str) -> None:
    log.warning("anneal %s: %s: %s", month, what, reason)
    result.failures.append((what, reason))


def build_product(*, detector: str, options: Options, spec: ProductSpec, out_dir: str,
                  deps: Mapping[str, TaskOutput] | None = None,
                  registry: Registry | None = None) -> TaskOutput:
    """Task: build one product of an anneal month in ``out_dir``, or keep it if it exists.

    Expected problems — unreadable or wrong inputs, a failed combination, a dependency
    that made no product — are returned as failures, never raised, so the tasks that
    depend on this one still run and fall back as the recipe says.

    Parameters
    ----------
    detector : str
        Registered detector name.
    options : Options
        The stage's options.
    spec : ProductSpec
        What to build, from :func:`plan_anneal`.
    out_dir : str
        The month's directory.
    deps : mapping, optional
        Outputs of the tasks in ``spec`` (references, superbiases of the darks).
    registry : Registry, optional
        Plugins to use; default :func:`get_registry` (a worker has no driver state).

    Returns
    -------
    TaskOutput
        ``products``: the file (built or kept); ``processed``: inputs used;
        ``failures``/``skipped``; ``records``: the product's manifest record.
    """
    registry = registry or get_registry()
    ctx = StageContext(registry=registry, entry=registry.entry(detector), stage=stage("anneal"),
                       inputs=[f.path for f in spec.frames], options=options, out=Path(out_dir))
    deps = deps or {}
    result = TaskOutput()
    if spec.unless_built and all(_product(deps, k) for k in spec.unless_built):
        return result  # every week's own bias was built: no dark needs this fallback
    references: dict[str, Path] = {}
    for name, key in spec.references:
        path = _product(deps, key)
        if path is None:
            if spec.missing_reference:
                _fail(result, spec.month, f"{spec.month}/{spec.name}", spec.missing_reference)
            return result
        references[name] = path
    frames, bias_for = list(spec.frames), None
    if spec.bias is not None:
        frames, bias_for = [], {}
        for frame, choice in zip(spec.frames, spec.bias):
            bias = next(filter(None, (_product(deps, k) for k in choice.keys)), None)
            if bias is None:
                if spec.missing_bias_fails:
                    _fail(result, spec.month, str(frame.path), choice.missing)
                continue
            bias_for[frame.path] = bias
            frames.append(frame)
        if not frames:
            if spec.no_frames:
                result.skipped.append(spec.no_frames)
            return result
    result.skipped.extend(spec.left_out)
    _build(ctx, spec, frames, references, bias_for, result)
    return result


def _build(ctx, spec: ProductSpec, frames: Sequence[Frame], references: Mapping[str, Path],
           bias_for: Mapping[Path, Path] | None, result: TaskOutput) -> None:
    out = ctx.out / spec.name
    record = {"kind": spec.kind, "file": spec.name, "inputs": sorted(f.rootname for f in frames),
              "mode": frames[0].mode_key if frames else None, "week": spec.week,
              "period_start_mjd": spec.start_mjd, "period_end_mjd": spec.end_mjd}
    if out.exists():
        log.info("anneal %s: %s exists, kept", spec.month, spec.name)
        result.records.append({**record, "status": "kept"})
        result.products.append(out)
        return
    frame_kind = "BIAS" if "bias" in spec.kind else "DARK"
    try:
        read = []
        for f in frames:
            try:
                read.append(read_exposure(f.path))
            except InputError as exc:
                _fail(result, spec.month, str(f.path), exc.problem)
        raw = []
        for exp in read:
            try:
                check_frame(exp, ctx.detector, frame_kind)
                raw.append(exp)
            except InputError as exc:
                _fail(result, spec.month, str(exp.path), exc.problem)
        if not raw:
            raise InputError(None, "no usable input frames")
        check_same_mode(raw, ctx.detector)
        refs = {k: read_exposure(v) for k, v in references.items()}
        calibrated, used = [], []
        for exp in raw:
            opts = ctx.options
            if bias_for is not None:
                opts = opts.replace(bias=str(bias_for[exp.path]))
            try:
                calibrated.append(ctx.hooks.calibrate(detector=ctx.detector, exposure=exp,
                                                      options=opts))
                used.append(str(exp.path))
            except InputError as exc:
                _fail(result, spec.month, str(exp.path), exc.problem)
        if not calibrated:
            raise InputError(None, "every input failed calibration")
        span = (spec.start_mjd, spec.end_mjd)
        inputs = ReffileInputs(exposures=tuple(calibrated), references=refs,
                               combine=ctx.combine, period=span)
        options = ctx.options if ctx.options.get("useafter") else ctx.options.replace(
            useafter=useafter(span[0]))
        product = ctx.hooks.build_reffile(detector=ctx.detector, kind=spec.kind, inputs=inputs,
                                          options=options)
        path = write_reffile(ctx, product, out, [e.path.name for e in raw])
    except HstcalError as exc:
        _fail(result, spec.month, f"{spec.month}/{spec.name}", str(exc))
        result.records.append({**record, "status": "failed", "reason": str(exc)})
        return
    result.records.append({**record, "status": "built",
                           "inputs": sorted(e.rootname for e in raw)})
    result.products.append(path)
    result.processed.extend(used)
    log.info("anneal %s: built %s from %d frame(s)", spec.month, spec.name, len(raw))


# --------------------------------------------------------------------------- the driver
def _record_notes(result: StageResult, notes: Sequence[Note], month: str,
                  outputs: Mapping[str, TaskOutput]) -> None:
    for note in notes:
        if note.if_built is not None and _product(outputs, note.if_built) is None:
            continue
        if note.unless_built and all(_product(outputs, k) for k in note.unless_built):
            continue
        if note.kind == "failures":
            log.warning("anneal %s: %s: %s", month, note.what, note.reason)
        getattr(result, note.kind).append((note.what, note.reason))


def finish_anneal(ctx, outputs: Mapping[str, TaskOutput]) -> StageResult:
    """Gather a run of :func:`plan_anneal`'s tasks: every month's ``manifest.json`` and the result.

    Outcomes are taken in plan order, not in the order tasks finished, so a serial
    run, a parallel run and a rerun write the same manifests.
    """
    if ctx.out is None:
        raise ConfigError("stage 'anneal' needs --out DIR")
    report = outputs.get(PLAN_KEY)
    if not isinstance(report, TaskOutput) or not isinstance(report.value, AnnealPlan):
        raise RuntimeError(f"anneal: no plan among the task outputs (task {PLAN_KEY!r})")
    plan: AnnealPlan = report.value
    result = StageResult("anneal", ctx.detector.name, failures=list(report.failures),
                         skipped=list(report.skipped))
    ctx.out.mkdir(parents=True, exist_ok=True)
    for month in plan.months:
        notes: dict[int, list[Note]] = defaultdict(list)
        for note in month.notes:
            notes[note.position].append(note)
        records: list[dict] = []
        for position, key in enumerate(month.keys):
            _record_notes(result, notes[position], month.period.name, outputs)
            out = outputs.get(key)
            if not isinstance(out, TaskOutput):
                result.failures.append((key, "task did not run" if out is None
                                        else f"task failed: {out}"))
                continue
            result.products.extend(out.products)
            result.failures.extend(out.failures)
            result.skipped.extend(out.skipped)
            records.extend(out.records)
        _record_notes(result, notes[len(month.keys)], month.period.name, outputs)
        _write_manifest(ctx.out / month.period.name, month.period, records)
    result.details["months"] = [m.period.name for m in plan.months]
    return result


def _write_manifest(month_dir: Path, period: AnnealPeriod, records: list[dict]) -> None:
    manifest = {
        "period": {"index": period.index, "name": period.name,
                   "start_mjd": period.start_mjd, "end_mjd": period.end_mjd,
                   "start": useafter(period.start_mjd), "end": useafter(period.end_mjd)},
        "products": records,
    }
    with atomic_path(month_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def run_anneal_set(ctx):
    """Stage recipe: ``hstcal run --stage anneal --anneal-table T INPUT_DIR --out DIR``."""
    return finish_anneal(ctx, run_serially(plan_anneal(ctx, registry=ctx.registry)))
