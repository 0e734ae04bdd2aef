"""The anneal stage end to end from the CLI: a simulated month, its products, headers,
resumption after an interruption, and a corrupt input recorded without stopping the run."""

import json
import shutil

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from hstcal_core.cli import main
from hstcal_core.reffiles.anneal import read_anneal_table, split_period
from hstcal_core.reffiles.headers import check_crds_header, useafter
from hstcal_stis.simulate import load_truth

REQUIRED = ("TELESCOP", "INSTRUME", "DETECTOR", "FILETYPE", "CCDAMP", "CCDGAIN", "CCDOFFST",
            "BINAXIS1", "BINAXIS2", "USEAFTER", "PEDIGREE", "DESCRIP")


def _run(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    return result


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    root = tmp_path_factory.mktemp("month")
    raw = root / "raw"
    result = _run("simulate", "--instrument", "stis_ccd", "--kind", "month", "--seed", "5",
                  "--out", raw)
    assert result.exit_code == 0, result.output
    out = root / "products"
    result = _run("run", "--instrument", "stis_ccd", "--stage", "anneal", "--anneal-table",
                  raw / "anneal_table.yml", raw, "--out", out)
    assert result.exit_code == 0, result.output
    month_dir = next(p for p in out.iterdir() if p.is_dir())
    return dict(raw=raw, out=out, month_dir=month_dir, truth=load_truth(raw),
                output=result.output)


def test_every_product_of_the_month_is_built(month):
    names = sorted(p.name for p in month["month_dir"].glob("*.fits"))
    assert names == sorted([
        "basebias_g1_1x1_bia.fits",
        *[f"weekbias_g1_1x1_wk0{i}_bia.fits" for i in range(1, 5)],
        "refbias_g1_2x2_wk01_bia.fits",  # 8 imsets >= the (1,2,2) threshold of 7
        "refbias_g4_1x1_biwk01_bia.fits", "refbias_g4_1x1_biwk02_bia.fits",  # threshold 1
        "basedark_g1_1x1_drk.fits",
        *[f"weekdark_g1_1x1_wk0{i}_drk.fits" for i in range(1, 5)],
    ])
    manifest = json.loads((month["month_dir"] / "manifest.json").read_text())
    assert {r["file"] for r in manifest["products"]} == set(names)
    assert all(r["status"] == "built" for r in manifest["products"])
    assert not list(month["month_dir"].glob(".*tmp"))


def test_weeks_tile_the_month_and_useafter_is_the_week_start(month):
    period = read_anneal_table(month["raw"] / "anneal_table.yml")[1]
    weeks = split_period(period, "WK")
    for week in weeks:
        hdr = fits.getheader(month["month_dir"] / f"weekdark_g1_1x1_{week.tag}_drk.fits")
        assert hdr["USEAFTER"] == useafter(week.start_mjd)
        start, end = hdr["TEXPSTRT"], hdr["TEXPEND"]
        assert week.start_mjd <= start and end <= week.end_mjd + 1.0
    base = fits.getheader(month["month_dir"] / "basebias_g1_1x1_bia.fits")
    assert base["USEAFTER"] == useafter(period.start_mjd)


def test_headers_are_crds_ready(month):
    raw_roots = {f.name.split("_")[0] for f in month["raw"].glob("*_raw.fits")}
    for path in month["month_dir"].glob("*.fits"):
        with fits.open(path) as h:
            hdr = h[0].header
            assert check_crds_header(hdr, REQUIRED) == [], path.name
            assert len(hdr["DESCRIP"]) == 67
            is_dark = path.name.endswith("_drk.fits")
            assert hdr["FILETYPE"] == ("DARK IMAGE" if is_dark else "CCD BIAS IMAGE")
            if is_dark:
                assert (hdr["CCDAMP"], hdr["CCDGAIN"], hdr["CCDOFFST"]) == ("ANY", -1, -1)
                assert hdr["REF_TEMP"] == 18.0 and hdr["DRK_VS_T"] == 0.07
            else:
                assert hdr["CCDAMP"] == "D" and hdr["CCDOFFST"] == 3
            history = "\n".join(hdr["HISTORY"])
            assert "hstcal-core" in history and "hstcal-stis" in history
            assert "Parameters:" in history and "crsigmas" in history
            used = [line.strip().split("_")[0] for line in hdr["HISTORY"]
                    if line.strip().endswith("_raw.fits")]
            assert used and set(used) <= raw_roots
            for ext in ("SCI", "ERR", "DQ"):
                assert h[ext].header["NCOMBINE"] == hdr["NCOMBINE"]
            assert h["SCI"].header["BUNIT"] == ("ELECTRONS/S" if is_dark else "COUNTS")
    gain4 = fits.getheader(month["month_dir"] / "refbias_g4_1x1_biwk01_bia.fits")
    assert gain4["CCDGAIN"] == 4 and gain4["DESCRIP"].startswith("Bi-weekly gain=4 bias")
    binned = fits.getheader(month["month_dir"] / "refbias_g1_2x2_wk01_bia.fits")
    assert (binned["BINAXIS1"], binned["BINAXIS2"]) == (2, 2)


def test_binned_superbias_matches_truth(month):
    truth = month["truth"].groups["bias_g1_2x2"]
    with fits.open(month["month_dir"] / "refbias_g1_2x2_wk01_bia.fits") as h:
        sci = h["SCI"].data.astype(np.float64)
        assert sci.shape == truth.shape == (512, 511)
        n = h[0].header["NCOMBINE"]
    floor = truth.read_noise_dn / np.sqrt(n)
    rms = np.sqrt(np.mean((sci - truth.bias_structure) ** 2))
    assert rms <= 1.05 * floor


def test_rerun_resumes_and_keeps_finished_products(month, tmp_path):
    out = tmp_path / "products"
    shutil.copytree(month["out"], out)
    month_dir = out / month["month_dir"].name
    victim = month_dir / "weekdark_g1_1x1_wk03_drk.fits"
    victim.unlink()  # as if the run had been killed before writing it
    stamps = {p.name: p.stat().st_mtime_ns for p in month_dir.glob("*.fits")}
    result = _run("run", "--instrument", "stis_ccd", "--stage", "anneal", "--anneal-table",
                  month["raw"] / "anneal_table.yml", month["raw"], "--out", out)
    assert result.exit_code == 0, result.output
    assert victim.exists()
    for name, stamp in stamps.items():
        assert (month_dir / name).stat().st_mtime_ns == stamp, f"{name} was rebuilt"
    manifest = json.loads((month_dir / "manifest.json").read_text())
    status = {r["file"]: r["status"] for r in manifest["products"]}
    assert status.pop(victim.name) == "built" and set(status.values()) == {"kept"}
    rebuilt = fits.getdata(victim, "SCI")
    np.testing.assert_array_equal(rebuilt, fits.getdata(month["month_dir"] / victim.name, "SCI"))


def test_corrupt_input_is_recorded_and_the_month_goes_on(month, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(month["raw"], raw)
    dark = sorted(raw.glob("*_raw.fits"), key=lambda p: fits.getval(p, "TEXPSTRT"))
    darks = [p for p in dark if fits.getval(p, "TARGNAME") == "DARK"]
    bad = darks[0]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "products"
    result = _run("run", "--instrument", "stis_ccd", "--stage", "anneal", "--anneal-table",
                  raw / "anneal_table.yml", raw, "--out", out)
    assert result.exit_code == 1
    assert f"FAILED   {bad}" in result.output and "truncated" in result.output
    month_dir = next(p for p in out.iterdir() if p.is_dir())
    # week 1 is left with one single-imset dark: that weekdark fails, with its reason ...
    assert "weekdark_g1_1x1_wk01_drk.fits" in result.output
    assert "cosmic-ray rejection needs at least 2 imsets" in result.output
    built = {p.name for p in month_dir.glob("*.fits")}
    assert len(built) == 12 and "weekdark_g1_1x1_wk01_drk.fits" not in built
    # ... and everything else is built, the basedark without the broken file
    with fits.open(month_dir / "basedark_g1_1x1_drk.fits") as h:
        history = "\n".join(h[0].header["HISTORY"])
        assert h[0].header["NCOMBINE"] == 7
    assert bad.name not in history
    manifest = json.loads((month_dir / "manifest.json").read_text())
    failed = [r for r in manifest["products"] if r["status"] == "failed"]
    assert [r["file"] for r in failed] == ["weekdark_g1_1x1_wk01_drk.fits"]


@pytest.mark.realdata
def test_month_split_by_the_real_refstis_anneal_database(shared_data, tmp_path):
    """Data simulated inside the real anneal month 2011-01-26 -> 2011-02-23 of refstis'
    anneal_info.db (end of anneal 1 to start of anneal 2) and split by that table."""
    from hstcal_stis.simulate import simulate_anneal_month

    db = shared_data / "stis_anneals" / "anneal_info.db"
    period = read_anneal_table(db)[0]
    raw = tmp_path / "raw"
    simulate_anneal_month(raw, seed=9, start_mjd=period.start_mjd, days=period.days,
                          bias_files_per_week=2, binned_bias_files=0, gain4_files_per_biweek=1,
                          darks_per_week=2)
    out = tmp_path / "products"
    result = _run("run", "--instrument", "stis_ccd", "--stage", "anneal", "--anneal-table", db,
                  raw, "--out", out)
    assert result.exit_code == 0, result.output
    month_dir = out / period.name
    manifest = json.loads((month_dir / "manifest.json").read_text())
    assert manifest["period"]["start_mjd"] == period.start_mjd
    weeks = split_period(period, "WK")
    assert len(weeks) == 3  # 27.13 days -> round 27 -> 3 weekly periods (refstis: 3)
    names = {p.name for p in month_dir.glob("*.fits")}
    assert {f"weekdark_g1_1x1_{w.tag}_drk.fits" for w in weeks} <= names
    assert {f"weekbias_g1_1x1_{w.tag}_bia.fits" for w in weeks} <= names
    for w in weeks:
        hdr = fits.getheader(month_dir / f"weekbias_g1_1x1_{w.tag}_bia.fits")
        assert hdr["USEAFTER"] == useafter(w.start_mjd)
