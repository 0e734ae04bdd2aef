"""MastArchive against the loopback fake MAST (hstcal_core.testing.FakeMast): no internet."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from hstcal_core.archive import Archive, ArchiveFile, Dataset, QueryCriteria
from hstcal_core.archive.headers import file_checksum
from hstcal_core.archive.mast import MastArchive
from hstcal_core.errors import ArchiveError, HstcalError

# rootname: (TARGNAME, TEXPSTRT, per-imset exposure time, PROPOSID, has an SPT file)
EXPOSURES = {
    "o8ab01aaq": ("BIAS", 55600.00, 0.0, 12400, True),
    "o8ab01abq": ("DARK", 55600.50, 60.0, 12400, True),
    "o8ab01acq": ("DARK", 55601.00, 60.0, 12400, True),  # starts exactly at the window end
    "o8ab01adq": ("DARK", 55600.70, 1100.0, 12500, True),
    "o8ab01aeq": ("HD-12345", 55600.20, 30.0, 12600, False),  # science; no SPT served
}
WINDOW = (55600.0, 55601.0)


def write_spt(path: Path, rootname: str, targname: str, proposal: int) -> Path:
    """A support file as MAST serves it: headers naming the exposure, no exposure times."""
    h = fits.Header()
    h["INSTRUME"], h["DETECTOR"], h["ROOTNAME"] = "STIS", "CCD", rootname.upper()
    h["TARGNAME"], h["PROPOSID"] = targname, proposal
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(name="UDL")]).writeto(path)
    return path


def make_served(stis_raw, tmp_path: Path, subdir: str, exposures=EXPOSURES) -> Path:
    served = tmp_path / subdir
    (served / "stis").mkdir(parents=True)
    for rootname, (target, start, exptime, proposal, spt) in exposures.items():
        raw = stis_raw(f"{subdir}/stis/{rootname}_raw.fits", shape=(16, 16), nimsets=1,
                       targname=target, exptime=exptime, texpstrt=start, seed=len(rootname))
        fits.setval(raw, "PROPOSID", value=proposal)
        if spt:
            write_spt(served / "stis" / f"{rootname}_spt.fits", rootname, target, proposal)
    return served


def criteria(**kwargs) -> QueryCriteria:
    base = {"detector": "stis_ccd", "purpose": "dark", "instrument_name": ("STIS/CCD",),
            "file_types": ("RAW", "SPT"), "intent": "calibration"}
    base.update(kwargs)
    return QueryCriteria(**base)


@pytest.fixture
def served(stis_raw, tmp_path) -> Path:
    return make_served(stis_raw, tmp_path, "served")


@pytest.fixture
def server(fake_mast, served):
    return fake_mast(served)


@pytest.fixture
def archive(server):
    with MastArchive(server.url, retries=3, backoff=0.001, timeout=10) as mast:
        yield mast


def roots(datasets) -> list[str]:
    return [d.rootname for d in datasets]


# ---------------------------------------------------------------------- recorded answers


def test_recorded_responses_answer_a_stis_ccd_query(fake_mast):
    server = fake_mast()
    with MastArchive(server.url, backoff=0.001) as mast:
        found = mast.query(criteria(intent="science", exptime=(2.0, 3.0)))
        assert roots(found) == ["o6au01msq"]
        (dataset,) = found
        assert dataset.instrument_name == "STIS/CCD"
        assert dataset.target == "EV-LAC"
        assert dataset.proposal == "8880"
        assert dataset.start_mjd == pytest.approx(52172.68712)
        assert dataset.exptime == pytest.approx(2.1)
        # The recorded product list belongs to another observation (WFPC2 U9O40504M):
        # the dataset is returned, without files, for the caller to reject.
        assert dataset.files == ()

        assert roots(mast.query(criteria(intent=None))) == ["o6au01msq", "o6au01mtq",
                                                            "o6au01muq"]
        assert mast.query(criteria(intent="calibration")) == []  # EV Lac is science
        assert mast.query(criteria(instrument_name=("WFC3/UVIS", "WFC3/IR"),
                                   intent=None)) == []
    assert "Mast.Caom.Filtered" in server.services


# ---------------------------------------------------------------------- queries over files


def test_archive_protocol(archive):
    assert isinstance(archive, Archive)
    assert (archive.name, archive.local) == ("mast", False)


def test_time_window_is_half_open(archive, served):
    found = archive.query(criteria(target_name=("DARK*",)).between(*WINDOW))
    # o8ab01acq starts exactly at the end of the window: MAST's t_min filter includes it,
    # the archive must not.
    assert roots(found) == ["o8ab01abq", "o8ab01adq"]  # by start time
    for dataset in found:
        assert [f.file_type for f in dataset.files] == ["RAW", "SPT"]
        for f in dataset.files:
            path = served / "stis" / f.name
            assert f.size == path.stat().st_size
            assert f.location == f"mast:HST/product/{f.name}"
            assert f.checksum is None
    assert found[0].exptime == pytest.approx(60.0)
    assert found[0].start_mjd == pytest.approx(55600.5)
    later = archive.query(criteria(target_name=("DARK*",)).between(55601.0, 55602.0))
    assert roots(later) == ["o8ab01acq"]


def test_exptime_range_is_inclusive(archive):
    assert roots(archive.query(criteria(exptime=(50.0, 100.0)))) == ["o8ab01abq", "o8ab01acq"]
    assert roots(archive.query(criteria(exptime=(60.0, 60.0)))) == ["o8ab01abq", "o8ab01acq"]
    assert roots(archive.query(criteria(exptime=(1000.0, 2000.0)))) == ["o8ab01adq"]


def test_intent_and_target_patterns(archive):
    calibration = roots(archive.query(criteria()))
    assert calibration == ["o8ab01aaq", "o8ab01abq", "o8ab01adq", "o8ab01acq"]
    science = archive.query(criteria(intent="science", file_types=("RAW", "SPT")))
    assert roots(science) == ["o8ab01aeq"]
    # No SPT is served for it: the dataset still comes back, with the RAW only.
    assert [f.file_type for f in science[0].files] == ["RAW"]
    assert roots(archive.query(criteria(intent=None, target_name=("hd-%",)))) == ["o8ab01aeq"]
    assert roots(archive.query(criteria(target_name=("BIAS",)))) == ["o8ab01aaq"]


def test_several_wildcards_become_separate_queries(archive, server):
    before = server.services.count("Mast.Caom.Filtered")
    found = archive.query(criteria(intent=None, target_name=("BI*", "HD*", "DARK")))
    assert roots(found) == ["o8ab01aaq", "o8ab01aeq", "o8ab01abq", "o8ab01adq", "o8ab01acq"]
    assert server.services.count("Mast.Caom.Filtered") - before == 2


def test_proposal_filter(archive):
    assert roots(archive.query(criteria(proposals=("12500",)))) == ["o8ab01adq"]
    assert roots(archive.query(criteria(proposals=("12400", "12500"),
                                        target_name=("DARK",)))) == [
        "o8ab01abq", "o8ab01adq", "o8ab01acq"]
    assert archive.query(criteria(proposals=("99999",))) == []


def test_only_wanted_file_types(archive):
    (dataset,) = archive.query(criteria(file_types=("SPT",), proposals=("12500",)))
    assert [f.name for f in dataset.files] == ["o8ab01adq_spt.fits"]
    (dataset,) = archive.query(criteria(file_types=("FLT", "RAW"), proposals=("12500",)))
    assert [f.file_type for f in dataset.files] == ["RAW"]


def test_paged_answers_are_joined(fake_mast, served):
    server = fake_mast(served)
    with MastArchive(server.url, pagesize=2, backoff=0.001) as mast:
        found = mast.query(criteria(intent=None))
    assert roots(found) == ["o8ab01aaq", "o8ab01aeq", "o8ab01abq", "o8ab01adq", "o8ab01acq"]
    assert sum(len(d.files) for d in found) == 9
    # 5 rows in pages of 2 and 9 products in pages of 2
    assert server.services.count("Mast.Caom.Filtered") == 3
    assert server.services.count("Mast.Caom.Products") == 5


# ---------------------------------------------------------------------- fetch


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_fetch_downloads_identical_bytes_once(archive, server, served, tmp_path):
    (dataset,) = archive.query(criteria(proposals=("12500",)))
    scratch = tmp_path / "scratch"
    paths = archive.fetch(dataset, scratch)
    assert set(paths) == {"RAW", "SPT"}
    for path in paths.values():
        assert path.parent == scratch
        assert path.read_bytes() == (served / "stis" / path.name).read_bytes()
    assert sorted(server.downloads()) == ["o8ab01adq_raw.fits", "o8ab01adq_spt.fits"]
    assert leftovers(scratch) == []

    again = archive.fetch(dataset, scratch)
    assert again == paths
    assert len(server.downloads()) == 2  # nothing downloaded the second time


def test_fetch_replaces_a_wrong_sized_file(archive, server, served, tmp_path):
    (dataset,) = archive.query(criteria(proposals=("12500",), file_types=("RAW",)))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "o8ab01adq_raw.fits").write_bytes(b"half a file")
    (scratch / "o8ab01adq_raw.fits.part").write_bytes(b"stale partial download")
    path = archive.fetch(dataset, scratch)["RAW"]
    assert path.read_bytes() == (served / "stis" / "o8ab01adq_raw.fits").read_bytes()
    assert server.downloads() == ["o8ab01adq_raw.fits"]
    assert leftovers(scratch) == []


def test_fetch_retries_server_errors(archive, server, served, tmp_path):
    (dataset,) = archive.query(criteria(proposals=("12500",), file_types=("RAW",)))
    server.fail_next(2, status=503)
    path = archive.fetch(dataset, tmp_path / "scratch")["RAW"]
    assert path.read_bytes() == (served / "stis" / path.name).read_bytes()
    assert server.downloads() == ["o8ab01adq_raw.fits"] * 3


def test_truncated_download_never_takes_the_final_name(fake_mast, served, tmp_path):
    server = fake_mast(served)
    scratch = tmp_path / "scratch"
    with MastArchive(server.url, retries=0, backoff=0.001) as impatient:
        (dataset,) = impatient.query(criteria(proposals=("12500",), file_types=("RAW",)))
        server.truncate_next(1)
        with pytest.raises(ArchiveError, match="o8ab01adq_raw.fits.*short download"):
            impatient.fetch(dataset, scratch)
    assert list(scratch.iterdir()) == []  # neither the short file nor a .part

    with MastArchive(server.url, retries=2, backoff=0.001) as patient:
        server.truncate_next(1)
        path = patient.fetch(dataset, scratch)["RAW"]
    assert path.read_bytes() == (served / "stis" / path.name).read_bytes()
    assert server.downloads() == ["o8ab01adq_raw.fits"] * 3
    assert leftovers(scratch) == []


def test_persistent_failure_names_file_url_and_problem(archive, server, tmp_path):
    (dataset,) = archive.query(criteria(proposals=("12500",), file_types=("RAW",)))
    server.fail_next(10, status=500)
    scratch = tmp_path / "scratch"
    with pytest.raises(ArchiveError) as failure:
        archive.fetch(dataset, scratch)
    message = str(failure.value)
    assert isinstance(failure.value, HstcalError)
    assert "o8ab01adq_raw.fits" in message
    assert f"{server.url}/api/v0.1/Download/file?uri=mast:HST/product/o8ab01adq_raw.fits" in message
    assert "HTTP 500" in message and "4 attempt(s)" in message
    assert len(server.downloads()) == 4  # retries=3
    assert list(scratch.iterdir()) == []


def test_missing_file_is_not_retried(archive, server, tmp_path):
    ghost = Dataset(rootname="o8ab01zzq", instrument_name="STIS/CCD", target="DARK",
                    start_mjd=55600.0, end_mjd=55600.1, exptime=60.0,
                    files=(ArchiveFile("RAW", "o8ab01zzq_raw.fits",
                                       "mast:HST/product/o8ab01zzq_raw.fits", size=10),))
    with pytest.raises(ArchiveError, match="o8ab01zzq_raw.fits.*1 attempt.*HTTP 404"):
        archive.fetch(ghost, tmp_path / "scratch")
    assert server.downloads() == ["o8ab01zzq_raw.fits"]


def test_checksum_is_verified_when_known(archive, server, served, tmp_path):
    source = served / "stis" / "o8ab01abq_raw.fits"

    def dataset(checksum):
        return Dataset(rootname="o8ab01abq", instrument_name="STIS/CCD", target="DARK",
                       start_mjd=55600.5, end_mjd=55600.51, exptime=60.0,
                       files=(ArchiveFile("RAW", source.name, f"mast:HST/product/{source.name}",
                                          size=source.stat().st_size, checksum=checksum),))

    with pytest.raises(ArchiveError, match="checksum mismatch"):
        archive.fetch(dataset("md5:" + "0" * 32), tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
    good = archive.fetch(dataset(file_checksum(source)), tmp_path / "good")["RAW"]
    assert good.read_bytes() == source.read_bytes()


def test_refuses_names_outside_scratch(archive, tmp_path):
    sneaky = Dataset(rootname="x", instrument_name="STIS/CCD", target="DARK", start_mjd=0.0,
                     end_mjd=0.0, exptime=0.0,
                     files=(ArchiveFile("RAW", "../x_raw.fits", "mast:HST/product/x_raw.fits"),))
    with pytest.raises(ArchiveError, match="refusing"):
        archive.fetch(sneaky, tmp_path / "scratch")


# ---------------------------------------------------------------------- configuration


def test_two_servers_do_not_interfere(fake_mast, stis_raw, tmp_path):
    first = fake_mast(make_served(stis_raw, tmp_path, "first",
                                  {"o8ab01aaq": EXPOSURES["o8ab01aaq"]}))
    second = fake_mast(make_served(stis_raw, tmp_path, "second",
                                   {"o8ab01abq": EXPOSURES["o8ab01abq"]}))
    assert first.url != second.url
    with MastArchive(first.url, backoff=0.001) as a, MastArchive(second.url, backoff=0.001) as b:
        assert a.server == first.url and b.server == second.url
        assert b.download_url("mast:HST/product/x_raw.fits") == (
            f"{second.url}/api/v0.1/Download/file?uri=mast:HST/product/x_raw.fits")
        found_a, found_b = a.query(criteria()), b.query(criteria())
        assert roots(found_a) == ["o8ab01aaq"]
        assert roots(found_b) == ["o8ab01abq"]
        a.fetch(found_a[0], tmp_path / "scratch")
    assert sorted(first.downloads()) == ["o8ab01aaq_raw.fits", "o8ab01aaq_spt.fits"]
    assert second.downloads() == []
    # each archive asked its own server for the columns configuration
    for server in (first, second):
        assert ("POST", "/portal/Mashup/Mashup.asmx/columnsconfig") in server.requests


def test_astroquery_global_server_is_untouched(fake_mast):
    from astroquery.mast import Observations, conf
    from astroquery.mast.discovery_portal import PortalAPI

    server = fake_mast()
    with MastArchive(server.url) as mast:
        assert mast.server == server.url
    assert conf.server == "https://mast.stsci.edu"
    assert PortalAPI.MAST_REQUEST_URL == "https://mast.stsci.edu/api/v0/invoke"
    assert Observations._portal_api_connection.MAST_DOWNLOAD_URL == (
        "https://mast.stsci.edu/api/v0.1/Download/file")


def test_query_failure_is_an_archive_error(fake_mast):
    server = fake_mast()
    url = server.url
    server.stop()  # nothing listens there any more
    with (MastArchive(url, retries=1, backoff=0.001, timeout=5) as mast,
          pytest.raises(ArchiveError, match=f"MAST query at {url} failed after 2 attempt")):
        mast.query(criteria())


# ---------------------------------------------------------------------- the fake itself


def invoke(server, service: str, params: dict) -> dict:
    import json

    import requests

    request = {"service": service, "params": params, "format": "json", "pagesize": 100,
               "page": 1}
    with requests.post(f"{server.url}/api/v0/invoke", data={"request": json.dumps(request)},
                       timeout=10) as response:
        response.raise_for_status()
        return response.json()


def test_fake_mast_filters_as_mast_does(server):
    def obs_ids(filters, columns="*"):
        answer = invoke(server, "Mast.Caom.Filtered", {"columns": columns, "filters": filters})
        assert answer["status"] == "COMPLETE"
        return sorted(row.get("obs_id", row.get("Column1")) for row in answer["data"])

    window = {"paramName": "t_min", "values": [{"min": WINDOW[0], "max": WINDOW[1]}]}
    darks = {"paramName": "target_name", "values": [], "freeText": "da%"}
    # continuous ranges are inclusive on the server: the exposure at the end is included
    assert obs_ids([window, darks]) == ["O8AB01ABQ", "O8AB01ACQ", "O8AB01ADQ"]
    # exact values OR-ed with the LIKE pattern; discrete matches ignore case
    either = {"paramName": "target_name", "values": ["bias"], "freeText": "HD-%"}
    assert obs_ids([either]) == ["O8AB01AAQ", "O8AB01AEQ"]
    project = {"paramName": "project", "separator": ";", "values": ["HST"]}
    assert obs_ids([project, {"paramName": "proposal_id", "values": ["12500"]}]) == ["O8AB01ADQ"]
    assert obs_ids([window, darks], columns="COUNT_BIG(*)") == [3]
    unknown = invoke(server, "Mast.Catalogs.Tic.Cone", {})
    assert unknown["status"] == "ERROR" and "Mast.Catalogs.Tic.Cone" in unknown["msg"]


def test_fake_mast_downloads_head_range_and_404(server, served):
    import requests

    source = served / "stis" / "o8ab01abq_spt.fits"
    url = f"{server.url}/api/v0.1/Download/file?uri=mast:HST/product/{source.name}"
    with requests.head(url, timeout=10) as head:
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) == source.stat().st_size
    with requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10) as part:
        assert part.status_code == 206
        assert part.content == source.read_bytes()[10:20]
    with requests.get(url.replace("abq_spt", "zzq_spt"), timeout=10) as missing:
        assert missing.status_code == 404
    assert server.downloads() == [source.name, "o8ab01zzq_spt.fits"]  # HEAD is not a download


def test_a_silent_server_times_out():
    import socket

    # A listening socket that never answers: the kernel completes the handshake, nobody reads.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (MastArchive(url, retries=1, backoff=0.001, timeout=0.2) as mast,
              pytest.raises(ArchiveError, match="2 attempt.*(Timeout|timed out)")):
            mast.query(criteria())
