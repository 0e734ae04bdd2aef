"""hstcal plugin for STIS: the CCD reference-file pipeline and the MAMA detectors.

Registers ``stis_ccd`` (stages calibrate, crreject, basebias, refbias, weekbias,
basedark, weekdark, anneal), ``stis_fuv_mama`` and ``stis_nuv_mama`` (their ``calibrate``
hook reads a TIME-TAG exposure into an event list, :mod:`hstcal_stis.timetag`; their
simulator writes ``_tag``/``_x1d`` files with truth, :mod:`hstcal_stis.simulate_timetag`).
What each detector asks the archive for (the ``query`` hook) is the table in
:mod:`hstcal_stis.query`.
"""

from __future__ import annotations

from functools import partial

from hstcal_core import Param, hookimpl
from hstcal_core.combine import combine_exposures
from hstcal_core.options import as_bool, as_float_list, as_int_pair, as_optional_path
from hstcal_core.timetag.events import TimeTagInput

from .ccd import calibrate_ccd, resolve_reference_path
from .detectors import STIS_CCD, STIS_FUV_MAMA, STIS_NUV_MAMA
from .query import query
from .reffiles import BIAS_KINDS, DARK_KINDS, PERIOD_MODES, build_reffile_stis

__all__ = ["STIS_CCD", "STIS_FUV_MAMA", "STIS_NUV_MAMA", "register_detectors", "query",
           "calibrate", "reject_crs", "build_reffile"]

# refstis pipeline.py: imsets needed in one week for a refbias rather than a weekbias,
# by (gain, BINAXIS1, BINAXIS2).
BIAS_THRESHOLDS = {"1,1,1": 98, "1,1,2": 25, "1,2,1": 25, "1,2,2": 7, "1,4,1": 7,
                   "1,4,2": 4, "4,1,1": 1}

CALIBRATION_PARAMS = (
    Param("blevcorr", as_bool, True, "subtract the overscan bias level and trim"),
    Param("blev_drift", as_bool, True, "correct the bias drift along lines (virtual overscan)"),
    Param("bpixtab", as_optional_path, None, "STIS bad-pixel table to flag in DQ"),
    Param("temperature_scaling", str, "auto",
          "dark temperature scaling: auto (darks after MJD 52091), always, never",
          choices=("auto", "always", "never")),
)

REFFILE_PARAMS = (
    Param("bias_filter", as_int_pair, (3, 15), "median filter (rows, cols) for bias residuals"),
    Param("basebias_column_sigma", float, 3.0, "basebias hot-column threshold (sigma)"),
    Param("basebias_yfracs", as_float_list, (1.0, 0.2),
          "row fractions over which basebias column profiles are taken"),
    Param("basebias_pixel_sigma", float, 5.0, "basebias hot-pixel threshold (sigma)"),
    Param("refbias_hot_sigma", float, 5.0, "refbias hot-pixel threshold (sigma)"),
    Param("weekbias_column_sigma", float, 5.0, "weekbias hot-column threshold (sigma)"),
    Param("weekbias_yfrac", float, 0.25, "row fraction of the weekbias column profile"),
    Param("dark_hot_sigma", float, 5.0, "superdark hot-pixel threshold (sigma)"),
    Param("dark_hot_floor", float, 0.1, "superdark hot pixels must exceed this (e-/s)"),
    Param("dark_filter", as_int_pair, (5, 5), "median filter for annealed basedark pixels"),
    Param("max_imsets_per_combine", int, 120,
          "above this, biases are combined in two interleaved halves and averaged"),
)

_STAGES = {
    "calibrate": CALIBRATION_PARAMS,
    "crreject": CALIBRATION_PARAMS,
    **{kind: CALIBRATION_PARAMS + REFFILE_PARAMS for kind in BIAS_KINDS + DARK_KINDS},
    "anneal": CALIBRATION_PARAMS + REFFILE_PARAMS,
    "crstats": CALIBRATION_PARAMS,
}

# TIME-TAG: the stage's own parameters include ``flat``; the bad-pixel table flags events.
_MAMA_STAGES = {
    "lightcurve": (Param("bpixtab", as_optional_path, None,
                         "STIS MAMA bad-pixel table: events on listed pixels get its DQ"),),
    "composite": (Param("bpixtab", as_optional_path, None,
                        "STIS MAMA bad-pixel table: events on listed pixels get its DQ"),),
}

_DEFAULTS = {
    **{kind: {"scale_by_exptime": False} for kind in BIAS_KINDS},
    **{kind: {"scale_by_exptime": True} for kind in DARK_KINDS},
    "anneal": {"bias_thresholds": BIAS_THRESHOLDS, "period_modes": PERIOD_MODES},
    # issue 4: ocrreject semantics for the census, crsigmas 6,5,4 and sky mode.  The
    # guess is the minimum: with a handful of darks the median is pulled halfway to a
    # hit (STIS's own CRREJTAB uses minimum for small CR-splits).  No temperature
    # scaling: it normalises dark current and would rescale every CR's charge.
    "crstats": {"crsigmas": (6.0, 5.0, 4.0), "initgues": "minimum", "skysub": "mode",
                "temperature_scaling": "never"},
}


def _simulator(out_dir, **kwargs):
    from .simulate import simulate

    return simulate(out_dir, **kwargs)


def _mama_simulator(detector: str, out_dir, **kwargs):
    from .simulate_timetag import simulate as simulate_timetag

    return simulate_timetag(out_dir, detector=detector, **kwargs)


@hookimpl
def register_detectors(register):
    register.detector(STIS_CCD, stages=_STAGES, defaults=_DEFAULTS, simulator=_simulator)
    for mama in (STIS_FUV_MAMA, STIS_NUV_MAMA):
        register.detector(mama, stages=_MAMA_STAGES,
                          simulator=partial(_mama_simulator, mama.detector))


@hookimpl
def calibrate(detector, exposure, options):
    if detector.name == STIS_CCD.name:
        return calibrate_ccd(detector, exposure, options)
    if detector.name in (STIS_FUV_MAMA.name, STIS_NUV_MAMA.name) \
            and detector.extra.get("timetag") and isinstance(exposure, TimeTagInput):
        from .timetag import read_stis_timetag

        return read_stis_timetag(detector.detector, exposure, options)
    return None


@hookimpl
def reject_crs(detector, exposures, options):
    if detector.name != STIS_CCD.name:
        return None
    table = options.get("crrejtab")
    if table and "$" in str(table):
        options = options.replace(crrejtab=str(resolve_reference_path(table)))
    # OBSTYPE=SPECTROSCOPIC turns sky subtraction off inside combine_exposures (o_cal2_in.c).
    return combine_exposures(detector, exposures, options,
                             temperature_keyword=str(detector.extra["temperature_keyword"]))


@hookimpl
def build_reffile(detector, kind, inputs, options):
    if detector.name != STIS_CCD.name:
        return None
    return build_reffile_stis(detector, kind, inputs, options)


