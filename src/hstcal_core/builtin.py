"""The core's own plugin: generic implementations every detector gets unless its
plugin overrides them (registered ``trylast``, as pytest registers its essentials)."""

from __future__ import annotations

from collections.abc import Mapping

from .algorithms.crstats import cr_statistics
from .algorithms.label import LabelResult, label_crs
from .combine import combine_exposures
from .markers import hookimpl
from .options import option_value

__all__ = ["LabelHookResult", "drizzle", "label", "measure", "reject_crs"]

# Census size cut (HSTcosmicrays threshold_l=2 / threshold_u=1e5; Miles et al. 2021).
_DEFAULT_MIN_CR_SIZE = 3
_DEFAULT_MAX_CR_SIZE = 100_000


class LabelHookResult(tuple):
    """``(labels, n)`` as the ``label`` hook returns it, carrying the size-cut bookkeeping.

    Unpacks as the two-tuple the hook spec promises; the census reads ``n_cut_small``,
    ``n_cut_large`` (events removed by the cut) and ``sizes`` (pixels per kept CR) as
    attributes, so plugins returning a plain tuple still work (they count 0 cuts).
    """

    n_cut_small: int
    n_cut_large: int
    sizes: object

    @classmethod
    def from_result(cls, result: LabelResult) -> LabelHookResult:
        out = cls((result.labels, result.n))
        out.n_cut_small = result.n_cut_small
        out.n_cut_large = result.n_cut_large
        out.sizes = result.sizes
        return out


@hookimpl(trylast=True)
def reject_crs(detector, exposures, options):
    """ocrreject-style combination for any imaging detector (see hstcal_core.combine)."""
    return combine_exposures(detector, exposures, options,
                             temperature_keyword=detector.extra.get("temperature_keyword"))


@hookimpl(trylast=True)
def label(detector, image, mask, options):
    """8-connected components of ``mask`` with the census size cut.

    Objects of ``min_cr_size`` ≤ size < ``max_cr_size`` pixels are kept (options, defaults
    3 and 100000) and numbered ``1 .. n`` (:func:`hstcal_core.algorithms.label.label_crs`).
    Returns a :class:`LabelHookResult`: ``(labels, n)`` plus the cut counts as attributes.
    """
    result = label_crs(mask,
                       min_size=int(option_value(options, "min_cr_size", _DEFAULT_MIN_CR_SIZE)),
                       max_size=int(option_value(options, "max_cr_size", _DEFAULT_MAX_CR_SIZE)))
    return LabelHookResult.from_result(result)


@hookimpl(trylast=True)
def measure(detector, kind, data, options):
    """Per-CR statistics (``kind == "crstats"``) or a lightcurve (``"lightcurve"``).

    crstats: ``data`` maps ``image`` (electrons), ``labels`` and ``n`` (from ``label``); the
    result is :func:`hstcal_core.algorithms.crstats.cr_statistics`: the CR_COLUMNS but
    ``imset``.  lightcurve: ``data`` is an :class:`~hstcal_core.timetag.events.EventList`;
    the result a :class:`~hstcal_core.timetag.lightcurve.Lightcurve` binned as the
    options say (:func:`hstcal_core.timetag.stage.lightcurve_spec`).
    """
    if kind == "lightcurve":
        from .timetag.events import EventList
        from .timetag.lightcurve import make_lightcurve
        from .timetag.stage import lightcurve_spec

        if not isinstance(data, EventList):
            raise TypeError(f"measure(kind='lightcurve') needs an EventList (from the "
                            f"calibrate hook); got {type(data).__name__}")
        return make_lightcurve(data, lightcurve_spec(options))
    if kind != "crstats":
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"measure(kind='crstats') needs a mapping with image, labels and n; "
                        f"got {type(data).__name__}")
    missing = [key for key in ("image", "labels", "n") if key not in data]
    if missing:
        raise KeyError(f"measure(kind='crstats'): data lacks {', '.join(missing)}")
    return cr_statistics(data["image"], data["labels"], int(data["n"]))


@hookimpl(trylast=True)
def drizzle(detector, exposures, options):
    """runastrodriz's job on drizzlepac/stwcs for any imaging detector
    (:func:`hstcal_core.drizzle.stage.drizzle_exposures`); ``options["out"]`` is the
    output directory."""
    from .drizzle.stage import drizzle_exposures

    return drizzle_exposures(detector, exposures, options)
