"""refstis' known bugs, each done right here and tested against the difference.

(The date/period bugs live in tests/test_anneal_periods.py; the zero-padded median
filter in test_stis_binned_and_headers.py.)
"""

import hashlib

import numpy as np
import pytest
from astropy.io import fits

from hstcal_core import run_stage
from hstcal_core.fitsio import read_exposure
from hstcal_core.options import Options
from hstcal_core.registry import get_registry
from hstcal_core.reffiles.superbias import column_profile, make_weekbias
from hstcal_stis.simulate import simulate_stis_ccd


@pytest.fixture(scope="module")
def biases(tmp_path_factory):
    root = tmp_path_factory.mktemp("anchor")
    return simulate_stis_ccd(root / "raw", kind="bias", count=3, seed=21)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_inputs_are_never_modified(biases, tmp_path):
    """refstis opened inputs with mode='update' and setval'ed NRPTEXP/CRSPLIT/APERTURE."""
    before = {f: _md5(f) for f in biases.files}
    base = run_stage("basebias", detector="stis_ccd", inputs=biases.files,
                     out=tmp_path / "base.fits").products[0]
    base_md5 = _md5(base)
    run_stage("weekbias", detector="stis_ccd", inputs=biases.files, basebias=base,
              out=tmp_path / "week.fits")
    assert {f: _md5(f) for f in biases.files} == before
    assert _md5(base) == base_md5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.fits", "week.fits"]


def test_ncombine_comes_from_the_extension_not_the_primary(biases, tmp_path):
    """refstis crreject read NCOMBINE from the primary header first (try/except), which
    for a joined file is stale; calstis BIASCORR scales the bias by the SCI NCOMBINE."""
    src = fits.open(biases.files[0])
    src[0].header["NCOMBINE"] = 7  # stale primary value
    for ext in src[1:]:
        if ext.header.get("EXTNAME") == "SCI":
            ext.header["NCOMBINE"] = 1
    doctored = tmp_path / "stale_raw.fits"
    src.writeto(doctored)
    src.close()
    base = run_stage("refbias", detector="stis_ccd", inputs=biases.files[1:],
                     out=tmp_path / "bias.fits").products[0]
    reg = get_registry()
    det = reg.detector("stis_ccd")
    plain = reg.hooks.calibrate(detector=det, exposure=read_exposure(doctored),
                                options=Options({"bias": None}))
    cal = reg.hooks.calibrate(detector=det, exposure=read_exposure(doctored),
                              options=Options({"bias": str(base)}))
    bias_sci = fits.getdata(base, "SCI")
    np.testing.assert_allclose(plain.imsets[0].sci - cal.imsets[0].sci, bias_sci, atol=1e-3)
    with fits.open(base) as h:
        assert h[0].header["NCOMBINE"] == 4 and h["SCI"].header["NCOMBINE"] == 4


def test_dq_is_ored_not_overwritten(biases, tmp_path):
    """refbias/basedark wrote np.where(hot, 16, dq) over the DQ; bits already set
    (saturation 256, reference-file defects) must survive next to the hot flag."""
    y, x = 20 + 300, 19 + 400  # raw coordinates of trimmed (300, 400)
    saturated = []
    for f in biases.files:  # a saturated pixel in every imset: kept by CR rejection, hot
        with fits.open(f) as src:
            for ext in src[1:]:
                if ext.header.get("EXTNAME") == "SCI":
                    data = ext.data.astype(np.int64)
                    data[y, x] = 65000
                    ext.data = data.astype(np.uint16)
            saturated.append(tmp_path / f.name)
            src.writeto(saturated[-1])
    out = run_stage("refbias", detector="stis_ccd", inputs=saturated,
                    out=tmp_path / "bias.fits").products[0]
    dq = fits.getdata(out, "DQ")
    assert dq[300, 400] & 256 and dq[300, 400] & 16
    # and the library routine itself ORs
    week = make_weekbias(np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32),
                         np.full((8, 8), 4, np.uint16), np.zeros((8, 8), np.float32),
                         np.ones((8, 8), np.float32), kernel=(3, 3), yfrac=1.0, nsigma=5.0)
    assert (week.dq & 4).all()


def test_extension_headers_keep_ncombine_exptime_ltv(biases, tmp_path):
    """refstis rebuilt the extensions from bare ImageHDUs, losing NCOMBINE/EXPTIME/LTV."""
    out = run_stage("refbias", detector="stis_ccd", inputs=biases.files,
                    out=tmp_path / "bias.fits").products[0]
    with fits.open(out) as h:
        for ext in ("SCI", "ERR", "DQ"):
            hdr = h[ext].header
            assert hdr["NCOMBINE"] == 6, ext
            assert "EXPTIME" in hdr and "LTV1" in hdr and "LTV2" in hdr, ext
            assert hdr["LTV1"] == 0.0 and hdr["LTV2"] == 0.0  # trimmed full frame


def test_column_profile_is_not_square_only():
    """refstis make_resicols_image built an nx x nx image: wrong for 1024x512 binned data."""
    residual = np.zeros((1024, 511), np.float32)
    residual[:, 100] = 5.0
    profile = column_profile(residual, yfrac=0.25)
    assert profile.shape == (511,) and profile[100] == 5.0
