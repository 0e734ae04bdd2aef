"""read_exposure converts FITS (big-endian) pixels exactly as ``np.array(data, dtype)``."""

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core.fitsio import read_exposure


def _write(path, rng):
    sci = rng.normal(0.0, 100.0, (6, 7)).astype(np.float32)
    err = rng.random((6, 7))                                    # float64: cast to float32
    dq = np.array(rng.integers(-32768, 32767, (6, 7)), np.int16)  # bit 15 set: wraps to uint16
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI", ver=1),
                  fits.ImageHDU(err, name="ERR", ver=1),
                  fits.ImageHDU(dq, name="DQ", ver=1, do_not_scale_image_data=True)]
                 ).writeto(path)
    return sci, err, dq


@pytest.mark.parametrize("compressed", [False, True])
def test_read_exposure_values_and_types(tmp_path, compressed):
    path = tmp_path / "x_flt.fits"
    sci, err, dq = _write(path, np.random.default_rng(1))
    if compressed:  # astropy hands out a read-only buffer: converted by copy
        with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / "x_flt.fits.gz"
    imset = read_exposure(path).imsets[0]
    for got, want, dtype in ((imset.sci, sci, np.float32), (imset.err, err, np.float32),
                             (imset.dq, dq, np.uint16)):
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        np.testing.assert_array_equal(got, np.array(want, dtype=dtype))
