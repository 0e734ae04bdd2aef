"""hstcal_core.simulate.flt: dithered FLT/FLC associations of a star field, with truth.

The detectors are the registered ones (``wfc3_uvis``, ``wfc3_ir``, ``acs_wfc``,
``acs_hrc``, ``wfpc2_*`` from the hstcal-wfc3 / hstcal-acs / hstcal-wfpc2 plugins);
tests skip, saying so, when a plugin is not installed.  Frames are small (``shape=``) so
the whole file runs in a few seconds; the full-frame geometry test is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, SkyOffsetFrame
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from photutils.centroids import centroid_2dg

from hstcal_core.simulate.cosmic_rays import render
from hstcal_core.simulate.flt import (
    WcsError,
    make_star_catalog,
    psf_fwhm_arcsec,
    render_stars,
    simulate_flt_asn,
)
from hstcal_core.simulate.starfield import positions_at_epoch
from hstcal_core.testing import registered_detector


def header_positions(path, chip, catalog, epoch):
    """Pixel positions the written header WCS gives the chip's truth stars."""
    with fits.open(path) as hdul:
        wcs = WCS(hdul["SCI", chip.extver].header)
    ra, dec = positions_at_epoch(catalog, epoch)
    return wcs.all_world2pix(ra[chip.star_id], dec[chip.star_id], 0, tolerance=1e-10)


def tangent_arcsec(wcs, x, y, frame):
    """(east, north) offsets in arcsec of pixels ``x, y`` in a SkyOffsetFrame."""
    c = SkyCoord(*wcs.all_pix2world(x, y, 0), unit="deg").transform_to(frame)
    return np.vstack([c.lon.to_value(u.arcsec), c.lat.to_value(u.arcsec)])


@pytest.fixture(scope="module")
def uvis_asn(tmp_path_factory):
    out = tmp_path_factory.mktemp("uvis")
    return simulate_flt_asn(out, registered_detector("wfc3_uvis"), shape=(256, 512), n_stars=400,
                            seed=11)


# --------------------------------------------------------------------------- WCS truth
@pytest.mark.parametrize("name, shape, sip", [
    ("wfc3_uvis", (256, 512), 0.0),
    ("wfc3_ir", (256, 256), 0.0),
    ("acs_wfc", (200, 400), 3.0),
    ("acs_hrc", (256, 256), 1.5),
    ("wfpc2_wf2", (256, 256), 0.0),
])
def test_header_wcs_places_truth_stars_where_they_were_drawn(tmp_path, name, shape, sip):
    truth = simulate_flt_asn(tmp_path, registered_detector(name), shape=shape, n_exposures=2,
                             sip_amplitude_px=sip, n_stars=150, seed=2)
    n_checked = 0
    for exposure in truth.exposures:
        for chip in exposure.chips:
            x, y = header_positions(tmp_path / exposure.filename, chip, truth.catalog,
                                    exposure.epoch)
            assert np.max(np.hypot(x - chip.x, y - chip.y)) < 0.05
            n_checked += chip.star_id.size
    assert n_checked > 20


def test_stars_are_drawn_where_the_truth_says(uvis_asn):
    """Centroids of bright, isolated, CR-free stars agree with the drawn positions."""
    exposure = uvis_asn.exposures[0]
    flux = np.asarray(uvis_asn.catalog["flux"])
    offsets = []
    with fits.open(uvis_asn.files[0]) as hdul:
        for chip in exposure.chips:
            image = hdul["SCI", chip.extver].data.astype(np.float64)
            cr_image = render(chip.crs) if chip.crs is not None else np.zeros_like(image)
            counts = flux[chip.star_id] * exposure.exptime
            for k, (x, y) in enumerate(zip(chip.x, chip.y)):
                xi, yi = int(np.rint(x)), int(np.rint(y))
                others = np.hypot(chip.x - x, chip.y - y)
                if (counts[k] < 2e4 or np.sum(others < 8) > 1 or not 6 <= xi < image.shape[1] - 6
                        or not 6 <= yi < image.shape[0] - 6):
                    continue
                box = (slice(yi - 4, yi + 5), slice(xi - 4, xi + 5))
                if cr_image[box].sum() > 1e-3 * counts[k]:
                    continue
                cx, cy = centroid_2dg(image[box] - np.median(image))
                offsets.append(np.hypot(cx + xi - 4 - x, cy + yi - 4 - y))
    assert len(offsets) >= 5
    assert np.max(offsets) < 0.05


def test_injected_wcs_error_moves_only_the_header(tmp_path):
    error = WcsError(shift_arcsec=(0.30, -0.20), rotation_deg=0.05)
    detector = registered_detector("wfc3_uvis")
    truth = simulate_flt_asn(tmp_path, detector, shape=(256, 512), n_exposures=2,
                             wcs_error=error, n_stars=150, seed=4)
    exposure = truth.exposures[1]
    with fits.open(tmp_path / exposure.filename) as hdul:
        for chip in exposure.chips:
            header = hdul["SCI", chip.extver].header
            true_wcs = chip.true_wcs()
            centre = SkyCoord(*true_wcs.wcs.crval, unit="deg")
            frame = SkyOffsetFrame(origin=centre)

            true_pos = tangent_arcsec(true_wcs, chip.x, chip.y, frame)
            header_pos = tangent_arcsec(WCS(header), chip.x, chip.y, frame)
            t = np.radians(error.rotation_deg)
            rotation = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
            expected = rotation @ true_pos + np.array(error.shift_arcsec)[:, None]
            assert np.max(np.abs(header_pos - expected)) < 1e-3  # arcsec
            assert header["ORIENTAT"] == pytest.approx(45.0 + 0.05)
            # the stars themselves were drawn with the true WCS
            ra, dec = positions_at_epoch(truth.catalog, exposure.epoch)
            x, _ = true_wcs.all_world2pix(ra[chip.star_id], dec[chip.star_id], 0)
            np.testing.assert_allclose(x, chip.x, atol=1e-6)
            hx, hy = header_positions(tmp_path / exposure.filename, chip, truth.catalog,
                                      exposure.epoch)
            shift_px = np.hypot(hx - chip.x, hy - chip.y)
            assert np.all(shift_px > 0.2 / detector.pixel_scale_arcsec)


def test_dithers_move_the_pointing_by_postarg(uvis_asn):
    scale = registered_detector("wfc3_uvis").pixel_scale_arcsec
    first, last = uvis_asn.exposures[0], uvis_asn.exposures[2]
    for c0, c2 in zip(first.chips, last.chips):
        common, i0, i2 = np.intersect1d(c0.star_id, c2.star_id, return_indices=True)
        assert common.size > 10
        dx, dy = np.subtract(last.dither_arcsec, first.dither_arcsec) / scale
        np.testing.assert_allclose(c2.x[i2] - c0.x[i0], -dx, atol=1e-3)
        np.testing.assert_allclose(c2.y[i2] - c0.y[i0], -dy, atol=1e-3)
    with fits.open(uvis_asn.files[2]) as hdul:
        assert (hdul[0].header["POSTARG1"], hdul[0].header["POSTARG2"]) == \
            pytest.approx(last.dither_arcsec)


def test_proper_motion_is_applied_at_the_exposure_epoch(tmp_path):
    truth = simulate_flt_asn(tmp_path, registered_detector("wfc3_ir"), shape=(128, 128),
                             n_exposures=1, n_stars=80, proper_motion_mas_yr=200.0,
                             catalog_epoch=2000.0, seed=5)
    table = Table.read(truth.catalog_path, format="ascii.ecsv")
    assert {"ra", "dec", "flux", "pm_ra", "pm_dec", "epoch"} <= set(table.colnames)
    assert table["pm_ra"].unit == u.mas / u.yr
    exposure, chip = truth.exposures[0], truth.exposures[0].chips[0]
    x, y = header_positions(tmp_path / exposure.filename, chip, table, exposure.epoch)
    assert np.max(np.hypot(x - chip.x, y - chip.y)) < 0.05
    # ignoring the ~17 years of motion would put them up to several pixels off
    with fits.open(tmp_path / exposure.filename) as hdul:
        wcs = WCS(hdul["SCI", 1].header)
    x0, y0 = wcs.all_world2pix(table["ra"][chip.star_id], table["dec"][chip.star_id], 0)
    assert np.max(np.hypot(x0 - chip.x, y0 - chip.y)) > 1.0


# --------------------------------------------------------------------------- files
def test_association_table_is_hst_shaped(uvis_asn):
    with fits.open(uvis_asn.asn_path) as hdul:
        table = hdul["ASN"].data
        columns = hdul["ASN"].columns
        primary = hdul[0].header
    assert columns.names == ["MEMNAME", "MEMTYPE", "MEMPRSNT"]
    assert [c.format for c in columns] == ["14A", "14A", "L"]
    assert list(table["MEMTYPE"]) == ["EXP-DTH"] * 3 + ["PROD-DTH"]
    assert table["MEMNAME"][-1] == uvis_asn.asn_id.upper()
    assert all(table["MEMPRSNT"])
    for name, exposure in zip(table["MEMNAME"][:3], uvis_asn.exposures):
        assert name == exposure.rootname.upper()
        assert (uvis_asn.asn_path.parent / f"{name.lower()}_flt.fits").exists()
    assert (primary["ASN_ID"], primary["INSTRUME"], primary["DETECTOR"]) == \
        (uvis_asn.asn_id, "WFC3", "UVIS")


def test_headers_carry_what_drizzlepac_and_stwcs_read(uvis_asn):
    with fits.open(uvis_asn.files[0]) as hdul:
        primary = hdul[0].header
        names = [(h.name, h.ver) for h in hdul[1:]]
        sci = hdul["SCI", 1].header
    for key in ("INSTRUME", "DETECTOR", "EXPNAME", "ROOTNAME", "EXPTIME", "EXPSTART",
                "DATE-OBS", "FILTER", "MEANDARK", "PA_V3", "CCDGAIN"):
        assert key in primary, key
    for letter in "ABCD":
        assert primary[f"ATODGN{letter}"] == pytest.approx(1.56)
        assert 3.0 < primary[f"READNSE{letter}"] < 3.3
    assert primary["DRIZCORR"] == "PERFORM"
    assert all(primary[k] == "N/A" for k in ("IDCTAB", "NPOLFILE", "D2IMFILE"))
    assert names == [("SCI", 1), ("ERR", 1), ("DQ", 1), ("SCI", 2), ("ERR", 2), ("DQ", 2)]
    assert primary["NEXTEND"] == 6
    assert sci["CCDCHIP"] == 2 and sci["BUNIT"] == "ELECTRONS"
    assert sci["MEANDARK"] > 0 and sci["CTYPE1"] == "RA---TAN"


def test_ir_exposure_is_one_chip_in_electrons_per_second(tmp_path):
    truth = simulate_flt_asn(tmp_path, registered_detector("wfc3_ir"), n_exposures=1, n_stars=50,
                             seed=6)
    with fits.open(truth.files[0]) as hdul:
        assert [(h.name, h.ver) for h in hdul[1:]] == [
            ("SCI", 1), ("ERR", 1), ("DQ", 1), ("SAMP", 1), ("TIME", 1)]
        assert hdul["SCI", 1].data.shape == (1014, 1014)
        assert hdul["SCI", 1].header["BUNIT"] == "ELECTRONS/S"
        assert hdul[0].header["FILTER"] == "F160W"
        sky = np.median(hdul["SCI", 1].data)
    assert sky == pytest.approx(0.6, rel=0.05)  # the default IR sky, e-/s
    assert truth.exposures[0].chips[0].crs is None


def test_wfpc2_chip_and_mode_are_where_stwcs_reads_them(tmp_path):
    from hstcal_core.drizzle._thirdparty import library_warnings, require

    truth = simulate_flt_asn(tmp_path, registered_detector("wfpc2_wf3"), shape=(64, 64),
                             n_exposures=1, n_stars=20, seed=8)
    with fits.open(truth.files[0]) as hdul:
        assert hdul["SCI", 1].header["DETECTOR"] == 3
        assert hdul[0].header["MODE"] == "FULL"
        with library_warnings(collect=False):
            wcs = require("stwcs.wcsutil").HSTWCS(hdul, ext=("SCI", 1))
    assert wcs.chip == 3
    assert wcs.pscale == pytest.approx(registered_detector("wfpc2_wf3").pixel_scale_arcsec, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", [("acs_wfc", (2048, 4096)), ("wfc3_uvis", (2051, 4096)),
                                         ("acs_hrc", (1024, 1024))])
def test_full_frame_geometry(tmp_path, name, shape):
    truth = simulate_flt_asn(tmp_path, registered_detector(name), n_exposures=1, n_stars=100, seed=7)
    with fits.open(truth.files[0]) as hdul:
        assert all(hdul["SCI", c.extver].data.shape == shape for c in truth.exposures[0].chips)
        assert not hdul[0].header["SUBARRAY"]


def test_same_seed_same_files(tmp_path):
    detector = registered_detector("acs_hrc")
    a = simulate_flt_asn(tmp_path / "a", detector, shape=(64, 64), n_exposures=1, seed=9)
    b = simulate_flt_asn(tmp_path / "b", detector, shape=(64, 64), n_exposures=1, seed=9)
    with fits.open(a.files[0]) as fa, fits.open(b.files[0]) as fb:
        np.testing.assert_array_equal(fa["SCI", 1].data, fb["SCI", 1].data)


@pytest.mark.parametrize("kwargs, message", [
    ({"dithers_arcsec": [(0, 0)]}, "dithers_arcsec has 1"),
    ({"wcs_error": [WcsError()]}, "wcs_error has 1"),
    ({"asn_id": "short"}, "asn_id"),
    ({"shape": (4, 4)}, "at least 8x8"),
    ({"filter_name": "CLEAR"}, "not an HST filter name"),
    ({"suffix": "drz"}, "suffix"),
    ({"gain": 7.0}, "gain 7.0"),
])
def test_bad_arguments_name_the_problem(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_flt_asn(tmp_path, registered_detector("wfc3_uvis"), **{"shape": (32, 32), **kwargs})


# --------------------------------------------------------------------------- scene kernels
def test_render_stars_conserves_counts_and_centroid():
    image = render_stars((41, 41), np.array([20.3]), np.array([19.6]), np.array([1000.0]), 1.2)
    assert image.sum() == pytest.approx(1000.0, rel=1e-6)
    yy, xx = np.indices(image.shape)
    assert (image * xx).sum() / image.sum() == pytest.approx(20.3, abs=1e-6)
    assert (image * yy).sum() / image.sum() == pytest.approx(19.6, abs=1e-6)


def test_star_fluxes_follow_the_power_law():
    table = make_star_catalog((10.0, -30.0), (20.0, 20.0), 20000, 0, flux_range=(1.0, 1000.0),
                              power_law_index=1.75)
    flux = np.asarray(table["flux"])
    assert flux.min() >= 1.0 and flux.max() <= 1000.0
    a = 1 - 1.75
    median = (0.5 * (1 + 1000.0**a)) ** (1 / a)  # inverse CDF at 0.5
    assert np.median(flux) == pytest.approx(median, rel=0.05)
    assert np.all(np.abs(np.asarray(table["dec"]) + 30.0) < 25.0 / 3600.0)


def test_psf_width_follows_the_filter():
    assert psf_fwhm_arcsec("F606W", 0.0395) == pytest.approx(0.063, abs=0.003)
    assert psf_fwhm_arcsec("F160W", 0.13, wavelength_unit_nm=10) == pytest.approx(0.17,
                                                                                  abs=0.01)
