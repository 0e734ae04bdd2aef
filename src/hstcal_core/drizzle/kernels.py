"""Drizzle one image onto an output grid with drizzlepac's own C drizzle (``cdriz``).

A thin layer, not a re-implementation: the pixels are resampled by
``drizzlepac.cdriz.tdriz``, the "Callable C-based DRIZZLE" that AstroDrizzle's
``adrizzle.do_driz`` calls for every chip.  What this module adds:

* a **pixel map** front end.  drizzlepac 3.11 ships its own ``cdriz`` (it does not
  depend on the ``drizzle`` package), whose ``tdriz`` takes a *callable* mapping
  1-based input pixel positions to 1-based output positions; it evaluates it at pixel
  centres and at the corners ``±0.5`` of every pixel.  :func:`pixmap_mapping` turns a
  pixel map — ``pixmap[y, x] = (x_out, y_out)``, 0-based, the convention of the
  ``drizzle`` package's ``calc_pixmap`` — into that callable by bilinear interpolation
  between pixel centres and linear extrapolation beyond the edge pixels (the scheme
  of drizzle's ``cdrizzlemap.c interpolate_point``);
* :func:`pixmap_from_wcs`, the map AstroDrizzle uses (drizzlepac
  ``wcs_functions.WCSMap.forward``: ``all_pix2world`` on the input WCS, distortion
  included, then ``wcs_world2pix`` on the undistorted output WCS);
* :func:`drizzle_parameters`, the parameters a drizzlepac product records for each
  input (``D001KERN``, ``D001PIXF``, ``D001FVAL``, ``D001OUUN``, ``D001WTSC``,
  ``D001SCAL``/``D001ISCL``; drizzlepac ``adrizzle`` writes them), so a product can be
  re-made with what made it — and checked: the header, not the file name, says which
  kernel was used.

Arguments follow ``adrizzle.do_driz``: ``scale`` is the ratio of output to input
plate scale (``output_wcs.pscale / wcslin_pscale``); with ``in_units="counts"`` the
data are divided by ``exptime`` (``expscale``); ``weight_scale`` is ``wt_scl``.

Kernels: ``square``, ``point``, ``turbo``, ``gaussian``, ``lanczos3``, ``tophat``
(drizzlepac ``adrizzle.cfgspc``; ``lanczos5`` is rejected by this ``cdriz``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..images import image_shape
from ._thirdparty import import_drizzlepac

__all__ = [
    "KERNELS",
    "DrizzleOutput",
    "DrizzleParameters",
    "drizzle_image",
    "drizzle_parameters",
    "empty_output",
    "pixmap_from_wcs",
    "pixmap_mapping",
]

#: Kernels accepted by drizzlepac's ``cdriz.tdriz`` (drizzlepac ``adrizzle.cfgspc``).
KERNELS: tuple[str, ...] = ("square", "point", "turbo", "gaussian", "lanczos3", "tophat")

Mapping2D = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class DrizzleOutput:
    """Accumulated drizzle products on one output grid.

    Attributes
    ----------
    sci : ndarray of float32
        Weighted-mean surface brightness (the ``_drz`` SCI array).
    wht : ndarray of float32
        Summed weights (WHT).
    ctx : ndarray of int32
        Context bit field: bit ``uniqid - 1`` is set where that input contributed (CTX).
    n_missed : int
        Input pixels of the last image that fell outside the output.
    n_skipped_lines : int
        Input lines of the last image skipped entirely.
    version : str
        Version string of the C drizzle that made it.
    """

    sci: np.ndarray
    wht: np.ndarray
    ctx: np.ndarray
    n_missed: int = 0
    n_skipped_lines: int = 0
    version: str = ""


@dataclass(frozen=True)
class DrizzleParameters:
    """How one input was drizzled, as a drizzlepac product header records it.

    Attributes
    ----------
    kernel : str
        ``D###KERN``.
    pixfrac : float
        ``D###PIXF``.
    fillval : float or None
        ``D###FVAL``; ``None`` for ``INDEF``.
    out_units : str
        ``D###OUUN``, units of the output (``"cps"`` or ``"counts"``); the input's own
        units (``in_units`` of :func:`drizzle_image`) follow from its BUNIT.
    weight_scale : float
        ``D###WTSC``.
    scale : float
        Output/input plate-scale ratio, ``D###SCAL / D###ISCL``.
    exptime : float
        ``D###DEXP``.
    out_shape : tuple of int
        ``(NAXIS2, NAXIS1)`` of the header's image.
    data : str
        ``D###DATA``, the input image and extension.
    """

    kernel: str
    pixfrac: float
    fillval: float | None
    out_units: str
    weight_scale: float
    scale: float
    exptime: float
    out_shape: tuple[int, int]
    data: str = ""


def empty_output(out_shape: tuple[int, int]) -> DrizzleOutput:
    """Zeroed SCI/WHT/CTX arrays of ``out_shape`` ``(ny, nx)``."""
    ny, nx = image_shape(out_shape, "out_shape")
    return DrizzleOutput(sci=np.zeros((ny, nx), np.float32), wht=np.zeros((ny, nx), np.float32),
                         ctx=np.zeros((ny, nx), np.int32))


def pixmap_mapping(pixmap: np.ndarray) -> Mapping2D:
    """The ``cdriz.tdriz`` callback equivalent to a pixel map.

    Parameters
    ----------
    pixmap : ndarray, shape (ny, nx, 2)
        ``pixmap[y, x] = (x_out, y_out)``: 0-based output position of the centre of
        input pixel ``(y, x)``.

    Returns
    -------
    callable
        ``f(x, y) -> (x_out, y_out)`` on 1-based coordinates (drizzlepac's WCSMap
        convention, ``origin=1``), bilinear between pixel centres, linear beyond the
        outermost ones.
    """
    grid = np.asarray(pixmap, dtype=np.float64)
    if grid.ndim != 3 or grid.shape[2] != 2 or min(grid.shape[:2]) < 2:
        raise ValueError(f"pixmap must have shape (ny, nx, 2) with ny, nx >= 2, "
                         f"got {grid.shape}")
    ny, nx = grid.shape[:2]
    xmap, ymap = grid[..., 0].copy(), grid[..., 1].copy()

    def mapping(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x0 = np.asarray(x, dtype=np.float64) - 1.0
        y0 = np.asarray(y, dtype=np.float64) - 1.0
        j = np.clip(np.floor(x0).astype(np.int64), 0, nx - 2)
        i = np.clip(np.floor(y0).astype(np.int64), 0, ny - 2)
        fx, fy = x0 - j, y0 - i
        w00, w01 = (1 - fy) * (1 - fx), (1 - fy) * fx
        w10, w11 = fy * (1 - fx), fy * fx
        xo = w00 * xmap[i, j] + w01 * xmap[i, j + 1] + w10 * xmap[i + 1, j] + w11 * xmap[i + 1, j + 1]
        yo = w00 * ymap[i, j] + w01 * ymap[i, j + 1] + w10 * ymap[i + 1, j] + w11 * ymap[i + 1, j + 1]
        return xo + 1.0, yo + 1.0

    return mapping


def pixmap_from_wcs(input_wcs, output_wcs, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Pixel map from an input WCS (with its distortion) to an output WCS.

    drizzlepac ``wcs_functions.WCSMap.forward``: ``input.all_pix2world`` then
    ``output.wcs_world2pix`` (the output grid is undistorted).

    Parameters
    ----------
    input_wcs, output_wcs : astropy.wcs.WCS
        Celestial WCSs (stwcs ``HSTWCS`` works too).
    shape : tuple of int, optional
        ``(ny, nx)`` of the input; defaults to ``input_wcs.array_shape``.

    Returns
    -------
    ndarray, shape (ny, nx, 2)
        0-based ``(x_out, y_out)`` of every input pixel centre.
    """
    if shape is None:
        shape = input_wcs.array_shape
        if shape is None:
            raise ValueError("shape is required when input_wcs has no array_shape")
    ny, nx = image_shape(shape, "shape")
    yy, xx = np.indices((ny, nx), dtype=np.float64)
    ra, dec = input_wcs.all_pix2world(xx, yy, 0)
    xo, yo = output_wcs.wcs_world2pix(ra, dec, 0)
    return np.dstack([xo, yo])


def drizzle_image(data: np.ndarray, pixmap: np.ndarray, out_shape: tuple[int, int] | None = None,
                  *, weight: np.ndarray | None = None, kernel: str = "square",
                  pixfrac: float = 1.0, scale: float = 1.0, exptime: float = 1.0,
                  in_units: str = "cps", weight_scale: float = 1.0,
                  fillval: float | str | None = None, uniqid: int = 1,
                  add_to: DrizzleOutput | None = None) -> DrizzleOutput:
    """Drizzle ``data`` onto an output grid through drizzlepac's ``cdriz.tdriz``.

    Parameters
    ----------
    data : ndarray, 2-D
        Input image (cast to float32, as ``do_driz`` does).
    pixmap : ndarray, shape (ny, nx, 2)
        0-based output ``(x, y)`` of every input pixel centre (:func:`pixmap_from_wcs`).
    out_shape : tuple of int, optional
        ``(ny, nx)`` of the output; required unless ``add_to`` is given.
    weight : ndarray, optional
        Input weights (e.g. the good-pixel mask times an exposure-time weight); ones
        when omitted.
    kernel : str
        One of :data:`KERNELS`.
    pixfrac : float
        Linear size of the drop relative to the input pixel (> 0).
    scale : float
        Output/input plate-scale ratio (``pix_ratio`` in ``do_driz``).
    exptime : float
        Exposure time; divides the data when ``in_units="counts"``.
    in_units : str
        ``"cps"`` or ``"counts"``.
    weight_scale : float
        Multiplies the weights (``wt_scl``).
    fillval : float or None
        Value for output pixels that receive no weight; ``None`` or ``"INDEF"`` leaves
        them as drizzled (drizzlepac's ``INDEF``).
    uniqid : int
        1-based input number; sets context bit ``uniqid - 1`` (1..32).
    add_to : DrizzleOutput, optional
        Earlier output to add this image to (copied, never modified).

    Returns
    -------
    DrizzleOutput
        The accumulated SCI/WHT/CTX with this image's ``n_missed``/``n_skipped_lines``.
    """
    sci_in = np.ascontiguousarray(data, dtype=np.float32)
    if sci_in.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {np.shape(data)}")
    grid = np.asarray(pixmap)
    if grid.shape != sci_in.shape + (2,):
        raise ValueError(f"pixmap shape {grid.shape} does not match data shape "
                         f"{sci_in.shape} + (2,)")
    if weight is None:
        wht_in = np.ones_like(sci_in)
    else:
        wht_in = np.ascontiguousarray(weight, dtype=np.float32)
        if wht_in.shape != sci_in.shape:
            raise ValueError(f"weight shape {wht_in.shape} differs from data shape "
                             f"{sci_in.shape}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if in_units not in ("cps", "counts"):
        raise ValueError(f"in_units must be 'cps' or 'counts', got {in_units!r}")
    for name, value in (("pixfrac", pixfrac), ("scale", scale), ("exptime", exptime)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    if not 1 <= int(uniqid) <= 32:
        raise ValueError(f"uniqid must be within 1..32 (one context plane), got {uniqid!r}")

    if add_to is None:
        if out_shape is None:
            raise ValueError("out_shape is required when add_to is not given")
        out = empty_output(out_shape)
    else:
        if out_shape is not None and image_shape(out_shape, "out_shape") != add_to.sci.shape:
            raise ValueError(f"out_shape {tuple(out_shape)} differs from add_to's "
                             f"{add_to.sci.shape}")
        out = DrizzleOutput(sci=np.array(add_to.sci, np.float32, order="C"),
                            wht=np.array(add_to.wht, np.float32, order="C"),
                            ctx=np.array(add_to.ctx, np.int32, order="C"))

    fill = "INDEF" if fillval is None or str(fillval).strip().upper() in ("", "INDEF") \
        else str(float(fillval))
    # adrizzle.do_driz: counts are divided by the exposure time, rates are not.
    expscale = float(exptime) if in_units == "counts" else 1.0
    cdriz = import_drizzlepac("cdriz")
    # Argument order of the tdriz call in drizzlepac 3.11 adrizzle.do_driz:
    # ystart=0, xmin=ymin=1, dny=all lines, xscale=yscale=1, align="center", vflag=1.
    version, n_missed, n_skipped = cdriz.tdriz(
        sci_in, wht_in, out.sci, out.wht, out.ctx, int(uniqid), 0, 1, 1, sci_in.shape[0],
        float(scale), 1.0, 1.0, "center", float(pixfrac), kernel, in_units, expscale,
        float(weight_scale), fill, 0, 0, 1, pixmap_mapping(grid))
    return DrizzleOutput(sci=out.sci, wht=out.wht, ctx=out.ctx, n_missed=int(n_missed),
                         n_skipped_lines=int(n_skipped), version=str(version))


def drizzle_parameters(header: Mapping, index: int = 1) -> DrizzleParameters:
    """Read how input ``index`` was drizzled from a drizzlepac product header.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping
        Header holding the ``D###*`` keywords (the ``_drz`` primary or SCI header, or a
        ``_drz_sci.fits`` file's primary) and ``NAXIS1``/``NAXIS2``.
    index : int
        Input number (``D001`` is 1).

    Raises
    ------
    KeyError
        Naming the first missing keyword.
    """
    prefix = f"D{int(index):03d}"

    def get(suffix: str):
        key = prefix + suffix
        if key not in header:
            raise KeyError(f"drizzle keyword {key} is missing from the header")
        return header[key]

    kernel = str(get("KERN")).strip()
    fval = get("FVAL")
    fillval = None if str(fval).strip().upper() in ("", "INDEF") else float(fval)
    for key in ("NAXIS1", "NAXIS2"):
        if key not in header:
            raise KeyError(f"keyword {key} is missing from the header")
    return DrizzleParameters(
        kernel=kernel, pixfrac=float(get("PIXF")), fillval=fillval,
        out_units=str(get("OUUN")).strip(), weight_scale=float(get("WTSC")),
        scale=float(get("SCAL")) / float(get("ISCL")), exptime=float(get("DEXP")),
        out_shape=(int(header["NAXIS2"]), int(header["NAXIS1"])),
        data=str(header.get(prefix + "DATA", "")).strip())

