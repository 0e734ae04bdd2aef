"""Run parameters: declared with :class:`Param`, resolved into an immutable :class:`Options`.

Precedence (stpipe's, DESIGN.md): command-line / API values > ``--config`` YAML > plugin
defaults > stage defaults.  ``Options.to_yaml()`` writes the effective set, which
``--save-config`` stores and ``--config`` reads back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = [
    "Param",
    "Options",
    "option_value",
    "resolve_options",
    "load_config",
    "as_bool",
    "as_float_list",
    "as_int_pair",
    "as_optional_path",
    "as_optional_float",
    "as_optional_str",
    "as_threshold_table",
    "as_period_modes",
]


# --------------------------------------------------------------------------- converters
def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on", "perform"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off", "omit"}:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected a boolean, got {value!r}")


def as_float_list(value: Any) -> tuple[float, ...]:
    """``"5,4,3"`` or ``[5, 4, 3]`` → ``(5.0, 4.0, 3.0)``."""
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", ",").split(",") if p]
    elif isinstance(value, Iterable):
        parts = list(value)
    else:
        parts = [value]
    out = tuple(float(p) for p in parts)
    if not out:
        raise ValueError("expected at least one number")
    return out


def as_int_pair(value: Any) -> tuple[int, int]:
    """``"3x15"``, ``"3,15"`` or ``[3, 15]`` → ``(3, 15)``."""
    if isinstance(value, str):
        parts = value.lower().replace("x", ",").split(",")
    else:
        parts = list(value)
    if len(parts) != 2:
        raise ValueError(f"expected two integers, got {value!r}")
    pair = (int(parts[0]), int(parts[1]))
    if min(pair) < 1:
        raise ValueError(f"expected positive integers, got {value!r}")
    return pair


def as_optional_path(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() in {"", "none", "None"}):
        return None
    return str(Path(value).expanduser())


def as_optional_float(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return float(value)


def as_optional_str(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return str(value)


def as_threshold_table(value: Any) -> dict[str, int]:
    """A ``{"gain,bin1,bin2": count}`` table (YAML mapping or ``"1,1,1=98;4,1,1=1"``)."""
    if isinstance(value, str):
        items = [kv.split("=") for kv in value.split(";") if kv.strip()]
        value = {k.strip(): v for k, v in items}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of 'gain,bin1,bin2' to counts, got {value!r}")
    table = {}
    for key, count in value.items():
        if isinstance(key, (tuple, list)):
            key = ",".join(str(int(float(k))) for k in key)
        parts = [int(float(k)) for k in str(key).replace("x", ",").split(",")]
        if len(parts) != 3:
            raise ValueError(f"key {key!r} must be 'gain,bin1,bin2'")
        table[",".join(map(str, parts))] = int(count)
    return table


# --------------------------------------------------------------------------- Param / Options
@dataclass(frozen=True)
class Param:
    """One declared run parameter.

    Parameters
    ----------
    name : str
        Key in YAML and the API (``snake_case``); the CLI spells it ``--name-with-dashes``.
    convert : callable
        Turns a YAML/CLI value into the typed value; raises ``ValueError`` if invalid.
    default : object
        Value when nobody sets it (already converted).
    help : str
        One line for ``--help`` and the saved config.
    choices : tuple or None
        Allowed values, checked after conversion.
    """

    name: str
    convert: Callable[[Any], Any]
    default: Any
    help: str
    choices: tuple | None = None

    def coerce(self, value: Any, origin: str) -> Any:
        try:
            converted = self.convert(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: parameter '{self.name}': {exc}") from None
        if self.choices is not None and converted not in self.choices:
            raise ConfigError(
                f"{origin}: parameter '{self.name}' must be one of {list(self.choices)}, "
                f"got {value!r}"
            )
        return converted


class Options(Mapping):
    """Immutable, typed run parameters with the origin of each value.

    Read as attributes (``options.crsigmas``) or as a mapping.  ``source(name)``
    tells where a value came from: ``"default"``, ``"plugin"``, ``"config"`` or ``"cli"``.
    """

    __slots__ = ("_values", "_sources")

    def __init__(self, values: Mapping[str, Any] | None = None,
                 sources: Mapping[str, str] | None = None):
        object.__setattr__(self, "_values", dict(values or {}))
        object.__setattr__(self, "_sources", dict(sources or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no parameter '{name}'; known: {sorted(self._values)}"
            ) from None

    def __setattr__(self, name, value):  # pragma: no cover - immutability guard
        raise AttributeError("Options is immutable; use replace()")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Options({self._values!r})"

    def __reduce__(self):
        # Options travel to worker processes; __setattr__ is blocked, so rebuild by __init__.
        return (Options, (self._values, self._sources))

    def source(self, name: str) -> str:
        return self._sources.get(name, "api")

    def replace(self, **changes: Any) -> "Options":
        """Return a copy with some values changed (marked as set by the caller)."""
        values = {**self._values, **changes}
        sources = {**self._sources, **{k: "api" for k in changes}}
        return Options(values, sources)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-serialisable values (tuples become lists)."""

        def plain(v):
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {k: plain(v) for k, v in sorted(self._values.items())}

    def to_yaml(self, header: str = "") -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=True, default_flow_style=None)
        prefix = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
        return prefix + text


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML parameter file with ``safe_load``; errors name the file.

    Keys may be given flat or under a ``parameters:`` mapping.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of parameter names to values")
    if "parameters" in data:
        params = data["parameters"]
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: key 'parameters' must be a mapping")
        return dict(params)
    return data


def resolve_options(params: Iterable[Param], *,
                    plugin_defaults: Mapping[str, Any] | None = None,
                    config: Mapping[str, Any] | None = None,
                    config_origin: str = "config",
                    cli: Mapping[str, Any] | None = None,
                    cli_origin: str = "arguments") -> Options:
    """Merge the layers into :class:`Options`, validating every key and value.

    Raises
    ------
    ConfigError
        On an unknown key (named, with the valid keys) or a value that fails conversion.
    """
    declared = {p.name: p for p in params}
    values = {name: p.default for name, p in declared.items()}
    sources = {name: "default" for name in declared}
    for layer, origin, tag in (
        (plugin_defaults, "plugin defaults", "plugin"),
        (config, config_origin, "config"),
        (cli, cli_origin, "cli"),
    ):
        for key, value in (layer or {}).items():
            if key not in declared:
                raise ConfigError(
                    f"{origin}: unknown parameter '{key}'; valid parameters: {sorted(declared)}"
                )
            if value is None and tag == "cli":
                continue
            values[key] = declared[key].coerce(value, origin)
            sources[key] = tag
    return Options(values, sources)


def as_period_modes(value: Any) -> dict[str, str]:
    """``{gain: "WK" | "BIWK"}`` from a mapping or ``"1=WK;4=BIWK"``."""
    if isinstance(value, str):
        value = dict(kv.split("=") for kv in value.split(";") if kv.strip())
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of gain to WK/BIWK, got {value!r}")
    out = {}
    for gain, mode in value.items():
        mode = str(mode).strip().upper()
        if mode not in ("WK", "BIWK"):
            raise ValueError(f"period mode for gain {gain} must be WK or BIWK, got {mode!r}")
        out[str(int(float(gain)))] = mode
    return out


def option_value(options: Mapping[str, Any] | None, name: str, default: Any = None) -> Any:
    """``options[name]`` when the stage declares it and it is set, else ``default``
    (hooks serve stages whose options may lack the parameter)."""
    if options is None:
        return default
    value = options.get(name)
    return default if value is None else value
