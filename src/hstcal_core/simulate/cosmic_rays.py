"""Cosmic-ray hits on a CCD: sparse charge deposits with their ground truth.

Model (detector-agnostic; every number is a keyword argument):

* **Rate.** The number of hits is Poisson with mean ``rate × time × area``, the area
  being ``ny·nx`` pixels of ``pixel_pitch_um``.  1.2 CR cm⁻² s⁻¹ is the usual HST
  figure outside the SAA (WFPC2 and ACS instrument handbooks).
* **Track.** Primaries arrive isotropically on a plane (cosine-weighted: sin²θ
  uniform) and cross a sensitive layer ``depth_um`` thick, so the track projected
  on the pixel plane is ``depth·tanθ / pitch`` pixels long in a random direction:
  half the tracks are shorter than ``depth/pitch`` (0.7 px for 15 µm / 21 µm), ~5 %
  longer than 3 px (shallow incidence), capped at ``max_track_px``.
* **Charge.** The deposit does not depend on the particle's energy but on the
  path length in silicon (ACS IHB §4.3.6 "Cosmic rays": negligible events below
  500 e⁻, median ≈ 1000 e⁻): a lognormal of median ``median_charge_e`` times the
  path length relative to its median, ``secθ/√2``.
* **Diffusion.** The charge is spread along the track and blurred with a Gaussian
  of ``diffusion_sigma_px`` (integrated over each pixel); deposits below
  ``min_charge_e`` are dropped.  "The census of affected pixels is dominated by
  charge diffusion, not direct impacts" (ACS IHB §4.3.6): 1.5–3 % of pixels per
  1000 s, 4–5 pixels per event, on WFPC2, STIS and ACS.

The number of pixels a CR "covers" depends on the charge threshold that counts as
covered: every pixel within ~1.5 px of the track holds ≥ 1 e⁻ (median 8 pixels
with the defaults), but only the 4–5 nearest hold more than a few times a CCD
read noise.
:meth:`CosmicRays.affected_fraction` and :meth:`CosmicRays.summary` take that
threshold; :data:`DETECTABLE_E` (25 e⁻ ≈ 4σ of a 6 e⁻ read noise) is the default
used for the handbook comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from ..images import image_shape

__all__ = ["CosmicRays", "make_cosmic_rays", "render", "rebin", "DETECTABLE_E", "HST_CR_RATE"]

#: HST cosmic-ray rate outside the SAA, CR cm⁻² s⁻¹ (WFPC2/ACS instrument handbooks).
HST_CR_RATE = 1.2
#: Charge (e⁻) above which a deposit counts as "affected" in the handbook census: ~4σ
#: of a 6 e⁻ read noise, what a CR-rejection of 4σ could find in one pixel.
DETECTABLE_E = 25.0

_SUBSTEP_PX = 0.25  # sampling of the track before diffusion; ≪ σ so tracks look continuous


@dataclass(frozen=True, eq=False)
class CosmicRays:
    """Cosmic-ray hits on one image: sparse deposits plus one row per CR.

    Deposits are sorted by ``cr_id`` and, within a CR, by pixel; a pixel hit by two
    CRs appears once per CR.

    Attributes
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image the coordinates refer to.
    y, x : ndarray of int32
        Pixel of each deposit.
    charge_e : ndarray of float32
        Charge of each deposit in electrons (``≥ min_charge_e`` when made).
    cr_id : ndarray of int32
        Which CR each deposit belongs to, ``0 .. n_crs-1``.
    y0, x0 : ndarray of float64
        Track start of each CR (pixel coordinates, pixel centres at integers).
    length_px, angle_rad : ndarray of float64
        Projected track length and direction of each CR.
    exposure_time_s : float
        Time over which the hits were accumulated.
    """

    shape: tuple[int, int]
    y: np.ndarray
    x: np.ndarray
    charge_e: np.ndarray
    cr_id: np.ndarray
    y0: np.ndarray
    x0: np.ndarray
    length_px: np.ndarray
    angle_rad: np.ndarray
    exposure_time_s: float = 0.0

    @property
    def n_crs(self) -> int:
        """Number of cosmic rays (including any that left no deposit above the cut)."""
        return int(self.y0.size)

    @property
    def n_pixels(self) -> np.ndarray:
        """Deposits per CR (pixels above the cut), shape ``(n_crs,)``."""
        return np.bincount(self.cr_id, minlength=self.n_crs).astype(np.int64)

    @property
    def total_charge_e(self) -> np.ndarray:
        """Deposited charge per CR in electrons, shape ``(n_crs,)``."""
        return np.bincount(self.cr_id, weights=self.charge_e, minlength=self.n_crs)

    def summary(self, threshold_e: float = 0.0) -> dict[str, np.ndarray]:
        """One row per CR: ``cr_id``, ``n_pixels`` (deposits ≥ ``threshold_e``),
        ``total_charge_e``, ``peak_charge_e``, charge-weighted centroid ``y``, ``x``,
        ``length_px``."""
        n = self.n_crs
        q = self.charge_e.astype(np.float64)
        total = np.bincount(self.cr_id, weights=q, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            yc = np.bincount(self.cr_id, weights=q * self.y, minlength=n) / total
            xc = np.bincount(self.cr_id, weights=q * self.x, minlength=n) / total
        peak = np.zeros(n)
        np.maximum.at(peak, self.cr_id, q)
        above = self.charge_e >= threshold_e
        return {
            "cr_id": np.arange(n, dtype=np.int32),
            "n_pixels": np.bincount(self.cr_id[above], minlength=n).astype(np.int64),
            "total_charge_e": total,
            "peak_charge_e": peak,
            "y": yc,
            "x": xc,
            "length_px": np.asarray(self.length_px, np.float64),
        }

    def mask(self, threshold_e: float = 0.0) -> np.ndarray:
        """Boolean image of pixels whose summed CR charge is ``≥ threshold_e`` (and > 0)."""
        image = render(self)
        return (image >= threshold_e) & (image > 0)

    def affected_fraction(self, threshold_e: float = DETECTABLE_E) -> float:
        """Fraction of the image's pixels holding ``≥ threshold_e`` of CR charge."""
        return float(np.count_nonzero(self.mask(threshold_e))) / (self.shape[0] * self.shape[1])


def _pixel_weights(centre: np.ndarray, first: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian (mean ``centre``) falling in pixels ``first .. first+size-1``.

    Pixel ``k`` spans ``[k-0.5, k+0.5)``; returns shape ``(len(centre), size)``.
    """
    edges = first[:, None] + np.arange(size + 1)[None, :] - 0.5
    cdf = 0.5 * (1.0 + erf((edges - centre[:, None]) / (sigma * np.sqrt(2.0))))
    return np.diff(cdf, axis=1)


def make_cosmic_rays(
    shape: tuple[int, int],
    exposure_time_s: float,
    rate_per_cm2_s: float,
    pixel_pitch_um: float,
    rng: np.random.Generator | int | None,
    *,
    median_charge_e: float = 1000.0,
    charge_sigma: float = 0.35,
    depth_um: float = 15.0,
    diffusion_sigma_px: float = 0.3,
    max_track_px: float = 50.0,
    min_charge_e: float = 1.0,
) -> CosmicRays:
    """Draw the cosmic rays hitting an image during ``exposure_time_s``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the sensitive area, in pixels.
    exposure_time_s : float
        Accumulation time in seconds (≥ 0).
    rate_per_cm2_s : float
        CR flux, cm⁻² s⁻¹ (:data:`HST_CR_RATE` = 1.2 for HST outside the SAA).
    pixel_pitch_um : float
        Pixel pitch in micrometres (sets the area and the track length in pixels).
    rng : numpy.random.Generator or int or None
        Random generator, or a seed for :func:`numpy.random.default_rng`.
    median_charge_e : float
        Median deposited charge of a CR, electrons (ACS IHB §4.3.6: ~1000 e⁻).
    charge_sigma : float
        Width of the lognormal charge distribution (natural log).  0.35 leaves ~4 % of
        events below 500 e⁻ ("negligible", ACS IHB §4.3.6); longer paths add the
        high-charge tail.  ``median_charge_e`` is the median for the median path
        (secθ = √2); the median over all CRs comes out ~7 % higher.
    depth_um : float
        Thickness of the layer where the charge is collected; tracks are
        ``depth·tanθ`` long.
    diffusion_sigma_px : float
        Gaussian σ of the lateral charge diffusion, pixels.  0.3 px (6 µm at a 21 µm
        pitch) reproduces the handbook census (see module docstring); 0.6 px spreads
        a 1000 e⁻ hit over ~17 pixels ≥ 1 e⁻ and ~8 pixels ≥ 25 e⁻, and affects
        ~4.8 % of the pixels in 1000 s.
    max_track_px : float
        Longest projected track (grazing incidence is cut off here).
    min_charge_e : float
        Deposits below this are dropped (keeps the result sparse).

    Returns
    -------
    CosmicRays
        Deposits (``y``, ``x``, ``charge_e``, ``cr_id``) and per-CR track parameters.

    Raises
    ------
    ValueError
        For a non-2-D or empty ``shape`` or a negative/non-finite parameter, naming it.
    """
    shape = image_shape(shape)
    for name, value in (("exposure_time_s", exposure_time_s), ("rate_per_cm2_s", rate_per_cm2_s),
                        ("min_charge_e", min_charge_e)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    for name, value in (("pixel_pitch_um", pixel_pitch_um), ("median_charge_e", median_charge_e),
                        ("depth_um", depth_um), ("diffusion_sigma_px", diffusion_sigma_px),
                        ("max_track_px", max_track_px)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    if not np.isfinite(charge_sigma) or charge_sigma < 0:
        raise ValueError(f"charge_sigma must be finite and >= 0, got {charge_sigma!r}")
    rng = np.random.default_rng(rng)
    ny, nx = shape

    area_cm2 = ny * nx * (pixel_pitch_um * 1e-4) ** 2
    n = int(rng.poisson(rate_per_cm2_s * exposure_time_s * area_cm2))
    y0 = rng.uniform(-0.5, ny - 0.5, n)
    x0 = rng.uniform(-0.5, nx - 0.5, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    # Cosine-weighted isotropic incidence on a plane: sin²θ is uniform.
    sin2 = rng.uniform(0.0, 1.0, n)
    cos_theta = np.sqrt(np.clip(1.0 - sin2, 1e-12, 1.0))
    tan_theta = np.sqrt(sin2) / cos_theta
    depth_px = depth_um / pixel_pitch_um
    length = np.minimum(depth_px * tan_theta, max_track_px)
    # Charge ∝ path length in the sensitive layer, normalised so the median stays near
    # median_charge_e (median secθ is √2); the grazing cut also caps the path.
    path = np.sqrt(depth_px**2 + length**2) / depth_px
    charge = median_charge_e * np.exp(charge_sigma * rng.standard_normal(n)) * path / np.sqrt(2.0)

    y, x, q, ids = _deposit(shape, y0, x0, length, angle, charge, diffusion_sigma_px, min_charge_e)
    return CosmicRays(shape=shape, y=y, x=x, charge_e=q, cr_id=ids, y0=y0, x0=x0,
                      length_px=length, angle_rad=angle, exposure_time_s=float(exposure_time_s))


def _deposit(shape, y0, x0, length, angle, charge, sigma, min_charge):
    """Spread each track's charge over pixels; returns sorted sparse deposits."""
    ny, nx = shape
    n = y0.size
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32),
             np.zeros(0, np.int32))
    if n == 0:
        return empty
    steps = 1 + np.ceil(length / _SUBSTEP_PX).astype(np.int64)
    owner = np.repeat(np.arange(n), steps)
    start = np.repeat(np.cumsum(steps) - steps, steps)
    k = np.arange(owner.size) - start
    frac = np.where(steps[owner] > 1, k / np.maximum(steps[owner] - 1, 1), 0.0)
    py = y0[owner] + frac * length[owner] * np.sin(angle[owner])
    px = x0[owner] + frac * length[owner] * np.cos(angle[owner])
    pq = charge[owner] / steps[owner]

    radius = max(1, int(np.ceil(3.5 * sigma + 0.5)))
    size = 2 * radius + 1
    fy = np.rint(py).astype(np.int64) - radius
    fx = np.rint(px).astype(np.int64) - radius
    wy = _pixel_weights(py, fy, size, sigma)
    wx = _pixel_weights(px, fx, size, sigma)
    stamp = pq[:, None, None] * wy[:, :, None] * wx[:, None, :]
    yy = np.broadcast_to(fy[:, None, None] + np.arange(size)[None, :, None], stamp.shape)
    xx = np.broadcast_to(fx[:, None, None] + np.arange(size)[None, None, :], stamp.shape)
    oo = np.broadcast_to(owner[:, None, None], stamp.shape)
    inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx) & (stamp > 0)
    key = (oo[inside] * ny + yy[inside]) * nx + xx[inside]
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=stamp[inside])
    keep = summed >= min_charge
    uniq, summed = uniq[keep], summed[keep]
    if uniq.size == 0:
        return empty
    ids, rem = np.divmod(uniq, ny * nx)
    yy, xx = np.divmod(rem, nx)
    return yy.astype(np.int32), xx.astype(np.int32), summed.astype(np.float32), ids.astype(np.int32)


def render(crs: CosmicRays, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Dense float32 image of the CR charge (e⁻), summing overlapping deposits.

    Parameters
    ----------
    crs : CosmicRays
        The hits.
    shape : tuple of int, optional
        Output shape; defaults to ``crs.shape``.  Deposits outside are ignored.
    """
    shape = image_shape(crs.shape if shape is None else shape)
    inside = (crs.y >= 0) & (crs.y < shape[0]) & (crs.x >= 0) & (crs.x < shape[1])
    flat = np.bincount(crs.y[inside].astype(np.int64) * shape[1] + crs.x[inside],
                       weights=crs.charge_e[inside], minlength=shape[0] * shape[1])
    return flat.reshape(shape).astype(np.float32)


def rebin(crs: CosmicRays, factor_y: int, factor_x: int, *, offset_y: int = 0,
          offset_x: int = 0, shape: tuple[int, int] | None = None) -> CosmicRays:
    """Sum deposits into binned pixels, as an on-chip binned readout does.

    Unbinned pixel ``(y, x)`` lands in binned pixel
    ``((y + offset_y) // factor_y, (x + offset_x) // factor_x)``; the offsets place the
    sensitive area inside a larger readout (overscan, prescan).

    Parameters
    ----------
    crs : CosmicRays
        Hits at unbinned resolution.
    factor_y, factor_x : int
        Binning factors (≥ 1).
    offset_y, offset_x : int
        Unbinned samples read before the first sensitive pixel (≥ 0).
    shape : tuple of int, optional
        Binned image shape; defaults to the smallest holding every deposit.
        Deposits falling outside are dropped.

    Returns
    -------
    CosmicRays
        Same CRs (ids and track parameters unchanged), deposits merged per binned pixel.
    """
    for name, value in (("factor_y", factor_y), ("factor_x", factor_x)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    for name, value in (("offset_y", offset_y), ("offset_x", offset_x)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    by = (crs.y.astype(np.int64) + offset_y) // factor_y
    bx = (crs.x.astype(np.int64) + offset_x) // factor_x
    if shape is None:
        shape = (-(-(crs.shape[0] + offset_y) // factor_y),
                 -(-(crs.shape[1] + offset_x) // factor_x))
    shape = image_shape(shape)
    inside = (by >= 0) & (by < shape[0]) & (bx >= 0) & (bx < shape[1])
    key = (crs.cr_id[inside].astype(np.int64) * shape[0] + by[inside]) * shape[1] + bx[inside]
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=crs.charge_e[inside].astype(np.float64))
    ids, rem = np.divmod(uniq, shape[0] * shape[1])
    yy, xx = np.divmod(rem, shape[1])
    return CosmicRays(shape=shape, y=yy.astype(np.int32), x=xx.astype(np.int32),
                      charge_e=summed.astype(np.float32), cr_id=ids.astype(np.int32),
                      y0=crs.y0, x0=crs.x0, length_px=crs.length_px, angle_rad=crs.angle_rad,
                      exposure_time_s=crs.exposure_time_s)

