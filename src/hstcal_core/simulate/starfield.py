"""A star field for imaging simulations: truth catalog, PSF width, pixel-integrated stars.

* :func:`make_star_catalog` — RA/Dec uniform over a tangent-plane box, fluxes from a
  truncated power law dN/dF ∝ F^-α (α = 1.75 by default: galactic star counts rise by
  ~0.3 dex per magnitude, Bahcall & Soneira 1980, ApJS 44, 73), optional proper motions
  (``pm_ra`` including cos δ, Gaia's convention) at a catalog ``epoch``;
* :func:`positions_at_epoch` — the catalog moved linearly by its proper motions;
* :func:`psf_fwhm_arcsec` — diffraction core 1.03 λ/D of HST's 2.4 m aperture at the
  filter's wavelength, in quadrature with 0.75 pixel of pixel response and charge
  diffusion (0.063″ at WFC3/UVIS F606W, 0.17″ at IR F160W, near the handbook's ~0.07″
  and ~0.15″, WFC3 IHB §6.6, §7.6);
* :func:`render_stars` — circular Gaussians integrated over pixels (arrays in, arrays
  out).
"""

from __future__ import annotations

import re

import numpy as np
from astropy import units as u
from astropy.table import Table
from scipy.special import erf

__all__ = [
    "FWHM_PER_SIGMA",
    "RAD_TO_ARCSEC",
    "make_star_catalog",
    "positions_at_epoch",
    "psf_fwhm_arcsec",
    "render_stars",
]

_HST_APERTURE_M = 2.4
RAD_TO_ARCSEC = 180.0 / np.pi * 3600.0
#: FWHM / σ of a Gaussian.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_PIXEL_BLUR_PX = 0.75  # pixel response + charge diffusion, FWHM in pixels (see docstring)


def psf_fwhm_arcsec(filter_name: str, pixel_scale_arcsec: float, *,
                    wavelength_unit_nm: float = 1.0) -> float:
    """Gaussian FWHM of the PSF in arcsec for an HST filter name (see module docstring).

    Parameters
    ----------
    filter_name : str
        ``F606W``, ``F814W``, ``F160W``...; the digits give the wavelength.
    pixel_scale_arcsec : float
        Detector plate scale (adds 0.75 pixel FWHM in quadrature).
    wavelength_unit_nm : float
        What one unit of the filter number is: 1 nm for CCD filters, 10 nm for the
        WFC3/IR and NICMOS ones (F160W = 1.60 µm).
    """
    match = re.fullmatch(r"F(\d{3,4})[A-Z]*", str(filter_name).strip().upper())
    if match is None:
        raise ValueError(f"filter_name {filter_name!r} is not an HST filter name like F606W; "
                         "give psf_fwhm_arcsec explicitly")
    wavelength_m = int(match.group(1)) * wavelength_unit_nm * 1e-9
    diffraction = 1.03 * wavelength_m / _HST_APERTURE_M * RAD_TO_ARCSEC
    return float(np.hypot(diffraction, _PIXEL_BLUR_PX * pixel_scale_arcsec))


def make_star_catalog(center: tuple[float, float], half_size_arcsec: tuple[float, float],
                      n_stars: int, rng: np.random.Generator | int | None, *,
                      flux_range: tuple[float, float] = (3.0, 300.0),
                      power_law_index: float = 1.75, proper_motion_mas_yr: float = 0.0,
                      epoch: float = 2016.0) -> Table:
    """Stars uniform over a tangent-plane box, fluxes from a truncated power law.

    Parameters
    ----------
    center : tuple of float
        ``(ra, dec)`` of the box centre, degrees.
    half_size_arcsec : tuple of float
        Half widths east-west and north-south.
    n_stars : int
    rng : numpy.random.Generator or int or None
    flux_range : tuple of float
        ``(min, max)`` count rate, e⁻/s.
    power_law_index : float
        α of dN/dF ∝ F^-α (≠ 1).
    proper_motion_mas_yr : float
        Standard deviation of each proper-motion component; 0 writes no pm columns.
    epoch : float
        Julian year of the positions (2016.0 is Gaia DR3's).

    Returns
    -------
    astropy.table.Table
        ``id``, ``ra``, ``dec`` (deg), ``flux`` (e⁻/s) [, ``pm_ra``, ``pm_dec`` (mas/yr),
        ``epoch`` (yr)].
    """
    rng = np.random.default_rng(rng)
    lo, hi = (float(v) for v in flux_range)
    if not 0 < lo < hi:
        raise ValueError(f"flux_range must be 0 < min < max, got {flux_range!r}")
    if power_law_index == 1.0:
        raise ValueError("power_law_index must differ from 1")
    if int(n_stars) < 0:
        raise ValueError(f"n_stars must be >= 0, got {n_stars!r}")
    n = int(n_stars)
    xi = rng.uniform(-1, 1, n) * half_size_arcsec[0] / RAD_TO_ARCSEC
    eta = rng.uniform(-1, 1, n) * half_size_arcsec[1] / RAD_TO_ARCSEC
    ra, dec = _deproject(center, xi, eta)
    # Inverse CDF of the truncated power law.
    a = 1.0 - power_law_index
    flux = (lo**a + rng.uniform(0, 1, n) * (hi**a - lo**a)) ** (1.0 / a)
    table = Table()
    table["id"] = np.arange(n, dtype=np.int64)
    table["ra"] = ra * u.deg
    table["dec"] = dec * u.deg
    table["flux"] = flux * u.electron / u.s
    if proper_motion_mas_yr > 0:
        table["pm_ra"] = rng.normal(0, proper_motion_mas_yr, n) * u.mas / u.yr
        table["pm_dec"] = rng.normal(0, proper_motion_mas_yr, n) * u.mas / u.yr
        table["epoch"] = np.full(n, float(epoch)) * u.yr
    table.meta["description"] = "hstcal simulated star field (truth)"
    return table


def _deproject(center, xi, eta):
    """Gnomonic (TAN) inverse projection of tangent-plane radians about ``center``."""
    ra0, dec0 = np.radians(center[0]), np.radians(center[1])
    rho = np.hypot(xi, eta)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(c) * np.sin(dec0) + np.where(rho > 0, eta * np.sin(c) / rho, 0)
                        * np.cos(dec0))
        ra = ra0 + np.arctan2(xi * np.sin(c),
                              rho * np.cos(dec0) * np.cos(c) - eta * np.sin(dec0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def positions_at_epoch(catalog: Table, epoch: float) -> tuple[np.ndarray, np.ndarray]:
    """Catalog RA/Dec moved linearly by the proper motion to Julian year ``epoch``."""
    ra = np.asarray(catalog["ra"], np.float64)
    dec = np.asarray(catalog["dec"], np.float64)
    if "pm_ra" not in catalog.colnames:
        return ra, dec
    dt = epoch - np.asarray(catalog["epoch"], np.float64)
    ra = ra + np.asarray(catalog["pm_ra"]) * dt / 3.6e6 / np.cos(np.radians(dec))
    dec = dec + np.asarray(catalog["pm_dec"]) * dt / 3.6e6
    return ra, dec


def render_stars(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, counts: np.ndarray,
                 sigma_px: float) -> np.ndarray:
    """Circular Gaussians integrated over pixels (pixel centres at integers).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    x, y : ndarray
        0-based centres; stars off the array still add their wings.
    counts : ndarray
        Total counts of each star.
    sigma_px : float
        Gaussian σ in pixels (> 0).

    Returns
    -------
    ndarray of float64
    """
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be > 0, got {sigma_px!r}")
    ny, nx = (int(s) for s in shape)
    image = np.zeros((ny, nx))
    x, y, counts = (np.atleast_1d(np.asarray(v, np.float64)) for v in (x, y, counts))
    radius = int(np.ceil(5.0 * sigma_px)) + 1
    size = 2 * radius + 1
    near = (x > -radius) & (x < nx - 1 + radius) & (y > -radius) & (y < ny - 1 + radius)
    x, y, counts = x[near], y[near], counts[near]
    if x.size == 0:
        return image
    x0 = np.rint(x).astype(np.int64) - radius
    y0 = np.rint(y).astype(np.int64) - radius
    wx = _pixel_fractions(x, x0, size, sigma_px)
    wy = _pixel_fractions(y, y0, size, sigma_px)
    stamp = counts[:, None, None] * wy[:, :, None] * wx[:, None, :]
    yy = np.broadcast_to(y0[:, None, None] + np.arange(size)[None, :, None], stamp.shape)
    xx = np.broadcast_to(x0[:, None, None] + np.arange(size)[None, None, :], stamp.shape)
    inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
    np.add.at(image, (yy[inside], xx[inside]), stamp[inside])
    return image


def _pixel_fractions(centre, first, size, sigma):
    edges = first[:, None] + np.arange(size + 1)[None, :] - 0.5
    cdf = 0.5 * (1.0 + erf((edges - centre[:, None]) / (sigma * np.sqrt(2.0))))
    return np.diff(cdf, axis=1)
