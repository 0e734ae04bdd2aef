"""Plugin registry: entry points, detectors, stages, broken and duplicate plugins.

Plugins are modules (or objects) advertised in the ``hstcal.plugins`` entry-point
group.  Loading follows stpipe's rule: a plugin that fails to import is reported
(name, distribution, error) and skipped, never allowed to take the host down.
Two distributions claiming one detector name is an error naming both.
``HSTCAL_PLUGINS=a,b`` restricts which entry points are loaded.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .detectors import Detector
from .errors import (
    DuplicateDetectorError,
    NoImplementationError,
    PluginError,
    StageNotSupportedError,
    UnknownDetectorError,
)
from .markers import PROJECT
from .options import Param

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "BrokenPlugin",
    "DetectorEntry",
    "Registrar",
    "Registry",
    "Hooks",
    "get_registry",
    "reset_registry",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hstcal.plugins"
ENV_RESTRICT = "HSTCAL_PLUGINS"


@dataclass
class PluginInfo:
    """A loaded plugin: entry-point name, distribution, version, its detectors."""

    name: str
    distribution: str
    version: str
    module: str
    detectors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    error: str


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector with the plugin that owns it and the stages it supports."""

    detector: Detector
    plugin: str
    distribution: str
    stages: Mapping[str, tuple[Param, ...]]
    defaults: Mapping[str, Mapping[str, Any]]
    simulator: Callable | None = None
    reader: Callable | None = None

    @property
    def name(self) -> str:
        return self.detector.name

    def read(self, path):
        """Read one input with the plugin's reader, or the core's ``read_exposure``."""
        if self.reader is not None:
            return self.reader(path)
        from .fitsio import read_exposure

        return read_exposure(path)

    def require_stage(self, stage: str) -> None:
        """Raise :class:`StageNotSupportedError` if ``stage`` is not provided."""
        if stage not in self.stages:
            supported = ", ".join(sorted(self.stages)) or "none yet"
            raise StageNotSupportedError(
                f"stage '{stage}' is not supported by plugin {self.distribution} "
                f"for detector {self.name} (supported stages: {supported})"
            )


class Registrar:
    """What ``register_detectors(register)`` receives: ``register.detector(...)``."""

    def __init__(self, registry: "Registry", plugin: PluginInfo):
        self._registry = registry
        self._plugin = plugin

    def detector(self, detector: Detector, *,
                 stages: Mapping[str, Iterable[Param]] | Iterable[str] = (),
                 defaults: Mapping[str, Mapping[str, Any]] | None = None,
                 simulator: Callable | None = None,
                 reader: Callable | None = None) -> None:
        """Register one detector.

        Parameters
        ----------
        detector : Detector
            Its constants.
        stages : mapping or iterable
            Stage names it supports, optionally mapped to plugin-specific parameters.
        defaults : mapping, optional
            ``{stage: {parameter: default}}`` overriding the stage's own defaults.
        simulator : callable, optional
            ``simulator(out_dir, **kwargs) -> truth`` used by ``hstcal simulate``.
        reader : callable, optional
            ``reader(path) -> Exposure`` for file formats :func:`hstcal_core.fitsio.read_exposure`
            cannot read (WFPC2 GEIS/waivered groups, one chip per detector); stages use it
            instead of ``read_exposure``.
        """
        if not isinstance(detector, Detector):
            raise PluginError(
                f"plugin {self._plugin.name} ({self._plugin.distribution}) registered "
                f"{detector!r}, which is not a hstcal_core.Detector"
            )
        if isinstance(stages, Mapping):
            stage_params = {s: tuple(p) for s, p in stages.items()}
        else:
            stage_params = {s: () for s in stages}
        entry = DetectorEntry(
            detector=detector,
            plugin=self._plugin.name,
            distribution=self._plugin.distribution,
            stages=stage_params,
            defaults={k: dict(v) for k, v in (defaults or {}).items()},
            simulator=simulator,
            reader=reader,
        )
        self._registry._add_detector(entry)
        self._plugin.detectors.append(detector.name)


class Hooks:
    """Typed, keyword-only façade over the hook relay (tox's pattern).

    Each method raises :class:`NoImplementationError` when no plugin answers.
    """

    def __init__(self, pm: pluggy.PluginManager):
        self._pm = pm

    @staticmethod
    def _need(result, hook: str, detector: Detector):
        if result is None:
            raise NoImplementationError(
                f"no plugin implements hook '{hook}' for detector {detector.name}"
            )
        return result

    def query(self, *, detector: Detector, criteria: Mapping[str, Any]):
        return self._need(self._pm.hook.query(detector=detector, criteria=criteria),
                          "query", detector)

    def calibrate(self, *, detector: Detector, exposure, options):
        return self._need(
            self._pm.hook.calibrate(detector=detector, exposure=exposure, options=options),
            "calibrate", detector)

    def reject_crs(self, *, detector: Detector, exposures, options):
        return self._need(
            self._pm.hook.reject_crs(detector=detector, exposures=exposures, options=options),
            "reject_crs", detector)

    def label(self, *, detector: Detector, image, mask, options):
        return self._need(
            self._pm.hook.label(detector=detector, image=image, mask=mask, options=options),
            "label", detector)

    def measure(self, *, detector: Detector, kind: str, data, options):
        return self._need(
            self._pm.hook.measure(detector=detector, kind=kind, data=data, options=options),
            "measure", detector)

    def build_reffile(self, *, detector: Detector, kind: str, inputs, options):
        return self._need(
            self._pm.hook.build_reffile(detector=detector, kind=kind, inputs=inputs,
                                        options=options),
            "build_reffile", detector)

    def drizzle(self, *, detector: Detector, exposures, options):
        return self._need(
            self._pm.hook.drizzle(detector=detector, exposures=exposures, options=options),
            "drizzle", detector)


class Registry:
    """The plugin manager, the loaded plugins and the detectors they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.broken: list[BrokenPlugin] = []
        self._detectors: dict[str, DetectorEntry] = {}
        self.hooks = Hooks(self.pm)

    # ----------------------------------------------------------------- loading
    def add_plugin(self, plugin: object, name: str, *, distribution: str = "",
                   version: str = "") -> PluginInfo:
        """Register an already-imported plugin object and run its registration hook."""
        if name in self.plugins:
            raise PluginError(
                f"plugin name '{name}' is provided by both {self.plugins[name].distribution} "
                f"and {distribution or '<in-process>'}"
            )
        info = PluginInfo(name=name, distribution=distribution or name, version=version,
                          module=getattr(plugin, "__name__", type(plugin).__name__))
        self.pm.register(plugin, name=name)
        self.plugins[name] = info
        # Called per implementation (not via call_historic) so every detector is
        # attributed to the distribution that registered it.
        impl = next((i for i in self.pm.hook.register_detectors.get_hookimpls()
                     if i.plugin is plugin), None)
        if impl is not None:
            try:
                impl.function(register=Registrar(self, info))
            except DuplicateDetectorError:
                self._unregister(name)
                raise
            except Exception as exc:  # a broken plugin is reported, not fatal
                self._unregister(name)
                self.broken.append(BrokenPlugin(name, info.distribution,
                                                f"register_detectors failed: {exc!r}"))
                log.warning("plugin %s (%s) failed to register detectors: %r",
                            name, info.distribution, exc)
        return info

    def _unregister(self, name: str) -> None:
        info = self.plugins.pop(name, None)
        if info is not None:
            for det in info.detectors:
                self._detectors.pop(det, None)
        self.pm.unregister(name=name)

    def load_entry_points(self, restrict: Iterable[str] | None = None) -> None:
        """Load every plugin of the ``hstcal.plugins`` group (or only ``restrict``)."""
        wanted = None if restrict is None else {r.strip() for r in restrict if r.strip()}
        seen: dict[str, str] = {}
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP),
                         key=lambda e: (e.name, _dist_name(e))):
            dist = _dist_name(ep)
            if wanted is not None and ep.name not in wanted:
                continue
            if ep.name in seen:
                msg = (f"duplicate entry-point name '{ep.name}': already loaded from "
                       f"{seen[ep.name]}, skipped the one in {dist}")
                self.broken.append(BrokenPlugin(ep.name, dist, msg))
                log.warning("%s", msg)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.broken.append(BrokenPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                log.warning("plugin %s (%s) failed to import and was skipped: %s: %s",
                            ep.name, dist, type(exc).__name__, exc)
                continue
            seen[ep.name] = dist
            self.add_plugin(plugin, ep.name, distribution=dist, version=_dist_version(ep))
        if wanted is not None:
            missing = wanted - set(self.plugins)
            if missing:
                log.warning("%s names plugins that are not installed: %s",
                            ENV_RESTRICT, ", ".join(sorted(missing)))

    # ----------------------------------------------------------------- detectors
    def _add_detector(self, entry: DetectorEntry) -> None:
        old = self._detectors.get(entry.name)
        if old is not None:
            raise DuplicateDetectorError(
                f"detector '{entry.name}' is registered by two distributions: "
                f"{old.distribution} and {entry.distribution}"
            )
        self._detectors[entry.name] = entry

    @property
    def detectors(self) -> dict[str, DetectorEntry]:
        return dict(sorted(self._detectors.items()))

    def entry(self, name: str) -> DetectorEntry:
        """Return the registered detector ``name`` or raise with the known names."""
        try:
            return self._detectors[name]
        except KeyError:
            known = ", ".join(sorted(self._detectors)) or "none (no plugins loaded)"
            raise UnknownDetectorError(
                f"unknown detector '{name}'; registered detectors: {known}"
            ) from None

    def detector(self, name: str) -> Detector:
        return self.entry(name).detector


def _dist_name(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "<unknown distribution>"


def _dist_version(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else ""


_lock = threading.Lock()
_default: Registry | None = None


def build_registry(restrict: Iterable[str] | None = None) -> Registry:
    """A fresh registry with the core built-ins and the installed plugins."""
    from . import builtin

    registry = Registry()
    registry.add_plugin(builtin, "core", distribution="hstcal-core", version=_core_version())
    if restrict is None:
        env = os.environ.get(ENV_RESTRICT)
        restrict = env.split(",") if env else None
    registry.load_entry_points(restrict)
    return registry


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = build_registry()
        return _default


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing plugins)."""
    global _default
    with _lock:
        _default = None


def _core_version() -> str:
    try:
        return md.version("hstcal-core")
    except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"
