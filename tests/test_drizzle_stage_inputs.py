"""Drizzle stage, before any drizzling: inputs, DRIZCORR, switches, bad input, trailer, CLI.

Every run here stops before AstroDrizzle (a skip or an input error), so the file is
fast.  "Nothing half-written" is checked the same way each time: after a refused run
the output directory holds the trailer and nothing else, and the inputs are unchanged.
"""

from __future__ import annotations

import hashlib

import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core import get_registry, run_stage
from hstcal_core.cli import main
from hstcal_core.drizzle.inputs import resolve_inputs
from hstcal_core.drizzle.switches import (
    ENV_APOSTERIORI,
    ENV_APRIORI,
    astrometry_environment,
    env_switch,
    resolve_switches,
)
from hstcal_core.drizzle.trailer import trailer_root
from hstcal_core.errors import ConfigError, InputError
from hstcal_core.simulate.flt import simulate_flt_asn

pytestmark = pytest.mark.usefixtures("offline")  # conftest: no network


@pytest.fixture
def uvis():
    return get_registry().detector("wfc3_uvis")


@pytest.fixture
def small_asn(tmp_path, uvis):
    return simulate_flt_asn(tmp_path / "in", uvis, shape=(48, 64), n_exposures=3,
                            n_stars=20, seed=3)


def digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


def set_primary(path, **keys):
    with fits.open(path, mode="update") as hdul:
        for key, value in keys.items():
            hdul[0].header[key] = value


def write_raw(path, drizcorr):
    hdr = fits.Header({"INSTRUME": "WFC3", "DETECTOR": "UVIS", "DRIZCORR": drizcorr})
    fits.HDUList([fits.PrimaryHDU(header=hdr)]).writeto(path)


def only_trailer(out, root):
    assert sorted(p.name for p in out.iterdir()) == [f"{root}.tra"]
    return (out / f"{root}.tra").read_text()


# --------------------------------------------------------------------------- inputs
def test_association_gives_members_product_and_trailer_names(small_asn, uvis):
    inputs = resolve_inputs([small_asn.asn_path], uvis)
    assert inputs.product_root == small_asn.asn_id
    assert inputs.trailer_root == small_asn.asn_id
    assert [e.path for e in inputs.sets["flt"]] == small_asn.files
    assert "flc" not in inputs.sets and inputs.align_set == "flt"
    assert inputs.drizcorr == "PERFORM"


def test_flt_and_flc_of_one_exposure_make_two_lists(small_asn, uvis):
    for f in small_asn.files:
        flc = f.with_name(f.name.replace("_flt", "_flc"))
        flc.write_bytes(f.read_bytes())
    inputs = resolve_inputs([small_asn.asn_path], uvis)
    assert len(inputs.sets["flt"]) == len(inputs.sets["flc"]) == 3
    assert inputs.align_set == "flc"  # runastrodriz aligns on the CTE-corrected set


def test_list_of_calibrated_files_is_named_after_its_association(small_asn, uvis):
    inputs = resolve_inputs(small_asn.files, uvis)
    assert inputs.product_root == small_asn.asn_id
    assert inputs.trailer_root == small_asn.exposures[0].rootname


def test_raw_input_finds_its_flt_and_reads_drizcorr(small_asn, uvis):
    flt = small_asn.files[0]
    raw = flt.with_name(flt.name.replace("_flt", "_raw"))
    write_raw(raw, "OMIT")
    inputs = resolve_inputs([raw], uvis)
    assert inputs.sets["flt"][0].path == flt
    assert (inputs.drizcorr, inputs.drizcorr_source) == ("OMIT", raw)


def test_missing_raw_is_a_warning_not_an_error(small_asn, uvis, caplog):
    inputs = resolve_inputs([small_asn.asn_path], uvis)
    assert inputs.drizcorr_source == small_asn.files[0]
    assert "RAW file" in caplog.text and "not found" in caplog.text


def test_member_marked_not_present_is_skipped(tmp_path, small_asn, uvis):
    from hstcal_core.simulate.flt import write_asn_table

    names = [e.rootname for e in small_asn.exposures]
    asn = write_asn_table(small_asn.asn_path.parent / "x09999990_asn.fits", "x09999990",
                          names, present=[True, False, True])
    inputs = resolve_inputs([asn], uvis)
    assert len(inputs.sets["flt"]) == 2
    assert inputs.skipped == [(names[1], "MEMPRSNT=F in the association table")]


# --------------------------------------------------------------------------- DRIZCORR
def test_drizcorr_omit_skips_and_force_overrides(tmp_path, small_asn, monkeypatch):
    raw = small_asn.asn_path.parent / f"{small_asn.exposures[0].rootname}_raw.fits"
    write_raw(raw, "OMIT")
    before = digests(small_asn.asn_path.parent)
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                       out=tmp_path / "out")
    assert result.ok and not [p for p in result.products if p.suffix == ".fits"]
    assert "DRIZCORR=OMIT" in result.skipped[0][1]
    text = only_trailer(tmp_path / "out", small_asn.asn_id)
    assert "DRIZCORR=OMIT" in text and "--force" in text
    assert digests(small_asn.asn_path.parent) == before

    # --force goes on: stop it at the first drizzlepac call to keep this test fast
    from hstcal_core.drizzle import stage

    def stop(*args, **kwargs):
        raise RuntimeError("stopped by the test after DRIZCORR was accepted")

    monkeypatch.setattr(stage, "run_astrodrizzle", stop)
    with pytest.raises(RuntimeError, match="stopped by the test"):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                  out=tmp_path / "forced", force=True, aposteriori=False)
    text = only_trailer(tmp_path / "forced", small_asn.asn_id)
    assert "overridden by --force" in text


# --------------------------------------------------------------------------- bad input
def test_asn_naming_a_missing_member_is_an_error(tmp_path, small_asn):
    small_asn.files[1].unlink()
    with pytest.raises(InputError, match=f"member {small_asn.exposures[1].rootname}"):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                  out=tmp_path / "out")
    text = only_trailer(tmp_path / "out", small_asn.asn_id)
    assert "neither" in text and "nothing was written" in text


def test_exptime_zero_everywhere_is_a_documented_skip(tmp_path, small_asn):
    for f in small_asn.files:
        set_primary(f, EXPTIME=0.0)
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                       out=tmp_path / "out")
    reasons = dict(result.skipped)
    assert all("EXPTIME=0" in reasons[f.name] for f in small_asn.files)
    assert "nothing to drizzle" in reasons[small_asn.asn_id]
    text = only_trailer(tmp_path / "out", small_asn.asn_id)
    assert "EXPTIME=0" in text and "nothing to drizzle" in text


def test_ngoodpix_zero_skips_the_exposure(tmp_path, small_asn, uvis):
    with fits.open(small_asn.files[0], mode="update") as hdul:
        for hdu in hdul:
            if hdu.name == "SCI":
                hdu.header["NGOODPIX"] = 0
    inputs = resolve_inputs([small_asn.asn_path], uvis)
    assert len(inputs.sets["flt"]) == 2
    assert "NGOODPIX=0" in dict(inputs.skipped)[small_asn.files[0].name]


def test_mixed_instruments_are_refused(tmp_path, small_asn):
    set_primary(small_asn.files[2], INSTRUME="ACS", DETECTOR="WFC")
    with pytest.raises(InputError, match="INSTRUME=ACS"):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                  out=tmp_path / "out")
    only_trailer(tmp_path / "out", small_asn.asn_id)


def test_mixed_detectors_are_refused(tmp_path, uvis):
    a = simulate_flt_asn(tmp_path / "a", uvis, shape=(32, 32), n_exposures=1, seed=1)
    ir = get_registry().detector("wfc3_ir")
    b = simulate_flt_asn(tmp_path / "b", ir, shape=(32, 32), n_exposures=1, seed=2)
    with pytest.raises(InputError, match="DETECTOR=IR"):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[a.files[0], b.files[0]],
                  out=tmp_path / "out")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_flt_is_an_error_naming_it(tmp_path, small_asn, damage):
    bad = small_asn.files[1]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0garbage" * 400)
    with pytest.raises(InputError, match=bad.name):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                  out=tmp_path / "out")
    text = only_trailer(tmp_path / "out", small_asn.asn_id)
    assert bad.name in text


def test_out_must_be_a_directory(tmp_path, small_asn):
    target = tmp_path / "file.fits"
    target.write_bytes(b"")
    with pytest.raises(ConfigError, match="directory"):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path], out=target)


# --------------------------------------------------------------------------- switches
@pytest.mark.parametrize("value, expected", [
    ("on", True), ("YES", True), ("true", True), ("off", False), ("No", False),
    ("FALSE", False), ("", None)])
def test_env_switch_values(value, expected):
    assert env_switch(ENV_APOSTERIORI, {ENV_APOSTERIORI: value}) is expected


def test_env_switch_rejects_other_values():
    with pytest.raises(ConfigError, match=f"{ENV_APRIORI}='maybe'"):
        env_switch(ENV_APRIORI, {ENV_APRIORI: "maybe"})


def test_flags_win_over_environment_which_wins_over_defaults():
    env = {ENV_APOSTERIORI: "off", ENV_APRIORI: "on"}
    s = resolve_switches(True, False, catalog=None, environ=env)
    assert (s.aposteriori, s.apriori) == (True, False)
    assert s.aposteriori_source == s.apriori_source == "flag"
    s = resolve_switches(None, None, catalog="ref.ecsv", environ=env)
    assert (s.aposteriori, s.apriori) == (False, True)
    assert s.aposteriori_source == f"environment {ENV_APOSTERIORI}"
    s = resolve_switches(None, None, catalog="ref.ecsv", environ={})
    assert (s.aposteriori, s.apriori) == (True, False)  # a catalog asks for the fit
    s = resolve_switches(None, None, catalog=None, environ={})
    assert (s.aposteriori, s.apriori) == (False, False)  # offline by default


def test_stwcs_sees_on_or_off_only_and_the_environment_is_restored(monkeypatch):
    import os

    monkeypatch.setenv("ASTROMETRY_STEP_CONTROL", "yes")
    with astrometry_environment(False):
        assert os.environ["ASTROMETRY_STEP_CONTROL"] == "off"
        assert os.environ[ENV_APRIORI] == "off"
    assert os.environ["ASTROMETRY_STEP_CONTROL"] == "yes"
    assert ENV_APRIORI not in os.environ


def test_stage_reports_where_each_switch_came_from(tmp_path, small_asn, monkeypatch):
    monkeypatch.setenv(ENV_APOSTERIORI, "no")
    for f in small_asn.files:
        set_primary(f, DRIZCORR="OMIT")
    run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
              out=tmp_path / "env")
    text = (tmp_path / "env" / f"{small_asn.asn_id}.tra").read_text()
    assert f"a posteriori alignment off (environment {ENV_APOSTERIORI})" in text
    run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
              out=tmp_path / "flag", aposteriori=True)
    text = (tmp_path / "flag" / f"{small_asn.asn_id}.tra").read_text()
    assert "a posteriori alignment on (flag)" in text


def test_bad_switch_value_in_environment_is_a_config_error(tmp_path, small_asn, monkeypatch):
    monkeypatch.setenv(ENV_APRIORI, "perhaps")
    with pytest.raises(ConfigError, match=ENV_APRIORI):
        run_stage("drizzle", detector="wfc3_uvis", inputs=[small_asn.asn_path],
                  out=tmp_path / "out")


# --------------------------------------------------------------------------- trailer, CLI
@pytest.mark.parametrize("name, root", [
    ("ib4606060_asn.fits", "ib4606060"), ("ib4606c5q_raw.fits", "ib4606c5q"),
    ("ib4606c5q_flc.fits", "ib4606c5q"), ("IB4606C6Q_FLT.fits", "ib4606c6q")])
def test_trailer_root_follows_runastrodriz(name, root):
    assert trailer_root(name) == root


def test_cli_flags_reach_the_stage(tmp_path, small_asn, monkeypatch):
    monkeypatch.setenv(ENV_APOSTERIORI, "on")
    for f in small_asn.files:
        set_primary(f, DRIZCORR="OMIT")
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--instrument", "wfc3_uvis", "--stage", "drizzle",
                                  str(small_asn.asn_path), "--out", str(tmp_path / "out"),
                                  "--no-aposteriori", "--no-apriori"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "DRIZCORR=OMIT" in result.output
    text = (tmp_path / "out" / f"{small_asn.asn_id}.tra").read_text()
    assert "a posteriori alignment off (flag), a priori solutions off (flag)" in text
    result = runner.invoke(main, ["run", "--instrument", "wfc3_uvis", "--stage", "drizzle",
                                  str(small_asn.asn_path), "--out", str(tmp_path / "bad"),
                                  "--catalog", str(tmp_path / "missing.ecsv")])
    assert result.exit_code == 0  # still OMIT: the catalog is only read when fitting


def test_corrupt_input_exits_with_status_2_on_the_cli(tmp_path, small_asn):
    small_asn.files[0].write_bytes(b"not fits")
    result = CliRunner().invoke(main, ["run", "--instrument", "wfc3_uvis", "--stage",
                                       "drizzle", str(small_asn.asn_path), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert small_asn.files[0].name in result.output
