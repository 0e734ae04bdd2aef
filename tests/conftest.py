"""Shared test helpers: tiny hand-made STIS-like raw files for input-validation tests.

Algorithm tests use the full simulator (hstcal_stis.simulate) with its ground truth;
these small files only exercise error paths and bookkeeping quickly.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits


def write_stis_raw(path: Path, *, shape=(64, 64), nimsets=2, gain=1, binning=(1, 1),
                   targname="BIAS", exptime=0.0, texpstrt=55600.0, seed=0, instrument="STIS",
                   detector="CCD", level=1124.0, nan=False) -> Path:
    rng = np.random.default_rng(seed)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["NEXTEND"] = 3 * nimsets
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = instrument
    h["DETECTOR"] = detector
    h["ROOTNAME"] = path.name.split("_")[0]
    h["TARGNAME"] = targname
    h["OBSTYPE"] = "IMAGING"
    h["CCDAMP"] = "D"
    h["CCDGAIN"] = gain
    h["CCDOFFST"] = 3
    h["BINAXIS1"], h["BINAXIS2"] = binning
    h["ATODGAIN"] = 0.0
    h["READNSE"] = 0.0
    h["PROPOSID"] = 12400
    h["TEXPSTRT"] = texpstrt
    h["TEXPEND"] = texpstrt + 0.01 * nimsets
    h["TEXPTIME"] = exptime * nimsets
    hdus = [primary]
    for ver in range(1, nimsets + 1):
        data = (level + rng.normal(0, 6.0, shape)).astype(np.float32)
        if nan:
            data[3, 3] = np.nan
            sci = fits.ImageHDU(data, name="SCI", ver=ver)
        else:
            sci = fits.ImageHDU(np.round(data).astype(np.uint16), name="SCI", ver=ver)
        sci.header["EXPTIME"] = exptime
        sci.header["EXPSTART"] = texpstrt + 0.01 * (ver - 1)
        sci.header["EXPEND"] = texpstrt + 0.01 * ver
        sci.header["NCOMBINE"] = 1
        hdus += [sci, fits.ImageHDU(name="ERR", ver=ver), fits.ImageHDU(name="DQ", ver=ver)]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def stis_raw(tmp_path):
    """Factory: ``stis_raw("name_raw.fits", **kwargs)`` writes a small STIS-like raw."""

    def make(name, **kwargs):
        return write_stis_raw(tmp_path / name, **kwargs)

    return make
