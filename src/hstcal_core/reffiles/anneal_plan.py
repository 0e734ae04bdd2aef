"""Planning the ``anneal`` stage from headers alone: one task per reference file of every anneal month.

refstis ``make_pipeline_reffiles`` reorganised: inputs are grouped by anneal month
(from the anneal table), by frame type and by readout mode (gain, binning); each
mode's month is tiled into weeks (``period_modes``: weekly at gain 1, bi-weekly at
gain 4); each week gets a ``refbias`` when it has at least ``bias_thresholds[mode]``
imsets, else a ``weekbias`` on that mode's ``basebias``; darks are bias-subtracted
with their own week's bias, combined into one ``basedark`` per month and one
``weekdark`` per week.

:func:`plan_anneal` turns that recipe into a :class:`ProductSpec` per product, each
built by a :func:`~.anneal_set.build_product` task, and an :class:`AnnealPlan` that
:func:`~.anneal_set.finish_anneal` reads to gather the outcomes.  No pixel data is
read and nothing is written here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputError
from ..fitsio import read_headers
from ..options import Options
from ..registry import Registry
from ..stages import check_header_detector
from ..tasks import Task, TaskOutput
from .anneal import AnnealPeriod, Week, find_period, read_anneal_table, split_period

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
    "report_plan",
]

log = logging.getLogger(__name__)

Mode = tuple[int, int, int]

#: Key of the plan's report task; product keys are ``"<month>/<file>"`` (a "/" always).
PLAN_KEY = "anneal-plan"


@dataclass(frozen=True)
class Frame:
    """Header facts of one raw input, enough to plan the month."""

    path: Path
    kind: str
    mode: Mode
    start_mjd: float
    n_imsets: int
    rootname: str

    @property
    def mode_key(self) -> str:
        return ",".join(map(str, self.mode))


def mode_label(mode: Mode) -> str:
    return f"g{mode[0]}_{mode[1]}x{mode[2]}"


def describe_frame(path: Path, detector) -> Frame:
    """Read headers only and classify one input (raises InputError with the reason)."""
    primary, sci = read_headers(path)
    check_header_detector(path, primary, detector)
    keyword = str(detector.extra.get("frame_keyword", "TARGNAME"))
    kind = str(primary.get(keyword, "")).strip().upper()
    try:
        mode = (int(primary[detector.gain_keyword]), int(primary.get("BINAXIS1", 1)),
                int(primary.get("BINAXIS2", 1)))
    except (KeyError, ValueError) as exc:
        raise InputError(path, f"readout mode keywords missing or invalid ({exc})") from None
    start = primary.get("TEXPSTRT", sci[0].get("EXPSTART"))
    if start is None:
        raise InputError(path, "has neither TEXPSTRT nor EXPSTART")
    root = str(primary.get("ROOTNAME", path.name.split("_")[0])).strip().lower()
    return Frame(path, kind, mode, float(start), len(sci), root)


def collect_inputs(paths: Sequence[Path]) -> list[Path]:
    """Raw files named on the command line or found (``*_raw.fits[.gz]``) in directories."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(q for q in p.iterdir()
                                if q.name.endswith(("_raw.fits", "_raw.fits.gz"))))
        elif p.exists():
            found.append(p)
        else:
            raise InputError(p, "does not exist")
    return found


@dataclass(frozen=True)
class BiasChoice:
    """The superbias that calibrates one dark: the product of the first task of ``keys``
    that made one (its week's refbias/weekbias, then the mode's basebias)."""

    keys: tuple[str, ...]
    missing: str  # the failure reason when none of them did


@dataclass(frozen=True)
class ProductSpec:
    """One product of an anneal month, planned from headers; what :func:`~.anneal_set.build_product` builds.

    Attributes
    ----------
    kind : str
        ``basebias``, ``refbias``, ``weekbias``, ``basedark`` or ``weekdark``.
    name : str
        File name in the month's directory.
    month : str
        Name of the anneal month (messages and failure labels).
    frames : tuple of Frame
        Inputs, in input order.
    start_mjd, end_mjd : float
        Period the product serves: its week, or the whole month.
    week : str or None
        Week tag (``wk02``, ``biwk01``); None for month-wide products.
    references : tuple of (str, str)
        ``(reference, task key)``, e.g. ``("basebias", "<month>/basebias_g1_1x1_bia.fits")``.
    missing_reference : str or None
        Failure reason when a reference task made no product; None gives up quietly
        (a weekdark whose basedark failed: the basedark's failure is the report).
    bias : tuple of BiasChoice or None
        Darks: the superbias of each frame.  A frame without one is left out.
    missing_bias_fails : bool
        Record a frame without a superbias as failed (the basedark does; its weekdark
        leaves the frame out quietly, so each frame fails once).
    no_frames : (str, str) or None
        What to record as skipped when no frame has a superbias.
    left_out : tuple of (str, str)
        Inputs left out on purpose, recorded as skipped when the product is attempted.
    unless_built : tuple of str
        Attempt the product only if one of these tasks made no product (a basebias
        needed only where a week's own bias failed).
    """

    kind: str
    name: str
    month: str
    frames: tuple[Frame, ...]
    start_mjd: float
    end_mjd: float
    week: str | None = None
    references: tuple[tuple[str, str], ...] = ()
    missing_reference: str | None = None
    bias: tuple[BiasChoice, ...] | None = None
    missing_bias_fails: bool = False
    no_frames: tuple[str, str] | None = None
    left_out: tuple[tuple[str, str], ...] = ()
    unless_built: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    """A failure or skip known at planning time, recorded just before the product at
    ``position`` of the month (after the last one if ``position == len(keys)``)."""

    position: int
    kind: str  # "failures" or "skipped"
    what: str
    reason: str
    if_built: str | None = None  # only if this task made its product
    unless_built: tuple[str, ...] = ()  # only if one of these tasks made none


@dataclass(frozen=True)
class MonthPlan:
    """One anneal month: its product task keys in build order and its planning notes."""

    period: AnnealPeriod
    keys: tuple[str, ...]
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class AnnealPlan:
    """What :func:`~.anneal_set.finish_anneal` needs besides the task outputs: the months, and the
    inputs that fell in none (failed description, neither BIAS nor DARK, no month)."""

    months: tuple[MonthPlan, ...]
    failures: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


SINGLE_IMSET = "single-imset bias cannot be CR-rejected alone; left out of the basebias"


class _MonthPlanner:
    """Plans the products of one anneal month in the order the recipe builds them."""

    def __init__(self, period: AnnealPeriod, frames: list[Frame], *, detector: str,
                 options: Options, out_dir: Path, registry: Registry | None):
        self.period = period
        self.frames = frames
        self.detector = detector
        self.options = options
        self.out_dir = out_dir
        self.registry = registry
        self.tasks: list[Task] = []
        self.notes: list[Note] = []
        self.basebias: dict[Mode, str | None] = {}
        self.week_bias: dict[tuple[Mode, int], str] = {}
        self.thresholds: Mapping[str, int] = options.get("bias_thresholds") or {}
        self.period_modes: Mapping[str, str] = options.get("period_modes") or {}
        if not self.thresholds or not self.period_modes:
            raise ConfigError("stage 'anneal' needs parameters 'bias_thresholds' and "
                              "'period_modes' (the detector's plugin normally supplies them)")

    # -- helpers ------------------------------------------------------------
    def weeks(self, mode: Mode) -> list[Week]:
        try:
            period_mode = self.period_modes[str(mode[0])]
        except KeyError:
            raise ConfigError(f"period_modes has no entry for gain {mode[0]}; "
                              f"known: {sorted(self.period_modes)}") from None
        return split_period(self.period, period_mode)

    def note(self, kind: str, what: str, reason: str, **condition) -> None:
        self.notes.append(Note(len(self.tasks), kind, what, reason, **condition))

    def spec(self, kind: str, name: str, frames: Sequence[Frame], week: Week | None,
             **more) -> ProductSpec:
        span = week or self.period
        return ProductSpec(kind=kind, name=name, month=self.period.name, frames=tuple(frames),
                           start_mjd=span.start_mjd, end_mjd=span.end_mjd,
                           week=week.tag if week else None, **more)

    def add(self, spec: ProductSpec, deps: Sequence[str] = ()) -> str:
        """Add the task building ``spec``; return its key."""
        # anneal_set imports this module, so its build_product is looked up here, at
        # planning time, never bound at import: replacing anneal_set.build_product
        # (as tests do) changes the tasks planned afterwards.
        from . import anneal_set

        kwargs = {"detector": self.detector, "options": self.options, "spec": spec,
                  "out_dir": str(self.out_dir)}
        if self.registry is not None:
            kwargs["registry"] = self.registry
        key = f"{self.period.name}/{spec.name}"
        self.tasks.append(Task(key, anneal_set.build_product, kwargs, tuple(dict.fromkeys(deps))))
        return key

    # -- the month -------------------------------------------------------------
    def plan(self) -> MonthPlan:
        by_kind: dict[str, dict[Mode, list[Frame]]] = defaultdict(lambda: defaultdict(list))
        for f in self.frames:
            by_kind[f.kind][f.mode].append(f)
        for mode, frames in sorted(by_kind.get("BIAS", {}).items()):
            self.plan_biases(mode, frames)
        for mode, frames in sorted(by_kind.get("DARK", {}).items()):
            self.plan_darks(mode, frames, by_kind.get("BIAS", {}).get(mode, []))
        return MonthPlan(self.period, tuple(t.key for t in self.tasks), tuple(self.notes))

    def plan_basebias(self, mode: Mode, bias_frames: Sequence[Frame],
                      unless_built: tuple[str, ...] = ()) -> str | None:
        """The mode's basebias task (planned once), or None if no frame can make one."""
        if mode not in self.basebias:
            usable = [f for f in bias_frames if f.n_imsets >= 2]
            left_out = tuple((str(f.path), SINGLE_IMSET) for f in bias_frames if f.n_imsets < 2)
            if usable:
                spec = self.spec("basebias", f"basebias_{mode_label(mode)}_bia.fits", usable,
                                 None, left_out=left_out, unless_built=unless_built)
                self.basebias[mode] = self.add(spec, deps=unless_built)
            else:
                for what, reason in left_out:
                    self.note("skipped", what, reason, unless_built=unless_built)
                self.basebias[mode] = None
        return self.basebias[mode]

    def plan_biases(self, mode: Mode, frames: list[Frame]) -> None:
        threshold = self.thresholds.get(",".join(map(str, mode)))
        if threshold is None:
            for f in frames:
                self.note("failures", str(f.path), f"no imset threshold for readout mode {mode} "
                                                   f"in bias_thresholds {dict(self.thresholds)}")
            return
        for week in self.weeks(mode):
            week_frames = [f for f in frames if week.contains(f.start_mjd)]
            if not week_frames:
                self.note("skipped", f"{self.period.name} {mode_label(mode)} {week.tag}",
                          "no bias frames in this period")
                continue
            n_imsets = sum(f.n_imsets for f in week_frames)
            name = f"{mode_label(mode)}_{week.tag}_bia.fits"
            if n_imsets >= threshold:
                key = self.add(self.spec("refbias", "refbias_" + name, week_frames, week))
            else:
                base = self.plan_basebias(mode, frames)
                if base is None:
                    self.note("failures", f"{self.period.name}/weekbias_{name}",
                              "no basebias could be built for this mode")
                    continue
                key = self.add(self.spec("weekbias", "weekbias_" + name, week_frames, week,
                                         references=(("basebias", base),),
                                         missing_reference="no basebias could be built for "
                                                           "this mode"),
                               deps=[base])
            self.week_bias[(mode, week.number)] = key

    def plan_darks(self, mode: Mode, frames: list[Frame], bias_frames: list[Frame]) -> None:
        weeks = self.weeks(mode)
        label = mode_label(mode)
        week_of = [next(w for w in weeks if w.contains(f.start_mjd)) for f in frames]
        own = [self.week_bias.get((mode, w.number)) for w in week_of]
        base = None
        if bias_frames:
            # A dark falls back to the basebias when its week has no bias (planned, or
            # built): where every week has one planned, the basebias is a fallback only.
            fallback_only = () if None in own else tuple(dict.fromkeys(own))
            base = self.plan_basebias(mode, bias_frames, unless_built=fallback_only)
        choices = [BiasChoice(tuple(k for k in (week_key, base) if k is not None),
                              f"no superbias of mode {label} for {w.tag} of {self.period.name}")
                   for week_key, w in zip(own, week_of)]
        basedark = self.add(self.spec("basedark", f"basedark_{label}_drk.fits", frames, None,
                                      bias=tuple(choices), missing_bias_fails=True),
                            deps=[k for c in choices for k in c.keys])
        for week in weeks:
            members = [i for i, w in enumerate(week_of) if w.number == week.number]
            what = f"{self.period.name} {label} {week.tag}"
            if not members:
                self.note("skipped", what, "no dark frames in this period", if_built=basedark)
                continue
            self.add(self.spec("weekdark", f"weekdark_{label}_{week.tag}_drk.fits",
                               [frames[i] for i in members], week,
                               references=(("basedark", basedark),),
                               bias=tuple(choices[i] for i in members),
                               no_frames=(what, "no dark frames in this period")),
                     deps=[basedark, *(k for i in members for k in choices[i].keys)])


def plan_anneal(ctx, *, registry: Registry | None = None) -> list[Task]:
    """Plan every product of every anneal month among ``ctx.inputs``, reading headers only.

    Parameters
    ----------
    ctx : StageContext
        The ``anneal`` stage's context (inputs, options, ``out`` directory).
    registry : Registry, optional
        Handed to every task, for runs in this process only (a registry does not
        pickle); without it each task uses its process's :func:`get_registry`.

    Returns
    -------
    list of Task
        The report task :data:`PLAN_KEY` (the months and the inputs that fell in
        none), then one :func:`~.anneal_set.build_product` task per product, keyed
        ``"<month>/<file>"``, in the order the products were always built.
    """
    if ctx.out is None:
        raise ConfigError("stage 'anneal' needs --out DIR")
    table = ctx.options.get("anneal_table")
    if not table:
        raise ConfigError("stage 'anneal' needs --anneal-table (parameter 'anneal_table')")
    periods = read_anneal_table(table)
    if not ctx.inputs:
        raise InputError(None, "stage 'anneal': no input directory or files given")
    files = collect_inputs(ctx.inputs)
    if not files:
        raise InputError(ctx.inputs[0], "no *_raw.fits files found")
    failures: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    months: dict[int, tuple[AnnealPeriod, list[Frame]]] = {}
    for path in files:
        try:
            frame = describe_frame(path, ctx.detector)
        except InputError as exc:
            failures.append((str(path), exc.problem))
            continue
        if frame.kind not in ("BIAS", "DARK"):
            skipped.append((str(path), f"frame type {frame.kind!r} is neither BIAS nor DARK"))
            continue
        period = find_period(periods, frame.start_mjd)
        if period is None:
            skipped.append((str(path), f"start MJD {frame.start_mjd:.5f} is in no anneal "
                                       f"month of {Path(table).name}"))
            continue
        months.setdefault(period.index, (period, []))[1].append(frame)
    month_plans: list[MonthPlan] = []
    tasks: list[Task] = []
    for index in sorted(months):
        period, frames = months[index]
        log.info("anneal month %s: %d frames", period.name, len(frames))
        planner = _MonthPlanner(period, frames, detector=ctx.detector.name, options=ctx.options,
                                out_dir=ctx.out / period.name, registry=registry)
        month_plans.append(planner.plan())
        tasks.extend(planner.tasks)
    plan = AnnealPlan(tuple(month_plans), tuple(failures), tuple(skipped))
    return [Task(PLAN_KEY, report_plan, {"plan": plan}), *tasks]


def report_plan(*, plan: AnnealPlan) -> TaskOutput:
    """Task: no work; carries the plan to :func:`~.anneal_set.finish_anneal` (and the inputs in no month)."""
    return TaskOutput(failures=list(plan.failures), skipped=list(plan.skipped), value=plan)
