"""Synthetic calibrated imaging exposures (FLT/FLC) in a dithered association, with truth.

What the drizzle stage is proven on (issue 6): files shaped like calacs/calwf3 products
of a star field, with headers drizzlepac and stwcs read, an ``_asn.fits`` table and the
truth catalog of every star.  Detector-agnostic: the geometry and constants come from
the :class:`~hstcal_core.detectors.Detector` a plugin registered (``pixel_scale_arcsec``,
``extra["chips"]``, ``extra["chip_shape"]``, ``extra["chip_amps"]``,
``extra["chip_gap_px"]``, ``extra["multiaccum"]``, the amplifiers of each gain).

Scene and signal, per chip (electrons, what an FLT holds after bias and dark removal):

* **stars** from a truth catalog of RA/Dec (uniform over the dithered footprint, power-law
  fluxes, optional proper motions propagated to each exposure's EXPSTART), drawn as
  circular Gaussians integrated over each pixel with the FWHM of the filter
  (:mod:`hstcal_core.simulate.starfield`: F606W → 606 nm; on MULTIACCUM IR detectors
  F160W → 1.60 µm);
* **sky** and **dark** (Poisson; the dark's mean is removed as calacs/calwf3 do, and
  recorded as MEANDARK in electrons, where drizzlepac's ``getdarkcurrent`` reads it);
* **read noise** per amplifier region (halves for two amplifiers, quadrants for four);
* **cosmic rays** from :func:`~hstcal_core.simulate.cosmic_rays.make_cosmic_rays`
  (none by default on MULTIACCUM detectors: the up-the-ramp fit of calwf3 removes them
  from IR FLTs, WFC3 IHB §7.7).

WCS: a TAN projection (optionally TAN-SIP) per chip with CRVAL at the pointing, a CD
matrix of ``pixel_scale_arcsec`` rotated to ORIENTAT (the position angle of the
detector's +y axis, taken equal to PA_V3 unless an offset is given), chips stacked
along y with ``chip_gap_px`` between them and one CRPIX at the centre of the whole
detector (so the SIP polynomial is one function of detector position).  Dithers move
the pointing by POSTARG-like offsets in arcsec along the detector axes.  An injected
:class:`WcsError` — a tangent-plane shift of CRVAL and a rotation of the CD matrix —
is applied to the *header* only: stars land where the true WCS puts them, so the header
is wrong by exactly the error, which is what a posteriori alignment must find.

Files: ``<rootname>_<suffix>.fits`` (PRIMARY + SCI/ERR/DQ per chip, EXTVER 1 being the
chip with the highest CCDCHIP, as on ACS/WFC and WFC3/UVIS; plus SAMP/TIME on MULTIACCUM
detectors; a detector registered per chip, WFPC2, names its chip in the SCI header's
DETECTOR and its readout in the primary MODE, where stwcs reads them),
or, with ``layout="c0m"`` (WFPC2), ``<rootname>_c0m.fits`` + ``<rootname>_c1m.fits`` as
the archive delivers calibrated WFPC2 data (see *The c0m layout* below),
``<asn_id>_asn.fits`` (MEMNAME/MEMTYPE/MEMPRSNT: EXP-DTH members and one PROD-DTH
product, as HST association tables), ``<asn_id>_truth.ecsv`` (ra, dec, flux in e⁻/s
[, pm_ra, pm_dec, epoch]) and ``<asn_id>_truth.json`` (dithers, errors, true WCS of
every chip).  Not modelled: PSF wings (the PSF is a Gaussian core), intrapixel
sensitivity, CTE, saturation (but the c0m's 12-bit ADC ceiling), hot pixels, flat-field
structure, chip-dependent distortion.

The c0m layout (detectors registered per chip: WFPC2)
-----------------------------------------------------
What drizzlepac's ``wfpc2Data.wfpc2_to_flt`` and stwcs read: a data-less primary
(INSTRUME, ROOTNAME, FILENAME, MODE=FULL, FILTNAM1/FILTNAM2, ATODGAIN, EXPTIME,
DARKTIME, EXPSTART, PA_V3, DRIZCORR...) and one ``SCI`` extension per chip (EXTVER 1-4
= DETECTOR 1-4: PC1, WF2, WF3, WF4, every chip of the instrument in the registry) in DN
(float32, OUTDTYPE=REAL), with its TAN WCS, ORIENTAT, GPIXELS and PHOTMODE/PHOTFLAM; the
``_c1m`` holds the data quality in the same groups (EXTNAME ``SCI``, int16, as the
archive's MEF files and drizzlepac ``wfpc2Data.DQ_EXTNS`` have it).  Each chip has its
own registered pixel scale, gain and read noise (ATODGAIN setting); the sky, a rate per
area, is ``sky_e_per_s`` on a pixel of ``detector``'s chip, scaled by pixel area on
the others (PC1 pixels see 0.21 of a WF pixel's sky).  Geometry follows
the pyramid (real headers, u5780205r in ``../shared/data/hst/wfpc2``: ORIENTAT of PC1,
WF2, WF3, WF4 = -85.16, 4.32, 94.64, -174.80): chip k is rotated 90°·(k-1) from PC1,
whose +y axis is at ``pa_v3 + orientat_offset_deg``, and each chip's pixel (1, 1) corner
sits by the pyramid apex, the pointing.  Dithers move the apex along PC1's axes; a
:class:`WcsError` shifts the apex and rotates the whole camera about it.  Pixels above
the ADC full scale (``saturation_dn``, 4095 DN) are clipped and flagged with the
detector's saturation bit (WFPC2 DHB Table 3.4: 8).  PHOTFLAM is one nominal
sensitivity per e⁻/s times the chip's gain (the same stars give the same flux on every
chip once drizzlepac's ``photeq`` has equalised them).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

from ..detectors import Detector
from ..fitsio import atomic_path, write_atomic
from .cosmic_rays import HST_CR_RATE, CosmicRays, make_cosmic_rays, render
from .starfield import (
    FWHM_PER_SIGMA,
    make_star_catalog,
    positions_at_epoch,
    psf_fwhm_arcsec,
    render_stars,
)

__all__ = [
    "LAYOUTS",
    "ChipTruth",
    "ExposureTruth",
    "FltTruth",
    "WcsError",
    "make_star_catalog",
    "psf_fwhm_arcsec",
    "render_stars",
    "simulate_flt_asn",
    "sip_coefficients",
    "write_asn_table",
]

log = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86400.0

#: File layouts :func:`simulate_flt_asn` writes.
LAYOUTS = ("flt", "c0m")
# c0m layout (module docstring): each chip is turned 90 deg from the previous one about
# the pyramid apex, its pixel (1, 1) corner this many of its pixels from the apex.
_C0M_CHIP_TURN_DEG = 90.0
_C0M_APEX_GAP_PX = 2.0
# nominal inverse sensitivity per e-/s (erg cm-2 s-1 A-1), not a throughput model: it
# makes WF3's PHOTFLAM 1.9e-18 per DN/s at ATODGAIN 7
_PHOTFLAM_PER_E = 2.7e-19
_STMAG_ZEROPOINT = -21.1  # PHOTZPT of every WFPC2 header


@dataclass(frozen=True)
class WcsError:
    """An error of the header WCS relative to where the stars really are.

    Attributes
    ----------
    shift_arcsec : tuple of float
        ``(east, north)`` offset of CRVAL in the tangent plane, arcsec: the header puts
        every star this much east/north of its true position.
    rotation_deg : float
        Rotation of the CD matrix about CRPIX, degrees, positive from north through
        east (ORIENTAT grows by this much).
    """

    shift_arcsec: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        try:
            east, north = (float(v) for v in self.shift_arcsec)
        except (TypeError, ValueError):
            raise ValueError(f"shift_arcsec must be two numbers (east, north), "
                             f"got {self.shift_arcsec!r}") from None
        object.__setattr__(self, "shift_arcsec", (east, north))
        object.__setattr__(self, "rotation_deg", float(self.rotation_deg))

    @property
    def is_zero(self) -> bool:
        """True when the header WCS is the true one."""
        return self.shift_arcsec == (0.0, 0.0) and self.rotation_deg == 0.0


@dataclass
class ChipTruth:
    """One chip of one exposure: its true WCS and the stars drawn on it.

    Attributes
    ----------
    extver, ccdchip : int
    true_header : astropy.io.fits.Header
        The WCS the stars were drawn with (the written header differs by the error).
    star_id : ndarray of int
        Catalog rows drawn on this chip (centre within the array).
    x, y : ndarray of float
        0-based pixel position of each of those stars.
    crs : CosmicRays or None
    """

    extver: int
    ccdchip: int
    true_header: fits.Header
    star_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    crs: CosmicRays | None = None

    def true_wcs(self) -> WCS:
        """The true WCS as an astropy object."""
        return WCS(self.true_header)

    def wcs_error_mas(self, path: str | Path) -> float:
        """Largest sky distance (mas) between the WCS of this chip in ``path`` (its
        ``SCI,extver``, distortion included) and the true one, over a 16-pixel grid of the
        chip and its far corner."""
        with fits.open(path) as hdul:
            wcs = WCS(hdul["SCI", self.extver].header, hdul)
            ny, nx = hdul["SCI", self.extver].data.shape
        yy, xx = np.mgrid[0:ny:16, 0:nx:16]
        yy, xx = np.append(yy, ny - 1), np.append(xx, nx - 1)
        ra, dec = wcs.all_pix2world(xx, yy, 0)
        true_ra, true_dec = self.true_wcs().all_pix2world(xx, yy, 0)
        return float(np.max(np.hypot((ra - true_ra) * np.cos(np.radians(true_dec)),
                                     dec - true_dec)) * 3.6e6)


@dataclass
class ExposureTruth:
    """What went into one exposure."""

    rootname: str
    filename: str
    dither_arcsec: tuple[float, float]
    wcs_error: WcsError
    expstart: float
    exptime: float
    epoch: float
    chips: list[ChipTruth] = field(default_factory=list)


@dataclass
class FltTruth:
    """Everything a simulated association holds, and where it was written."""

    asn_id: str
    asn_path: Path
    catalog_path: Path
    truth_path: Path
    catalog: Table
    exposures: list[ExposureTruth]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        """The science files (``_flt``/``_flc``, or ``_c0m``)."""
        return [self.asn_path.parent / e.filename for e in self.exposures]

    @property
    def dq_files(self) -> list[Path]:
        """The ``_c1m`` data-quality files of the c0m layout (empty for FLT/FLC)."""
        if self.parameters.get("layout") != "c0m":
            return []
        return [f.with_name(f.name.replace("_c0m.fits", "_c1m.fits")) for f in self.files]


# --------------------------------------------------------------------------- WCS
def sip_coefficients(amplitude_px: float, half_size_px: float) -> dict[str, float]:
    """A quadratic SIP distortion displacing pixels by ~``amplitude_px`` at ``half_size_px``
    from CRPIX (a smooth, skewed field like the HST cameras' low-order terms)."""
    if amplitude_px == 0:
        return {}
    k = float(amplitude_px) / float(half_size_px) ** 2
    return {"A_2_0": 1.0 * k, "A_1_1": 0.7 * k, "A_0_2": -0.5 * k,
            "B_2_0": 0.4 * k, "B_1_1": -0.5 * k, "B_0_2": 0.8 * k}


def _field_catalog(catalog: Table | None, target, reach_arcsec: float, n_stars: int,
                   rng: np.random.Generator, flux_range, proper_motion_mas_yr: float,
                   epoch: float) -> Table:
    """The given star catalog (checked), or a new one ``reach_arcsec`` around ``target``."""
    if catalog is None:
        catalog = make_star_catalog(target, (reach_arcsec, reach_arcsec), n_stars, rng,
                                    flux_range=flux_range,
                                    proper_motion_mas_yr=proper_motion_mas_yr, epoch=epoch)
    for column in ("ra", "dec", "flux"):
        if column not in catalog.colnames:
            raise ValueError(f"catalog must have columns ra, dec, flux; {column!r} is missing")
    return catalog


def _cd_matrix(scale_arcsec: float, orientat_deg: float) -> np.ndarray:
    """CD matrix whose +y axis points to position angle ``orientat_deg`` (E of N)."""
    t = np.radians(orientat_deg)
    s = scale_arcsec / 3600.0
    return s * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])


def _wcs_header(crpix, crval, cd, sip: Mapping[str, float]) -> fits.Header:
    hdr = fits.Header()
    hdr["WCSAXES"] = 2
    suffix = "-SIP" if sip else ""
    hdr["CTYPE1"] = "RA---TAN" + suffix
    hdr["CTYPE2"] = "DEC--TAN" + suffix
    hdr["CRPIX1"], hdr["CRPIX2"] = float(crpix[0]), float(crpix[1])
    hdr["CRVAL1"], hdr["CRVAL2"] = float(crval[0]) % 360.0, float(crval[1])
    hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    for (i, j), value in np.ndenumerate(cd):
        hdr[f"CD{i + 1}_{j + 1}"] = float(value)
    hdr["RADESYS"] = "ICRS"
    if sip:
        order = max(int(k.split("_")[1]) + int(k.split("_")[2]) for k in sip)
        hdr["A_ORDER"] = order
        hdr["B_ORDER"] = order
        for key, value in sip.items():
            hdr[key] = float(value)
    return hdr


def _offset_crval(crpix, crval, cd, offset_arcsec) -> tuple[float, float]:
    """Sky position at tangent-plane offset ``(east, north)`` arcsec from CRVAL."""
    linear = WCS(_wcs_header(crpix, crval, cd, {}))
    d_pix = np.linalg.solve(cd, np.asarray(offset_arcsec, np.float64) / 3600.0)
    ra, dec = linear.wcs_pix2world([[crpix[0] + d_pix[0], crpix[1] + d_pix[1]]], 1)[0]
    return float(ra), float(dec)


def _rotation(deg: float) -> np.ndarray:
    """Rotation of tangent-plane (east, north) vectors by ``deg`` from north through east."""
    t = np.radians(deg)
    return np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])


# --------------------------------------------------------------------------- files
def write_asn_table(path: str | Path, asn_id: str, members: Sequence[str], *,
                    primary: Mapping[str, Any] | None = None,
                    present: Sequence[bool] | None = None) -> Path:
    """Write an HST association table: EXP-DTH members and one PROD-DTH product.

    Parameters
    ----------
    path : path
        ``<asn_id>_asn.fits``.
    asn_id : str
        Association id (the product's MEMNAME).
    members : sequence of str
        Exposure rootnames.
    primary : mapping, optional
        Further primary keywords (INSTRUME, DETECTOR, TARGNAME, ...).
    present : sequence of bool, optional
        MEMPRSNT of each member (all true by default).
    """
    present = [True] * len(members) if present is None else [bool(p) for p in present]
    if len(present) != len(members):
        raise ValueError(f"present has {len(present)} values for {len(members)} members")
    names = [m.upper() for m in members] + [asn_id.upper()]
    types = ["EXP-DTH"] * len(members) + ["PROD-DTH"]
    columns = fits.ColDefs([
        fits.Column(name="MEMNAME", format="14A", disp="A14", array=np.array(names)),
        fits.Column(name="MEMTYPE", format="14A", disp="A14", array=np.array(types)),
        fits.Column(name="MEMPRSNT", format="L", disp="L6", array=np.array(present + [True])),
    ])
    hdr = fits.Header()
    hdr["NEXTEND"] = 1
    hdr["FILENAME"] = Path(path).name
    hdr["FILETYPE"] = "ASN_TABLE"
    hdr["TELESCOP"] = "HST"
    for key, value in (primary or {}).items():
        hdr[key] = value
    hdr["ROOTNAME"] = asn_id.lower()
    hdr["ASN_ID"] = asn_id.lower()
    hdr["ASN_TAB"] = Path(path).name
    hdr["ASN_STAT"] = "COMPLETE"
    hdr["ASN_PROD"] = True
    table = fits.BinTableHDU.from_columns(columns, name="ASN")
    table.header["ROOTNAME"] = asn_id.lower()
    return write_atomic(fits.HDUList([fits.PrimaryHDU(header=hdr), table]), path)


def _amp_regions(shape: tuple[int, int], n_amps: int) -> list[tuple[slice, slice]]:
    """Halves for two amplifiers, quadrants for four, column blocks otherwise."""
    ny, nx = shape
    if n_amps == 4:
        return [(slice(r0, r1), slice(c0, c1)) for r0, r1 in ((0, ny // 2), (ny // 2, ny))
                for c0, c1 in ((0, nx // 2), (nx // 2, nx))]
    edges = np.linspace(0, nx, n_amps + 1).round().astype(int)
    return [(slice(0, ny), slice(edges[i], edges[i + 1])) for i in range(n_amps)]


# --------------------------------------------------------------------------- writer
@dataclass(frozen=True)
class _Chip:
    extver: int
    ccdchip: int
    shape: tuple[int, int]
    crpix: tuple[float, float]
    amps: tuple  # Amplifier objects, in region order


def _layout(detector: Detector, shape, n_chips, chip_gap_px, gain) -> tuple[list[_Chip], float]:
    """Chips of the detector stacked along y, EXTVER 1 at the bottom (highest CCDCHIP)."""
    n = int(n_chips if n_chips is not None else detector.extra.get("chips", 1))
    if n < 1:
        raise ValueError(f"n_chips must be >= 1, got {n_chips!r}")
    ny, nx = (int(s) for s in (shape if shape is not None
                                else detector.extra.get("chip_shape", detector.shape)))
    if ny < 8 or nx < 8:
        raise ValueError(f"shape must be at least 8x8 per chip, got {(ny, nx)}")
    gap = int(chip_gap_px if chip_gap_px is not None else detector.extra.get("chip_gap_px", 0))
    if gain not in detector.amplifiers:
        raise ValueError(f"gain {gain!r} is not a setting of {detector.name}: {detector.gains}")
    amps = {a.name: a for a in detector.amplifiers[gain]}
    chip_amps = detector.extra.get("chip_amps")
    frame_ny = n * ny + (n - 1) * gap
    centre_x, centre_y = (nx + 1) / 2.0, (frame_ny + 1) / 2.0  # 1-based FITS CRPIX
    chips = []
    for k in range(n):
        ccdchip = n - k
        names = tuple(chip_amps[ccdchip]) if chip_amps and ccdchip in chip_amps else tuple(amps)
        chips.append(_Chip(extver=k + 1, ccdchip=ccdchip, shape=(ny, nx),
                           crpix=(centre_x, centre_y - k * (ny + gap)),
                           amps=tuple(amps[a] for a in names)))
    return chips, max(nx, frame_ny) / 2.0


def _hst_names(asn_id: str | None, prefix: str, seed: int, n: int) -> tuple[str, list[str]]:
    """ASN id ``<i><ppp><vv>010`` and member rootnames ``<i><ppp><vv><nn>q`` (9 characters)."""
    if asn_id is None:
        asn_id = f"{prefix[:1] or 'x'}{seed % 1000:03d}01010"
    asn_id = asn_id.lower()
    if len(asn_id) != 9 or not asn_id.isalnum():
        raise ValueError(f"asn_id must be 9 letters/digits like 'ib4606060', got {asn_id!r}")
    if not 1 <= n <= 99:
        raise ValueError(f"n_exposures must be within 1..99, got {n}")
    return asn_id, [f"{asn_id[:6]}{k + 1:02d}q" for k in range(n)]


def simulate_flt_asn(out_dir: str | Path, detector: Detector, *, n_exposures: int = 3,
                     dithers_arcsec: Sequence[tuple[float, float]] | None = None,
                     wcs_error: WcsError | Sequence[WcsError] | None = None,
                     shape: tuple[int, int] | None = None, n_chips: int | None = None,
                     chip_gap_px: int | None = None, filter_name: str | None = None,
                     psf_fwhm: float | None = None, exptime: float = 400.0,
                     target: tuple[float, float] = (150.1, 2.2), pa_v3: float = 45.0,
                     orientat_offset_deg: float = 0.0, sip_amplitude_px: float = 0.0,
                     catalog: Table | None = None, n_stars: int = 200,
                     flux_range: tuple[float, float] = (3.0, 300.0),
                     proper_motion_mas_yr: float = 0.0, catalog_epoch: float = 2016.0,
                     sky_e_per_s: float | None = None, dark_e_per_s: float | None = None,
                     cr_rate: float | None = None, gain: float | None = None,
                     start_mjd: float = 58000.0, seed: int = 0, asn_id: str | None = None,
                     suffix: str = "flt", layout: str = "flt",
                     extra_primary: Mapping[str, Any] | None = None) -> FltTruth:
    """Write a dithered association of calibrated exposures of a star field.

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    detector : Detector
        The registered detector (``get_registry().detector("wfc3_uvis")``).
    n_exposures : int
        Members of the association.
    dithers_arcsec : sequence of (float, float), optional
        Pointing offset of each exposure along the detector x and y axes, arcsec
        (POSTARG1/2); default steps of (2.5, 1.5) pixels.
    wcs_error : WcsError or sequence of WcsError, optional
        Error of the header WCS, common to all exposures or one per exposure.
    shape : tuple of int, optional
        ``(ny, nx)`` of each chip; default the detector's chip (``extra["chip_shape"]``).
    n_chips, chip_gap_px : int, optional
        Override ``extra["chips"]`` and ``extra["chip_gap_px"]``.
    filter_name : str, optional
        FILTER; default F160W on MULTIACCUM detectors, F606W otherwise.
    psf_fwhm : float, optional
        PSF FWHM in arcsec; default :func:`psf_fwhm_arcsec` of the filter.
    exptime : float
        EXPTIME of every exposure, seconds.
    target : tuple of float
        ``(ra, dec)`` of the pointing, degrees.
    pa_v3, orientat_offset_deg : float
        PA_V3 and the angle to add to get ORIENTAT (the detector +y axis), degrees.
    sip_amplitude_px : float
        Size of a quadratic SIP distortion (:func:`sip_coefficients`); 0 writes TAN.
    catalog : astropy.table.Table, optional
        Truth catalog (``ra``, ``dec``, ``flux`` [e⁻/s], optional ``pm_ra``, ``pm_dec``,
        ``epoch``); default :func:`make_star_catalog` over the dithered footprint.
    n_stars, flux_range, proper_motion_mas_yr, catalog_epoch
        Passed to :func:`make_star_catalog` when no catalog is given.
    sky_e_per_s, dark_e_per_s : float, optional
        Per pixel; defaults 0.6 and 0.05 on MULTIACCUM (IR) detectors, 0.1 and 0.005
        otherwise (typical zodiacal+earthshine and dark levels, WFC3 IHB §9.7, §5.4).
    cr_rate : float, optional
        Cosmic rays cm⁻² s⁻¹; default :data:`HST_CR_RATE`, 0 on MULTIACCUM detectors.
    gain : float, optional
        Gain setting; default the detector's highest (ACS/WFC's post-2005 default is 2),
        the lowest (ATODGAIN 7) in the c0m layout.
    start_mjd : float
        EXPSTART of the first exposure.
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    asn_id : str, optional
        9-character association id; members are ``asn_id[:6] + "01q"``, ``"02q"``...
    suffix : str
        File suffix, ``"flt"`` or ``"flc"`` (FLT layout).
    layout : {"flt", "c0m"}
        ``"flt"``: calibrated FLT/FLC files.  ``"c0m"``: WFPC2's ``_c0m``/``_c1m`` pair
        holding every chip registered for the instrument (``detector`` is one of them;
        ``shape`` is each chip's; ``n_chips``, ``chip_gap_px``, ``sip_amplitude_px`` do
        not apply); see the module docstring.
    extra_primary : mapping, optional
        More primary keywords (a plugin adds FILTER1/FILTER2 for ACS, for instance).

    Returns
    -------
    FltTruth
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if suffix not in ("flt", "flc"):
        raise ValueError(f"suffix must be 'flt' or 'flc', got {suffix!r}")
    if not np.isfinite(exptime) or exptime <= 0:
        raise ValueError(f"exptime must be finite and > 0, got {exptime!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    multiaccum = bool(detector.extra.get("multiaccum", False))
    if layout == "c0m":
        # ATODGAIN 7 unless asked: WFPC2's default gain (15, optional, for bright targets)
        gain = float(min(detector.gains) if gain is None else gain)
        return _simulate_c0m(
            out, detector, rng, n_exposures=n_exposures, dithers_arcsec=dithers_arcsec,
            wcs_error=wcs_error, shape=shape, n_chips=n_chips, chip_gap_px=chip_gap_px,
            filter_name=filter_name, psf_fwhm=psf_fwhm, exptime=exptime, target=target,
            pa_v3=pa_v3, orientat_offset_deg=orientat_offset_deg,
            sip_amplitude_px=sip_amplitude_px, catalog=catalog, n_stars=n_stars,
            flux_range=flux_range, proper_motion_mas_yr=proper_motion_mas_yr,
            catalog_epoch=catalog_epoch, sky_e_per_s=sky_e_per_s, dark_e_per_s=dark_e_per_s,
            cr_rate=cr_rate, gain=gain, start_mjd=start_mjd, seed=seed, asn_id=asn_id,
            suffix=suffix, extra_primary=extra_primary)
    gain = float(max(detector.gains) if gain is None else gain)
    chips, half_size_px = _layout(detector, shape, n_chips, chip_gap_px, gain)
    scale = float(detector.pixel_scale_arcsec)
    asn_id, rootnames = _hst_names(asn_id, str(detector.extra.get("rootname_prefix", "x")),
                                   int(seed), int(n_exposures))
    n = len(rootnames)
    dithers = _dither_list(dithers_arcsec, n, scale)
    errors = _error_list(wcs_error, n)
    filter_name = filter_name or ("F160W" if multiaccum else "F606W")
    fwhm = float(psf_fwhm) if psf_fwhm is not None else psf_fwhm_arcsec(
        filter_name, scale, wavelength_unit_nm=10.0 if multiaccum else 1.0)
    sigma_px = fwhm / FWHM_PER_SIGMA / scale
    sky = float(sky_e_per_s if sky_e_per_s is not None else (0.6 if multiaccum else 0.1))
    dark = float(dark_e_per_s if dark_e_per_s is not None else (0.05 if multiaccum else 0.005))
    cr_rate = float(cr_rate if cr_rate is not None else (0.0 if multiaccum else HST_CR_RATE))
    orientat = float(pa_v3) + float(orientat_offset_deg)
    cd = _cd_matrix(scale, orientat)
    sip = sip_coefficients(sip_amplitude_px, half_size_px)
    frame_crpix = chips[0].crpix

    reach = half_size_px * np.sqrt(2.0) * scale + max(np.hypot(*d) for d in dithers) + 2.0
    catalog = _field_catalog(catalog, target, reach, n_stars, rng, flux_range,
                             proper_motion_mas_yr, catalog_epoch)
    flux = np.asarray(catalog["flux"], np.float64)

    # Everything the header writers need, one place.
    base = {
        "instrument": detector.instrument, "detector": detector.detector,
        "filter_name": filter_name, "exptime": float(exptime), "target": target,
        "pa_v3": float(pa_v3), "orientat": orientat, "gain": gain, "asn_id": asn_id,
        "multiaccum": multiaccum, "extra_primary": dict(extra_primary or {}),
        "subarray": any(c.shape != tuple(detector.extra.get("chip_shape", detector.shape))
                        for c in chips),
        "n_chips": len(chips), "dark_e": dark * float(exptime), "scale": scale,
        # a detector registered per chip (WFPC2) names it in each SCI header, as the
        # FLTs of drizzlepac's wfpc2Data.wfpc2_to_flt do (stwcs reads it there)
        "chip_detector": (int(detector.extra["chip"])
                          if detector.extra.get("chip_keyword") == "DETECTOR" else None),
        # WFPC2 readout: FULL (AREA is 2x2 binned); stwcs's WFPC2WCS needs it
        "mode": "FULL" if "MODE" in detector.extra.get("mode_keywords", ()) else None,
    }
    exposures: list[ExposureTruth] = []
    for k, (root, dither, error) in enumerate(zip(rootnames, dithers, errors)):
        start = float(start_mjd) + k * (float(exptime) + 100.0) / _SECONDS_PER_DAY
        epoch = float(Time(start, format="mjd", scale="utc").jyear)
        true_crval = _offset_crval(frame_crpix, target, cd,
                                   (cd @ np.array(dither) / scale) * 3600.0)
        head_crval = _offset_crval(frame_crpix, true_crval, cd, error.shift_arcsec)
        head_cd = _rotation(error.rotation_deg) @ cd
        ra, dec = positions_at_epoch(catalog, epoch)
        name = f"{root}_{suffix}.fits"
        primary = _primary_header(base, root, name, start, dither, detector)
        hdus: list = [fits.PrimaryHDU(header=primary)]
        exposure = ExposureTruth(rootname=root, filename=name, dither_arcsec=dither,
                                 wcs_error=error, expstart=start, exptime=float(exptime),
                                 epoch=epoch)
        for chip in chips:
            true_header = _wcs_header(chip.crpix, true_crval, cd, sip)
            x, y = WCS(true_header).all_world2pix(ra, dec, 0, tolerance=1e-10, maxiter=100)
            sci_e, var_e, crs = _chip_electrons(chip, x, y, flux * exptime, sigma_px, sky, dark,
                                                cr_rate, float(exptime), detector, rng)
            ny, nx = chip.shape
            on_chip = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
            exposure.chips.append(ChipTruth(extver=chip.extver, ccdchip=chip.ccdchip,
                                            true_header=true_header,
                                            star_id=np.flatnonzero(on_chip),
                                            x=x[on_chip], y=y[on_chip], crs=crs))
            head_wcs = _wcs_header(chip.crpix, head_crval, head_cd, sip)
            hdus += _chip_hdus(base, chip, root, head_wcs, orientat + error.rotation_deg,
                               sci_e, var_e)
        hdus[0].header["NEXTEND"] = len(hdus) - 1
        write_atomic(fits.HDUList(hdus), out / name)
        exposures.append(exposure)

    parameters = {"detector": detector.name, "n_exposures": n, "seed": int(seed),
                  "filter": filter_name, "psf_fwhm_arcsec": fwhm, "exptime": float(exptime),
                  "target": list(map(float, target)), "pa_v3": float(pa_v3),
                  "orientat": orientat, "sip": sip, "sky_e_per_s": sky, "dark_e_per_s": dark,
                  "cr_rate": cr_rate, "gain": gain, "chip_shape": list(chips[0].shape),
                  "n_chips": len(chips), "suffix": suffix, "layout": "flt"}
    return _finish(out, detector, asn_id, rootnames, target, catalog, exposures, parameters)


def _dither_list(dithers_arcsec, n: int, scale: float) -> list[tuple[float, float]]:
    if dithers_arcsec is None:
        # Dither steps of a few pixels plus a fraction, as HST's line/box patterns do.
        return [(2.5 * k * scale, 1.5 * k * scale) for k in range(n)]
    dithers = [(float(dx), float(dy)) for dx, dy in dithers_arcsec]
    if len(dithers) != n:
        raise ValueError(f"dithers_arcsec has {len(dithers)} offsets for {n} exposures")
    return dithers


def _error_list(wcs_error, n: int) -> list[WcsError]:
    if wcs_error is None or isinstance(wcs_error, WcsError):
        return [wcs_error or WcsError()] * n
    errors = list(wcs_error)
    if len(errors) != n:
        raise ValueError(f"wcs_error has {len(errors)} entries for {n} exposures")
    return errors


def _finish(out: Path, detector: Detector, asn_id: str, rootnames: Sequence[str], target,
            catalog: Table, exposures: list[ExposureTruth], parameters: dict[str, Any]
            ) -> FltTruth:
    """Write the association table, the truth catalog and the truth JSON."""
    asn_path = write_asn_table(out / f"{asn_id}_asn.fits", asn_id, rootnames, primary={
        "INSTRUME": detector.instrument, "DETECTOR": detector.detector,
        "PRIMESI": detector.instrument, "TARGNAME": "SIMULATED-FIELD",
        "RA_TARG": float(target[0]), "DEC_TARG": float(target[1]), "PROPOSID": 99999})
    catalog_path = out / f"{asn_id}_truth.ecsv"
    with atomic_path(catalog_path) as tmp:
        catalog.write(tmp, format="ascii.ecsv", overwrite=True)
    truth = FltTruth(asn_id=asn_id, asn_path=asn_path, catalog_path=catalog_path,
                     truth_path=out / f"{asn_id}_truth.json", catalog=catalog,
                     exposures=exposures, parameters=parameters)
    _save_truth_json(truth)
    log.info("wrote %d simulated %s/%s exposures (%s, %s layout) to %s", len(exposures),
             detector.instrument, detector.detector, asn_id, parameters["layout"], out)
    return truth


# --------------------------------------------------------------------------- c0m layout
def _chip_family(detector: Detector) -> list[Detector]:
    """Every chip registered for ``detector``'s instrument, by chip number (WFPC2: PC1,
    WF2, WF3, WF4); ``detector`` stands in for its own chip."""
    def per_chip(d: Detector) -> bool:
        return d.extra.get("chip_keyword") == "DETECTOR" and "chip" in d.extra

    if not per_chip(detector):
        raise ValueError(f"layout='c0m' is for detectors registered per chip (WFPC2); "
                         f"{detector.name} is not")
    from ..registry import get_registry

    family = {int(e.detector.extra["chip"]): e.detector
              for e in get_registry().detectors.values()
              if e.detector.instrument == detector.instrument and per_chip(e.detector)}
    family[int(detector.extra["chip"])] = detector
    return [family[c] for c in sorted(family)]


def _simulate_c0m(out: Path, detector: Detector, rng: np.random.Generator, *, n_exposures,
                  dithers_arcsec, wcs_error, shape, n_chips, chip_gap_px, filter_name,
                  psf_fwhm, exptime, target, pa_v3, orientat_offset_deg, sip_amplitude_px,
                  catalog, n_stars, flux_range, proper_motion_mas_yr, catalog_epoch,
                  sky_e_per_s, dark_e_per_s, cr_rate, gain, start_mjd, seed, asn_id, suffix,
                  extra_primary) -> FltTruth:
    """:func:`simulate_flt_asn` with ``layout="c0m"`` (see the module docstring)."""
    if n_chips is not None or chip_gap_px is not None:
        raise ValueError("n_chips and chip_gap_px do not apply to layout='c0m': the file "
                         "holds every chip of the instrument")
    if sip_amplitude_px:
        raise ValueError("layout='c0m' writes TAN headers (WFPC2's distortion comes from "
                         "IDCTAB/DGEOFILE): sip_amplitude_px must be 0")
    if suffix != "flt":
        raise ValueError("suffix applies to the FLT layout; layout='c0m' writes _c0m/_c1m")
    family = _chip_family(detector)
    for d in family:
        if gain not in d.amplifiers:
            raise ValueError(f"gain {gain!r} is not a setting of {d.name}: {d.gains}")
    ny, nx = (int(v) for v in (shape if shape is not None
                                else detector.extra.get("chip_shape", detector.shape)))
    if ny < 8 or nx < 8:
        raise ValueError(f"shape must be at least 8x8 per chip, got {(ny, nx)}")
    chips = [_Chip(extver=k + 1, ccdchip=int(d.extra["chip"]), shape=(ny, nx),
                   crpix=((nx + 1) / 2.0, (ny + 1) / 2.0), amps=(d.amplifiers[gain][0],))
             for k, d in enumerate(family)]
    scales = [float(d.pixel_scale_arcsec) for d in family]
    asn_id, rootnames = _hst_names(asn_id, str(detector.extra.get("rootname_prefix", "u")),
                                   int(seed), int(n_exposures))
    n = len(rootnames)
    dithers = _dither_list(dithers_arcsec, n, float(detector.pixel_scale_arcsec))
    errors = _error_list(wcs_error, n)
    filter_name = filter_name or "F606W"
    fwhms = [float(psf_fwhm) if psf_fwhm is not None else psf_fwhm_arcsec(filter_name, sc)
             for sc in scales]
    sky = float(sky_e_per_s if sky_e_per_s is not None else 0.1)
    dark = float(dark_e_per_s if dark_e_per_s is not None else 0.005)
    cr_rate = float(cr_rate if cr_rate is not None else HST_CR_RATE)
    first = float(pa_v3) + float(orientat_offset_deg)
    orientats = [first + _C0M_CHIP_TURN_DEG * k for k in range(len(chips))]
    cds = [_cd_matrix(sc, o) for sc, o in zip(scales, orientats)]
    # tangent-plane vector (deg, east/north) from the apex to each chip's CRPIX
    apex_px = 1.0 - _C0M_APEX_GAP_PX
    offsets = [cd @ (np.asarray(c.crpix) - apex_px) for cd, c in zip(cds, chips)]
    reach = (max(np.hypot(nx + _C0M_APEX_GAP_PX, ny + _C0M_APEX_GAP_PX) * sc for sc in scales)
             + max(np.hypot(*d) for d in dithers) + 2.0)
    catalog = _field_catalog(catalog, target, reach, n_stars, rng, flux_range,
                             proper_motion_mas_yr, catalog_epoch)
    flux = np.asarray(catalog["flux"], np.float64)
    saturation = float(detector.saturation_dn.get(gain, np.inf))
    sat_bit = _saturation_bit(detector)
    base = {"instrument": detector.instrument, "filter_name": filter_name,
            "exptime": float(exptime), "target": target, "pa_v3": float(pa_v3),
            "gain": gain, "asn_id": asn_id, "n_chips": len(chips), "saturation": saturation,
            "extra_primary": dict(extra_primary or {})}

    exposures: list[ExposureTruth] = []
    for k, (root, dither, error) in enumerate(zip(rootnames, dithers, errors)):
        start = float(start_mjd) + k * (float(exptime) + 100.0) / _SECONDS_PER_DAY
        epoch = float(Time(start, format="mjd", scale="utc").jyear)
        # the apex moves along PC1's axes (POSTARG-like); the error shifts it and turns
        # the whole camera about it
        apex = _offset_crval(chips[0].crpix, target, cds[0],
                             (cds[0] @ (np.array(dither) / scales[0])) * 3600.0)
        head_apex = _offset_crval(chips[0].crpix, apex, cds[0], error.shift_arcsec)
        turn = _rotation(error.rotation_deg)
        ra, dec = positions_at_epoch(catalog, epoch)
        name, dq_name = f"{root}_c0m.fits", f"{root}_c1m.fits"
        primary = _c0m_primary(base, root, name, start)
        sci_hdus: list = [fits.PrimaryHDU(header=primary)]
        dq_primary = primary.copy()
        dq_primary["FILENAME"] = dq_name
        dq_primary["FILETYPE"] = "SDQ"
        dq_hdus: list = [fits.PrimaryHDU(header=dq_primary)]
        exposure = ExposureTruth(rootname=root, filename=name, dither_arcsec=dither,
                                 wcs_error=error, expstart=start, exptime=float(exptime),
                                 epoch=epoch)
        for chip, d, cd, offset, fwhm, orientat, scale in zip(chips, family, cds, offsets,
                                                              fwhms, orientats, scales):
            true_crval = _offset_crval(chip.crpix, apex, cd, offset * 3600.0)
            true_header = _wcs_header(chip.crpix, true_crval, cd, {})
            head_crval = _offset_crval(chip.crpix, head_apex, cd, (turn @ offset) * 3600.0)
            head_wcs = _wcs_header(chip.crpix, head_crval, turn @ cd, {})
            x, y = WCS(true_header).all_world2pix(ra, dec, 0, tolerance=1e-10, maxiter=100)
            sigma_px = fwhm / FWHM_PER_SIGMA / scale
            # sky is per area: the given rate is per pixel of ``detector``'s chip
            chip_sky = sky * (scale / float(detector.pixel_scale_arcsec)) ** 2
            sci_e, _, crs = _chip_electrons(chip, x, y, flux * exptime, sigma_px, chip_sky,
                                            dark, cr_rate, float(exptime), d, rng)
            dn = sci_e / chip.amps[0].gain
            dq = np.zeros(chip.shape, np.int16)
            over = dn > saturation  # the 12-bit ADC full scale (SATURATE)
            dn[over] = saturation
            dq[over] |= sat_bit
            on_chip = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
            exposure.chips.append(ChipTruth(extver=chip.extver, ccdchip=chip.ccdchip,
                                            true_header=true_header,
                                            star_id=np.flatnonzero(on_chip),
                                            x=x[on_chip], y=y[on_chip], crs=crs))
            sci_hdus.append(_c0m_sci_hdu(base, chip, root, head_wcs,
                                         orientat + error.rotation_deg, dn, dq, sat_bit))
            dq_header = fits.Header()
            dq_header["ROOTNAME"] = root
            dq_header["DETECTOR"] = (chip.ccdchip, "CCD detector: PC 1, WFC 2-4")
            dq_header["BUNIT"] = "UNITLESS"
            dq_hdus.append(fits.ImageHDU(dq, header=dq_header, name="SCI", ver=chip.extver))
        write_atomic(fits.HDUList(dq_hdus), out / dq_name)  # the c1m first: a c0m on disk
        write_atomic(fits.HDUList(sci_hdus), out / name)  # always has its c1m
        exposures.append(exposure)

    parameters = {"detector": detector.name, "n_exposures": n, "seed": int(seed),
                  "filter": filter_name, "psf_fwhm_arcsec": fwhms, "exptime": float(exptime),
                  "target": list(map(float, target)), "pa_v3": float(pa_v3),
                  "orientat": orientats, "sip": {}, "sky_e_per_s": sky,
                  "dark_e_per_s": dark, "cr_rate": cr_rate, "gain": gain,
                  "chip_shape": [ny, nx], "n_chips": len(chips),
                  "chips": [d.name for d in family], "suffix": "c0m", "layout": "c0m"}
    return _finish(out, detector, asn_id, rootnames, target, catalog, exposures, parameters)


def _saturation_bit(detector: Detector) -> int:
    """The DQ bit the detector's flags describe as saturation (WFPC2: 8, A/D)."""
    bits = [b for b, text in sorted(detector.dq_flags.items()) if "saturat" in text.lower()]
    return int(bits[0]) if bits else 256  # DQ_STANDARD_HST full-well saturation


def _c0m_primary(base: Mapping[str, Any], root: str, name: str, start: float) -> fits.Header:
    """A calibrated WFPC2 primary header (keywords of the archive's c0m files)."""
    iso = Time(start, format="mjd", scale="utc").isot
    end = start + base["exptime"] / _SECONDS_PER_DAY
    filt = base["filter_name"]
    hdr = fits.Header()
    hdr["NEXTEND"] = (base["n_chips"], "Number of standard extensions")
    hdr["FILENAME"] = (name, "File name")
    hdr["FILETYPE"] = ("SCI", "shp, ext, edq, sdq, sci")
    hdr["TELESCOP"] = "HST"
    hdr["INSTRUME"] = (base["instrument"], "identifier for instrument used to acquire data")
    hdr["EQUINOX"] = 2000.0
    hdr["ROOTNAME"] = (root, "rootname of the observation set")
    hdr["PRIMESI"] = base["instrument"]
    hdr["TARGNAME"] = "SIMULATED-FIELD"
    hdr["RA_TARG"] = (float(base["target"][0]), "right ascension of the target (deg) (J2000)")
    hdr["DEC_TARG"] = (float(base["target"][1]), "declination of the target (deg) (J2000)")
    hdr["PROPOSID"] = 99999
    hdr["MODE"] = ("FULL", "instr. mode: FULL (full res.), AREA (area int.)")
    hdr["SERIALS"] = ("OFF", "serial clocks: ON, OFF")
    hdr["IMAGETYP"] = ("EXT", "DARK/BIAS/IFLAT/UFLAT/VFLAT/KSPOT/EXT/ECAL")
    hdr["CDBSFILE"] = "NO"
    hdr["FILTNAM1"] = (filt, "first filter name")
    hdr["FILTNAM2"] = ("", "second filter name")
    hdr["SHUTTER"] = ("A", "Shutter in place at beginning of the exposure")
    hdr["ATODGAIN"] = (base["gain"], "Analog to Digital Gain (Electrons/DN)")
    for switch in ("MASKCORR", "ATODCORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR",
                   "SHADCORR", "DOPHOTOM"):
        hdr[switch] = "COMPLETE"
    hdr["OUTDTYPE"] = ("REAL", "Output image datatype: REAL, LONG, SHORT")
    hdr["DRIZCORR"] = ("PERFORM", "drizzle processing")
    # No reference files: drizzlepac/stwcs must use the header WCS as it is.
    for key in ("MASKFILE", "ATODFILE", "BIASFILE", "DARKFILE", "FLATFILE", "SHADFILE",
                "PHOTTAB", "IDCTAB", "OFFTAB", "DGEOFILE"):
        hdr[key] = "N/A"
    hdr["SATURATE"] = (int(base["saturation"]) if np.isfinite(base["saturation"]) else 0,
                       "Data value at which saturation occurs")
    hdr["PA_V3"] = (base["pa_v3"], "position angle of V3-axis of HST (deg)")
    hdr["DATE-OBS"] = (iso[:10], "UT date of start of observation (yyyy-mm-dd)")
    hdr["TIME-OBS"] = (iso[11:19], "UT time of start of observation (hh:mm:ss)")
    hdr["EXPSTART"] = (start, "exposure start time (Modified Julian Date)")
    hdr["EXPEND"] = (end, "exposure end time (Modified Julian Date)")
    hdr["EXPTIME"] = (base["exptime"], "exposure duration (seconds)--calculated")
    hdr["DARKTIME"] = (base["exptime"], "Dark time (seconds)")
    hdr["EXPFLAG"] = ("NORMAL", "Exposure interruption indicator")
    for key in ("QUALCOM1", "QUALCOM2", "QUALCOM3", "QUALITY"):
        hdr[key] = ""
    # not on archive WFPC2 files: the simulated association's id, as ACS/WFC3 files have
    hdr["ASN_ID"] = base["asn_id"]
    for key, value in base["extra_primary"].items():
        hdr[key] = value
    hdr.add_history("Simulated by hstcal_core.simulate.flt (not HST data)")
    return hdr


def _c0m_sci_hdu(base: Mapping[str, Any], chip: _Chip, root: str, wcs_header: fits.Header,
                 orientat: float, dn: np.ndarray, dq: np.ndarray, sat_bit: int
                 ) -> fits.ImageHDU:
    """One c0m group: the chip in DN with its WCS, statistics and photometry keywords."""
    good = dq == 0
    values = dn[good]
    match = re.fullmatch(r"F(\d{3,4})[A-Z]*", base["filter_name"].upper())
    wavelength = float(match.group(1)) * 10.0 if match else 0.0  # A (CCD names: nm)
    hdr = fits.Header()
    hdr["ROOTNAME"] = (root, "rootname of the observation set")
    hdr["EXPNAME"] = (root, "9 character exposure identifier")
    hdr.update(wcs_header)
    hdr["ORIENTAT"] = (orientat, "orientation of the image (deg)")
    hdr["DETECTOR"] = (chip.ccdchip, "CCD detector: PC 1, WFC 2-4")
    hdr["FILLCNT"] = (0, "number of segments containing fill")
    hdr["ERRCNT"] = (0, "number of segments containing errors")
    hdr["GOODMIN"] = (float(values.min()) if values.size else 0.0,
                      'minimum value of the "good" pixels')
    hdr["GOODMAX"] = (float(values.max()) if values.size else 0.0,
                      'maximum value of the "good" pixels')
    hdr["DATAMEAN"] = (float(values.mean()) if values.size else 0.0,
                       'mean value of the "good" pixels')
    hdr["GPIXELS"] = (int(np.count_nonzero(good)), 'number of "good" pixels (DQF = 0)')
    hdr["ATODSAT"] = (int(np.count_nonzero(dq & sat_bit)),
                      'number of "AtoD saturated" pixels')
    photmode = f"{base['instrument']},{chip.ccdchip},A2D{base['gain']:g},{base['filter_name']},,CAL"
    hdr["PHOTMODE"] = (photmode, "Photometry mode")
    hdr["PHOTFLAM"] = (_PHOTFLAM_PER_E * chip.amps[0].gain, "Inverse Sensitivity")
    hdr["PHOTZPT"] = (_STMAG_ZEROPOINT, "Zero point")
    hdr["PHOTPLAM"] = (wavelength, "Pivot wavelength")
    hdr["PHOTBW"] = (0.1 * wavelength, "RMS bandwidth of the filter (nominal)")
    hdr["BACKGRND"] = (float(np.median(values)) if values.size else 0.0,
                       "estimated background level")
    return fits.ImageHDU(dn.astype(np.float32), header=hdr, name="SCI", ver=chip.extver)


def _chip_electrons(chip: _Chip, x, y, counts, sigma_px, sky, dark, cr_rate, exptime,
                    detector: Detector, rng: np.random.Generator):
    """Science image and variance of one chip in electrons, and its cosmic rays."""
    mean = render_stars(chip.shape, x, y, counts, sigma_px) + (sky + dark) * exptime
    electrons = rng.poisson(mean).astype(np.float64) - dark * exptime
    read_noise = np.empty(chip.shape)
    for amp, region in zip(chip.amps, _amp_regions(chip.shape, len(chip.amps))):
        read_noise[region] = amp.read_noise
    electrons += rng.standard_normal(chip.shape) * read_noise
    crs = None
    if cr_rate > 0:
        crs = make_cosmic_rays(chip.shape, exptime, cr_rate, detector.pixel_pitch_um, rng)
        electrons += render(crs)
    variance = np.maximum(electrons + dark * exptime, 0.0) + read_noise**2
    return electrons, variance, crs


def _primary_header(base: Mapping[str, Any], root: str, name: str, start: float,
                    dither: tuple[float, float], detector: Detector) -> fits.Header:
    iso = Time(start, format="mjd", scale="utc").isot
    end = start + base["exptime"] / _SECONDS_PER_DAY
    hdr = fits.Header()
    hdr["NEXTEND"] = 0
    hdr["FILENAME"] = name
    hdr["FILETYPE"] = "SCI"
    hdr["TELESCOP"] = "HST"
    hdr["INSTRUME"] = base["instrument"]
    hdr["DETECTOR"] = base["detector"]
    hdr["EQUINOX"] = 2000.0
    hdr["ROOTNAME"] = root
    hdr["EXPNAME"] = root
    hdr["IMAGETYP"] = "EXT"
    hdr["PRIMESI"] = base["instrument"]
    hdr["TARGNAME"] = "SIMULATED-FIELD"
    hdr["RA_TARG"] = (float(base["target"][0]), "right ascension of the target (deg) (J2000)")
    hdr["DEC_TARG"] = (float(base["target"][1]), "declination of the target (deg) (J2000)")
    hdr["PROPOSID"] = 99999
    hdr["DATE-OBS"] = (iso[:10], "UT date of start of observation (yyyy-mm-dd)")
    hdr["TIME-OBS"] = (iso[11:19], "UT time of start of observation (hh:mm:ss)")
    hdr["EXPSTART"] = (start, "exposure start time (Modified Julian Date)")
    hdr["EXPEND"] = (end, "exposure end time (Modified Julian Date)")
    hdr["EXPTIME"] = (base["exptime"], "exposure duration (seconds)--calculated")
    hdr["TEXPTIME"] = base["exptime"]
    hdr["EXPFLAG"] = "NORMAL"
    for key in ("QUALCOM1", "QUALCOM2", "QUALCOM3", "QUALITY"):
        hdr[key] = ""
    hdr["PA_V3"] = (base["pa_v3"], "position angle of V3-axis of HST (deg)")
    hdr["POSTARG1"] = (dither[0], "POSTARG in axis 1 direction")
    hdr["POSTARG2"] = (dither[1], "POSTARG in axis 2 direction")
    hdr["OBSTYPE"] = "IMAGING"
    hdr["OBSMODE"] = "MULTIACCUM" if base["multiaccum"] else "ACCUM"
    hdr["APERTURE"] = base["detector"]
    hdr["FILTER"] = base["filter_name"]
    if base["chip_detector"] is not None:  # WFPC2 names its filters so (stwcs WFPC2WCS)
        hdr["FILTNAM1"] = base["filter_name"]
        hdr["FILTNAM2"] = ""
    if base["mode"] is not None:
        hdr["MODE"] = (base["mode"], "instrument mode: FULL (full resolution) or AREA")
    hdr["SUBARRAY"] = bool(base["subarray"])
    amps = {a.name: a for a in detector.amplifiers[base["gain"]]}
    hdr["CCDAMP"] = "".join(sorted(amps))
    hdr[detector.gain_keyword] = base["gain"]
    for letter in "ABCD":
        hdr[f"ATODGN{letter}"] = amps[letter].gain if letter in amps else 0.0
    for letter in "ABCD":
        hdr[f"READNSE{letter}"] = amps[letter].read_noise if letter in amps else 0.0
    hdr["MEANDARK"] = (base["dark_e"], "average of the dark values subtracted (e-)")
    if base["multiaccum"]:
        hdr["NSAMP"] = 14
    hdr["ASN_ID"] = base["asn_id"]
    hdr["ASN_TAB"] = f"{base['asn_id']}_asn.fits"
    hdr["ASN_MTYP"] = "EXP-DTH"
    hdr["CRSPLIT"] = 1
    hdr["NRPTEXP"] = 1
    hdr["FLASHDUR"] = 0.0
    hdr["DRIZCORR"] = ("PERFORM", "drizzle processing")
    # No distortion reference files: drizzlepac/stwcs must use the header WCS as it is.
    for key in ("IDCTAB", "NPOLFILE", "D2IMFILE", "DGEOFILE", "PFLTFILE", "MDRIZTAB"):
        hdr[key] = "N/A"
    for key, value in base["extra_primary"].items():
        hdr[key] = value
    hdr.add_history("Simulated by hstcal_core.simulate.flt (not HST data)")
    return hdr


def _chip_hdus(base, chip: _Chip, root: str, wcs_header: fits.Header, orientat: float,
               sci_e: np.ndarray, var_e: np.ndarray) -> list[fits.ImageHDU]:
    """SCI/ERR/DQ (and SAMP/TIME for MULTIACCUM) of one chip, in the FLT's units."""
    exptime = base["exptime"]
    per_second = base["multiaccum"]  # IR FLTs are in e-/s (calwf3 ramp fit)
    norm = exptime if per_second else 1.0
    bunit = "ELECTRONS/S" if per_second else "ELECTRONS"
    dq = np.zeros(chip.shape, np.int16)
    sci_hdr = fits.Header()
    sci_hdr["EXPNAME"] = root
    sci_hdr["ROOTNAME"] = root
    sci_hdr["BUNIT"] = bunit
    sci_hdr["CCDCHIP"] = chip.ccdchip
    if base["chip_detector"] is not None:
        sci_hdr["DETECTOR"] = (base["chip_detector"], "chip of a detector registered per chip")
    sci_hdr["LTV1"], sci_hdr["LTV2"] = 0.0, 0.0
    sci_hdr["LTM1_1"], sci_hdr["LTM2_2"] = 1.0, 1.0
    sci_hdr.update(wcs_header)
    sci_hdr["WCSNAME"] = "OPUS"
    sci_hdr["ORIENTAT"] = (orientat, "position angle of image y axis (deg. e of n)")
    sci_hdr["PA_APER"] = orientat
    sci_hdr["VAFACTOR"] = 1.0
    sci_hdr["IDCSCALE"] = (base["scale"], "pixel scale (arcsec), as an IDCTAB would give")
    sci_hdr["MEANDARK"] = (base["dark_e"], "average of the dark values subtracted (e-)")
    sci_hdr["NGOODPIX"] = int(np.count_nonzero(dq == 0))
    sci_hdr["SDQFLAGS"] = 31743
    hdus = [fits.ImageHDU((sci_e / norm).astype(np.float32), header=sci_hdr, name="SCI",
                          ver=chip.extver),
            fits.ImageHDU((np.sqrt(var_e) / norm).astype(np.float32),
                          header=fits.Header({"BUNIT": bunit}), name="ERR", ver=chip.extver),
            fits.ImageHDU(dq, name="DQ", ver=chip.extver)]
    if per_second:
        hdus += [fits.ImageHDU(np.full(chip.shape, 14, np.int16), name="SAMP", ver=chip.extver),
                 fits.ImageHDU(np.full(chip.shape, exptime, np.float32),
                               header=fits.Header({"BUNIT": "SECONDS"}), name="TIME",
                               ver=chip.extver)]
    return hdus


def _save_truth_json(truth: FltTruth) -> None:
    exposures = []
    for e in truth.exposures:
        exposures.append({
            "rootname": e.rootname, "filename": e.filename,
            "dither_arcsec": list(e.dither_arcsec), "wcs_error": asdict(e.wcs_error),
            "expstart": e.expstart, "exptime": e.exptime, "epoch": e.epoch,
            "chips": [{"extver": c.extver, "ccdchip": c.ccdchip, "n_stars": int(c.star_id.size),
                       "n_crs": 0 if c.crs is None else c.crs.n_crs,
                       "true_wcs": {k: c.true_header[k] for k in c.true_header}}
                      for c in e.chips]})
    meta = {"asn_id": truth.asn_id, "asn": truth.asn_path.name,
            "catalog": truth.catalog_path.name, "parameters": truth.parameters,
            "exposures": exposures}
    with atomic_path(truth.truth_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
