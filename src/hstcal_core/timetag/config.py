"""``hstlc.yaml``: where the ingest flow reads, writes and keeps its database.

Example::

    root: /data/hstlc           # default parent of the four directories below
    ingest: ingest              # new event files (+ x1d, spt companions) land here
    filesystem: filesystem      # ingested inputs, by target
    outputs: outputs            # products and quicklooks, by target
    bad_data: bad_data          # refused inputs
    database: hstlc.sqlite      # a path (SQLite) or a SQLAlchemy URL (postgresql://...)
    lightcurve: {step: 1.0, wave_min: null, wave_max: null, airglow: default}
    composites: true
    quicklooks: true

Relative paths are relative to ``root`` (itself relative to the YAML file).  The
database URL may also come from ``HSTCAL_LIGHTCURVE_DATABASE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["IngestConfig", "load_ingest_config"]

_KEYS = {"root", "ingest", "filesystem", "outputs", "bad_data", "database", "lightcurve",
         "composites", "quicklooks"}
_LIGHTCURVE_KEYS = {"step", "wave_min", "wave_max", "airglow", "sdqflags", "flat",
                    "periodogram"}


@dataclass(frozen=True)
class IngestConfig:
    """The ingest flow's roots, database and lightcurve parameters."""

    ingest: Path
    filesystem: Path
    outputs: Path
    bad_data: Path
    database: str
    lightcurve: Mapping[str, Any] = field(default_factory=dict)
    composites: bool = True
    quicklooks: bool = True

    @property
    def roots(self) -> dict[str, Path]:
        return {"ingest": self.ingest, "filesystem": self.filesystem,
                "outputs": self.outputs, "bad_data": self.bad_data}

    def make_dirs(self) -> None:
        for path in self.roots.values():
            path.mkdir(parents=True, exist_ok=True)


def load_ingest_config(source: str | Path | Mapping) -> IngestConfig:
    """Read and validate an ``hstlc.yaml`` (or a mapping); errors name the key."""
    if isinstance(source, Mapping):
        values, base, origin = dict(source), Path.cwd(), "config mapping"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: lightcurve config file does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        base, origin = path.resolve().parent, str(path)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{origin}: expected a mapping of keys, got {type(values).__name__}")
    unknown = sorted(set(values) - _KEYS)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(_KEYS))}")
    root = base / str(values.get("root", "."))

    def where(key: str) -> Path:
        value = values.get(key, key)
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise ConfigError(f"{origin}: key '{key}' must be a directory path")
        return (root / str(value)).resolve()

    dirs = {key: where(key) for key in ("ingest", "filesystem", "outputs", "bad_data")}
    resolved = list(dirs.values())
    for i, a in enumerate(resolved):
        for b in resolved[i + 1:]:
            if a == b or a in b.parents or b in a.parents:
                raise ConfigError(f"{origin}: directories must be distinct and not nested "
                                  f"({a} and {b})")
    database = os.environ.get("HSTCAL_LIGHTCURVE_DATABASE") or values.get("database",
                                                                          "hstlc.sqlite")
    database = str(database)
    if "://" not in database:
        database = str((root / database).resolve())
    params = values.get("lightcurve") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{origin}: key 'lightcurve' must be a mapping of stage parameters")
    bad = sorted(set(params) - _LIGHTCURVE_KEYS)
    if bad:
        raise ConfigError(f"{origin}: unknown lightcurve parameter(s) {', '.join(bad)}; "
                          f"known: {', '.join(sorted(_LIGHTCURVE_KEYS))}")
    for key in ("composites", "quicklooks"):
        if key in values and not isinstance(values[key], bool):
            raise ConfigError(f"{origin}: key '{key}' must be true or false")
    return IngestConfig(database=database, lightcurve=dict(params),
                        composites=values.get("composites", True),
                        quicklooks=values.get("quicklooks", True), **dirs)
