"""hstcal_core.drizzle.kernels: drizzlepac's C drizzle behind a pixel-map front end.

The real-data test reproduces the drizzlepac products in
``../shared/data/hst/wfc3/drizzle_kernel_test`` (from spacetelescope/drizzle's tests:
an 11×11 WFC3/IR cutout of ib3y01c6q_flt, F125W, its pixel map and five AstroDrizzle
``_drz_sci`` outputs).  Every parameter is read from the reference's own ``D001*``
keywords.  The input weight is what AstroDrizzle's default ``final_wht_type="EXP"``
builds (drizzlepac ``imageObject.buildEXPmask``): the good-pixel mask times EXPTIME,
with ``wt_scl`` 1 (``imageObject.set_wtscl`` resolves "exptime" to 1, as ``D001WTSC``
records); the mask treats DQ bits 784 (16+256+512) as good, the ``final_bits`` of
drizzle's ``tests/test_drizzlepac.py`` for these files.  With that weight turbo, point
and lanczos3 come out bit-identical, square within 3.5e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import bitfield_to_boolean_mask
from astropy.wcs import WCS

from hstcal_core.drizzle import (
    KERNELS,
    drizzle_image,
    drizzle_parameters,
    empty_output,
    pixmap_from_wcs,
    pixmap_mapping,
)

REFERENCE_FILES = ("square", "point", "turbo", "gaussian", "lanczos3")
FINAL_BITS = 784  # drizzle tests/test_drizzlepac.py: DQ bits that count as good


@pytest.fixture(scope="module")
def kernel_data(shared_data):
    base = shared_data / "hst" / "wfc3" / "drizzle_kernel_test"
    if not base.is_dir():
        pytest.skip(f"{base} is absent")
    with fits.open(base / "test_drizzlepac_flt.fits") as flt:
        sci = flt["SCI", 1].data.astype(np.float32)
        dq = flt["DQ", 1].data
        bunit = flt["SCI", 1].header["BUNIT"]
        sci_header = flt["SCI", 1].header.copy()
        exptime = float(flt[0].header["EXPTIME"])
    good = bitfield_to_boolean_mask(dq, FINAL_BITS, good_mask_value=1)
    weight = (good * exptime).astype(np.float32)  # drizzlepac imageObject.buildEXPmask
    pixmap = fits.getdata(base / "test_drizzlepac_pixmap.fits")
    return {"base": base, "sci": sci, "weight": weight, "pixmap": pixmap, "bunit": bunit,
            "sci_header": sci_header}


def _reference(kernel_data, name):
    with fits.open(kernel_data["base"] / f"reference_drizzlepac_{name}_drz_sci.fits") as ref:
        return ref[0].data.astype(np.float64), ref[0].header.copy()


def _redrizzle(kernel_data, header, kernel=None):
    pars = drizzle_parameters(header)
    # The cutout is in ELECTRONS/S, so the drizzle input units are "cps".
    in_units = "cps" if kernel_data["bunit"].upper().endswith("/S") else "counts"
    return drizzle_image(kernel_data["sci"], kernel_data["pixmap"], pars.out_shape,
                         weight=kernel_data["weight"], kernel=kernel or pars.kernel,
                         pixfrac=pars.pixfrac, scale=pars.scale, exptime=pars.exptime,
                         in_units=in_units, weight_scale=pars.weight_scale,
                         fillval=pars.fillval)


def max_relative_difference(result: np.ndarray, reference: np.ndarray) -> float:
    """max |result - reference| / |reference| over pixels where the reference is non-zero;
    infinite when a pixel that is exactly zero in the reference is not zero in ours."""
    nonzero = reference != 0
    if np.any(result[~nonzero] != 0):
        return float("inf")
    return float(np.max(np.abs(result[nonzero] - reference[nonzero]) / np.abs(reference[nonzero])))


@pytest.mark.realdata
@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reproduces_drizzlepac_reference(kernel_data, name):
    reference, header = _reference(kernel_data, name)
    result = _redrizzle(kernel_data, header)
    assert result.sci.shape == reference.shape
    assert result.version.startswith("Callable C-based DRIZZLE")
    assert max_relative_difference(result.sci.astype(np.float64), reference) <= 1e-5


@pytest.mark.realdata
def test_gaussian_reference_was_drizzled_with_square_kernel(kernel_data):
    """The file named 'gaussian' records D001KERN = 'square' and is bit-identical to the
    square product; only its header says what made it.  Drizzling with the real
    gaussian kernel gives a visibly different (sharper) image."""
    gaussian, header = _reference(kernel_data, "gaussian")
    square, _ = _reference(kernel_data, "square")
    assert drizzle_parameters(header).kernel == "square"
    np.testing.assert_array_equal(gaussian, square)
    real_gaussian = _redrizzle(kernel_data, header, kernel="gaussian")
    assert max_relative_difference(real_gaussian.sci.astype(np.float64), gaussian) > 0.05


@pytest.mark.realdata
def test_pixmap_file_is_the_wcs_map(kernel_data):
    """The pixel map is drizzlepac's WCSMap: input all_pix2world (SIP), output wcs_world2pix."""
    _, header = _reference(kernel_data, "square")
    # fix=False: astropy's 'datfix' would only add MJD-OBS (with a warning); no effect here.
    input_wcs = WCS(kernel_data["sci_header"], fix=False)
    output_wcs = WCS(header, fix=False)
    pixmap = pixmap_from_wcs(input_wcs, output_wcs, kernel_data["sci"].shape)
    np.testing.assert_allclose(pixmap, kernel_data["pixmap"], rtol=0, atol=1e-6)


@pytest.mark.realdata
def test_drizzle_parameters_of_reference(kernel_data):
    _, header = _reference(kernel_data, "point")
    pars = drizzle_parameters(header)
    assert (pars.kernel, pars.pixfrac, pars.fillval, pars.out_units) == ("point", 1.0, 0.0, "cps")
    assert pars.scale == pytest.approx(1.0)
    assert pars.out_shape == (10, 11)
    assert pars.exptime == pytest.approx(1202.934082)


# --------------------------------------------------------------------------- synthetic
def _affine_pixmap(shape, shift=(0.0, 0.0), matrix=((1.0, 0.0), (0.0, 1.0))):
    yy, xx = np.indices(shape, dtype=np.float64)
    m = np.asarray(matrix)
    xo = m[0, 0] * xx + m[0, 1] * yy + shift[0]
    yo = m[1, 0] * xx + m[1, 1] * yy + shift[1]
    return np.dstack([xo, yo])


def test_pixmap_mapping_is_exact_for_affine_maps_including_edges():
    pixmap = _affine_pixmap((5, 7), shift=(2.5, -1.25), matrix=((0.9, 0.1), (-0.2, 1.1)))
    mapping = pixmap_mapping(pixmap)
    x = np.array([0.5, 1.0, 3.3, 7.5, 9.0])  # 1-based, beyond both edges too
    y = np.array([0.5, 5.5, 2.2, 1.0, -1.0])
    xo, yo = mapping(x, y)
    np.testing.assert_allclose(xo, 0.9 * (x - 1) + 0.1 * (y - 1) + 2.5 + 1, atol=1e-12)
    np.testing.assert_allclose(yo, -0.2 * (x - 1) + 1.1 * (y - 1) - 1.25 + 1, atol=1e-12)


@pytest.mark.parametrize("kernel", ["point", "square", "turbo"])
def test_identity_map_returns_the_image(kernel):
    # (lanczos3 is left out: cdriz samples it from a look-up table, so even the identity
    # map mixes neighbours at the 1 % level.)
    rng = np.random.default_rng(1)
    image = rng.uniform(1.0, 2.0, (12, 9)).astype(np.float32)
    result = drizzle_image(image, _affine_pixmap(image.shape), image.shape, kernel=kernel)
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(result.sci[inner], image[inner], rtol=1e-5)
    assert np.all(result.ctx[inner] == 1)


def test_square_kernel_conserves_flux_of_a_shifted_image():
    image = np.zeros((20, 20), np.float32)
    image[8:12, 8:12] = 5.0
    pixmap = _affine_pixmap(image.shape, shift=(0.37, -0.61))
    result = drizzle_image(image, pixmap, image.shape, kernel="square", in_units="counts",
                           exptime=1.0)
    assert result.sci.sum() == pytest.approx(image.sum(), rel=1e-5)


def test_add_to_accumulates_without_modifying_the_earlier_output():
    image = np.ones((6, 6), np.float32)
    pixmap = _affine_pixmap(image.shape)
    first = drizzle_image(image, pixmap, image.shape, weight=np.full_like(image, 2.0))
    before = first.wht.copy()
    second = drizzle_image(3 * image, pixmap, weight=np.ones_like(image), uniqid=2,
                           add_to=first)
    np.testing.assert_array_equal(first.wht, before)
    np.testing.assert_allclose(second.wht, 3.0)
    np.testing.assert_allclose(second.sci, (2 * 1 + 1 * 3) / 3, rtol=1e-6)
    assert np.all(second.ctx == 0b11)


def test_fillval_marks_pixels_without_input():
    image = np.ones((4, 4), np.float32)
    pixmap = _affine_pixmap(image.shape, shift=(10.0, 0.0))  # lands off the output
    result = drizzle_image(image, pixmap, (4, 4), kernel="point", fillval=-7)
    np.testing.assert_array_equal(result.sci, -7.0)
    assert result.n_missed == image.size


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel": "lanczos5"}, "kernel must be one of"),
    ({"pixfrac": 0.0}, "pixfrac"),
    ({"in_units": "electrons"}, "in_units"),
    ({"uniqid": 33}, "uniqid"),
    ({"weight": np.ones((2, 2))}, "weight shape"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    image = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        drizzle_image(image, _affine_pixmap(image.shape), (4, 4), **kwargs)


def test_pixmap_shape_must_match_data():
    with pytest.raises(ValueError, match="pixmap shape"):
        drizzle_image(np.ones((4, 4)), _affine_pixmap((4, 5)), (4, 4))
    with pytest.raises(ValueError, match="out_shape is required"):
        drizzle_image(np.ones((4, 4)), _affine_pixmap((4, 4)))


def test_drizzle_parameters_names_missing_keyword():
    with pytest.raises(KeyError, match="D001KERN"):
        drizzle_parameters(fits.Header({"NAXIS1": 3, "NAXIS2": 3}))


def test_kernel_list_matches_cdriz():
    assert set(KERNELS) >= {"square", "point", "turbo", "gaussian", "lanczos3"}
    assert empty_output((2, 3)).ctx.dtype == np.int32
