"""A posteriori alignment against the astrometric catalog service, offline.

:class:`CatalogService` is a real HTTP server on 127.0.0.1 standing in for drizzlepac's
service (``{SERVICELOCATION}/vo/CatalogSearch.aspx?RA=&DEC=&SR=&FORMAT=CSV&CAT=&MINDET=
[&EPOCH=]``): it checks the request and answers the sources of the truth catalog of a
simulated association inside the requested cone, moved to the requested epoch by their
proper motions, as drizzlepac reads them (CRLF lines, a first line it drops, then CSV with
Gaia's columns).  Every connection but to 127.0.0.1 is refused.

* the catalog is the cone served, asked for as drizzlepac's ``create_astrometric_catalog``
  asks and read as it reads;
* a service refusing EPOCH is asked again without it (drizzlepac) and the proper motions
  are applied here;
* the stage fitted to the service recovers the injected WCS error within 5 mas and names
  the catalog in WCSNAME (``OPUS-FIT_REL_GAIAeDR3``);
* failures (HTTP 500, empty answers, an ``Error`` line, a silent service, a closed port)
  raise a clear :class:`~hstcal_core.drizzle.align.CatalogServiceError`, bounded in time;
  in the stage the a posteriori candidate is dropped with that reason and the
  pipeline-default WCS is drizzled, nothing half-written.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from hstcal_core import get_registry, run_stage
from hstcal_core.drizzle import align
from hstcal_core.drizzle._thirdparty import import_drizzlepac, library_warnings
from hstcal_core.drizzle.switches import ENV_APOSTERIORI, ENV_APRIORI
from hstcal_core.simulate.flt import WcsError, simulate_flt_asn
from hstcal_core.simulate.starfield import positions_at_epoch
from hstcal_core.testing import file_digests

ERROR = WcsError(shift_arcsec=(0.25, -0.15), rotation_deg=0.02)
SERVICE_PATH = "/webservices/vo/CatalogSearch.aspx"  # under drizzlepac's DEF_CAT_URL
GAIA_COLUMNS = ("ra", "ra_error", "dec", "dec_error", "pmra", "pmra_error", "pmdec",
                "pmdec_error", "mag", "objID", "epoch")  # drizzlepac SUPPORTED_CATALOGS
NO_TABLE = b"Error: Cannot find table 0"  # the service's answer to any bad request
MODES = ("ok", "no-epoch", "http500", "empty", "no-rows", "error", "silent")


# --------------------------------------------------------------------------- the service
class CatalogService:
    """The astrometric catalog service on an ephemeral loopback port.

    Parameters
    ----------
    catalog : astropy.table.Table
        ``id``, ``ra``, ``dec`` (deg), ``flux``, ``pm_ra`` (× cos δ), ``pm_dec`` (mas/yr),
        ``epoch`` (yr): the sky it serves as GAIAeDR3.

    Attributes
    ----------
    mode : str
        ``ok``; ``no-epoch`` (an Error line to requests with EPOCH); ``http500``;
        ``empty`` (HTTP 200, no byte); ``no-rows`` (the header, no source); ``error``
        (an Error line to every request); ``silent`` (reads the request, never answers).
    requests : list of dict
        Query parameters of every request received on the service's path.
    served : list of astropy.table.Table
        Every table answered (catalog ``row``, ``ra``, ``dec`` exactly as written).
    """

    def __init__(self, catalog: Table) -> None:
        self.catalog = catalog
        self.mode = "ok"
        self.requests: list[dict[str, str]] = []
        self.served: list[Table] = []
        self.bad_requests: list[str] = []
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.service = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/webservices"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> CatalogService:  # noqa: PYI034 (typing.Self needs 3.11)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def reset(self, mode: str = "ok") -> None:
        """Serve in ``mode`` from now on, with empty logs (stalled answers are freed)."""
        assert mode in MODES
        self._release.set()
        self._release = threading.Event()
        self.mode, self.requests, self.served, self.bad_requests = mode, [], [], []

    def answer(self, path: str) -> tuple[int, bytes] | threading.Event:
        """The status and body for a GET of ``path``; an event to wait for when silent."""
        parts = urlsplit(path)
        if parts.path != SERVICE_PATH:
            self.bad_requests.append(path)
            return 404, b"not found"
        try:
            query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
        except ValueError:
            self.bad_requests.append(path)
            return 200, NO_TABLE
        self.requests.append(query)
        if self.mode == "silent":
            return self._release
        if self.mode == "http500":
            return 500, (b"<!DOCTYPE html>\r\n<html><head><title>Runtime Error</title></head>"
                         b"<body><h1>Server Error in '/webservices' Application.</h1>"
                         b"</body></html>\r\n")
        if self.mode == "empty":
            return 200, b""
        if (self.mode == "error" or {"RA", "DEC", "SR", "FORMAT", "CAT"} - set(query)
                or query["FORMAT"] != "CSV" or query["CAT"].upper() != "GAIAEDR3"
                or (self.mode == "no-epoch" and "EPOCH" in query)):
            return 200, NO_TABLE
        return 200, self._csv(float(query["RA"]), float(query["DEC"]), float(query["SR"]),
                              float(query["EPOCH"]) if "EPOCH" in query else None)

    def _csv(self, ra0: float, dec0: float, radius: float, epoch: float | None) -> bytes:
        cat = self.catalog
        if epoch is None:  # the catalog's own positions and epochs
            ra, dec = np.asarray(cat["ra"], float), np.asarray(cat["dec"], float)
            epochs = np.asarray(cat["epoch"], float)
        else:
            ra, dec = positions_at_epoch(cat, epoch)
            epochs = np.full(len(cat), epoch)
        sep = SkyCoord(ra0, dec0, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).deg
        inside = np.flatnonzero(sep <= radius) if self.mode != "no-rows" else []
        lines = [f"{len(inside)} records", ",".join(GAIA_COLUMNS)]
        for i in inside:
            mag = 25.0 - 2.5 * np.log10(float(cat["flux"][i]))
            lines.append(",".join([repr(float(ra[i])), "0.1", repr(float(dec[i])), "0.1",
                                   repr(float(cat["pm_ra"][i])), "0.05",
                                   repr(float(cat["pm_dec"][i])), "0.05", f"{mag:.4f}",
                                   str(int(cat["id"][i])), repr(float(epochs[i]))]))
        self.served.append(Table({"row": np.asarray(inside, dtype=int),
                                  "ra": ra[inside], "dec": dec[inside]}))
        return "\r\n".join(lines).encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        answer = self.server.service.answer(self.path)
        if isinstance(answer, threading.Event):
            answer.wait(30.0)  # until the test is over; the client gives up long before
            return
        status, body = answer
        self.send_response(status)
        self.send_header("Content-Type", "text/csv" if status == 200 else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _loopback_only(mp: pytest.MonkeyPatch, url: str) -> None:
    """Refuse every connection but to 127.0.0.1; point drizzlepac at ``url``."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise OSError(f"test allows loopback only: connection to {address!r} refused")
        return real_connect(self, address)

    mp.setattr(socket.socket, "connect", connect)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", ENV_APOSTERIORI, ENV_APRIORI, "ASTROMETRY_STEP_CONTROL"):
        mp.delenv(name, raising=False)
    mp.setenv("ASTROMETRIC_CATALOG_URL", url)
    mp.setattr(import_drizzlepac("haputils.astrometric_utils"), "SERVICELOCATION", url)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/webservices"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def association(tmp_path_factory):
    """Three dithered UVIS exposures (two 200x400 chips) with a common WCS error and
    stars with proper motions catalogued at 2016.0 (observed at 2017.7)."""
    return simulate_flt_asn(tmp_path_factory.mktemp("catalog_service") / "in",
                            get_registry().detector("wfc3_uvis"), shape=(200, 400),
                            n_exposures=3, n_stars=900, wcs_error=ERROR,
                            proper_motion_mas_yr=20.0, catalog_epoch=2016.0, seed=31)


@pytest.fixture(scope="module")
def service(association):
    with CatalogService(association.catalog) as server:
        yield server


@pytest.fixture
def online(service, monkeypatch):
    """The service, reset, the only place the test can connect to."""
    service.reset()
    _loopback_only(monkeypatch, service.url)
    return service


def expected_names(association):
    return sorted([f"{association.asn_id}_drz.fits", f"{association.asn_id}.tra"]
                  + [e.filename for e in association.exposures]
                  + [e.filename.replace(".fits", "_hlet.fits") for e in association.exposures])


# --------------------------------------------------------------------------- the catalog
def test_the_catalog_is_the_cone_served_at_the_epoch_of_observation(association, online):
    epoch = align.observation_epoch(association.files)
    reference = align.network_reference_catalog(association.files, "GAIAeDR3", epoch)
    assert online.bad_requests == []
    [request] = online.requests
    assert {k: request[k] for k in ("FORMAT", "CAT", "MINDET")} == {
        "FORMAT": "CSV", "CAT": "GAIAeDR3", "MINDET": "5"}
    assert float(request["EPOCH"]) == pytest.approx(epoch, abs=5e-4)
    assert 0 < float(request["SR"]) < 20 / 3600  # the footprint's circle, not the sky
    [served] = online.served
    assert 100 < len(served) < len(association.catalog)  # a cone: not every star
    np.testing.assert_array_equal(reference.ra, served["ra"])  # same values, same order
    np.testing.assert_array_equal(reference.dec, served["dec"])
    ra, dec = positions_at_epoch(association.catalog[served["row"]], epoch)
    # EPOCH is sent with 3 decimals (drizzlepac): 0.0005 yr of 20 mas/yr motions
    np.testing.assert_allclose(reference.ra, ra, rtol=0, atol=0.1 / 3.6e6)
    np.testing.assert_allclose(reference.dec, dec, rtol=0, atol=0.1 / 3.6e6)
    assert reference.name == "GAIAeDR3" and reference.epoch == epoch
    assert reference.proper_motion_applied


def test_the_request_and_the_reading_are_drizzlepacs(association, online):
    """drizzlepac's own create_astrometric_catalog against the same service: the same
    request (bar EPOCH's source: DATE-OBS there, the mean EXPSTART here) and the same
    positions read."""
    amutils = import_drizzlepac("haputils.astrometric_utils")
    with library_warnings():
        theirs = amutils.create_astrometric_catalog([str(f) for f in association.files],
                                                    catalog="GAIAeDR3", output=None)
    epoch = align.observation_epoch(association.files)
    ours = align.network_reference_catalog(association.files, "GAIAeDR3", epoch)
    assert online.bad_requests == []
    theirs_request, ours_request = online.requests
    assert float(ours_request.pop("EPOCH")) == pytest.approx(float(theirs_request.pop("EPOCH")),
                                                             abs=2e-3)
    assert ours_request == theirs_request
    assert len(theirs) == len(ours)
    order = np.argsort(np.asarray(theirs["RA"]))  # drizzlepac sorts by magnitude
    np.testing.assert_array_equal(np.sort(ours.ra), np.asarray(theirs["RA"])[order])
    np.testing.assert_array_equal(ours.dec[np.argsort(ours.ra)],
                                  np.asarray(theirs["DEC"])[order])


def test_a_service_refusing_epoch_is_asked_again_and_motions_applied_here(association, online,
                                                                         caplog):
    online.reset("no-epoch")
    epoch = align.observation_epoch(association.files)
    with caplog.at_level(logging.INFO, logger=align.__name__):
        reference = align.network_reference_catalog(association.files, "GAIAeDR3", epoch)
    first, second = online.requests
    assert "EPOCH" in first and "EPOCH" not in second  # drizzlepac's retry
    assert {k: v for k, v in first.items() if k != "EPOCH"} == second
    [served] = online.served  # positions at 2016.0
    assert not np.allclose(served["ra"], reference.ra, rtol=0, atol=1 / 3.6e6)
    ra, dec = positions_at_epoch(association.catalog[served["row"]], epoch)
    np.testing.assert_allclose(reference.ra, ra, rtol=0, atol=1e-6 / 3.6e6)
    np.testing.assert_allclose(reference.dec, dec, rtol=0, atol=1e-6 / 3.6e6)
    assert reference.proper_motion_applied
    assert "asking again without" in caplog.text
    assert "proper motions applied here from epoch 2016.000" in caplog.text


# --------------------------------------------------------------------------- failures
FAILURES = {  # mode: what the error says
    "http500": r"failed: HTTP 500, '<!DOCTYPE html>'",
    "empty": r"answered no table",
    "no-rows": r"has no source within 1\d\.\d arcsec of RA 150\.1",
    "error": r"failed: HTTP 200, 'Error: Cannot find table 0'",
    "silent": r"did not answer within 0\.3 s",
    "closed": r"could not be reached \(.*Connection refused",
}


@pytest.mark.parametrize("mode", list(FAILURES))
def test_service_failures_raise_a_clear_error_in_bounded_time(association, online, mode,
                                                              monkeypatch):
    if mode == "closed":
        monkeypatch.setattr(import_drizzlepac("haputils.astrometric_utils"), "SERVICELOCATION",
                            _closed_port_url())
    else:
        online.reset(mode)
    epoch = align.observation_epoch(association.files)
    started = time.monotonic()
    with pytest.raises(align.CatalogServiceError, match=FAILURES[mode]) as info:
        align.network_reference_catalog(association.files, "GAIAeDR3", epoch, timeout=0.3)
    assert time.monotonic() - started < 5.0
    assert "/webservices/vo/CatalogSearch.aspx?RA=" in str(info.value)  # the request named
    # drizzlepac asks again without EPOCH after an Error line, and only then
    assert len(online.requests) == {"closed": 0, "error": 2}.get(mode, 1)


def test_a_catalog_drizzlepac_cannot_read_is_refused_before_asking(association, online):
    with pytest.raises(align.CatalogServiceError, match="'GAIADR9' is not one drizzlepac"):
        align.network_reference_catalog(association.files, "GAIADR9", 2017.7)
    assert online.requests == []


# --------------------------------------------------------------------------- the stage
@pytest.fixture(scope="module")
def network_run(association, service, tmp_path_factory):
    """The stage, a posteriori on, no --catalog: the service is asked."""
    mp = pytest.MonkeyPatch()
    _loopback_only(mp, service.url)
    try:
        service.reset()
        before = file_digests(association.asn_path.parent)
        out = tmp_path_factory.mktemp("network_out")
        result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                           out=out, aposteriori=True)
        assert file_digests(association.asn_path.parent) == before  # inputs never touched
        return result, out, list(service.requests)
    finally:
        mp.undo()


def test_stage_fit_to_the_service_recovers_the_injected_error_within_5_mas(association,
                                                                          network_run):
    result, out, requests = network_run
    assert [r["CAT"] for r in requests] == ["GAIAeDR3"] and "EPOCH" in requests[0]
    assert result.details["solution"] == "aposteriori"
    errors = []
    for exposure in association.exposures:
        for chip in exposure.chips:
            assert chip.wcs_error_mas(association.asn_path.parent / exposure.filename) > 250
            errors.append(chip.wcs_error_mas(out / exposure.filename))
    print(f"recovered WCS error: max {max(errors):.2f} mas over {len(errors)} chips")
    assert max(errors) < 5.0


def test_stage_headers_name_the_service_catalog(association, network_run):
    result, out, _ = network_run
    assert sorted(p.name for p in out.iterdir()) == expected_names(association)
    post = result.details["candidates"][1]
    assert post["name"] == "aposteriori" and post["verified"]
    with fits.open(out / f"{association.asn_id}_drz.fits") as hdul:
        assert hdul[0].header["EXPWCSNM"] == "OPUS-FIT_REL_GAIAeDR3"
        assert hdul[0].header["ALIGNSOL"] == "aposteriori"
    for exposure in association.exposures:
        with fits.open(out / exposure.filename) as hdul:
            sci = hdul["SCI", 1].header
            assert sci["WCSNAME"] == "OPUS-FIT_REL_GAIAeDR3"
            assert sci["NMATCHES"] >= 4 and sci["RMS_RA"] < 5.0
        with fits.open(out / exposure.filename.replace(".fits", "_hlet.fits")) as hdul:
            assert hdul[0].header["WCSNAME"] == "OPUS-FIT_REL_GAIAeDR3"
    text = (out / f"{association.asn_id}.tra").read_text()
    assert "asking the GAIAeDR3 service (network)" in text
    assert "GAIAeDR3 catalog service:" in text and "sources within" in text


STAGE_FAILURES = [
    pytest.param("silent", "did not answer within 0.5 s", id="silent"),
    pytest.param("http500", "failed: HTTP 500", id="http500", marks=pytest.mark.slow),
    pytest.param("empty", "answered no table", id="empty", marks=pytest.mark.slow),
    pytest.param("closed", "could not be reached", id="closed", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("mode", "reason"), STAGE_FAILURES)
def test_stage_drops_the_candidate_and_drizzles_the_default_wcs(association, online, mode,
                                                                reason, tmp_path,
                                                                monkeypatch):
    """runastrodriz: an alignment failure is logged, "No correction to absolute
    astrometric frame applied", the pipeline-default WCS is drizzled."""
    if mode == "closed":
        monkeypatch.setattr(import_drizzlepac("haputils.astrometric_utils"), "SERVICELOCATION",
                            _closed_port_url())
    else:
        online.reset(mode)
    monkeypatch.setattr(align, "SERVICE_TIMEOUT_S", 0.5)
    started = time.monotonic()
    result = run_stage("drizzle", detector="wfc3_uvis", inputs=[association.asn_path],
                       out=tmp_path, aposteriori=True)
    print(f"stage with a failing service ({mode}): {time.monotonic() - started:.1f} s")
    default, post = result.details["candidates"]
    assert result.details["solution"] == "pipeline-default" and default["verified"]
    assert post["name"] == "aposteriori" and not post["verified"]
    assert "CatalogServiceError" in post["note"] and reason in post["note"]
    assert post["note"].endswith("keeping the pipeline-default WCS")
    assert sorted(p.name for p in tmp_path.iterdir()) == expected_names(association)
    for exposure in association.exposures:
        with fits.open(tmp_path / exposure.filename) as hdul:
            assert hdul["SCI", 1].header["WCSNAME"] == "OPUS"
            assert hdul[0].header["ALIGNSOL"] == "pipeline-default"
    text = (tmp_path / f"{association.asn_id}.tra").read_text()
    assert ("[WARNING ] hstcal_core.drizzle.stage: a posteriori alignment failed "
            "(CatalogServiceError: the GAIAeDR3 catalog service") in text
    assert reason in text and "solution chosen: pipeline-default" in text
