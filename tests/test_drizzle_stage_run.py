"""The drizzle stage end to end, offline: simulated associations with a known WCS error,
a local reference catalog made from the truth, and the real WFC3/UVIS FLCs.

* the a posteriori fit recovers the injected error (tangent-plane shift, rotation, with
  proper motions to carry to the observation epoch) within 5 mas;
* a clean set passes verification; a solution misregistering one exposure by 2 pixels
  fails it and the earlier WCS is kept; a fit that cannot be applied is discarded whole;
* products ``_drz``/``_drc`` with SCI/WHT/CTX, headers with WCSNAME/WCSTYPE and the
  verification figures, headerlets, a trailer; the inputs are never modified.

Sockets are refused throughout: a step that tried the network would fail here.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from hstcal_core import get_registry, run_stage
from hstcal_core.drizzle import align
from hstcal_core.drizzle.wcs import pipeline_default_wcs, write_headerlet
from hstcal_core.simulate.flt import WcsError, simulate_flt_asn
from hstcal_core.simulate.starfield import positions_at_epoch
from hstcal_core.testing import file_digests

ERROR = WcsError(shift_arcsec=(0.25, -0.15), rotation_deg=0.02)


pytestmark = pytest.mark.usefixtures("offline")  # conftest: no network


@pytest.fixture(scope="module")
def association(tmp_path_factory):
    """Three dithered UVIS exposures (two 200x400 chips) with a common WCS error and
    stars with proper motions catalogued at 2016.0 (observed at 2017.7)."""
    base = tmp_path_factory.mktemp("drizzle_run")
    truth = simulate_flt_asn(base / "in", get_registry().detector("wfc3_uvis"),
                             shape=(200, 400), n_exposures=3, n_stars=900, wcs_error=ERROR,
                             proper_motion_mas_yr=20.0, catalog_epoch=2016.0, seed=31)
    return truth


@pytest.fixture(scope="module")
def aligned(association, tmp_path_factory, network_guard):
    mp = pytest.MonkeyPatch()
    network_guard(mp)
    try:
        before = file_digests(association.asn_path.parent)
        out = tmp_path_factory.mktemp("aligned_out")
        result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                           out=out, catalog=str(association.catalog_path))
        assert file_digests(association.asn_path.parent) == before  # inputs never touched
        return result, out
    finally:
        mp.undo()


# --------------------------------------------------------------------------- alignment
def test_aposteriori_fit_recovers_the_injected_error_within_5_mas(association, aligned):
    result, out = aligned
    assert result.details["solution"] == "aposteriori"
    errors = []
    for exposure in association.exposures:
        for chip in exposure.chips:
            before = chip.wcs_error_mas(association.asn_path.parent / exposure.filename)
            after = chip.wcs_error_mas(out / exposure.filename)
            assert before > 250.0  # the injected error, seen from the header
            errors.append(after)
    print(f"recovered WCS error: max {max(errors):.2f} mas over {len(errors)} chips")
    assert max(errors) < 5.0


def test_proper_motions_are_carried_to_the_epoch_of_observation(association):
    epoch = align.observation_epoch(association.files)
    reference = align.read_reference_catalog(association.catalog_path, epoch)
    ra, dec = positions_at_epoch(association.catalog, epoch)
    np.testing.assert_allclose(reference.ra, ra, rtol=0, atol=1e-10)
    np.testing.assert_allclose(reference.dec, dec, rtol=0, atol=1e-10)
    assert reference.proper_motion_applied


def test_clean_set_passes_and_headers_record_the_verdict(association, aligned):
    result, out = aligned
    default, post = result.details["candidates"]
    assert default["name"] == "pipeline-default" and default["verified"]
    assert post["verified"] and post["quality"] == 0 and post["max_overlap_diff"] <= 1.0
    with fits.open(out / f"{association.asn_id}_drz.fits") as hdul:
        assert [h.name for h in hdul][:4] == ["PRIMARY", "SCI", "WHT", "CTX"]
        primary = hdul[0].header
        assert primary["ALIGNSOL"] == "aposteriori" and primary["ALIGNVER"] is True
        assert primary["OVERLAPD"] == pytest.approx(post["max_overlap_diff"], abs=1e-5)
        assert 0 <= primary["REGSHIFT"] < 0.5
        assert primary["EXPWCSNM"] == "OPUS-FIT_REL_LOCAL"
        assert "drizzle" in str(primary["HISTORY"])
        wht = hdul["WHT"].data
        assert (wht > 0).mean() > 0.8
    for exposure in association.exposures:
        with fits.open(out / exposure.filename) as hdul:
            sci = hdul["SCI", 1].header
            assert sci["WCSNAME"] == "OPUS-FIT_REL_LOCAL"
            assert "a posteriori" in sci["WCSTYPE"]
            assert sci["NMATCHES"] >= 4 and sci["RMS_RA"] < 5.0  # mas, pm applied
            assert hdul[0].header["ALIGNSOL"] == "aposteriori"


def test_products_headerlets_and_trailer_and_nothing_else(association, aligned):
    _, out = aligned
    names = sorted(p.name for p in out.iterdir())
    expected = sorted([f"{association.asn_id}_drz.fits", f"{association.asn_id}.tra"]
                      + [e.filename for e in association.exposures]
                      + [e.filename.replace(".fits", "_hlet.fits")
                         for e in association.exposures])
    assert names == expected  # no scratch directory left behind
    with fits.open(out / association.exposures[0].filename.replace(".fits", "_hlet.fits")) as h:
        assert h[0].header["WCSNAME"] == "OPUS-FIT_REL_LOCAL"
    text = (out / f"{association.asn_id}.tra").read_text()
    for line in ("a posteriori alignment on (default)", "verification of aposteriori",
                 "solution chosen: aposteriori", "AstroDrizzle (final)",
                 "Processing Step 'Final Drizzle'"):
        assert line in text


# --------------------------------------------------------------------------- rejection
def test_two_pixel_misregistration_fails_and_the_earlier_wcs_is_kept(association, tmp_path,
                                                                      monkeypatch):
    real_fit = align.fit_aposteriori

    def misregistered(files, reference, pars, **kwargs):
        fit = real_fit(files, reference, pars, **kwargs)
        second = association.exposures[1].rootname
        for chip in fit.chips:
            if chip.rootname == second:  # claims validity, but 2 px off the others
                chip.wcs.wcs.crpix = chip.wcs.wcs.crpix + np.array([2.0, 0.0])
                chip.wcs.wcs.set()
        return fit

    monkeypatch.setattr(align, "fit_aposteriori", misregistered)
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                       out=tmp_path, catalog=str(association.catalog_path))
    default, post = result.details["candidates"]
    assert default["verified"] and post["verified"] is False
    assert result.details["solution"] == "pipeline-default"
    for exposure in association.exposures:
        with fits.open(tmp_path / exposure.filename) as hdul:
            assert hdul["SCI", 1].header["WCSNAME"] == "OPUS"  # the earlier WCS
            assert hdul[0].header["ALIGNSOL"] == "pipeline-default"
    text = (tmp_path / f"{association.asn_id}.tra").read_text()
    assert "NOT verified" in text and "registration" in text
    assert "candidate aposteriori not used" in text


@pytest.mark.slow
def test_fit_that_cannot_be_applied_is_discarded_whole(association, tmp_path, monkeypatch):
    real_apply = align.apply_fit

    def half_then_fail(fit, targets):
        first = dict(list(targets.items())[:1])
        real_apply(fit, first)  # one exposure updated ...
        raise OSError("disk full while updating the second exposure")

    monkeypatch.setattr(align, "apply_fit", half_then_fail)
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                       out=tmp_path, catalog=str(association.catalog_path))
    assert result.details["solution"] == "pipeline-default"
    for exposure in association.exposures:  # none half-updated
        with fits.open(tmp_path / exposure.filename) as hdul:
            assert hdul["SCI", 1].header["WCSNAME"] == "OPUS"
    text = (tmp_path / f"{association.asn_id}.tra").read_text()
    assert "candidate discarded" in text and "Successfully aligned" not in text


@pytest.mark.slow
def test_apriori_failure_falls_back_to_the_default_wcs(association, tmp_path):
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                       out=tmp_path, apriori=True, aposteriori=False)
    names = [c["name"] for c in result.details["candidates"]]
    assert names == ["pipeline-default", "apriori"]
    assert result.details["solution"] == "pipeline-default"
    assert "falling back" in result.details["candidates"][1]["note"]
    assert (tmp_path / f"{association.asn_id}_drz.fits").exists()


def test_no_alignment_means_one_astrodrizzle_call(association, tmp_path):
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=association.files,
                       out=tmp_path, kernel="point", pixfrac=0.8, final_scale=0.05,
                       final_rot=0.0)
    assert [c["name"] for c in result.details["candidates"]] == ["pipeline-default"]
    with fits.open(tmp_path / f"{association.asn_id}_drz.fits") as hdul:
        assert hdul[0].header["D001KERN"] == "point"
        assert hdul[0].header["D001PIXF"] == pytest.approx(0.8)
        assert hdul[0].header["ALIGNVER"] == "N/A"
        cd = WCS(hdul["SCI"].header).pixel_scale_matrix
        assert np.hypot(cd[0, 0], cd[1, 0]) * 3600 == pytest.approx(0.05, rel=1e-6)
    text = (tmp_path / f"{association.exposures[0].rootname}.tra").read_text()
    assert text.count("AstroDrizzle (") == 1


# --------------------------------------------------------------------------- real data
@pytest.fixture
def uvis_flcs(shared_data, tmp_path):
    """The two WFC3/UVIS FLCs of association IB4606060, under their HST names."""
    source = shared_data / "hst" / "wfc3" / "flt_cutouts"
    names = {"sample_ipppssoot_flc.fits": "ib4606c5q_flc.fits",
             "sample_svm_flc.fits": "ib4606c6q_flc.fits"}
    (tmp_path / "in").mkdir()
    files = []
    for src, dst in names.items():
        target = tmp_path / "in" / dst
        shutil.copyfile(source / src, target)
        target.chmod(0o644)
        files.append(target)
    return files


@pytest.mark.realdata
def test_real_flcs_of_ib4606060_drizzle_without_error(uvis_flcs, tmp_path):
    with fits.open(uvis_flcs[0]) as hdul:
        wcsname = hdul["SCI", 1].header["WCSNAME"]
        crval = hdul["SCI", 1].header["CRVAL1"], hdul["SCI", 1].header["CRVAL2"]
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=uvis_flcs, out=tmp_path / "out")
    product = tmp_path / "out" / "ib4606060_drc.fits"
    assert product in result.products
    with fits.open(product) as hdul:
        assert {"SCI", "WHT", "CTX"} <= {h.name for h in hdul}
        assert np.isfinite(hdul["SCI"].data[hdul["WHT"].data > 0]).all()
        assert hdul[0].header["NDRIZIM"] == 4
    with fits.open(tmp_path / "out" / "ib4606c5q_flc.fits") as hdul:
        assert hdul[0].header["IDCTAB"] == "N/A"  # iref$ not available here
        assert "iref$2731450pi_idc.fits" in hdul[0].header.comments["IDCTAB"]
        assert hdul["SCI", 1].header["WCSNAME"] == wcsname  # the exposure's own WCS
        assert (hdul["SCI", 1].header["CRVAL1"], hdul["SCI", 1].header["CRVAL2"]) == crval
    text = (tmp_path / "out" / "ib4606c5q.tra").read_text()
    assert "distortion reference file(s) not available" in text


@pytest.mark.realdata
def test_real_headers_go_through_the_wcs_handling(shared_data, tmp_path):
    source = shared_data / "hst" / "wfc3" / "flt_cutouts"
    for name in ("sample_ipppssoot_flc.fits", "sample_svm_flc.fits", "sample_svm_flt.fits"):
        target = tmp_path / name.replace("sample_", "x_")
        shutil.copyfile(source / name, target)
        target.chmod(0o644)
        with fits.open(target) as hdul:
            before = WCS(hdul["SCI", 1].header, hdul)
        report = pipeline_default_wcs(target)
        assert report.method == "own" and "IDCTAB" in report.missing
        with fits.open(target) as hdul:
            after = WCS(hdul["SCI", 1].header, hdul)
            assert hdul["SCI", 1].header["WCSTYPE"]
        np.testing.assert_allclose(after.all_pix2world([[5, 5]], 0),
                                   before.all_pix2world([[5, 5]], 0), rtol=0, atol=1e-12)
        headerlet = write_headerlet(target)
        with fits.open(headerlet) as hdul:
            assert hdul[0].header["WCSNAME"] == report.wcsname


@pytest.mark.slow
def test_flt_and_flc_sets_make_drz_and_drc(association, tmp_path):
    (tmp_path / "in").mkdir()
    for f in association.files:
        shutil.copyfile(f, tmp_path / "in" / f.name)
        shutil.copyfile(f, tmp_path / "in" / f.name.replace("_flt", "_flc"))
    shutil.copyfile(association.asn_path, tmp_path / "in" / association.asn_path.name)
    result = run_stage("drizzle", detector="wfc3_uvis",
                       inputs=[tmp_path / "in" / association.asn_path.name], out=tmp_path / "out")
    names = {p.name for p in result.details["products"]}
    assert names == {f"{association.asn_id}_drz.fits", f"{association.asn_id}_drc.fits"}
    assert len(result.details["headerlets"]) == 2 * len(association.files)


def test_headerlet_is_what_stwcs_write_headerlet_writes(shared_data, tmp_path):
    """Ours (stwcs create_headerlet on the file read-only) against stwcs write_headerlet
    itself (attach=False, after the WCSCORR set-up it needs), on a real FLC: the same
    extensions, cards and values, bar creation times."""
    from stwcs.wcsutil import headerlet as stwcs_headerlet

    from hstcal_core.drizzle._thirdparty import import_drizzlepac

    source = shared_data / "hst" / "wfc3" / "flt_cutouts" / "sample_ipppssoot_flc.fits"
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    for d in (ours_dir, theirs_dir):
        d.mkdir()
        shutil.copyfile(source, d / "x_flc.fits")
        (d / "x_flc.fits").chmod(0o644)
        # stwcs write_headerlet needs the WCSCORR set-up on the file it reads
        pipeline_default_wcs(d / "x_flc.fits", wcscorr=d == theirs_dir)
    before = file_digests(ours_dir)
    ours = write_headerlet(ours_dir / "x_flc.fits")
    assert file_digests(ours_dir)["x_flc.fits"] == before["x_flc.fits"]  # read only
    assert sorted(p.name for p in ours_dir.iterdir()) == ["x_flc.fits", "x_flc_hlet.fits"]
    with fits.open(theirs_dir / "x_flc.fits") as hdul:
        wcsname = hdul["SCI", 1].header["WCSNAME"]
    descrip = import_drizzlepac("updatehdr").interpret_wcsname_type(wcsname)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stwcs_headerlet.write_headerlet(str(theirs_dir / "x_flc.fits"), "x_flc_hlet.fits",
                                        output="flc", wcskey="PRIMARY", author="hstcal",
                                        descrip=descrip, attach=False, clobber=True,
                                        logging=False)
    with fits.open(ours) as a, fits.open(theirs_dir / "x_flc_hlet.fits") as b:
        assert [h.name for h in a] == [h.name for h in b]
        for ha, hb in zip(a, b):
            skip = {"DATE", "CHECKSUM", "DATASUM"}
            assert [k for k in ha.header if k not in skip] == \
                [k for k in hb.header if k not in skip]
            assert all(ha.header[k] == hb.header[k] for k in ha.header if k not in skip)
            if ha.data is not None:
                np.testing.assert_array_equal(ha.data, hb.data)
