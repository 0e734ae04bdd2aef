"""Where HST was: geodetic latitude, longitude and altitude from the onboard ephemeris elements.

Every SPT (and WFPC2 SHM/SHP) primary header carries the 18 "ONBOARD EPHEMERIS MODEL
PARAMETERS" (ARGPERIG ... SINEINCL) from which the flight software propagates HST's orbit:
mean anomaly with first and second derivatives, the equation of the centre to third order
in eccentricity, and linear drifts of the node and of the perigee.  The propagation is
calcos' :class:`calcos.orbit.HSTOrbit` (``getPos``: position in km), itself a port of
Tom Ake's IDL ``hst_pos_mjd.pro`` and of STSDAS ``hstpos.f`` (S. Hulbert 1991, "see flight
software ephemeris algorithm"); we call it rather than copy it.

The frame of that position is the equator and mean equinox *of date*: calcos
(``timeline.py``) and STSDAS ``hstpos.f`` both turn it into a longitude by subtracting the
Greenwich mean sidereal time, which is exactly astropy's :class:`~astropy.coordinates.TEME`
→ :class:`~astropy.coordinates.ITRS` rotation (GMST 1982).  The jitter tables confirm it: in
2017 (COS ldfd01010) the largest longitude difference to them is 0.39° through TEME and
0.65° through GCRS (J2000), whose axes had precessed by 0.24° by then.  Latitude here is
*geodetic* (WGS84), as the census needs; the jitter tables and calcos give the geocentric
latitude, up to 0.15° smaller in magnitude at HST's extreme latitudes.

Earth orientation: the accuracy needed is ~0.1° (6 km), so UT1−UTC (< 1 s, 0.004°) and polar
motion (< 0.5", 15 m) hardly matter.  The conversion therefore never downloads IERS tables:
it uses the tables bundled with astropy (``astropy-iers-data``) and, outside their range,
astropy's fallbacks (edge values of UT1−UTC, the 50-year mean polar motion, leap seconds as
last known), silencing exactly the warnings that announce those fallbacks — see
:func:`_offline_earth_orientation`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = [
    "ORBIT_KEYWORDS",
    "REFERENCE_ELEMENTS",
    "OrbitTrack",
    "OrbitalElements",
    "elements_at_epoch",
    "hst_track",
    "inertial_positions",
    "orbit_keywords",
    "orbital_elements",
    "sample_times",
]

#: MJD of 1985-01-01T00:00, the zero of EPCHTIME (calcos orbit.py, STSDAS hstpos.f).
MJD_1985 = 46066.0
SECONDS_PER_DAY = 86400.0

#: The 18 orbital-element keywords of SPT/SHM primary headers, with their header comments
#: (as written in the SPT of o4er06llq; the misspelling "anomly" is HST's own).
ORBIT_KEYWORDS: dict[str, str] = {
    "ARGPERIG": "argument of perigee (revolutions)",
    "CIRVELOC": "circular orbit linear velocity (meters/second)",
    "COSINCLI": "cosine of inclination",
    "ECBDX3": "eccentricity cubed times 3",
    "ECCENTRY": "eccentricity",
    "ECCENTX2": "eccentricity times 2",
    "ECBDX4D3": "eccentricity cubed times 4/3",
    "EPCHTIME": "epoch time of parameters (secs since 1/1/85)",
    "ESQDX5D2": "eccentricity squared times 5/2",
    "FDMEANAN": "1st derivative coef for mean anomly (revs/sec)",
    "HSTHORB": "half the duration of the ST orbit (seconds)",
    "MEANANOM": "mean anomaly (radians)",
    "RASCASCN": "right ascension of ascending node (revolutions)",
    "RCARGPER": "rate change of argument of perigee (revs/sec)",
    "RCASCNRV": "rt chge right ascension ascend node (revs/sec)",
    "SDMEANAN": "2nd deriv coef for mean anomaly (revs/sec/sec)",
    "SEMILREC": "semi-latus rectum (meters)",
    "SINEINCL": "sine of inclination",
}


@dataclass(frozen=True)
class OrbitalElements:
    """HST's onboard ephemeris elements, one field per header keyword (lower case).

    Field names are the keywords, as calcos' :class:`~calcos.orbit.HSTOrbit` names its
    attributes; :data:`ORBIT_KEYWORDS` gives each one's meaning and unit.  Angles are in
    revolutions except ``meananom`` (radians); lengths in metres; times in seconds.
    """

    argperig: float
    cirveloc: float
    cosincli: float
    ecbdx3: float
    eccentry: float
    eccentx2: float
    ecbdx4d3: float
    epchtime: float
    esqdx5d2: float
    fdmeanan: float
    hsthorb: float
    meananom: float
    rascascn: float
    rcargper: float
    rcascnrv: float
    sdmeanan: float
    semilrec: float
    sineincl: float

    @property
    def epoch_mjd(self) -> float:
        """The epoch of the elements (EPCHTIME) as an MJD."""
        return MJD_1985 + self.epchtime / SECONDS_PER_DAY

    @property
    def inclination_deg(self) -> float:
        """Orbital inclination to the equator of date, in degrees."""
        return math.degrees(math.atan2(self.sineincl, self.cosincli))

    @property
    def orbital_period_s(self) -> float:
        """Orbital period in seconds (2 × HSTHORB, as calcos' ``getOrbitper``)."""
        return 2.0 * self.hsthorb


@dataclass(frozen=True)
class OrbitTrack:
    """HST's ground track: one sample per time, float64 arrays of equal length.

    ``latitude_deg`` is geodetic (WGS84), ``longitude_deg`` east in [-180, 180),
    ``altitude_km`` above the WGS84 ellipsoid.
    """

    mjd: np.ndarray
    latitude_deg: np.ndarray
    longitude_deg: np.ndarray
    altitude_km: np.ndarray

    def __len__(self) -> int:
        return len(self.mjd)


#: Elements from a real SPT header: rootname o4er06llq (STIS/CCD, 1998-03-03; EPCHTIME
#: 1998-03-03T00:00 = MJD 50875.0).  Simulators shift them with :func:`elements_at_epoch`.
REFERENCE_ELEMENTS = OrbitalElements(
    argperig=6.644081328846e-02,
    cirveloc=7.554327868960e03,
    cosincli=8.792587462691e-01,
    ecbdx3=1.810193344238e-08,
    eccentry=1.820544237486e-03,
    eccentx2=3.641088474972e-03,
    ecbdx4d3=8.045303752171e-09,
    epchtime=4.154976000000e08,
    esqdx5d2=8.285953301608e-06,
    fdmeanan=1.721379765449e-04,
    hsthorb=2.904646667956e03,
    meananom=1.704504435498e00,
    rascascn=5.164961100092e-01,
    rcargper=2.593128829936e-07,
    rcascnrv=-2.052702168831e-07,
    sdmeanan=1.243713242225e-15,
    semilrec=6.984629700819e06,
    sineincl=4.763444731591e-01,
)


# --------------------------------------------------------------------------- headers


def orbital_elements(header: Mapping, path: str | Path | None = None) -> OrbitalElements:
    """The orbital elements of an SPT or WFPC2 SHM primary header.

    :param header: the primary header (an :class:`astropy.io.fits.Header` or any mapping;
        keywords are matched case-insensitively).
    :param path: the file the header came from, named in errors.
    :returns: the 18 elements.
    :raises InputError: naming every missing keyword, a non-numeric value, or elements
        that describe no orbit (e.g. the zeros of a header written with defaults).
    """
    by_upper = {str(key).upper(): key for key in header}
    missing = [keyword for keyword in ORBIT_KEYWORDS if keyword not in by_upper]
    if missing:
        raise InputError(path, f"HST orbital elements missing from the primary header: "
                               f"{', '.join(missing)} (an SPT or SHM primary header carries them)")
    values = {}
    for keyword in ORBIT_KEYWORDS:
        raw = header[by_upper[keyword]]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(raw, bool) or not math.isfinite(value):
            raise InputError(path, f"orbital element {keyword}={raw!r} is not a finite number")
        values[keyword.lower()] = value
    elements = OrbitalElements(**values)
    if elements.semilrec <= 0 or abs(elements.sineincl**2 + elements.cosincli**2 - 1) > 1e-6:
        raise InputError(path, f"the orbital elements describe no orbit (SEMILREC="
                               f"{elements.semilrec:g}, SINEINCL={elements.sineincl:g}, "
                               f"COSINCLI={elements.cosincli:g})")
    return elements


def orbit_keywords(elements: OrbitalElements) -> dict[str, float]:
    """The header keywords of ``elements`` (``{"ARGPERIG": ..., ...}``), for synthetic SPT files.

    Write them with their comments: ``header[k] = (v, ORBIT_KEYWORDS[k])``.
    """
    return {name.upper(): float(value) for name, value in asdict(elements).items()}


def elements_at_epoch(reference: OrbitalElements, epoch_mjd: float) -> OrbitalElements:
    """``reference`` with its epoch moved to ``epoch_mjd``; nothing else is advanced.

    The result describes the same orbit shape and orientation, with HST at the same mean
    anomaly at the new epoch: a plausible HST orbit for a simulated date (not the real one).
    """
    if not math.isfinite(epoch_mjd):
        raise ValueError(f"epoch_mjd must be a finite MJD, not {epoch_mjd!r}")
    return replace(reference, epchtime=(float(epoch_mjd) - MJD_1985) * SECONDS_PER_DAY)


# --------------------------------------------------------------------------- positions


def sample_times(start_mjd: float, end_mjd: float, step_s: float = 60.0) -> np.ndarray:
    """MJDs ``start, start + step, ...`` below ``end``, then ``end`` itself (float64).

    A last regular sample within 1 ms of ``end`` is replaced by ``end`` rather than
    followed by it.
    """
    start, end, step = float(start_mjd), float(end_mjd), float(step_s)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"start_mjd and end_mjd must be finite, not {start_mjd!r}, {end_mjd!r}")
    if end < start:
        raise ValueError(f"end_mjd={end!r} is before start_mjd={start!r}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step_s must be a positive number of seconds, not {step_s!r}")
    duration_s = (end - start) * SECONDS_PER_DAY
    offsets_s = np.arange(0.0, duration_s, step)
    offsets_s = offsets_s[offsets_s < duration_s - 1e-3]
    return np.concatenate([start + offsets_s / SECONDS_PER_DAY, [end]])


def inertial_positions(elements: OrbitalElements, mjd) -> np.ndarray:
    """HST's geocentric position (km, equator and mean equinox of date) at each MJD.

    :returns: an ``(n, 3)`` float64 array, computed by calcos' ``HSTOrbit.getPos``.
    """
    times = np.atleast_1d(np.asarray(mjd, dtype=np.float64))
    if times.ndim != 1:
        raise ValueError(f"mjd must be a scalar or a 1-d array, not shape {times.shape}")
    orbit = _calcos_orbit_class()(elements)
    # getPos works on one scalar time (math.sin); a day at one-minute steps is 1440 calls.
    positions = np.empty((len(times), 3), dtype=np.float64)
    for i, time in enumerate(times):
        positions[i] = orbit.getPos(float(time))[0]
    return positions


def hst_track(elements: OrbitalElements, start_mjd: float, end_mjd: float,
              step_s: float = 60.0) -> OrbitTrack:
    """HST's geodetic latitude, longitude and altitude from ``start_mjd`` to ``end_mjd``.

    :param elements: the orbital elements (:func:`orbital_elements` of the SPT header).
    :param start_mjd: first time (UTC MJD, e.g. EXPSTART).
    :param end_mjd: last time, always sampled (e.g. EXPEND).
    :param step_s: spacing of the samples in seconds.
    :returns: the track at :func:`sample_times`.
    """
    mjd = sample_times(start_mjd, end_mjd, step_s)
    latitude, longitude, altitude = _geodetic(inertial_positions(elements, mjd), mjd)
    return OrbitTrack(mjd=mjd, latitude_deg=latitude, longitude_deg=longitude,
                      altitude_km=altitude)


# --------------------------------------------------------------------------- internals


@functools.cache
def _calcos_orbit_class():
    # calcos is imported on first use: importing it loads all of calcos (~2 s).
    from calcos.orbit import HSTOrbit

    class ElementsOrbit(HSTOrbit):
        """calcos' HSTOrbit fed from OrbitalElements instead of an SPT file."""

        def _readOrbitalParameters(self, elements: OrbitalElements) -> None:
            for field in fields(elements):
                if not hasattr(self, field.name):  # calcos changed its attribute names
                    raise RuntimeError(f"calcos.orbit.HSTOrbit has no attribute "
                                       f"{field.name!r}; hstcal needs calcos>=3.6")
                setattr(self, field.name, getattr(elements, field.name))

    return ElementsOrbit


# One conversion at a time: the IERS settings and warning filters below are process-wide.
_EARTH_ORIENTATION_LOCK = threading.Lock()


@contextlib.contextmanager
def _offline_earth_orientation() -> Iterator[None]:
    """astropy's Earth orientation from its bundled tables only, fallbacks accepted quietly.

    * ``auto_download=False``: never reach the network for IERS-A or leap seconds.
    * ``auto_max_age=None``: use the bundled IERS-A predictions however old they are, rather
      than refusing (astropy's "predictive values that are more than 30 days old" error).
    * Ignored, by exact message: polar motion defaulting to its 50-year mean outside the
      tables (≤ 0.5", 15 m); ERFA's "dubious year" and astropy's "leap-second file is
      expired" for dates past the known leap seconds (≤ a few seconds, ≤ 0.02°).  Any other
      warning still reaches the caller.
    """
    from astropy.utils import iers
    from astropy.utils.exceptions import AstropyWarning
    from erfa import ErfaWarning

    with _EARTH_ORIENTATION_LOCK, iers.conf.set_temp("auto_download", False), \
            iers.conf.set_temp("auto_max_age", None), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Tried to get polar motions for times (before|after) IERS data "
                              r"is valid", category=AstropyWarning)
        warnings.filterwarnings(
            "ignore", message=r'ERFA function "\w+" yielded \d+ of "dubious year',
            category=ErfaWarning)
        warnings.filterwarnings(
            "ignore", message=r"leap-second file is expired", category=iers.IERSStaleWarning)
        yield


def _geodetic(positions_km: np.ndarray, mjd: np.ndarray) -> tuple[np.ndarray, ...]:
    """(latitude°, longitude° in [-180, 180), altitude km) of TEME positions, vectorised."""
    from astropy import units as u
    from astropy.coordinates import ITRS, TEME, CartesianRepresentation
    from astropy.time import Time

    with _offline_earth_orientation():
        obstime = Time(mjd, format="mjd", scale="utc")
        teme = TEME(CartesianRepresentation(positions_km.T * u.km), obstime=obstime)
        location = teme.transform_to(ITRS(obstime=obstime)).earth_location
        geodetic = location.to_geodetic("WGS84")
    latitude = np.asarray(geodetic.lat.to_value(u.deg), dtype=np.float64)
    longitude = np.asarray(geodetic.lon.to_value(u.deg), dtype=np.float64)
    longitude = (longitude + 180.0) % 360.0 - 180.0
    longitude[longitude >= 180.0] -= 360.0  # (-1e-17 + 180) % 360 rounds to 360
    altitude = np.asarray(geodetic.height.to_value(u.km), dtype=np.float64)
    return latitude, longitude, altitude
