"""The alignment switches: environment variables runastrodriz users know, flags win.

* ``ASTROMETRY_COMPUTE_APOSTERIORI`` — fit the exposures to a reference catalog
  (runastrodriz's ``align_to_gaia``);
* ``ASTROMETRY_APPLY_APRIORI`` — apply the astrometry database's a priori solutions
  (stwcs ``updatewcs(use_db=True)``).

Values, case-insensitive: ``on``/``yes``/``true`` and ``off``/``no``/``false``
(drizzlepac ``util.get_envvar_switch``); anything else is a :class:`ConfigError` naming
the variable.  Precedence: CLI flag / API option > environment > default.  Unlike
runastrodriz (whose environment overrides its ``-g`` switch) an explicit flag wins, so a
command line always means what it says.

Defaults, chosen for a pipeline that must run offline:

* a priori: **off** — it queries the astrometry database and stalls ~120 s when the
  network is down; when on, its failure falls back to the default WCS
  (drizzlepac #2003);
* a posteriori: **on when a reference catalog file is given**, off otherwise (asking
  for it without a file uses the network catalog service).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = [
    "ENV_APOSTERIORI",
    "ENV_APRIORI",
    "Switches",
    "astrometry_environment",
    "env_switch",
    "resolve_switches",
]

ENV_APOSTERIORI = "ASTROMETRY_COMPUTE_APOSTERIORI"
ENV_APRIORI = "ASTROMETRY_APPLY_APRIORI"
#: What stwcs ``astrometry_utils`` reads (it accepts only "on"/"off").
ENV_STWCS_CONTROL = "ASTROMETRY_STEP_CONTROL"

_ON = frozenset({"on", "yes", "true"})
_OFF = frozenset({"off", "no", "false"})


@dataclass(frozen=True)
class Switches:
    """The resolved switches and where each came from (``"flag"``, ``"environment"``,
    ``"default"``)."""

    aposteriori: bool
    apriori: bool
    aposteriori_source: str
    apriori_source: str

    def describe(self) -> str:
        def word(v):
            return "on" if v else "off"

        return (f"a posteriori alignment {word(self.aposteriori)} ({self.aposteriori_source}), "
                f"a priori solutions {word(self.apriori)} ({self.apriori_source})")


def env_switch(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """The value of switch variable ``name``: True, False, or None when unset or empty.

    Raises
    ------
    ConfigError
        For a value other than on/yes/true/off/no/false, naming the variable.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(f"environment variable {name}={raw!r}: expected one of on, yes, true, "
                      "off, no, false")


def resolve_switches(aposteriori: bool | None = None, apriori: bool | None = None, *,
                     catalog: str | None = None,
                     environ: Mapping[str, str] | None = None) -> Switches:
    """Flags (non-None) > environment > defaults (see the module docstring)."""
    choices = []
    for flag, name, default in ((aposteriori, ENV_APOSTERIORI, catalog is not None),
                                (apriori, ENV_APRIORI, False)):
        if flag is not None:
            choices.append((bool(flag), "flag"))
            continue
        env = env_switch(name, environ)
        choices.append((env, f"environment {name}") if env is not None else (default, "default"))
    (post, post_src), (pri, pri_src) = choices
    return Switches(aposteriori=post, apriori=pri, aposteriori_source=post_src,
                    apriori_source=pri_src)


@contextlib.contextmanager
def astrometry_environment(apriori: bool) -> Iterator[None]:
    """Export the a priori choice to stwcs for the duration of the block, then restore.

    stwcs consults ``ASTROMETRY_STEP_CONTROL`` (only "on"/"off" are valid there) and
    drizzlepac ``ASTROMETRY_APPLY_APRIORI``; both are set, translated to on/off.
    """
    value = "on" if apriori else "off"
    saved = {k: os.environ.get(k) for k in (ENV_STWCS_CONTROL, ENV_APRIORI)}
    os.environ[ENV_STWCS_CONTROL] = value
    os.environ[ENV_APRIORI] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
