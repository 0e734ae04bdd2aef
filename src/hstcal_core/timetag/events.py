"""Photon event lists: what every TIME-TAG reader hands to the lightcurve kernel.

A reader (the ``calibrate`` hook of a TIME-TAG detector: COS corrtag/rawtag, STIS
tag) returns one :class:`EventList`: per-event columns (time, position, wavelength,
flat/dead-time weight, DQ, detector segment), the good-time intervals, and one
:class:`Extraction` per spectrum it can measure (COS FUV segment, NUV stripe, STIS
first-order spectrum or echelle order).  An extraction carries the source and
background regions (rows in the event ``y`` coordinate, as calcos' BOXCAR extraction
and the lightcurve package's ``SP_LOC``/``B_BKG`` keywords define them) and the
x1d's wavelength and sensitivity, so the kernel can assign each event to at most one
extraction, give it a wavelength, and turn counts into flux.

Nothing here reads files; :func:`classify` is vectorised over events (one pass per
extraction, never per event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["TimeTagInput", "Region", "Extraction", "EventList", "Classified", "classify",
           "group_inputs"]


@dataclass(frozen=True)
class TimeTagInput:
    """What the ``calibrate`` hook of a TIME-TAG detector receives: one exposure.

    Attributes
    ----------
    rootname : str
        Lower-case IPPPSSOOT.
    files : tuple of Path
        The files given for this exposure (``*_corrtag_a.fits``, ``*_rawtag_b.fits``,
        ``*_tag.fits``, ``*_x1d.fits``, ...).  The plugin finds missing companions (the
        other segment, the x1d) next to them.
    """

    rootname: str
    files: tuple[Path, ...]


def group_inputs(paths: Sequence[str | Path]) -> list[TimeTagInput]:
    """Group input files into exposures by rootname (the name up to the first ``_``),
    keeping the order in which rootnames first appear."""
    groups: dict[str, list[Path]] = {}
    for p in paths:
        p = Path(p)
        groups.setdefault(p.name.split("_")[0].lower(), []).append(p)
    return [TimeTagInput(root, tuple(files)) for root, files in groups.items()]


@dataclass(frozen=True)
class Region:
    """Rows ``center + slope·x − height/2 ≤ y < center + slope·x + height/2``.

    COS keyword convention (calcos ``x1d``: SP_LOC_A is the centre row, SP_HGT_A the
    full height; B_BKG1_A/B_HGT1_A the same for a background band).
    """

    center: float
    height: float
    slope: float = 0.0

    def __post_init__(self) -> None:
        if not self.height > 0:
            raise ValueError(f"region height must be > 0, got {self.height}")

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean mask of events inside the region."""
        mid = self.center + self.slope * x if self.slope else self.center
        offset = y - mid
        return (offset >= -0.5 * self.height) & (offset < 0.5 * self.height)


@dataclass(frozen=True)
class Extraction:
    """One spectrum on the detector: where it is, and how its pixels map to flux.

    Attributes
    ----------
    name : str
        ``"FUVA"``, ``"NUVB"``, ``"order 312"``, ...
    segment : int
        Events belong to this extraction only if ``EventList.segment == segment``
        (COS FUV segments A/B are separate event lists; 0 for one-piece detectors).
    source, background : Region, tuple of Region
        Source band and background bands (may be empty: no background subtraction).
    pixel, wavelength : ndarray
        The x1d's dispersion solution: ``wavelength[i]`` (Å) at event coordinate
        ``x = pixel[i]`` (increasing ``pixel``).  Used for events without a
        wavelength of their own, and to count the spectral elements of a range.
    sensitivity : ndarray
        x1d ``NET / FLUX`` at each ``wavelength`` ((count/s) per erg s⁻¹ cm⁻² Å⁻¹);
        0 or NaN where the x1d has no valid flux.
    """

    name: str
    segment: int
    source: Region
    background: tuple[Region, ...]
    pixel: np.ndarray
    wavelength: np.ndarray
    sensitivity: np.ndarray

    @property
    def background_scale(self) -> float:
        """Source height over total background height: the factor that turns counts in
        the background bands into the background expected in the source band.

        (The lightcurve package's ``b_corr`` is this ratio inverted — its issue #9.)
        """
        total = sum(r.height for r in self.background)
        return self.source.height / total if total else 0.0

    def dispersion_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pixel, wavelength)`` extended half an element beyond both ends: element *i*
        covers ``pixel[i] ± ½``, so an event there still has a wavelength."""
        return _half_element_padded(self.pixel, self.wavelength)

    def sensitivity_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(wavelength, sensitivity)`` ascending in wavelength, NaN where the x1d has
        no valid flux, extended half an element beyond both ends (end values held)."""
        order = np.argsort(self.wavelength, kind="stable")
        wave = np.asarray(self.wavelength, dtype=np.float64)[order]
        sens = np.asarray(self.sensitivity, dtype=np.float64)[order]
        sens = np.where(np.isfinite(sens) & (sens > 0), sens, np.nan)
        wave_padded, _ = _half_element_padded(wave, wave)
        return wave_padded, np.concatenate([sens[:1], sens, sens[-1:]])

    def wavelength_at(self, x: np.ndarray) -> np.ndarray:
        """Wavelength (Å) at event coordinate ``x``; NaN off the dispersion solution."""
        pixel, wave = self.dispersion_table()
        return np.interp(x, pixel, wave, left=np.nan, right=np.nan)

    def sensitivity_at(self, wavelength: np.ndarray) -> np.ndarray:
        """Sensitivity at ``wavelength``; NaN where the x1d has none."""
        wave, sens = self.sensitivity_table()
        return np.interp(wavelength, wave, sens, left=np.nan, right=np.nan)

    def n_elements(self, wave_min: float, wave_max: float,
                   excluded: Sequence[tuple[float, float]] = ()) -> int:
        """Spectral elements (x1d pixels with a valid sensitivity) in ``[wave_min,
        wave_max]`` outside the ``excluded`` windows — the divisor that makes the
        lightcurve's flux the mean of the x1d's FLUX over the same elements."""
        w = self.wavelength
        keep = (w >= wave_min) & (w <= wave_max)
        keep &= np.isfinite(self.sensitivity) & (self.sensitivity > 0)
        for lo, hi in excluded:
            keep &= ~((w >= lo) & (w <= hi))
        return int(keep.sum())


def _half_element_padded(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` with one point added half a step beyond each end, on the line through
    the two end points."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return x, y
    x0 = x[0] - 0.5 * (x[1] - x[0])
    x1 = x[-1] + 0.5 * (x[-1] - x[-2])
    y0 = y[0] - 0.5 * (y[1] - y[0])
    y1 = y[-1] + 0.5 * (y[-1] - y[-2])
    return np.concatenate([[x0], x, [x1]]), np.concatenate([[y0], y, [y1]])


@dataclass
class EventList:
    """Photon events of one exposure, with everything needed to bin them.

    Events are in file order, segment after segment (COS FUV: all of segment A, then all
    of B), so each segment is in time order but the list as a whole is not sorted by
    time.  Nothing downstream needs global time order: the lightcurve kernel bins each
    event by its own time.

    Attributes
    ----------
    path : Path
        The event file the list came from (the first, for paired COS segments).
    header : astropy.io.fits.Header
        Merged primary + events header: INSTRUME, DETECTOR, ROOTNAME, TARGNAME,
        OPT_ELEM, CENWAVE, APERTURE, EXPSTART (MJD), EXPTIME (s), EXPFLAG, ...
    time : ndarray of float32 or float64
        Seconds since EXPSTART, at the precision the file stores (calcos corrtags:
        float32; STIS tags: float64).
    x, y : ndarray of float32
        Event position in the coordinate the extractions use (XCORR/YCORR-like).
    wavelength : ndarray of float32 or float64
        Å, at the stored precision; NaN where unknown (the kernel takes it from the
        extraction then).
    epsilon : ndarray of float32
        Flat-field and dead-time weight of each event (1 when not known).
    dq : ndarray of int32
        Event data-quality bits.
    segment : ndarray of int8
        Detector segment of each event (see :attr:`Extraction.segment`).
    gti : ndarray, shape (n, 2)
        Good-time intervals, seconds since EXPSTART.
    extractions : tuple of Extraction
    sdqflags : int
        DQ bits that make an event unusable (the header's SDQFLAGS).
    notes : list of str
        Approximations the reader made (written into the product header).
    sources : list of Path
        Every file read (event files, x1d, flat), for provenance.
    """

    path: Path
    header: fits.Header
    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    wavelength: np.ndarray
    epsilon: np.ndarray
    dq: np.ndarray
    segment: np.ndarray
    gti: np.ndarray
    extractions: tuple[Extraction, ...]
    sdqflags: int = 0
    notes: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("x", "y", "wavelength", "epsilon", "dq", "segment"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"event column {name!r} has {len(getattr(self, name))} rows, "
                                 f"time has {n}")
        self.gti = np.asarray(self.gti, dtype=np.float64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def rootname(self) -> str:
        return str(self.header.get("ROOTNAME", self.path.name.split("_")[0])).strip().lower()

    @property
    def exptime(self) -> float:
        return float(self.header.get("EXPTIME", 0.0))

    @property
    def expstart(self) -> float:
        return float(self.header["EXPSTART"])


@dataclass
class Classified:
    """Per-event result of :func:`classify` (arrays over all events).

    ``extraction`` is the index of the extraction whose source or background band holds
    the event (−1: none); ``is_source`` tells which; ``wavelength`` is the event's own
    or the extraction's; ``sensitivity`` the extraction's at that wavelength.
    """

    extraction: np.ndarray
    is_source: np.ndarray
    wavelength: np.ndarray
    sensitivity: np.ndarray


def classify(events: EventList) -> Classified:
    """Assign events to extractions' source or background bands.

    Source bands win over background bands (an echelle order's background may lie on
    its neighbour's spectrum); earlier extractions win over later ones.  Vectorised:
    one pass over the events per extraction.
    """
    n = len(events)
    extraction = np.full(n, -1, dtype=np.int16)
    is_source = np.zeros(n, dtype=bool)
    wavelength = np.asarray(events.wavelength, dtype=np.float64).copy()
    sensitivity = np.full(n, np.nan)
    x, y = events.x, events.y
    for band in ("source", "background"):
        for k, ext in enumerate(events.extractions):
            free = (extraction < 0) & (events.segment == ext.segment)
            regions = (ext.source,) if band == "source" else ext.background
            inside = np.zeros(n, dtype=bool)
            for region in regions:
                inside |= region.contains(x, y)
            take = free & inside
            extraction[take] = k
            is_source[take] = band == "source"
    for k, ext in enumerate(events.extractions):
        mine = extraction == k
        if not mine.any():
            continue
        missing = mine & ~np.isfinite(wavelength)
        if missing.any():
            wavelength[missing] = ext.wavelength_at(x[missing])
        sensitivity[mine] = ext.sensitivity_at(wavelength[mine])
    return Classified(extraction=extraction, is_source=is_source, wavelength=wavelength,
                      sensitivity=sensitivity)
