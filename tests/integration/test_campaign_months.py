"""A month-chunked campaign of a per-exposure stage (STIS ``calibrate``) across the STIS
failure of 2004-08-03: the partial month keeps only its active days, the inactive month is
never queried, every dark gets its calibrated product, and status works before any run.
The campaign's database (archive index and state) is SQLite and then PostgreSQL."""

import pytest
import yaml
from astropy.io import fits

from hstcal_core.campaign import Campaign
from hstcal_core.campaign.chunks import to_mjd
from hstcal_stis.simulate import simulate_stis_ccd


@pytest.fixture
def campaign(tmp_path, database_url):
    archive = tmp_path / "archive"
    # two darks in July 2004, one on 2004-08-02 (active), one on 2004-08-20 (STIS was dead:
    # a file there cannot exist on MAST, but the campaign must not even look)
    times = [to_mjd("2004-07-05"), to_mjd("2004-07-20"), to_mjd("2004-08-02"),
             to_mjd("2004-08-20")]
    truth = simulate_stis_ccd(archive, kind="dark", count=4, seed=2, start_times_mjd=times,
                              exptime=1100.0)
    data = {"name": "months", "start": "2004-07-01", "end": "2004-10-01",
            "archive": {"root": str(archive)}, "out": str(tmp_path / "out"),
            "database": database_url,
            "executor": {"workers": 0},
            "detectors": {"stis_ccd": {"stages": ["calibrate"], "purposes": ["dark"]}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return Campaign.from_yaml(path), truth, tmp_path / "out"


def test_status_before_any_run_shows_pending_and_inactive_months(campaign):
    c, _, _ = campaign
    assert [(r.chunk, r.status) for r in c.status()] == [
        ("2004-07", "pending"), ("2004-08", "pending"), ("2004-09", "inactive")]


def test_each_dark_is_calibrated_and_the_dead_days_are_skipped(campaign):
    c, truth, out = campaign
    report = c.run()
    assert report.ok and report.inactive == 1
    assert [(r.chunk, r.status, r.n_processed) for r in c.status()] == [
        ("2004-07", "done", 2), ("2004-08", "done", 1), ("2004-09", "inactive", 0)]
    products = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_calibrate.fits"))
    roots = [r.lower() for r in truth.rootnames]
    assert products == [f"stis_ccd/calibrate/2004-07/{roots[0]}_calibrate.fits",
                        f"stis_ccd/calibrate/2004-07/{roots[1]}_calibrate.fits",
                        f"stis_ccd/calibrate/2004-08/{roots[2]}_calibrate.fits"]
    with fits.open(out / products[0]) as hdul:
        assert hdul[0].header["BLEVCORR"] == "COMPLETE"
    assert roots[3] not in {e["rootname"] for e in c.exposures()}
