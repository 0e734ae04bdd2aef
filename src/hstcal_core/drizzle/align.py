"""A posteriori alignment: sources found with photutils, fitted to a reference catalog with
tweakwcs, judged by drizzlepac's alignment parameters.

The steps of drizzlepac ``align.perform_align`` with a reference catalog that may be a
**local file**:

1. :func:`read_reference_catalog` — a FITS or ECSV table of ``ra``, ``dec`` (degrees)
   with optional proper motions ``pm_ra`` (× cos δ, Gaia's convention) and ``pm_dec``
   (mas/yr) at ``epoch`` (Julian year; column or table meta), moved to the epoch of the
   observation.  Column names are matched case-insensitively with Gaia's spellings
   (``pmra``, ``pmdec``, ``ref_epoch``) accepted.  :func:`network_reference_catalog`
   asks drizzlepac's catalog service instead (needs the network): drizzlepac's request,
   made with a time-out (:data:`SERVICE_TIMEOUT_S`), failures raised as
   :class:`CatalogServiceError`.
2. :func:`find_sources` — DAOStarFinder on each chip (bad DQ pixels masked), the
   brightest ``MAX_SOURCES_PER_CHIP``, their positions fitted with a pixel-integrated
   Gaussian of the PSF width measured on the chip (:func:`measure_fwhm`, as drizzlepac
   measures its detection kernel): DAOFIND centroids alone are ~0.6 pixel off on
   WFC3/IR.
3. :func:`fit_aposteriori` — the fit methods drizzlepac tries in order
   (``match_relative_fit``, ``match_2dhist_fit``, ``match_default_fit``, each with its
   tweakwcs ``XYXYMatch`` parameters and ``fitgeom``, normally ``rscale``; sources
   matched one exposure at a time, :class:`_PerExposureMatch`), each judged
   as ``determine_fit_quality`` does: ≥ ``MIN_FIT_MATCHES`` (4) matches, RMS ≤
   ``MAX_FIT_LIMIT`` (150 mas), radial-offset and consistency checks; quality 1 when
   the RMS is below ``MAX_FIT_RMS`` (20 mas).  The first quality-1 fit wins, else the
   best.  Nothing is written: the result holds the corrected WCS of every chip.
4. :func:`apply_fit` — writes a fit into files (``updatehdr.update_wcs``, which archives
   the previous WCS; WCSNAME ``<base>-FIT_<REL|IMG>_<catalog>``; RMS_RA, RMS_DEC,
   NMATCHES, FITGEOM) — called by the stage on a candidate's private copies only.

The parameters come from drizzlepac's own files
(``pars/hap_pars/svm_parameters/<inst>/<det>/<inst>_<det>_alignment_all.json``).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import InputError
from ._thirdparty import import_drizzlepac, library_warnings, require

__all__ = [
    "SERVICE_TIMEOUT_S",
    "AlignmentParameters",
    "CatalogServiceError",
    "FitResult",
    "ReferenceCatalog",
    "alignment_parameters",
    "apply_fit",
    "find_sources",
    "fit_aposteriori",
    "network_reference_catalog",
    "observation_epoch",
    "read_reference_catalog",
]

log = logging.getLogger(__name__)

_FIT_METHODS = ("match_relative_fit", "match_2dhist_fit", "match_default_fit")
_MAS_PER_DEG = 3.6e6


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class AlignmentParameters:
    """drizzlepac's alignment parameters for one instrument/detector (see module doc)."""

    min_fit_matches: int = 4
    max_fit_rms_mas: float = 20.0
    max_fit_limit_mas: float = 150.0
    max_sources_per_chip: int = 250
    # the DAOStarFinder kernel and first guess of the PSF width, which is then measured
    # (drizzlepac astrometric_utils.generate_source_catalog likewise only starts from it)
    fwhmpsf_arcsec: float = 0.13
    nsigma: float = 3.0
    methods: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    mosaic_fitgeom: Mapping[str, int] = field(default_factory=lambda: {"rscale": 12,
                                                                        "general": 25})
    relative_fitgeom: Mapping[str, int] = field(default_factory=lambda: {"rscale": 12})
    source: str = "defaults"


def alignment_parameters(instrument: str, detector: str) -> AlignmentParameters:
    """Read drizzlepac's ``<inst>_<det>_alignment_all.json`` (SVM set).

    A detector without its own directory (WFPC2 files name chips, drizzlepac a "pc"
    directory) takes the instrument's only directory.
    """
    drizzlepac = import_drizzlepac()
    base = Path(drizzlepac.__file__).parent / "pars" / "hap_pars" / "svm_parameters"
    inst = instrument.strip().lower()
    det = detector.strip().lower()
    directory = base / inst / det
    if not directory.is_dir():
        choices = sorted(p for p in (base / inst).glob("*") if p.is_dir())
        if len(choices) != 1:
            raise InputError(None, f"drizzlepac has no alignment parameters for {instrument}/"
                                   f"{detector} (looked in {base / inst})")
        directory = choices[0]
    path = directory / f"{inst}_{directory.name}_alignment_all.json"
    pars = json.loads(path.read_text())
    general, quality = pars["general"], pars["determine_fit_quality"]
    sources = pars["generate_source_catalogs"]
    run = pars["run_align"]
    return AlignmentParameters(
        min_fit_matches=int(general["MIN_FIT_MATCHES"]),
        max_fit_rms_mas=float(quality["MAX_FIT_RMS"]),
        max_fit_limit_mas=float(quality["MAX_FIT_LIMIT"]),
        max_sources_per_chip=int(general["MAX_SOURCES_PER_CHIP"]),
        fwhmpsf_arcsec=float(sources["fwhmpsf"]),
        nsigma=float(sources["nsigma"]),
        methods={m: dict(pars[m]) for m in _FIT_METHODS if m in pars},
        mosaic_fitgeom=dict(run.get("mosaic_fitgeom_list", {"rscale": 12})),
        relative_fitgeom=dict(run.get("mosaic_relgeom_list", {"rscale": 12})),
        source=str(path))


# --------------------------------------------------------------------------- catalogs
@dataclass
class ReferenceCatalog:
    """Reference positions at the observation epoch."""

    ra: np.ndarray
    dec: np.ndarray
    epoch: float
    name: str
    source: str
    proper_motion_applied: bool = False

    def __len__(self) -> int:
        return int(self.ra.size)

    def table(self) -> Table:
        return Table({"RA": self.ra, "DEC": self.dec}, meta={"catalog": self.name})


_ALIASES = {
    "ra": ("ra", "raj2000", "ra_icrs", "radeg"),
    "dec": ("dec", "dej2000", "de_icrs", "dec_icrs", "decdeg"),
    "pm_ra": ("pm_ra", "pmra", "pmracosdec", "pm_ra_cosdec"),
    "pm_dec": ("pm_dec", "pmdec", "pmde"),
    "epoch": ("epoch", "ref_epoch", "refepoch"),
}


def _column(table: Table, what: str) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    return next((lower[a] for a in _ALIASES[what] if a in lower), None)


def _values(table: Table, name: str, unit: u.UnitBase) -> np.ndarray:
    col = table[name]
    data = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    if col.unit is not None and col.unit != unit:
        data = (data * u.Unit(col.unit)).to_value(unit)
    return np.asarray(data, dtype=np.float64)


def read_reference_catalog(path: str | Path, epoch: float, *, name: str = "LOCAL"
                           ) -> ReferenceCatalog:
    """A local FITS/ECSV reference catalog at Julian year ``epoch`` (see module doc).

    Raises
    ------
    InputError
        Naming the file: unreadable, no RA/Dec columns, proper motions without epoch.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "reference catalog does not exist")
    fmt = "ascii.ecsv" if path.suffix.lower() == ".ecsv" else None
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for bad tables
        raise InputError(path, f"not a readable FITS/ECSV table ({type(exc).__name__}: "
                               f"{exc})") from None
    ra_col, dec_col = _column(table, "ra"), _column(table, "dec")
    if ra_col is None or dec_col is None:
        raise InputError(path, f"reference catalog needs RA and Dec columns; it has "
                               f"{table.colnames}")
    ra, dec = _values(table, ra_col, u.deg), _values(table, dec_col, u.deg)
    good = np.isfinite(ra) & np.isfinite(dec)
    pm_ra_col, pm_dec_col = _column(table, "pm_ra"), _column(table, "pm_dec")
    applied = False
    if pm_ra_col is not None and pm_dec_col is not None:
        epoch_col = _column(table, "epoch")
        if epoch_col is not None:
            cat_epoch = _values(table, epoch_col, u.yr)
        else:
            meta = {k.lower(): v for k, v in table.meta.items()}
            if "epoch" not in meta and "ref_epoch" not in meta:
                raise InputError(path, "reference catalog has proper motions but no epoch "
                                       "(an 'epoch' column or meta value, Julian year)")
            cat_epoch = np.full(ra.size, float(meta.get("epoch", meta.get("ref_epoch"))))
        ra, dec = _carry(ra, dec, _values(table, pm_ra_col, u.mas / u.yr),
                         _values(table, pm_dec_col, u.mas / u.yr), cat_epoch, epoch)
        applied = True
        log.info("reference catalog %s: proper motions applied from epoch %s to %.3f",
                 path.name, _epoch_range(cat_epoch), epoch)
    log.info("reference catalog %s: %d sources", path.name, int(good.sum()))
    return ReferenceCatalog(ra=ra[good] % 360.0, dec=dec[good], epoch=float(epoch), name=name,
                            source=str(path), proper_motion_applied=applied)


def _carry(ra: np.ndarray, dec: np.ndarray, pm_ra: np.ndarray, pm_dec: np.ndarray,
           cat_epoch: np.ndarray, epoch: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions moved from ``cat_epoch`` to ``epoch`` (years; pm in mas/yr, NaN = 0)."""
    dt = float(epoch) - np.nan_to_num(cat_epoch, nan=float(epoch))
    # pm_ra includes cos(dec) (Gaia): linear motion on the tangent plane
    ra = ra + np.nan_to_num(pm_ra) * dt / _MAS_PER_DEG / np.cos(np.radians(dec))
    dec = dec + np.nan_to_num(pm_dec) * dt / _MAS_PER_DEG
    return ra, dec


def _epoch_range(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "?"
    lo, hi = finite.min(), finite.max()
    return f"{lo:.3f}" if lo == hi else f"{lo:.3f}-{hi:.3f}"


#: Seconds the catalog service may stay silent (to connect, or between two pieces of its
#: answer) before the request is given up.  drizzlepac 3.11 ``get_catalog`` calls
#: ``requests.get`` with no time-out: a service that accepts the connection and never
#: answers would hang the stage for good.
SERVICE_TIMEOUT_S = 60.0


class CatalogServiceError(RuntimeError):
    """The astrometric catalog service gave no usable answer (the message says why)."""


def network_reference_catalog(files: Sequence[str | Path], name: str, epoch: float, *,
                              timeout: float | None = None) -> ReferenceCatalog:
    """drizzlepac's astrometric catalog service for the footprint of ``files`` (network).

    The request of drizzlepac ``create_astrometric_catalog`` / ``get_catalog``: a cone of
    ``compute_radius`` around the CRVAL of ``build_reference_wcs(files)``, ``CAT=name``,
    ``MINDET=5``, CSV, ``EPOCH`` = ``epoch`` (3 decimals; drizzlepac sends the first
    file's DATE-OBS as a decimal year), to drizzlepac's ``SERVICELOCATION``
    ($ASTROMETRIC_CATALOG_URL, read at its import); asked again without ``EPOCH`` when
    the answer starts with ``Error``, whose positions are then carried to ``epoch`` here
    with the catalog's proper motions.  The first line of the answer (the number of
    sources) is dropped, the rest read as CSV and renamed by drizzlepac's
    ``convert_astrometric_table``.  Made here rather than through drizzlepac so that it
    has a time-out (``timeout`` s, default :data:`SERVICE_TIMEOUT_S`) and its HTTP status
    is checked.

    Raises
    ------
    CatalogServiceError
        Service unreachable, silent, answering an HTTP error or an ``Error`` line, no
        table or no source; ``name`` not one of drizzlepac's ``SUPPORTED_CATALOGS``.
    """
    amutils = import_drizzlepac("haputils.astrometric_utils")
    if name.upper() not in amutils.SUPPORTED_CATALOGS:
        known = ", ".join(amutils.SUPPORTED_CATALOGS)
        raise CatalogServiceError(f"catalog {name!r} is not one drizzlepac reads (its "
                                  f"SUPPORTED_CATALOGS: {known})")
    timeout = SERVICE_TIMEOUT_S if timeout is None else float(timeout)
    with library_warnings():
        outwcs = amutils.build_reference_wcs([str(f) for f in files])
        radius = amutils.compute_radius(outwcs)
    ra0, dec0 = outwcs.wcs.crval
    url = f"{amutils.SERVICELOCATION}/vo/CatalogSearch.aspx"
    spec = f"RA={ra0}&DEC={dec0}&SR={radius}&FORMAT=CSV&CAT={name}&MINDET=5"
    request = f"{url}?{spec}&EPOCH={float(epoch):.3f}"
    status, lines = _ask_service(request, name, timeout)
    at_epoch = True
    if lines[0].startswith("Error"):  # drizzlepac get_catalog: try again without EPOCH
        log.warning("the %s catalog service answered %r with EPOCH; asking again without",
                    name, lines[0][:200])
        request = f"{url}?{spec}"
        status, lines = _ask_service(request, name, timeout)
        at_epoch = False
    if status >= 400 or lines[0].startswith("Error"):
        raise CatalogServiceError(f"the {name} catalog service failed: HTTP {status}, "
                                  f"{lines[0][:200]!r} ({request})")
    if len(lines) < 2 or not lines[1].strip():
        raise CatalogServiceError(f"the {name} catalog service answered no table ({request})")
    try:
        table = Table.read(lines[1:], format="ascii.csv")
    except Exception as exc:  # astropy raises many kinds for bad tables
        raise CatalogServiceError(f"the {name} catalog service answered no CSV table "
                                  f"({type(exc).__name__}: {exc}; {request})") from exc
    if len(table) == 0:
        raise CatalogServiceError(f"the {name} catalog service has no source within "
                                  f"{radius * 3600:.1f} arcsec of RA {ra0:.6f} Dec "
                                  f"{dec0:.6f} ({request})")
    try:
        amutils.convert_astrometric_table(table, name)
        ra, dec = _values(table, "RA", u.deg), _values(table, "DEC", u.deg)
        pm_ra = _values(table, "pmra", u.mas / u.yr)
        pm_dec = _values(table, "pmdec", u.mas / u.yr)
        cat_epoch = _values(table, "epoch", u.yr)
    except (KeyError, ValueError, TypeError) as exc:
        raise CatalogServiceError(f"the {name} catalog service answered a table without "
                                  f"drizzlepac's {name} columns ({type(exc).__name__}: {exc}; "
                                  f"columns {table.colnames})") from exc
    applied = bool(np.isfinite(pm_ra).any() or np.isfinite(pm_dec).any())
    if not at_epoch and applied:
        ra, dec = _carry(ra, dec, pm_ra, pm_dec, cat_epoch, epoch)
        log.info("%s catalog service: proper motions applied here from epoch %s to %.3f",
                 name, _epoch_range(cat_epoch), epoch)
    good = np.isfinite(ra) & np.isfinite(dec)
    log.info("%s catalog service: %d sources within %.1f arcsec (%s)", name, int(good.sum()),
             radius * 3600, request)
    return ReferenceCatalog(ra=ra[good] % 360.0, dec=dec[good], epoch=float(epoch), name=name,
                            source=f"service {name}", proper_motion_applied=applied)


def _ask_service(request: str, name: str, timeout: float) -> tuple[int, list[str]]:
    """HTTP status and lines (split on CRLF, as drizzlepac does) of one GET."""
    import requests

    try:
        # drizzlepac sends this header (sic: Content-Type on a GET)
        response = requests.get(request, headers={"Content-Type": "text/csv"},
                                timeout=timeout)
    except requests.Timeout as exc:
        raise CatalogServiceError(f"the {name} catalog service did not answer within "
                                  f"{timeout:g} s ({request})") from exc
    except requests.RequestException as exc:
        reason = getattr(exc.args[0], "reason", exc.args[0]) if exc.args else exc
        raise CatalogServiceError(f"the {name} catalog service could not be reached "
                                  f"({reason}; {request})") from exc
    with response:
        text = response.content.decode("utf-8", errors="replace")
    return response.status_code, text.split("\r\n")


def observation_epoch(files: Sequence[str | Path]) -> float:
    """Mean EXPSTART of ``files`` as a Julian year."""
    starts = [float(fits.getval(f, "EXPSTART")) for f in files]
    return float(Time(np.mean(starts), format="mjd", scale="utc").jyear)


# --------------------------------------------------------------------------- sources
#: Detections whose pixel-integrated Gaussian fit fails (photutils PSF_FLAGS): fitted
#: outside the image (2), non-positive flux (4), not converged (8), at the ±1 FWHM
#: position bound (32: it ran to a neighbour), no usable pixels (64, 128, 256).
_BAD_FIT_FLAGS = 2 | 4 | 8 | 32 | 64 | 128 | 256
_FWHM_STARS = 20  # brightest isolated detections the PSF width is measured on


def find_sources(image: np.ndarray, bad: np.ndarray | None, fwhm_px: float, *,
                 nsigma: float = 5.0, max_sources: int = 250) -> Table:
    """Point sources of one chip: ``x``, ``y`` (0-based), ``flux`` — brightest first.

    DAOStarFinder above ``nsigma`` × the clipped standard deviation of the sky finds the
    sources (``fwhm_px`` is its kernel, bad pixels masked).  Their positions are then
    fitted with a circular Gaussian integrated over the pixels, of the FWHM measured on
    the brightest isolated sources (:func:`measure_fwhm`): with a kernel of ~1 pixel
    (drizzlepac's 0.13″ on WFC3/IR's 0.13″ pixels) DAOFIND's marginal-fit centroids
    follow the pixel phase, ~0.6 pixel rms per axis, too much for a 5 mas fit on ~100
    stars a chip.  ``meta["fwhm"]`` is the FWHM (pixels) the positions were fitted with.
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder
    from photutils.utils.exceptions import NoDetectionsWarning

    empty = Table({"x": [], "y": [], "flux": []}, meta={"fwhm": float("nan")})
    data = np.asarray(image, dtype=np.float64)
    mask = ~np.isfinite(data) if bad is None else (bad | ~np.isfinite(data))
    _, median, std = sigma_clipped_stats(data, mask=mask, sigma=3.0, maxiters=5)
    if not np.isfinite(std) or std <= 0:
        return empty
    finder = DAOStarFinder(fwhm=float(fwhm_px), threshold=float(nsigma) * float(std),
                           exclude_border=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty chip is an answer
        found = finder(data - median, mask=mask)
    if found is None or len(found) == 0:
        return empty
    found.sort("flux", reverse=True)
    found = found[:int(max_sources)]
    detections = Table({"x": np.asarray(found["xcentroid"], float),
                        "y": np.asarray(found["ycentroid"], float),
                        "flux": np.asarray(found["flux"], float)})
    clean = np.where(mask, 0.0, data - median)
    fwhm = measure_fwhm(clean, mask, detections, float(fwhm_px))
    fitted = _fit_prf(clean, mask, detections, fwhm, fixed_fwhm=True)
    keep = _good_fits(fitted)
    log.debug("%d of %d detections fitted with a %.2f px FWHM", int(keep.sum()),
              len(detections), fwhm)
    sources = Table({"x": np.asarray(fitted["x_fit"], float)[keep],
                     "y": np.asarray(fitted["y_fit"], float)[keep],
                     "flux": np.asarray(fitted["flux_fit"], float)[keep]},
                    meta={"fwhm": fwhm})
    sources.sort("flux", reverse=True)
    return sources


def measure_fwhm(data: np.ndarray, mask: np.ndarray, detections: Table, guess: float
                 ) -> float:
    """FWHM (pixels, before pixelation) of the PSF of a sky-subtracted chip.

    drizzlepac measures it the same way (``astrometric_utils.build_auto_kernel`` /
    ``find_fwhm``: a ``CircularGaussianSigmaPRF`` fitted to an isolated bright star,
    the configured ``fwhmpsf`` only a first guess): here the median over the
    :data:`_FWHM_STARS` brightest detections with no other within 4 × ``guess``.
    ``guess`` comes back when fewer than three fits succeed.
    """
    from scipy.spatial import cKDTree

    if len(detections) < 3:
        return guess
    xy = np.column_stack([detections["x"], detections["y"]])
    distance, _ = cKDTree(xy).query(xy, k=2)
    isolated = np.flatnonzero(distance[:, 1] > 4.0 * guess)[:_FWHM_STARS]
    if isolated.size < 3:
        return guess
    stars = detections[isolated]
    fitted = _fit_prf(data, mask, stars, guess, fixed_fwhm=False)
    good = _good_fits(fitted) & (np.asarray(fitted["fwhm_fit"], float) > 0.25)
    if np.count_nonzero(good) < 3:
        log.debug("PSF width not measured (%d good fits); %.2f px assumed",
                  int(np.count_nonzero(good)), guess)
        return guess
    return float(np.median(np.asarray(fitted["fwhm_fit"], float)[good]))


def _fit_prf(data: np.ndarray, mask: np.ndarray, detections: Table, fwhm: float, *,
             fixed_fwhm: bool) -> Table:
    """photutils PSFPhotometry of ``detections`` with a pixel-integrated Gaussian.

    Fitting the PSF integrated over the pixel (an "effective PSF", Anderson & King 2000,
    PASP 112, 1360) removes the pixel-phase error of centroids on undersampled stars.
    The box spans ±1.5 FWHM (at least 5 × 5 pixels); positions may move by 1 FWHM.
    """
    from photutils.psf import CircularGaussianPRF, PSFPhotometry

    model = CircularGaussianPRF(fwhm=float(fwhm))
    model.fwhm.fixed = fixed_fwhm
    half = max(2, math.ceil(1.5 * fwhm))
    bound = max(1.0, float(fwhm))
    photometry = PSFPhotometry(model, fit_shape=2 * half + 1, xy_bounds=(bound, bound))
    init = Table({"x": detections["x"], "y": detections["y"],
                  "flux": np.maximum(np.asarray(detections["flux"], float), 1e-3)})
    with warnings.catch_warnings():
        # photutils warns of the non-converged fits it flags (bit 8): flags decide
        warnings.simplefilter("ignore", AstropyUserWarning)
        return photometry(data, mask=mask, init_params=init)


def _good_fits(fitted: Table) -> np.ndarray:
    x, y = np.asarray(fitted["x_fit"], float), np.asarray(fitted["y_fit"], float)
    return np.isfinite(x) & np.isfinite(y) & ((np.asarray(fitted["flags"])
                                               & _BAD_FIT_FLAGS) == 0)


# --------------------------------------------------------------------------- fit
@dataclass
class ChipFit:
    """The corrected WCS of one chip and what the fit says about it."""

    path: Path
    rootname: str
    extver: int
    wcs: Any  # stwcs HSTWCS, corrected
    status: str
    nmatches: int
    fit_rms_mas: float
    rms_ra_mas: float
    rms_dec_mas: float
    shift: tuple[float, float]
    rotation_deg: float
    scale: float


@dataclass
class FitResult:
    """One fit method's outcome (:func:`fit_aposteriori` returns the best)."""

    method: str
    fitgeom: str
    catalog: str
    quality: int  # 1-4 valid (1 best), 5 rejected (determine_fit_quality)
    valid: bool
    compromised: bool
    total_rms_mas: float
    reasons: list[str]
    chips: list[ChipFit]
    catalog_sources: int
    match_sources: int

    @property
    def label(self) -> str:
        """``REL`` for the relative fit, ``IMG`` otherwise (drizzlepac's WCSNAME tags)."""
        return "REL" if self.method == "match_relative_fit" else "IMG"

    @property
    def fraction_matched(self) -> float:
        return self.match_sources / self.catalog_sources if self.catalog_sources else 0.0

    def summary(self) -> str:
        text = (f"{self.method} ({self.fitgeom}) to {self.catalog}: quality {self.quality}, "
                f"RMS {self.total_rms_mas:.2f} mas, {self.match_sources} matches")
        return text + (f" [{'; '.join(self.reasons)}]" if self.reasons else "")


@dataclass
class _Image:
    path: Path
    rootname: str
    chips: list[tuple[int, Any, Table]]  # (extver, HSTWCS, sources)


def _load_images(files: Sequence[Path], pars: AlignmentParameters, good_bits: int
                 ) -> list[_Image]:
    hstwcs = require("stwcs.wcsutil").HSTWCS
    images = []
    for path in files:
        chips = []
        with fits.open(path) as hdul:
            rootname = str(hdul[0].header.get("ROOTNAME", path.stem.split("_")[0])).lower()
            versions = [h.ver for h in hdul if h.name == "SCI"]
            for ver in versions:
                with library_warnings(collect=False):  # reads the open HDUList
                    wcs = hstwcs(hdul, ext=("SCI", ver))
                sci = hdul["SCI", ver].data
                dq = hdul["DQ", ver].data if ("DQ", ver) in hdul else None
                bad = None if dq is None else (np.asarray(dq).astype(np.int64) & ~good_bits) != 0
                fwhm_px = pars.fwhmpsf_arcsec / float(wcs.pscale)
                sources = find_sources(sci, bad, fwhm_px, max_sources=pars.max_sources_per_chip)
                log.info("%s[SCI,%d]: %d sources (PSF FWHM %.2f px)", path.name, ver,
                         len(sources), sources.meta["fwhm"])
                chips.append((ver, wcs, sources))
        images.append(_Image(path, rootname, chips))
    return images


#: Source ids are ``exposure * _ID_STRIDE + n``: :class:`_PerExposureMatch` reads the
#: exposure back from the rows tweakwcs hands it.
_ID_STRIDE = 1_000_000


def _correctors(images: list[_Image]):
    correctors = require("tweakwcs.correctors")
    out = []
    for group, image in enumerate(images):
        first = group * _ID_STRIDE + 1
        for ver, wcs, sources in image.chips:
            if len(sources) == 0:
                continue
            catalog = Table({"x": sources["x"], "y": sources["y"],
                             "id": np.arange(first, first + len(sources))})
            first += len(sources)
            out.append(correctors.FITSWCSCorrector(
                wcs.deepcopy(),
                meta={"catalog": catalog, "name": image.path.name, "chip": ver,
                      "group_id": group, "rootname": image.rootname, "path": image.path}))
    return out


def fit_aposteriori(files: Sequence[str | Path], reference: ReferenceCatalog,
                    pars: AlignmentParameters, *, good_bits: int = 1360) -> FitResult | None:
    """Fit ``files`` to ``reference`` with drizzlepac's methods; the best result or None.

    Files are only read.  ``good_bits``: DQ bits still usable for source finding
    (runastrodriz ``focus_pars`` good_bits).
    """
    files = [Path(f) for f in files]
    images = _load_images(files, pars, good_bits)
    n_sources = sum(len(s) for im in images for _, _, s in im.chips)
    if n_sources == 0:
        log.warning("a posteriori: no source found in %s", ", ".join(f.name for f in files))
        return None
    refcat = _footprint_catalog(reference, images)
    log.info("a posteriori: %d sources in %d exposures, %d reference sources in the "
             "footprint (%s)", n_sources, len(images), len(refcat), reference.source)
    if len(refcat) < pars.min_fit_matches:
        log.warning("a posteriori: %d reference sources in the footprint, fewer than the %d "
                    "matches a fit needs", len(refcat), pars.min_fit_matches)
        return None
    best: FitResult | None = None
    for method in _FIT_METHODS:
        if method not in pars.methods or (method == "match_relative_fit" and len(images) < 2):
            continue
        try:
            result = _fit_one(method, images, refcat, reference, pars)
        except Exception as exc:  # noqa: BLE001 - tweakwcs fails on degenerate matches
            log.warning("a posteriori %s failed: %s: %s", method, type(exc).__name__, exc)
            continue
        log.info("a posteriori %s", result.summary())
        if best is None or (result.quality, result.total_rms_mas) < (best.quality,
                                                                       best.total_rms_mas):
            best = result
        if result.quality == 1:
            break
    return best


def _footprint_catalog(reference: ReferenceCatalog, images: list[_Image]) -> Table:
    """Reference sources within 10% (+ 100 pixels) of any chip, as tweakwcs wants them."""
    keep = np.zeros(len(reference), dtype=bool)
    for image in images:
        for _, wcs, _ in image.chips:
            ny, nx = wcs.pixel_shape[1], wcs.pixel_shape[0]
            with library_warnings(collect=False):
                x, y = wcs.all_world2pix(reference.ra, reference.dec, 0, quiet=True)
            margin_x, margin_y = 0.1 * nx + 100, 0.1 * ny + 100
            keep |= ((x > -margin_x) & (x < nx + margin_x) & (y > -margin_y)
                     & (y < ny + margin_y))
    table = reference.table()[keep]
    table.meta["catalog"] = reference.name
    return table


def _fit_one(method: str, images: list[_Image], refcat: Table, reference: ReferenceCatalog,
             pars: AlignmentParameters) -> FitResult:
    tweakwcs = require("tweakwcs")
    settings = dict(pars.methods[method])
    fitgeom = str(settings.pop("fitgeom", "rscale"))
    match = _PerExposureMatch(tweakwcs.XYXYMatch(**{
        k: settings[k] for k in ("searchrad", "separation", "tolerance", "use2dhist")
        if k in settings}))
    nclip = 1 if fitgeom == "rscale" else 0  # drizzlepac: sigma-clipping only for rscale
    items = _correctors(images)
    # group_bb_policy=1: a group's footprint is the convex hull of its chips, not their
    # exact spherical union (6 s for six chips in spherical_geometry, used only to order
    # the alignment)
    with library_warnings(collect=False):
        if method == "match_relative_fit":
            tweakwcs.align_wcs(items, None, match=match, expand_refcat=True, fitgeom="rscale",
                               nclip=1, group_bb_policy=1)
            for item in items:
                item.meta["group_id"] = 1234567  # drizzlepac: the set moves as one
        tweakwcs.align_wcs(items, refcat, match=match, fitgeom=fitgeom, nclip=nclip,
                           group_bb_policy=1)
    return _judge(method, fitgeom, items, refcat, reference, pars)


class _PerExposureMatch:
    """tweakwcs matching done one exposure at a time, for a group of several.

    The absolute step of ``match_relative_fit`` fits all exposures as one group, whose
    catalog stacks every exposure: each star is there once per exposure, a few
    hundredths of a pixel apart.  ``stsci.stimage.xyxymatch`` first removes sources
    closer than ``separation`` (drizzlepac's 4 pixels) to one kept in its sort order,
    which keeps the copy with the lowest y: the group is fitted ~0.85 σ of the centroid
    error towards -y (0.03 pixel on WFC3/UVIS; 0.5 pixel, 65 mas, on WFC3/IR with
    DAOFIND centroids).  Matched one exposure at a time, every copy is kept, unbiased,
    in the one group fit; a group of one exposure is matched exactly as before.
    """

    def __init__(self, match) -> None:
        self._match = match

    def __call__(self, refcat: Table, imcat: Table, **kwargs: Any
                 ) -> tuple[np.ndarray, np.ndarray]:
        exposure = np.asarray(imcat["id"]) // _ID_STRIDE
        ref_idx: list[np.ndarray] = []
        img_idx: list[np.ndarray] = []
        for value in np.unique(exposure):
            rows = np.flatnonzero(exposure == value)
            ref, img = self._match(refcat, imcat[rows], **kwargs)
            ref_idx.append(np.asarray(ref, dtype=int))
            img_idx.append(rows[np.asarray(img, dtype=int)])
        if not ref_idx:
            return np.array([], dtype=int), np.array([], dtype=int)
        return np.concatenate(ref_idx), np.concatenate(img_idx)


def _judge(method, fitgeom, items, refcat: Table, reference: ReferenceCatalog,
           pars: AlignmentParameters) -> FitResult:
    """drizzlepac ``determine_fit_quality`` on the fit of every chip."""
    chips: list[ChipFit] = []
    reasons: list[str] = []
    valid, compromised = True, False
    rms_by_group: dict[Any, float] = {}
    for item in items:
        info = item.meta.get("fit_info", {})
        status = str(info.get("status", "FAILED"))
        nmatches, fit_rms, rms_ra, rms_dec = 0, math.inf, math.inf, math.inf
        if status == "SUCCESS" and "fitmask" in info:
            ref_idx = np.asarray(info["matched_ref_idx"])[np.asarray(info["fitmask"])]
            img = SkyCoord(info["fit_RA"], info["fit_DEC"], unit="deg")
            ref = SkyCoord(np.asarray(refcat["RA"])[ref_idx], np.asarray(refcat["DEC"])[ref_idx],
                           unit="deg")
            dra, ddec = img.spherical_offsets_to(ref)
            rms_ra = float(np.std(dra.to_value(u.mas)))
            rms_dec = float(np.std(ddec.to_value(u.mas)))
            fit_rms = float(np.std(img.separation(ref).to_value(u.mas)))
            # distinct reference stars: with every exposure matched (_PerExposureMatch)
            # a star matches once per exposure of the group; drizzlepac counts it once
            nmatches = int(np.unique(ref_idx).size)
            rms_by_group.setdefault(item.meta["group_id"], fit_rms)
        chips.append(ChipFit(path=item.meta["path"], rootname=item.meta["rootname"],
                             extver=int(item.meta["chip"]), wcs=item.wcs, status=status,
                             nmatches=nmatches, fit_rms_mas=fit_rms, rms_ra_mas=rms_ra,
                             rms_dec_mas=rms_dec,
                             shift=tuple(float(s) for s in info.get("shift", (np.nan, np.nan))),
                             rotation_deg=float(info.get("<rot>", np.nan)),
                             scale=float(info.get("<scale>", np.nan))))
    total_rms = float(np.mean(list(rms_by_group.values()))) if rms_by_group else math.inf
    shifts = np.array([c.shift for c in chips if c.status == "SUCCESS"])
    required = (pars.relative_fitgeom if method == "match_relative_fit"
                else pars.mosaic_fitgeom).get(fitgeom, 12)
    for chip, item in zip(chips, items):
        where = f"{chip.path.name}[SCI,{chip.extver}]"
        if chip.status != "SUCCESS":
            valid = False
            reasons.append(f"{where}: fit {chip.status}")
            continue
        if chip.nmatches < pars.min_fit_matches:
            valid = False
            reasons.append(f"{where}: {chip.nmatches} matches < {pars.min_fit_matches}")
            continue
        pscale = float(item.wcs.pscale)
        radial = math.hypot(*chip.shift) * pscale
        rms_limit = max(total_rms, pars.max_fit_rms_mas)
        spread = math.hypot(float(np.std(shifts[:, 0])), float(np.std(shifts[:, 1])))
        if not spread <= (rms_limit / 1000.0) / pscale:
            valid = False
            reasons.append(f"{where}: consistency violation (shift spread {spread:.3f} px)")
        elif chip.fit_rms_mas > pars.max_fit_limit_mas or total_rms > pars.max_fit_limit_mas:
            valid = False
            reasons.append(f"{where}: RMS too large (> {pars.max_fit_limit_mas:g} mas)")
        elif not float(chip.nmatches + 2) * 0.36 > 0.8 + (radial / 10.0) ** 8:
            valid = False
            reasons.append(f"{where}: radial offset {radial:.2f} arcsec too large")
        elif not (chip.nmatches >= required or (chip.nmatches >= 2 and chip.fit_rms_mas > 0.5)):
            valid = False
            compromised = True
            reasons.append(f"{where}: too few matches ({chip.nmatches} < {required})")
    if not valid:
        quality = 5
    elif total_rms < pars.max_fit_rms_mas:
        quality = 2 if compromised else 1
    else:
        quality = 4 if compromised or total_rms > 1000.0 else 3
    # chips fitted as one group share one fit: count its matches once
    seen: dict[Any, int] = {}
    for chip, item in zip(chips, items):
        seen.setdefault(item.meta["group_id"], chip.nmatches)
    match_sources = sum(seen.values())
    return FitResult(method=method, fitgeom=fitgeom, catalog=reference.name, quality=quality,
                     valid=valid, compromised=compromised, total_rms_mas=total_rms,
                     reasons=reasons, chips=chips, catalog_sources=len(refcat),
                     match_sources=match_sources)


# --------------------------------------------------------------------------- apply
def fit_wcsname(current: str, fit: FitResult) -> str:
    """drizzlepac's WCSNAME of a fit: ``<base>-FIT_<REL|IMG>_<catalog>``."""
    base = current.split("-", 1)[0] if "-" in current else current
    return f"{base or 'OPUS'}-FIT_{fit.label}_{fit.catalog}"


def apply_fit(fit: FitResult, targets: Mapping[str, Sequence[str | Path]]) -> dict[Path, str]:
    """Write the fitted WCS of every chip into the files of the same exposure.

    Parameters
    ----------
    fit : FitResult
    targets : mapping
        ``{rootname: [files]}`` — the FLC and FLT of each exposure get the same WCS.

    Returns
    -------
    dict
        ``{file: new WCSNAME}``.  Raises on any failure: callers work on copies.
    """
    updatehdr = import_drizzlepac("updatehdr")
    by_exposure: dict[str, dict[int, ChipFit]] = {}
    for chip in fit.chips:
        by_exposure.setdefault(chip.rootname, {})[chip.extver] = chip
    written: dict[Path, str] = {}
    for rootname, files in targets.items():
        chips = by_exposure.get(rootname)
        if not chips:
            raise RuntimeError(f"the fit has no solution for exposure {rootname}")
        for path in map(Path, files):
            with fits.open(path, mode="update") as hdul:
                versions = [h.ver for h in hdul if h.name == "SCI"]
                missing = [v for v in versions if v not in chips]
                if missing:
                    raise RuntimeError(f"{path.name}: no fitted WCS for SCI {missing}")
                current = str(hdul["SCI", versions[0]].header.get("WCSNAME", "OPUS"))
                name = fit_wcsname(current, fit)
                for ver in versions:
                    chip = chips[ver]
                    index = hdul.index_of(("SCI", ver))
                    with library_warnings(collect=False):
                        updatehdr.update_wcs(hdul, index, chip.wcs.deepcopy(), wcsname=name,
                                             reusename=True)
                    header = hdul[index].header
                    header["RMS_RA"] = (chip.rms_ra_mas, "RMS in RA of WCS fit (mas)")
                    header["RMS_DEC"] = (chip.rms_dec_mas, "RMS in Dec of WCS fit (mas)")
                    header["CRDER1"] = (chip.rms_ra_mas / _MAS_PER_DEG, "RMS in RA (deg)")
                    header["CRDER2"] = (chip.rms_dec_mas / _MAS_PER_DEG, "RMS in Dec (deg)")
                    header["NMATCHES"] = (chip.nmatches, "number of matches in WCS fit")
                    header["FITGEOM"] = (fit.fitgeom, "fit geometry of WCS fit")
                    header["WCSTYPE"] = updatehdr.interpret_wcsname_type(name)
                hdul.flush()
            written[path] = name
            log.info("%s: WCS %s written (%s)", path.name, name, fit.summary())
    return written
