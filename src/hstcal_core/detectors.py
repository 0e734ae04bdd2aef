"""Detector: the constants of one HST detector, owned by the plugin that registers it.

Shared code reads detector differences from here rather than branching on
instrument names (STYLE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["Detector", "Amplifier", "DQ_STANDARD_HST"]

#: The DQ bit meanings common to the HST CCD pipelines (calstis/calacs/calwf3 ``*dq.h``).
DQ_STANDARD_HST: Mapping[int, str] = {
    1: "Reed-Solomon decoding error",
    2: "data replaced by fill value",
    4: "bad detector pixel or beyond aperture",
    8: "masked by occulting bar / unstable in dark",
    16: "hot pixel",
    32: "large blemish / CTE tail",
    64: "warm pixel",
    128: "bias level / overscan pixel",
    256: "saturated pixel",
    512: "bad pixel in reference file",
    1024: "small blemish / charge trap",
    2048: "bad background",
    4096: "discarded / ghost",
    8192: "rejected during image combination (cosmic ray)",
    16384: "not CTI corrected / unstable",
}


@dataclass(frozen=True)
class Amplifier:
    """One readout amplifier at one gain setting.

    Parameters
    ----------
    name : str
        Amplifier letter as in CCDAMP (``"A"`` .. ``"D"``).
    gain : float
        Analog-to-digital gain, e⁻/DN (the ATODGAIN of that setting).
    read_noise : float
        Read noise in electrons.
    bias : float
        Nominal bias level in DN (CCDTAB CCDBIAS), used when no overscan exists.
    """

    name: str
    gain: float
    read_noise: float
    bias: float = 0.0


@dataclass(frozen=True)
class Detector:
    """Constants of one detector, as registered by its instrument plugin.

    Parameters
    ----------
    name : str
        Registry key, ``<instrument>_<detector>`` in lower case (``stis_ccd``).
    instrument, detector : str
        The INSTRUME and DETECTOR header values.
    kind : str
        ``"ccd"``, ``"ir"`` (MULTIACCUM) or ``"mama"`` / ``"xdl"`` (photon counting).
    shape : tuple of int
        Trimmed science array shape (ny, nx) at unbinned resolution.
    pixel_pitch_um : float
        Physical pixel pitch in micrometres.
    pixel_scale_arcsec : float
        Approximate plate scale in arcsec/pixel.
    gain_keyword : str
        Header keyword holding the commanded gain (``CCDGAIN``, ``ADCGAIN``, ...).
    amplifiers : dict
        ``{gain setting: (Amplifier, ...)}`` for every supported gain setting.
    readout_time_s : float
        Time to read the full detector, seconds.
    saturation_dn : dict
        ``{gain setting: raw DN above which a pixel is flagged saturated}``.
    dq_flags : dict
        ``{bit: meaning}`` of the DQ array.
    area_cm2 : float or None
        Sensitive area used by the cosmic-ray census; defaults to pixels × pitch².
    inactive : tuple of (str, str or None)
        Date windows ``(first day, first day back)`` (ISO dates, end exclusive; None:
        never back) when the detector took no data: failures, safe mode, retirement.
        Campaigns skip them.
    extra : dict
        Plugin-specific constants (overscan geometry, reference temperatures, ...).
    """

    name: str
    instrument: str
    detector: str
    kind: str
    shape: tuple[int, int]
    pixel_pitch_um: float
    pixel_scale_arcsec: float
    gain_keyword: str
    amplifiers: Mapping[float, tuple[Amplifier, ...]]
    readout_time_s: float
    saturation_dn: Mapping[float, float] = field(default_factory=dict)
    dq_flags: Mapping[int, str] = field(default_factory=lambda: dict(DQ_STANDARD_HST))
    area_cm2: float | None = None
    description: str = ""
    inactive: tuple[tuple[str, str | None], ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name != self.name.lower() or " " in self.name:
            raise ValueError(f"detector name {self.name!r} must be lower case without spaces")
        if len(self.shape) != 2 or min(self.shape) <= 0:
            raise ValueError(f"detector {self.name}: shape {self.shape!r} must be two positive ints")
        if self.area_cm2 is None:
            object.__setattr__(self, "area_cm2", self.geometric_area_cm2)

    @property
    def npix(self) -> int:
        """Number of science pixels (unbinned)."""
        return int(self.shape[0]) * int(self.shape[1])

    @property
    def geometric_area_cm2(self) -> float:
        """Pixel count × pitch², in cm²."""
        return self.npix * (self.pixel_pitch_um * 1e-4) ** 2

    @property
    def gains(self) -> tuple[float, ...]:
        """The supported gain settings."""
        return tuple(sorted(self.amplifiers))

    def amplifier(self, gain: float, name: str | None = None) -> Amplifier:
        """Return the amplifier constants for a gain setting (first amp if no name).

        Raises
        ------
        KeyError
            With a message naming the detector and the valid settings.
        """
        try:
            amps = self.amplifiers[gain]
        except KeyError:
            raise KeyError(
                f"detector {self.name} has no gain setting {gain!r}; valid: {list(self.gains)}"
            ) from None
        if name is None:
            return amps[0]
        for amp in amps:
            if amp.name == name:
                return amp
        raise KeyError(
            f"detector {self.name} gain {gain}: no amplifier {name!r}; "
            f"valid: {[a.name for a in amps]}"
        )

    def summary(self) -> dict:
        """A JSON-friendly description, as printed by ``hstcal plugins --json``."""
        return {
            "name": self.name,
            "instrument": self.instrument,
            "detector": self.detector,
            "kind": self.kind,
            "shape": list(self.shape),
            "pixel_pitch_um": self.pixel_pitch_um,
            "pixel_scale_arcsec": self.pixel_scale_arcsec,
            "area_cm2": round(float(self.area_cm2), 4),
            "gain_keyword": self.gain_keyword,
            "gains": {
                str(g): [
                    {"amp": a.name, "gain": a.gain, "read_noise": a.read_noise, "bias": a.bias}
                    for a in amps
                ]
                for g, amps in sorted(self.amplifiers.items())
            },
            "readout_time_s": self.readout_time_s,
            "saturation_dn": {str(k): v for k, v in self.saturation_dn.items()},
            "description": self.description,
            "inactive": [list(w) for w in self.inactive],
        }
