"""Stages ``lightcurve`` and ``composite``: event files in, lightcurve products out.

``lightcurve``: each exposure (its event files grouped by rootname: COS corrtag_a +
corrtag_b, rawtag, STIS tag) is read by the detector's ``calibrate`` hook into an
:class:`~hstcal_core.timetag.events.EventList`, binned by the ``measure`` hook, and
written as ``<rootname>_curve.fits``.  ``composite``: exposures of one (instrument,
detector, target, grating, cenwave, aperture) are binned over their common wavelength
range and joined in time into one HLSP-named product (hstlc's composites, keeping
every input).  A failed exposure is recorded with its reason; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from astropy.io import fits

from ..errors import ConfigError, HstcalError, InputError
from ..options import (Options, Param, as_bool, as_optional_float, as_optional_path,
                       option_value)
from .events import EventList, TimeTagInput, group_inputs
from .lightcurve import (Lightcurve, LightcurveSpec, concatenate, make_lightcurve,
                         wavelength_range)
from .products import curve_hdulist, curve_name, hlsp_name, write_curve
from .variability import Periodogram, Variability, periodogram, variability

__all__ = ["LIGHTCURVE_PARAMS", "Curve", "lightcurve_spec", "read_events", "build_curve",
           "composite_key", "build_composite", "run_lightcurve", "run_composite",
           "CompositeKey", "HLSP_KEYWORDS"]

log = logging.getLogger(__name__)


def _as_airglow(value: Any) -> tuple[tuple[float, float], ...] | None:
    """None/'default' (by grating), 'none' (no mask), or a list of [lo, hi] pairs."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "default"):
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return ()
    try:
        pairs = tuple((float(lo), float(hi)) for lo, hi in value)
    except (TypeError, ValueError):
        raise ValueError(f"airglow must be 'default', 'none' or a list of [lo, hi] "
                         f"windows in Angstrom; got {value!r}") from None
    if any(hi <= lo for lo, hi in pairs):
        raise ValueError(f"airglow windows need lo < hi; got {value!r}")
    return pairs


def _as_optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _as_step(value: Any) -> float:
    step = float(value)
    if not step > 0:
        raise ValueError(f"step must be > 0 seconds; got {value!r}")
    return step


LIGHTCURVE_PARAMS: tuple[Param, ...] = (
    Param("step", _as_step, 1.0, "bin width, seconds"),
    Param("wave_min", as_optional_float, None, "lower wavelength, Angstrom (default: all)"),
    Param("wave_max", as_optional_float, None, "upper wavelength, Angstrom (default: all)"),
    Param("airglow", _as_airglow, None,
          "airglow windows excluded: 'default' (by grating, wider for G140L), 'none', "
          "or [[lo, hi], ...] in Angstrom"),
    Param("sdqflags", _as_optional_int, None, "event DQ bits rejected (default: SDQFLAGS)"),
    Param("flat", as_optional_path, None,
          "STIS MAMA: pixel-to-pixel flat for event weights (default: weight 1)"),
    Param("periodogram", as_bool, True, "compute the Lomb-Scargle periodogram"),
)

# Composite HLSP keywords (MAST HLSP contributor guide, "Required keywords").
HLSP_KEYWORDS = {
    "HLSPID": ("HSTLC", "HLSP identifier"),
    "HLSPNAME": ("HST Lightcurves (hstcal)", "HLSP collection name"),
    "HLSPVER": ("V1", "HLSP product version"),
    "LICENSE": ("CC BY 4.0", "license of the product"),
    "LICENURL": ("https://creativecommons.org/licenses/by/4.0/", ""),
}


def lightcurve_spec(options: Options | Mapping | None) -> LightcurveSpec:
    """The binning choices in ``options`` (defaults where absent)."""
    return LightcurveSpec(step=float(option_value(options, "step", 1.0)),
                          wave_min=option_value(options, "wave_min"),
                          wave_max=option_value(options, "wave_max"),
                          airglow=option_value(options, "airglow"),
                          sdqflags=option_value(options, "sdqflags"))


def read_events(ctx, exposure: TimeTagInput) -> EventList:
    """The exposure's events, from the detector's ``calibrate`` hook."""
    events = ctx.hooks.calibrate(detector=ctx.detector, exposure=exposure, options=ctx.options)
    if not isinstance(events, EventList):
        raise InputError(exposure.files[0],
                         f"detector {ctx.detector.name} has no TIME-TAG event reader "
                         f"(its calibrate hook returned {type(events).__name__})")
    return events


class Curve(NamedTuple):
    """A lightcurve product: the HDUList to write, the binned lightcurve, and the
    statistics its header holds (the database records the same ones)."""

    hdul: fits.HDUList
    lightcurve: Lightcurve
    stats: Variability
    periodogram: Periodogram | None


def build_curve(ctx, events: EventList) -> Curve:
    """Bin ``events`` (``measure`` hook) into a product."""
    lc = ctx.hooks.measure(detector=ctx.detector, kind="lightcurve", data=events,
                           options=ctx.options)
    return _product(ctx, lc, events.header, [str(p) for p in events.sources or [events.path]],
                    stage="lightcurve")


def _product(ctx, lc: Lightcurve, header, inputs: Sequence[str], *, stage: str,
             extra: Mapping | None = None) -> Curve:
    stats = variability(lc)
    pgram = periodogram(lc) if ctx.options.get("periodogram") is not False else None
    hdul = curve_hdulist(lc, header, stats=stats, pgram=pgram, stage=stage,
                         detector=ctx.detector.name, inputs=inputs,
                         parameters=dict(ctx.options), extra=extra)
    return Curve(hdul, lc, stats, pgram)


def _out_dir(ctx, n_exposures: int) -> tuple[Path, Path | None]:
    """(directory, single file or None) for the products of this run."""
    if ctx.out is None:
        raise ConfigError(f"stage '{ctx.stage.name}' needs --out (a file or a directory)")
    out = Path(ctx.out)
    if out.suffix.lower() == ".fits" and not out.is_dir():
        if n_exposures != 1:
            raise ConfigError(f"--out {out} is one file but the inputs hold {n_exposures} "
                              f"exposures; give a directory")
        return out.parent, out
    return out, None


def run_lightcurve(ctx):
    """Stage ``lightcurve``: one ``<rootname>_curve.fits`` per exposure."""
    from ..stages import StageResult

    exposures = group_inputs(ctx.inputs)
    if not exposures:
        raise InputError(None, "stage 'lightcurve': the input list is empty")
    out_dir, single = _out_dir(ctx, len(exposures))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = StageResult(stage="lightcurve", detector=ctx.detector.name)
    for exposure in exposures:
        try:
            events = read_events(ctx, exposure)
            curve = build_curve(ctx, events)
        except HstcalError as exc:
            log.error("%s: %s", exposure.rootname, exc)
            result.failures.append((str(exposure.files[0]), str(exc)))
            continue
        path = write_curve(curve.hdul, single or out_dir / curve_name(events.rootname))
        result.products.append(path)
        result.details[events.rootname] = dict(curve.lightcurve.meta,
                                               n_bins=len(curve.lightcurve))
    return result


@dataclass(frozen=True)
class CompositeKey:
    """What one composite groups: hstlc's (instrument, detector, target, opt_elem,
    cenwave, aperture)."""

    instrument: str
    detector: str
    target: str
    opt_elem: str
    cenwave: str
    aperture: str

    @property
    def filename(self) -> str:
        return hlsp_name(self.instrument, self.detector, self.target, self.opt_elem,
                         self.cenwave, self.aperture)


def composite_key(header: fits.Header | Mapping) -> CompositeKey:
    """The composite an exposure belongs to, from its header."""
    def get(key: str) -> str:
        value = header.get(key)
        return "" if value is None else str(value).strip()

    return CompositeKey(get("INSTRUME"), get("DETECTOR"), get("TARGNAME"), get("OPT_ELEM"),
                        get("CENWAVE"), get("APERTURE"))


def build_composite(ctx, members: Sequence[EventList]) -> Curve:
    """Bin every member over the common wavelength range and join them in time.

    No member is dropped for having empty bins (hstlc dropped any input with one zero
    bin); a member whose range does not overlap the others' is an error naming it.
    """
    if not members:
        raise ValueError("a composite needs at least one exposure")
    spec = lightcurve_spec(ctx.options)
    ranges = [wavelength_range(m) for m in members]
    lo = max(r[0] for r in ranges)
    hi = min(r[1] for r in ranges)
    if spec.wave_min is not None:
        lo = max(lo, spec.wave_min)
    if spec.wave_max is not None:
        hi = min(hi, spec.wave_max)
    if not hi > lo:
        names = ", ".join(f"{m.rootname} {r[0]:.1f}-{r[1]:.1f}" for m, r in zip(members, ranges))
        raise InputError(members[0].path, f"composite members share no wavelength range "
                                          f"({names})")
    common = replace(spec, wave_min=lo, wave_max=hi)
    curves = [make_lightcurve(m, common) for m in members]
    joined = concatenate(curves)
    joined.meta["n_source_events"] = sum(c.meta["n_source_events"] for c in curves)
    joined.meta["n_background_events"] = sum(c.meta["n_background_events"] for c in curves)
    joined.meta["notes"] = sorted({n for c in curves for n in c.meta["notes"]})
    key = composite_key(members[0].header)
    extra = {k: v for k, v in HLSP_KEYWORDS.items()}
    extra["HLSPTARG"] = (key.target[:68], "target of the composite")
    extra["NEXPOSUR"] = (len(members), "exposures in the composite")
    extra["EXPSTART"] = min(m.expstart for m in members)
    extra["EXPTIME"] = float(sum(c.columns["exposure"].sum() for c in curves))
    inputs = [str(p) for m in members for p in (m.sources or [m.path])]
    return _product(ctx, joined, members[0].header, inputs, stage="composite", extra=extra)


def run_composite(ctx):
    """Stage ``composite``: one HLSP-named product per composite key in the inputs."""
    from ..stages import StageResult

    exposures = group_inputs(ctx.inputs)
    if not exposures:
        raise InputError(None, "stage 'composite': the input list is empty")
    if ctx.out is None:
        raise ConfigError("stage 'composite' needs --out DIRECTORY")
    out_dir = Path(ctx.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = StageResult(stage="composite", detector=ctx.detector.name)
    groups: dict[CompositeKey, list[EventList]] = {}
    for exposure in exposures:
        try:
            events = read_events(ctx, exposure)
        except HstcalError as exc:
            result.failures.append((str(exposure.files[0]), str(exc)))
            continue
        groups.setdefault(composite_key(events.header), []).append(events)
    for key, members in groups.items():
        try:
            curve = build_composite(ctx, members)
        except HstcalError as exc:
            result.failures.append((key.filename, str(exc)))
            continue
        result.products.append(write_curve(curve.hdul, out_dir / key.filename))
        result.details[key.filename] = [m.rootname for m in members]
    return result
