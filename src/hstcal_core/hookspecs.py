"""Hook specifications of hstcal: signatures and docstrings only.

Plugins implement these with ``@hstcal_core.hookimpl``.  Dispatch is by detector:
every hook receives the :class:`~hstcal_core.detectors.Detector` it is asked about,
and an implementation returns ``None`` for detectors its plugin does not serve.
Spec parameters have no defaults (pluggy would drop them); tunables travel in one
:class:`~hstcal_core.options.Options` object.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hstcal")


# --------------------------------------------------------------------------- registration
@hookspec
def register_detectors(register):
    """Register the detectors a plugin serves, with their stages and parameters.

    :param register: a :class:`~hstcal_core.registry.Registrar`; call
        ``register.detector(DETECTOR, stages=..., defaults=..., simulator=...)`` once per
        detector.
    :return: nothing; every plugin's implementation is called once at load time.
    """


# --------------------------------------------------------------------------- archive
@hookspec(firstresult=True)
def query(detector, criteria):
    """Describe what to fetch from an archive for a detector and a purpose.

    :param detector: the :class:`~hstcal_core.detectors.Detector` asked about.
    :param criteria: a mapping with the required ``purpose`` (``"bias"``, ``"dark"``,
        ``"crdark"``, ``"timetag"``, ...) and optional overrides of the plugin's
        defaults: ``proposals`` (proposal IDs), ``exptime`` (``[lo, hi]`` seconds),
        ``target_name`` (name patterns) and ``file_types`` (product subgroups, the
        primary first).
    :return: a :class:`~hstcal_core.archive.base.QueryCriteria` in MAST's vocabulary,
        with every given override applied.  A plugin that serves the detector but not
        the purpose raises :class:`~hstcal_core.errors.ConfigError` naming the
        detector, the purpose asked and the purposes supported (so does an unknown
        key); :func:`~hstcal_core.archive.base.criteria_for` does both from a table.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


# --------------------------------------------------------------------------- calibration
@hookspec(firstresult=True)
def calibrate(detector, exposure, options):
    """Apply basic calibration to one exposure (overscan, bias, dark, ramp fitting, ...).

    :param detector: the :class:`~hstcal_core.detectors.Detector` of the exposure.
    :param exposure: the raw :class:`~hstcal_core.images.Exposure`; it must not be modified.
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: a new, calibrated :class:`~hstcal_core.images.Exposure`.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


@hookspec(firstresult=True)
def reject_crs(detector, exposures, options):
    """Combine the imsets of several exposures, rejecting cosmic rays.

    :param detector: the :class:`~hstcal_core.detectors.Detector` of the exposures.
    :param exposures: a sequence of calibrated :class:`~hstcal_core.images.Exposure`.
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: a :class:`~hstcal_core.images.CombinedImage` with one CR mask per input imset.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


# --------------------------------------------------------------------------- measurement
@hookspec(firstresult=True)
def label(detector, image, mask, options):
    """Group flagged pixels into connected cosmic-ray objects.

    :param detector: the :class:`~hstcal_core.detectors.Detector` of the image.
    :param image: 2-D science array the mask refers to.
    :param mask: 2-D boolean array of flagged pixels.
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: ``(labels, n_objects)``: an int32 label image (0 = background) and the count.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


@hookspec(firstresult=True)
def measure(detector, kind, data, options):
    """Measure objects or exposures (cosmic-ray statistics, lightcurves, ...).

    :param detector: the :class:`~hstcal_core.detectors.Detector` measured.
    :param kind: what to measure, e.g. ``"crstats"`` or ``"lightcurve"``.
    :param data: the inputs of that measurement (a mapping or an image object).
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: the measurements (a mapping of column name to array, or a product).

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


# --------------------------------------------------------------------------- products
@hookspec(firstresult=True)
def build_reffile(detector, kind, inputs, options):
    """Build a reference file (``basebias``, ``refbias``, ``weekbias``, ``basedark``, ``weekdark``).

    :param detector: the :class:`~hstcal_core.detectors.Detector` the file is for.
    :param kind: the reference-file recipe name.
    :param inputs: a :class:`~hstcal_core.stages.ReffileInputs` (calibrated exposures,
        auxiliary reference files and a ``combine`` callable that runs ``reject_crs``).
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: a :class:`~hstcal_core.images.Product` with CRDS-ready headers.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """


@hookspec(firstresult=True)
def drizzle(detector, exposures, options):
    """Combine exposures onto a common aligned grid (runastrodriz's job).

    :param detector: the :class:`~hstcal_core.detectors.Detector` of the exposures.
    :param exposures: paths or :class:`~hstcal_core.images.Exposure` objects of one association.
    :param options: the stage's :class:`~hstcal_core.options.Options`.
    :return: a mapping describing the drizzled products and alignment verdicts.

    Stops at the first non-None result; return None for detectors this plugin does not serve.
    """
