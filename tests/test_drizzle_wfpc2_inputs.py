"""WFPC2 c0m/c1m inputs of the drizzle stage, offline, on simulated exposures.

* the simulator's c0m layout: four chips (PC1, WF2, WF3, WF4) in DN with their own
  scales, gains and WCS around the pyramid apex, the c1m beside each c0m;
* the conversion is drizzlepac's (``wfpc2Data.wfpc2_to_flt``, then ``photeq`` to WF3's
  PHOTFLAM), on private copies; the c1m becomes the FLT's DQ;
* an association of c0m members goes through ``run_stage`` and a list of c0m files
  through the CLI, to ``<root>_drw.fits`` with SCI/WHT/CTX, the inputs untouched; with a
  local catalog the a posteriori fit recovers an injected WCS error within 5 mas on all
  twelve chips (``slow``: four AstroDrizzle runs, ~20 s here);
* bad input — a missing c1m, a c0m of another instrument, a c0m or c1m with a group
  missing — is an InputError naming the file, leaving the trailer and nothing else.

Sockets are refused throughout: a step that tried the network would fail here.

PC1 is the fragile chip of the fit: a chip left with no source gets no fitted WCS from
:mod:`hstcal_core.drizzle.align`, which discards the whole fit.  With AstroDrizzle's
default cosmic-ray parameters the stage's CR step flagged most PC1 star cores (seeds 1,
2 and 6 lost the fit); with the WFPC2 set runastrodriz takes from drizzlepac
(``astrodrizzle.cr_parameters``) every seed tried keeps 15-17 PC1 sources and fits
within 1.2 mas.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import run_stage
from hstcal_core.cli import main
from hstcal_core.drizzle.inputs import convert_wfpc2, resolve_inputs
from hstcal_core.errors import InputError
from hstcal_core.simulate.flt import WcsError, simulate_flt_asn
from hstcal_core.testing import file_digests, registered_detector

ERROR = WcsError(shift_arcsec=(0.25, -0.15), rotation_deg=0.02)
CHIP = "wfpc2_wf3"


pytestmark = pytest.mark.usefixtures("offline")  # conftest: no network


def only_trailer(out, root):
    assert sorted(p.name for p in out.iterdir()) == [f"{root}.tra"]
    return (out / f"{root}.tra").read_text()


@pytest.fixture(scope="module")
def c0m_asn(tmp_path_factory):
    """Three dithered WFPC2 exposures (four 100x100 chips each) with a common WCS error;
    900 stars put ~17 on PC1 and ~80 on each WF chip."""
    registered_detector(CHIP)
    base = tmp_path_factory.mktemp("wfpc2_c0m")
    return simulate_flt_asn(base / "in", registered_detector(CHIP), layout="c0m", shape=(100, 100),
                            n_exposures=3, n_stars=900, exptime=100.0, wcs_error=ERROR,
                            seed=5)


@pytest.fixture(scope="module")
def aligned(c0m_asn, tmp_path_factory, network_guard):
    mp = pytest.MonkeyPatch()
    network_guard(mp)
    try:
        before = file_digests(c0m_asn.asn_path.parent)
        out = tmp_path_factory.mktemp("wfpc2_aligned")
        result = run_stage("drizzle", detector=CHIP, inputs=[c0m_asn.asn_path], out=out,
                           catalog=str(c0m_asn.catalog_path))
        assert file_digests(c0m_asn.asn_path.parent) == before  # inputs never touched
        return result, out
    finally:
        mp.undo()


@pytest.fixture
def small(tmp_path):
    """Two small c0m/c1m exposures, for what happens before any drizzling."""
    return simulate_flt_asn(tmp_path / "in", registered_detector(CHIP), layout="c0m", shape=(32, 32),
                            n_exposures=2, n_stars=30, exptime=100.0, seed=5)


# --------------------------------------------------------------------------- simulator
def test_c0m_layout_is_what_wfpc2_to_flt_and_stwcs_read(tmp_path):
    from hstcal_core.drizzle._thirdparty import library_warnings, require

    truth = simulate_flt_asn(tmp_path, registered_detector(CHIP), layout="c0m", shape=(40, 48),
                             n_exposures=1, n_stars=40, seed=2)
    c0m, c1m = truth.files[0], truth.dq_files[0]
    assert c0m.name.endswith("_c0m.fits") and c1m.name.endswith("_c1m.fits")
    chips = [registered_detector(n) for n in ("wfpc2_pc", "wfpc2_wf2", "wfpc2_wf3", "wfpc2_wf4")]
    hstwcs = require("stwcs.wcsutil").HSTWCS
    with fits.open(c0m) as sci, fits.open(c1m) as dq:
        primary = sci[0].header
        assert sci[0].data is None and primary["NEXTEND"] == 4
        assert (primary["INSTRUME"], primary["MODE"], primary["FILTNAM1"]) == (
            "WFPC2", "FULL", "F606W")
        assert primary["FILENAME"] == c0m.name and primary["ATODGAIN"] == 7.0
        assert primary["DARKTIME"] == primary["EXPTIME"] > 0  # wfpc2Data.getdarkcurrent
        assert [(h.name, h.ver) for h in sci[1:]] == [("SCI", k) for k in (1, 2, 3, 4)]
        assert [(h.name, h.ver) for h in dq[1:]] == [("SCI", k) for k in (1, 2, 3, 4)]
        orientats = []
        for k, detector in enumerate(chips, start=1):
            header = sci["SCI", k].header
            assert header["DETECTOR"] == k == dq["SCI", k].header["DETECTOR"]
            assert sci["SCI", k].data.dtype == np.dtype(">f4")  # OUTDTYPE=REAL
            assert sci["SCI", k].data.shape == (40, 48)
            assert dq["SCI", k].data.dtype == np.dtype(">i2")
            assert header["PHOTMODE"] == f"WFPC2,{k},A2D7,F606W,,CAL"
            gain = detector.amplifiers[7.0][0].gain
            assert header["PHOTFLAM"] / gain == pytest.approx(
                sci["SCI", 1].header["PHOTFLAM"] / chips[0].amplifiers[7.0][0].gain)
            with library_warnings(collect=False):
                wcs = hstwcs(sci, ext=("SCI", k))
            assert wcs.chip == k
            assert wcs.pscale == pytest.approx(detector.pixel_scale_arcsec, rel=1e-9)
            orientats.append(header["ORIENTAT"])
    # each chip turned 90 deg from the previous one, as PC1..WF4 of u5780205r
    assert np.allclose(np.diff(orientats), 90.0)


def test_chips_sit_in_four_quadrants_around_the_apex(tmp_path):
    truth = simulate_flt_asn(tmp_path, registered_detector("wfpc2_pc"), layout="c0m", shape=(64, 64),
                             n_exposures=1, n_stars=10, seed=3)
    target = truth.parameters["target"]
    angles = []
    for chip in truth.exposures[0].chips:
        ra, dec = chip.true_wcs().all_pix2world([[31.5, 31.5]], 0)[0]
        east = (ra - target[0]) * np.cos(np.radians(target[1]))
        angles.append(np.degrees(np.arctan2(east, dec - target[1])))
        assert chip.star_id.size > 0
    steps = np.diff(np.unwrap(np.radians(angles)))
    assert np.degrees(steps) == pytest.approx([90.0, 90.0, 90.0], abs=20.0)


def test_saturated_pixels_are_clipped_at_full_scale_and_flagged(tmp_path):
    truth = simulate_flt_asn(tmp_path, registered_detector(CHIP), layout="c0m", shape=(48, 48),
                             n_exposures=1, n_stars=200, exptime=2000.0,
                             flux_range=(100.0, 1000.0), seed=4)
    with fits.open(truth.files[0]) as sci, fits.open(truth.dq_files[0]) as dq:
        flagged = 0
        for k in range(1, 5):
            data, flags = sci["SCI", k].data, dq["SCI", k].data
            assert data.max() <= 4095.0
            assert np.array_equal(data >= 4095.0, (flags & 8) != 0)  # A/D saturation
            assert sci["SCI", k].header["GPIXELS"] == np.count_nonzero(flags == 0)
            flagged += np.count_nonzero(flags)
    assert flagged > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "c0x"}, "layout must be"),
    ({"layout": "c0m", "n_chips": 2}, "n_chips"),
    ({"layout": "c0m", "sip_amplitude_px": 1.0}, "sip_amplitude_px"),
])
def test_bad_layout_arguments_name_the_problem(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_flt_asn(tmp_path, registered_detector(CHIP), shape=(16, 16), **kwargs)


def test_c0m_layout_is_for_detectors_registered_per_chip(tmp_path):
    with pytest.raises(ValueError, match="registered per chip"):
        simulate_flt_asn(tmp_path, registered_detector("wfc3_uvis"), layout="c0m", shape=(16, 16))


# --------------------------------------------------------------------------- inputs
def test_association_finds_each_c0m_and_its_c1m(small, caplog):
    inputs = resolve_inputs([small.asn_path], registered_detector(CHIP))
    assert [e.path for e in inputs.sets["flt"]] == small.files
    assert [e.dq_path for e in inputs.sets["flt"]] == small.dq_files
    assert inputs.to_convert == inputs.sets["flt"]
    assert (inputs.product_root, inputs.instrument) == (small.asn_id, "WFPC2")
    assert inputs.drizcorr == "PERFORM"
    assert f"{small.exposures[0].rootname}_d0m.fits not found" in caplog.text


def test_d0m_input_gives_drizcorr_and_its_c0m(small):
    c0m = small.files[0]
    d0m = c0m.with_name(c0m.name.replace("_c0m", "_d0m"))
    fits.HDUList([fits.PrimaryHDU(header=fits.Header(
        {"INSTRUME": "WFPC2", "DRIZCORR": "OMIT"}))]).writeto(d0m)
    inputs = resolve_inputs([d0m], registered_detector(CHIP))
    assert [e.path for e in inputs.exposures] == [c0m]
    assert (inputs.drizcorr, inputs.drizcorr_source) == ("OMIT", d0m)
    assert inputs.trailer_root == small.exposures[0].rootname


def test_member_c0m_is_converted_even_beside_an_flt(small):
    flt = small.files[0].with_name(small.files[0].name.replace("_c0m", "_flt"))
    flt.write_bytes(b"not read: runastrodriz converts the c0m")
    inputs = resolve_inputs([small.asn_path], registered_detector(CHIP))
    assert inputs.exposures[0].path == small.files[0]


def test_a_c0m_and_its_flt_together_are_refused(small):
    flt = small.files[0].with_name(small.files[0].name.replace("_c0m", "_flt"))
    flt.write_bytes(small.files[0].read_bytes())
    with pytest.raises(InputError, match="are one exposure"):
        resolve_inputs([small.files[0], flt], registered_detector(CHIP))


@pytest.mark.parametrize("name, message", [("x_c1m.fits", "data-quality file"),
                                           ("x_c0f.fits", "waiver-FITS/GEIS")])
def test_wfpc2_files_the_stage_cannot_take_are_named(small, name, message):
    path = small.asn_path.parent / name
    path.write_bytes(small.dq_files[0].read_bytes())
    with pytest.raises(InputError, match=message):
        resolve_inputs([small.files[0], path], registered_detector(CHIP))


# --------------------------------------------------------------------------- conversion
def test_conversion_is_drizzlepacs_and_keeps_the_c1m_as_dq(tmp_path):
    truth = simulate_flt_asn(tmp_path / "in", registered_detector(CHIP), layout="c0m", shape=(48, 48),
                             n_exposures=1, n_stars=200, exptime=2000.0,
                             flux_range=(100.0, 1000.0), seed=4)
    before = file_digests(tmp_path / "in")
    inputs = convert_wfpc2(resolve_inputs(truth.files, registered_detector(CHIP)), tmp_path / "work")
    flt = inputs.exposures[0].path
    assert flt == tmp_path / "work" / f"{truth.exposures[0].rootname}_flt.fits"
    assert not inputs.to_convert and inputs.detector == "PC"  # runastrodriz WFPC2/PC
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [flt.name]
    assert file_digests(tmp_path / "in") == before
    with fits.open(flt) as out, fits.open(truth.files[0]) as c0m, \
            fits.open(truth.dq_files[0]) as c1m:
        assert out[0].header["DETECTOR"] == "PC" and out[0].header["FILENAME"] == flt.name
        reference = c0m["SCI", 3].header["PHOTFLAM"]  # photeq to WF3, as runastrodriz
        flagged = 0
        for k in range(1, 5):
            factor = c0m["SCI", k].header["PHOTFLAM"] / reference
            np.testing.assert_allclose(out["SCI", k].data, c0m["SCI", k].data * factor,
                                       rtol=1e-6)
            assert out["SCI", k].header["PHOTFLAM"] == pytest.approx(reference)
            np.testing.assert_array_equal(out["DQ", k].data, c1m["SCI", k].data)
            positive = c0m["SCI", k].data > 0  # wfpc2_to_flt: ERR = sqrt(DN)
            np.testing.assert_allclose(out["ERR", k].data[positive],
                                       np.sqrt(c0m["SCI", k].data[positive]) * factor,
                                       rtol=1e-5)
            flagged += np.count_nonzero(out["DQ", k].data)
    assert flagged > 0


def test_missing_c1m_allowed_converts_with_an_all_zero_dq(small, tmp_path, caplog):
    small.dq_files[0].unlink()
    inputs = resolve_inputs([small.files[0]], registered_detector(CHIP), allow_missing_c1m=True)
    assert inputs.exposures[0].dq_path is None
    inputs = convert_wfpc2(inputs, tmp_path / "work")
    with fits.open(inputs.exposures[0].path) as hdul:
        assert all(not hdul["DQ", k].data.any() for k in range(1, 5))
    assert "all-zero DQ" in caplog.text


# --------------------------------------------------------------------------- bad input
def test_missing_c1m_is_an_error_naming_it(small, tmp_path):
    missing = small.dq_files[1]
    missing.unlink()
    before = file_digests(small.asn_path.parent)
    with pytest.raises(InputError, match=missing.name) as info:
        run_stage("drizzle", detector=CHIP, inputs=[small.asn_path], out=tmp_path / "out")
    assert "all-zero DQ" in str(info.value) and "allow_missing_c1m" in str(info.value)
    text = only_trailer(tmp_path / "out", small.asn_id)
    assert missing.name in text and "nothing was written" in text
    assert file_digests(small.asn_path.parent) == before


def test_c0m_of_another_instrument_is_refused(small, tmp_path):
    with fits.open(small.files[1], mode="update") as hdul:
        hdul[0].header["INSTRUME"] = "ACS"
    with pytest.raises(InputError, match=f"{small.files[1].name}: is INSTRUME=ACS, not WFPC2"):
        run_stage("drizzle", detector=CHIP, inputs=[small.asn_path], out=tmp_path / "out")
    only_trailer(tmp_path / "out", small.asn_id)


def drop_group(path, extver, *, nextend=None):
    with fits.open(path) as hdul:
        kept = fits.HDUList([h.copy() for h in hdul if h.ver != extver or h.name == "PRIMARY"])
    if nextend is not None:
        kept[0].header["NEXTEND"] = nextend
    kept.writeto(path, overwrite=True)


def test_c0m_with_a_missing_group_is_refused(small, tmp_path):
    drop_group(small.files[0], 2)  # NEXTEND still says 4
    with pytest.raises(InputError, match=r"announces 4 groups \(NEXTEND\) but holds 3"):
        run_stage("drizzle", detector=CHIP, inputs=[small.asn_path], out=tmp_path / "out")
    text = only_trailer(tmp_path / "out", small.asn_id)
    assert small.files[0].name in text


def test_c0m_without_the_stages_chip_is_refused(small):
    drop_group(small.files[0], 3, nextend=3)  # consistent, but WF3 is gone
    drop_group(small.dq_files[0], 3, nextend=3)
    with pytest.raises(InputError, match=r"no group for chip 3 \(wfpc2_wf3\)"):
        resolve_inputs([small.asn_path], registered_detector(CHIP))
    resolve_inputs([small.asn_path], registered_detector("wfpc2_wf2"))  # WF2 is there


def test_c1m_with_a_missing_group_is_refused(small):
    drop_group(small.dq_files[1], 4, nextend=3)
    with pytest.raises(InputError, match=rf"{small.dq_files[1].name}: holds 3 group\(s\)"):
        resolve_inputs([small.asn_path], registered_detector(CHIP))


# --------------------------------------------------------------------------- drizzled
def test_run_stage_drizzles_the_association_to_drw(c0m_asn, tmp_path):
    before = file_digests(c0m_asn.asn_path.parent)
    result = run_stage("drizzle", detector=CHIP, inputs=[c0m_asn.asn_path],
                       out=tmp_path / "out", aposteriori=False)
    assert file_digests(c0m_asn.asn_path.parent) == before  # inputs never touched
    out = tmp_path / "out"
    roots = [e.rootname for e in c0m_asn.exposures]
    assert sorted(p.name for p in out.iterdir()) == sorted(  # no scratch left behind
        [f"{c0m_asn.asn_id}_drw.fits", f"{c0m_asn.asn_id}.tra"]
        + [f"{r}_flt.fits" for r in roots] + [f"{r}_flt_hlet.fits" for r in roots])
    assert [p.name for p in result.details["products"]] == [f"{c0m_asn.asn_id}_drw.fits"]
    with fits.open(out / f"{c0m_asn.asn_id}_drw.fits") as hdul:
        assert [h.name for h in hdul][:4] == ["PRIMARY", "SCI", "WHT", "CTX"]
        assert hdul[0].header["NDRIZIM"] == 12  # 3 exposures x 4 chips
        assert hdul[0].header["ALIGNSOL"] == "pipeline-default"
        assert (hdul["WHT"].data > 0).mean() > 0.5
    with fits.open(out / f"{roots[0]}_flt.fits") as hdul:
        assert hdul[0].header["PHOTEQ"] is True and hdul[0].header["DETECTOR"] == "PC"
        assert [(h.name, h.ver) for h in hdul[1:9]] == [
            ("SCI", 1), ("SCI", 2), ("SCI", 3), ("SCI", 4), ("DQ", 1), ("ERR", 1),
            ("DQ", 2), ("ERR", 2)]  # wfpc2_to_flt's order
    text = (out / f"{c0m_asn.asn_id}.tra").read_text()
    converted = (f"{c0m_asn.exposures[0].filename} + {roots[0]}_c1m.fits -> "
                 f"{roots[0]}_flt.fits (drizzlepac wfpc2_to_flt, photeq)")
    for line in (converted, "Writing out in_flt.fits", "REFERENCE VALUE FROM FILE",
                 f"{roots[0]}_d0m.fits not found", "Processing Step 'Final Drizzle'"):
        assert line in text


@pytest.mark.slow
def test_association_drizzles_to_drw_and_the_fit_recovers_the_error(c0m_asn, aligned):
    result, out = aligned
    assert result.details["solution"] == "aposteriori"
    assert [p.name for p in result.details["products"]] == [f"{c0m_asn.asn_id}_drw.fits"]
    with fits.open(out / f"{c0m_asn.asn_id}_drw.fits") as hdul:
        assert [h.name for h in hdul][:4] == ["PRIMARY", "SCI", "WHT", "CTX"]
        assert hdul[0].header["ALIGNSOL"] == "aposteriori" and hdul[0].header["ALIGNVER"]
    with fits.open(out / f"{c0m_asn.exposures[0].rootname}_flt.fits") as hdul:
        assert hdul["SCI", 1].header["WCSNAME"] == "OPUS-FIT_REL_LOCAL"
    text = (out / f"{c0m_asn.asn_id}.tra").read_text()
    assert "solution chosen: aposteriori" in text
    errors = []
    for exposure in c0m_asn.exposures:
        flt = out / f"{exposure.rootname}_flt.fits"
        for chip in exposure.chips:
            assert chip.wcs_error_mas(c0m_asn.asn_path.parent / exposure.filename) > 250.0
            errors.append(chip.wcs_error_mas(flt))
    print(f"recovered WCS error: max {max(errors):.2f} mas over {len(errors)} chips")
    assert len(errors) == 12 and max(errors) < 5.0


def test_cli_drizzles_a_list_of_c0m_files(c0m_asn, tmp_path):
    before = file_digests(c0m_asn.asn_path.parent)
    result = CliRunner().invoke(main, [
        "run", "--instrument", "wfpc2_pc", "--stage", "drizzle",
        *[str(f) for f in c0m_asn.files], "--out", str(tmp_path / "out"), "--no-aposteriori"])
    assert result.exit_code == 0, result.output
    product = tmp_path / "out" / f"{c0m_asn.asn_id}_drw.fits"
    assert f"product  {product}" in result.output
    with fits.open(product) as hdul:
        assert {"SCI", "WHT", "CTX"} <= {h.name for h in hdul}
        assert hdul[0].header["ALIGNSOL"] == "pipeline-default"
        assert np.isfinite(hdul["SCI"].data[hdul["WHT"].data > 0]).all()
    trailer = tmp_path / "out" / f"{c0m_asn.exposures[0].rootname}.tra"
    assert "wfpc2_to_flt" in trailer.read_text()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert file_digests(c0m_asn.asn_path.parent) == before


def test_cosmic_ray_step_takes_drizzlepacs_wfpc2_parameters(small, tmp_path):
    """runastrodriz gives WFPC2 drizzlepac's own AstroDrizzle set (get_wfpc2_pars), not
    AstroDrizzle's defaults; other instruments keep the defaults (MDRIZTAB not read)."""
    from hstcal_core.drizzle.astrodrizzle import WFPC2_CR_KEYS, cr_parameters

    pars = cr_parameters(small.files)
    assert set(pars) == set(WFPC2_CR_KEYS)
    assert (pars["driz_cr_snr"], pars["driz_cr_scale"]) == ("5.5 3.5", "2.0 1.5")
    other = tmp_path / "x_flt.fits"
    fits.PrimaryHDU(header=fits.Header({"INSTRUME": "WFC3"})).writeto(other)
    assert cr_parameters([other]) == {}
