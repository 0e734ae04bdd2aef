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
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, HstcalError, InputError
from ..fitsio import atomic_path, read_exposure, read_headers
from ..images import Exposure
from ..stages import (
    ReffileInputs,
    StageResult,
    check_frame,
    check_header_detector,
    check_same_mode,
    write_reffile,
)
from .anneal import AnnealPeriod, Week, find_period, read_anneal_table, split_period
from .headers import useafter

__all__ = ["Frame", "describe_frame", "collect_inputs", "run_anneal_set"]

log = logging.getLogger(__name__)

Mode = tuple[int, int, int]


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


# --------------------------------------------------------------------------- the month
class _Month:
    """Builds the products of one anneal month, recording outcomes in ``result``."""

    def __init__(self, ctx, period: AnnealPeriod, frames: list[Frame], out_dir: Path, result):
        self.ctx = ctx
        self.period = period
        self.frames = frames
        self.out_dir = out_dir
        self.result = result
        self.records: list[dict] = []
        self.basebias: dict[Mode, Path | None] = {}
        self.week_bias: dict[tuple[Mode, int], Path] = {}
        opts = ctx.options
        self.thresholds: Mapping[str, int] = opts.get("bias_thresholds") or {}
        self.period_modes: Mapping[str, str] = opts.get("period_modes") or {}
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

    def _read(self, frames: Sequence[Frame]) -> list[Exposure]:
        """Read inputs; a bad one is recorded as failed and left out."""
        good = []
        for f in frames:
            try:
                good.append(read_exposure(f.path))
            except InputError as exc:
                self.fail(str(f.path), exc.problem)
        return good

    def fail(self, what: str, reason: str) -> None:
        log.warning("anneal %s: %s: %s", self.period.name, what, reason)
        self.result.failures.append((what, reason))

    def build(self, kind: str, name: str, frames: Sequence[Frame], *, window: Week | None,
              references: Mapping[str, Path] | None = None,
              bias_for: Mapping[Path, Path] | None = None) -> Path | None:
        """Build one product (or reuse it if it already exists); None if it failed."""
        out = self.out_dir / name
        record = {"kind": kind, "file": name, "inputs": sorted(f.rootname for f in frames),
                  "mode": frames[0].mode_key if frames else None,
                  "week": window.tag if window else None,
                  "period_start_mjd": window.start_mjd if window else self.period.start_mjd,
                  "period_end_mjd": window.end_mjd if window else self.period.end_mjd}
        if out.exists():
            log.info("anneal %s: %s exists, kept", self.period.name, name)
            self.records.append({**record, "status": "kept"})
            self.result.products.append(out)
            return out
        ctx = self.ctx
        frame_kind = "BIAS" if "bias" in kind else "DARK"
        try:
            raw = []
            for exp in self._read(frames):
                try:
                    check_frame(exp, ctx.detector, frame_kind)
                    raw.append(exp)
                except InputError as exc:
                    self.fail(str(exp.path), exc.problem)
            if not raw:
                raise InputError(None, "no usable input frames")
            check_same_mode(raw, ctx.detector)
            refs = {k: read_exposure(v) for k, v in (references or {}).items()}
            calibrated = []
            for exp in raw:
                opts = ctx.options
                if bias_for is not None:
                    opts = opts.replace(bias=str(bias_for[exp.path]))
                try:
                    calibrated.append(ctx.hooks.calibrate(detector=ctx.detector, exposure=exp,
                                                          options=opts))
                except InputError as exc:
                    self.fail(str(exp.path), exc.problem)
            if not calibrated:
                raise InputError(None, "every input failed calibration")
            span = (window.start_mjd, window.end_mjd) if window else (
                self.period.start_mjd, self.period.end_mjd)
            inputs = ReffileInputs(exposures=tuple(calibrated), references=refs,
                                   combine=ctx.combine, period=span)
            options = ctx.options if ctx.options.get("useafter") else ctx.options.replace(
                useafter=useafter(span[0]))
            product = ctx.hooks.build_reffile(detector=ctx.detector, kind=kind, inputs=inputs,
                                              options=options)
            path = write_reffile(ctx, product, out, [e.path.name for e in raw])
        except HstcalError as exc:
            self.fail(f"{self.period.name}/{name}", str(exc))
            self.records.append({**record, "status": "failed", "reason": str(exc)})
            return None
        self.records.append({**record, "status": "built",
                             "inputs": sorted(e.rootname for e in raw)})
        self.result.products.append(path)
        log.info("anneal %s: built %s from %d frame(s)", self.period.name, name, len(raw))
        return path

    def basebias_for(self, mode: Mode, bias_frames: Sequence[Frame]) -> Path | None:
        if mode not in self.basebias:
            usable = [f for f in bias_frames if f.n_imsets >= 2]
            for f in bias_frames:
                if f.n_imsets < 2:
                    self.result.skipped.append(
                        (str(f.path), "single-imset bias cannot be CR-rejected alone; "
                                      "left out of the basebias"))
            self.basebias[mode] = (self.build("basebias", f"basebias_{mode_label(mode)}_bia.fits",
                                              usable, window=None)
                                   if usable else None)
        return self.basebias[mode]

    # -- the month -------------------------------------------------------------
    def run(self) -> None:
        by_kind: dict[str, dict[Mode, list[Frame]]] = defaultdict(lambda: defaultdict(list))
        for f in self.frames:
            by_kind[f.kind][f.mode].append(f)
        for mode, frames in sorted(by_kind.get("BIAS", {}).items()):
            self.run_biases(mode, frames)
        for mode, frames in sorted(by_kind.get("DARK", {}).items()):
            self.run_darks(mode, frames, by_kind.get("BIAS", {}).get(mode, []))
        self.write_manifest()

    def run_biases(self, mode: Mode, frames: list[Frame]) -> None:
        threshold = self.thresholds.get(",".join(map(str, mode)))
        if threshold is None:
            for f in frames:
                self.fail(str(f.path), f"no imset threshold for readout mode {mode} in "
                                       f"bias_thresholds {dict(self.thresholds)}")
            return
        for week in self.weeks(mode):
            week_frames = [f for f in frames if week.contains(f.start_mjd)]
            if not week_frames:
                self.result.skipped.append((f"{self.period.name} {mode_label(mode)} {week.tag}",
                                            "no bias frames in this period"))
                continue
            n_imsets = sum(f.n_imsets for f in week_frames)
            name = f"{mode_label(mode)}_{week.tag}_bia.fits"
            if n_imsets >= threshold:
                path = self.build("refbias", "refbias_" + name, week_frames, window=week)
            else:
                base = self.basebias_for(mode, frames)
                if base is None:
                    self.fail(f"{self.period.name}/weekbias_{name}",
                              "no basebias could be built for this mode")
                    continue
                path = self.build("weekbias", "weekbias_" + name, week_frames, window=week,
                                  references={"basebias": base})
            if path is not None:
                self.week_bias[(mode, week.number)] = path

    def run_darks(self, mode: Mode, frames: list[Frame], bias_frames: list[Frame]) -> None:
        weeks = self.weeks(mode)
        bias_of: dict[Path, Path] = {}
        usable: list[Frame] = []
        for f in frames:
            week = next(w for w in weeks if w.contains(f.start_mjd))
            bias = self.week_bias.get((mode, week.number))
            if bias is None and bias_frames:
                bias = self.basebias_for(mode, bias_frames)
            if bias is None:
                self.fail(str(f.path), f"no superbias of mode {mode_label(mode)} for "
                                       f"{week.tag} of {self.period.name}")
                continue
            bias_of[f.path] = bias
            usable.append(f)
        if not usable:
            return
        label = mode_label(mode)
        basedark = self.build("basedark", f"basedark_{label}_drk.fits", usable, window=None,
                              bias_for=bias_of)
        if basedark is None:
            return
        for week in weeks:
            week_frames = [f for f in usable if week.contains(f.start_mjd)]
            if not week_frames:
                self.result.skipped.append((f"{self.period.name} {label} {week.tag}",
                                            "no dark frames in this period"))
                continue
            self.build("weekdark", f"weekdark_{label}_{week.tag}_drk.fits", week_frames,
                       window=week, references={"basedark": basedark}, bias_for=bias_of)

    def write_manifest(self) -> None:
        manifest = {
            "period": {"index": self.period.index, "name": self.period.name,
                       "start_mjd": self.period.start_mjd, "end_mjd": self.period.end_mjd,
                       "start": useafter(self.period.start_mjd),
                       "end": useafter(self.period.end_mjd)},
            "products": self.records,
        }
        with atomic_path(self.out_dir / "manifest.json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def run_anneal_set(ctx):
    """Stage recipe: ``hstcal run --stage anneal --anneal-table T INPUT_DIR --out DIR``."""
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
    result = StageResult("anneal", ctx.detector.name)
    months: dict[int, tuple[AnnealPeriod, list[Frame]]] = {}
    for path in files:
        try:
            frame = describe_frame(path, ctx.detector)
        except InputError as exc:
            result.failures.append((str(path), exc.problem))
            continue
        if frame.kind not in ("BIAS", "DARK"):
            result.skipped.append((str(path), f"frame type {frame.kind!r} is neither BIAS nor DARK"))
            continue
        period = find_period(periods, frame.start_mjd)
        if period is None:
            result.skipped.append((str(path), f"start MJD {frame.start_mjd:.5f} is in no anneal "
                                              f"month of {Path(table).name}"))
            continue
        months.setdefault(period.index, (period, []))[1].append(frame)
    ctx.out.mkdir(parents=True, exist_ok=True)
    for index in sorted(months):
        period, frames = months[index]
        log.info("anneal month %s: %d frames", period.name, len(frames))
        _Month(ctx, period, frames, ctx.out / period.name, result).run()
    result.details["months"] = [months[i][0].name for i in sorted(months)]
    return result
