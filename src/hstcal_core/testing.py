"""pytest fixtures for hstcal and for plugin authors (registered as a ``pytest11`` plugin).

* ``shared_data`` — the real HST files in ``../shared/data`` (tests skip, with the
  reason, when that directory is absent); override with ``HSTCAL_SHARED_DATA``.
* ``hstcal_registry`` — a freshly built registry of the installed plugins.
* ``fresh_registry`` — a registry holding only the core built-ins, to which a test
  adds plugins with ``registry.add_plugin(module, name)``.
* :func:`registered_detector` — a detector of the installed plugins, or a skip naming it;
  :func:`file_digests` — SHA-256 of every file of a directory (inputs left untouched?).
* ``fake_mast`` — a factory starting :class:`FakeMast`, a real loopback HTTP server
  speaking the MAST endpoints astroquery uses (query, product list, download), with
  fault injection; ``fake_mast(files=dir)`` serves the FITS files under ``dir``,
  ``fake_mast()`` the recorded responses.  Skips when ``../shared/data`` (where the
  recorded responses live) is absent.  Point :class:`~hstcal_core.archive.mast.MastArchive`
  at ``server.url``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = [
    "FakeMast",
    "fake_mast",
    "file_digests",
    "find_shared_data",
    "fresh_registry",
    "hstcal_registry",
    "registered_detector",
    "shared_data",
]


def find_shared_data(start: Path | None = None) -> Path | None:
    """Locate ``shared/data`` next to the project root (or via HSTCAL_SHARED_DATA)."""
    env = os.environ.get("HSTCAL_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    here = (start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        candidate = base.parent / "shared" / "data"
        if (base / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data(pytestconfig) -> Path:
    """Path of ``../shared/data``; skips the test when it is not available."""
    path = find_shared_data(Path(str(pytestconfig.rootpath)))
    if path is None:
        pytest.skip("real HST data not available: ../shared/data is absent "
                    "(set HSTCAL_SHARED_DATA to point at it)")
    return path


@pytest.fixture
def hstcal_registry():
    """A registry freshly built from the installed entry points."""
    from .registry import build_registry

    return build_registry()


@pytest.fixture
def fresh_registry():
    """A registry with only the core built-ins loaded."""
    from . import builtin
    from .registry import Registry

    registry = Registry()
    registry.add_plugin(builtin, "core", distribution="hstcal-core")
    return registry


def registered_detector(name: str):
    """The detector ``name`` of the installed plugins; skips the test when no installed
    plugin registers it."""
    from . import get_registry
    from .errors import UnknownDetectorError

    try:
        return get_registry().detector(name)
    except UnknownDetectorError as exc:
        pytest.skip(f"detector {name} is not registered (plugin not installed): {exc}")


def file_digests(directory: Path) -> dict[str, str]:
    """``{name: sha256}`` of the files directly in ``directory``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- fake MAST

_log = logging.getLogger(__name__)

_RECORDED = ("columnsconfig.json", "advSearch.json", "countsResp.json", "products.json")

# Product subgroups MAST labels AUXILIARY (the rest are SCIENCE), as in its HST product lists.
_AUXILIARY = frozenset({"SPT", "TRL", "ASN", "JIF", "JIT", "WSP", "EPC", "SHF", "SHM", "C3M",
                        "C3T", "CGR", "DGR", "Q0F", "Q0M", "Q1F", "Q1M", "X0F", "X0M", "PDQ",
                        "CMI", "CMH", "CMJ", "LSP", "ACQ"})

_DOWNLOAD_PATH = "/api/v0.1/Download/file"
_PRODUCT_URI = "mast:HST/product/"


class FakeMast:
    """A loopback MAST: a real HTTP server on 127.0.0.1 answering astroquery 0.4.11.

    Served endpoints (everything else is 404):

    * ``POST /portal/Mashup/Mashup.asmx/columnsconfig`` — the recorded columns config;
    * ``POST /api/v0/invoke`` — ``Mast.Caom.Filtered`` (observation rows filtered by the
      request's filters as MAST does: discrete ``values`` and ``freeText`` SQL ``LIKE``
      patterns, case-insensitive, OR-ed; continuous ``{"min", "max"}`` inclusive;
      ``COUNT_BIG(*)`` requests answer a count) and ``Mast.Caom.Products`` (the product
      rows of the requested ``obsid`` values), paged as requested;
    * ``GET``/``HEAD /api/v0.1/Download/file?uri=mast:HST/product/<name>`` — the file, with
      ``Content-Length`` and single-range ``Range`` support.

    Parameters
    ----------
    recorded : Path
        Directory of recorded MAST responses (``shared/data/mast``): the envelopes,
        ``fields`` schemas and, without ``files``, the rows served.
    files : Path or None
        Directory tree of HST FITS files to serve.  Each rootname becomes one CAOM
        observation built from its headers (:func:`~hstcal_core.archive.headers.describe_file`):
        ``obs_id`` upper case, ``instrument_name``, ``target_name``, ``intentType``,
        ``t_min``/``t_max``/``t_exptime``, ``proposal_id`` and a stable integer ``obsid``;
        each file one product (``productSubGroupDescription`` = the upper-cased suffix,
        ``size`` = its byte size).  The tree is re-read on each query, so files may be
        added while the server runs.  None: serve the recorded rows (three STIS/CCD
        observations of EV Lac) and the recorded products (22 of WFPC2 ``U9O40504M``,
        obsid 2003738726); nothing is downloadable then.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>`` once started.
    requests : list of (str, str)
        Every request received, as ``(method, unquoted path with query)``.
    services : list of str
        The ``service`` of every ``/api/v0/invoke`` request.

    Examples
    --------
    >>> with FakeMast(shared / "mast", files=raw_dir) as server:          # doctest: +SKIP
    ...     archive = MastArchive(server.url, backoff=0.01)
    ...     server.fail_next(1, status=503)
    ...     archive.fetch(archive.query(criteria)[0], scratch)
    """

    def __init__(self, recorded: Path, files: Path | None = None) -> None:
        self.recorded = Path(recorded)
        self.files = None if files is None else Path(files)
        missing = [name for name in _RECORDED if not (self.recorded / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.recorded}: recorded MAST responses missing: "
                                    f"{', '.join(missing)}")
        self._recorded = {name: json.loads((self.recorded / name).read_text())
                          for name in _RECORDED}
        self.url: str | None = None
        self.requests: list[tuple[str, str]] = []
        self.services: list[str] = []
        self._faults: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._facts: dict[Path, tuple[tuple[int, int], dict]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FakeMast:
        """Listen on an ephemeral loopback port in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = _FakeMastHTTPServer(("127.0.0.1", 0), _FakeMastHandler)
        httpd.fake = self
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-mast-{httpd.server_address[1]}", daemon=True)
        self._thread.start()
        _log.debug("fake MAST listening at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (waits for requests in progress)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeMast:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------- faults and log

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """Answer the next ``n`` file downloads (GET) with HTTP ``status``."""
        with self._lock:
            self._faults.extend([("fail", int(status))] * n)

    def clear_faults(self) -> None:
        """Forget the injected faults not yet used (the archive is back)."""
        with self._lock:
            self._faults.clear()

    def truncate_next(self, n: int = 1) -> None:
        """Announce the full ``Content-Length`` on the next ``n`` downloads (GET) but
        close the connection after half of the bytes."""
        with self._lock:
            self._faults.extend([("truncate", 0)] * n)

    def downloads(self) -> list[str]:
        """File names of the GET download requests received, in order (failed ones too)."""
        names = []
        for method, path in list(self.requests):
            parts = urlsplit(path)
            if method == "GET" and parts.path == _DOWNLOAD_PATH:
                uri = parse_qs(parts.query).get("uri", [""])[0]
                names.append(uri.rsplit("/", 1)[-1])
        return names

    def observations(self) -> list[dict[str, Any]]:
        """The CAOM observation rows served (before filtering)."""
        return self._observation_rows()

    # ------------------------------------------------------------- request handling

    def _serve(self, handler: _FakeMastHandler, method: str) -> None:
        with self._lock:
            self.requests.append((method, unquote(handler.path)))
        parts = urlsplit(handler.path)
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length).decode("utf-8", "replace")
            if parts.path == "/portal/Mashup/Mashup.asmx/columnsconfig":
                return _send_json(handler, self._recorded["columnsconfig.json"])
            if parts.path == "/api/v0/invoke":
                return _send_json(handler, self._invoke(body))
        elif parts.path == _DOWNLOAD_PATH:
            uri = parse_qs(parts.query).get("uri", [""])[0]
            return self._download(handler, uri, head=(method == "HEAD"))
        _send_bytes(handler, 404, b"not served by the fake MAST\n", "text/plain",
                    head=(method == "HEAD"))

    def _invoke(self, body: str) -> dict[str, Any]:
        try:
            request = json.loads(parse_qs(body)["request"][0])
            service = str(request["service"])
        except (KeyError, IndexError, ValueError) as exc:
            return _error_envelope(f"malformed Mashup request ({exc})")
        params = request.get("params") or {}
        with self._lock:
            self.services.append(service)
        if service == "Mast.Caom.Filtered":
            rows = [row for row in self._observation_rows()
                    if _row_passes(row, params.get("filters") or [])]
            if "COUNT_BIG" in str(params.get("columns", "")).upper():
                counts = dict(self._recorded["countsResp.json"])
                counts["data"] = [{"Column1": len(rows)}]
                return counts
            return self._page(self._observation_fields(), rows, request)
        if service == "Mast.Caom.Products":
            obsids = {s.strip() for s in str(params.get("obsid", "")).split(",") if s.strip()}
            return self._page(self._recorded["products.json"]["fields"],
                              self._product_rows(obsids), request)
        return _error_envelope(f"the fake MAST serves Mast.Caom.Filtered and "
                               f"Mast.Caom.Products, not {service}")

    def _page(self, fields: list[dict], rows: list[dict], request: dict) -> dict[str, Any]:
        pagesize = max(1, int(request.get("pagesize") or len(rows) or 1))
        page = max(1, int(request.get("page") or 1))
        chunk = rows[(page - 1) * pagesize:page * pagesize]
        return {"status": "COMPLETE", "msg": "", "data": chunk, "fields": fields,
                "paging": {"page": page, "pageSize": pagesize,
                           "pagesFiltered": max(1, -(-len(rows) // pagesize)),
                           "rows": len(chunk), "rowsFiltered": len(rows),
                           "rowsTotal": len(rows)}}

    def _download(self, handler: _FakeMastHandler, uri: str, head: bool) -> None:
        path = self._served_files().get(uri.rsplit("/", 1)[-1]) \
            if uri.startswith(_PRODUCT_URI) else None
        if path is None:
            return _send_bytes(handler, 404, f"{uri}: no such product\n".encode(), "text/plain",
                               head=head)
        fault = None
        if not head:
            with self._lock:
                fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault[0] == "fail":
            return _send_bytes(handler, fault[1], b"injected failure\n", "text/plain")
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        wanted = _parse_range(handler.headers.get("Range"), size)
        if wanted is not None:
            first, last, status = wanted[0], wanted[1], 206
        length = max(0, last - first + 1)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(length))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Disposition", f"attachment; filename={path.name}")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        handler.end_headers()
        if head:
            return
        if fault is not None:  # truncate: the full length announced, half of it sent
            length //= 2
        with open(path, "rb") as source:
            source.seek(first)
            _copy(source, handler.wfile, length)
        handler.wfile.flush()
        if fault is not None:
            handler.close_connection = True

    # ------------------------------------------------------------- what is served

    def _observation_fields(self) -> list[dict]:
        fields = list(self._recorded["advSearch.json"]["fields"])
        if not any(f["name"] == "intentType" for f in fields):
            # The recorded answer was trimmed of intentType; real MAST rows carry it.
            fields.append({"name": "intentType", "type": "string"})
        return fields

    def _observation_rows(self) -> list[dict[str, Any]]:
        from .archive.headers import _CALIBRATION_TARGETS

        if self.files is None:
            rows = []
            for recorded in self._recorded["advSearch.json"]["data"]:
                row = dict(recorded)
                if "intentType" not in row:
                    target = str(row.get("target_name") or "")
                    row["intentType"] = ("calibration" if _CALIBRATION_TARGETS.match(target)
                                         else "science")
                rows.append(row)
            return rows
        names = [f["name"] for f in self._observation_fields()]
        return [self._observation_row(rootname, members, names)
                for rootname, members in sorted(self._index().items())]

    def _observation_row(self, rootname: str, members: list[tuple[Path, dict]],
                         names: list[str]) -> dict[str, Any]:
        # Timed files (raw, flt) describe the exposure; SPT/ASN files only fill gaps.
        ordered = sorted(members, key=lambda m: (m[1].get("start_mjd") is None,
                                                 m[1].get("file_type") != "RAW", m[0].name))

        def fact(key):
            return next((m[1][key] for m in ordered if m[1].get(key) not in (None, "")), None)

        header = fact("header") or {}
        obs_id = rootname.upper()
        intent = fact("intent") or "science"
        end = fact("end_mjd")
        row: dict[str, Any] = dict.fromkeys(names)
        row.update(
            dataproduct_type="spectrum" if str(fact("obstype") or "").startswith("SPEC")
            else "image",
            calib_level=1, obs_collection="HST", project="HST", obs_id=obs_id,
            target_name=fact("target") or "", t_min=fact("start_mjd"), t_max=end,
            t_exptime=fact("exptime"), wavelength_region="OPTICAL",
            filters=str(next((header[k] for k in ("OPT_ELEM", "FILTER1", "FILTNAM1", "FILTER2")
                              if header.get(k) not in (None, "")), "")),
            target_classification="CALIBRATION" if intent == "calibration" else "",
            obs_title="", t_obs_release=end, instrument_name=fact("instrument_name") or "",
            proposal_pi="", proposal_id=str(fact("proposal") or ""), s_region="",
            obsid=_stable_id(obs_id), objID=_stable_id("obj:" + obs_id), intentType=intent,
        )
        return row

    def _product_rows(self, obsids: set[str]) -> list[dict[str, Any]]:
        if self.files is None:
            return [dict(row) for row in self._recorded["products.json"]["data"]
                    if str(row.get("obsID")) in obsids]
        rows = []
        for rootname, members in sorted(self._index().items()):
            obs_id = rootname.upper()
            obsid = _stable_id(obs_id)
            if str(obsid) not in obsids:
                continue
            for path, facts in sorted(members, key=lambda m: m[0].name):
                file_type = str(facts.get("file_type") or "").upper()
                rows.append({
                    "obsID": obsid, "obs_collection": "HST", "dataproduct_type": "image",
                    "obs_id": obs_id, "description": f"DADS {file_type} file",
                    "type": "S", "dataURI": _PRODUCT_URI + path.name,
                    "productType": "AUXILIARY" if file_type in _AUXILIARY else "SCIENCE",
                    "productGroupDescription": None, "productSubGroupDescription": file_type,
                    "productDocumentationURL": None, "project": "HST", "prvversion": None,
                    "productFilename": path.name, "size": path.stat().st_size,
                    "_selected_": None,
                })
        return rows

    def _served_files(self) -> dict[str, Path]:
        return {path.name: path for members in self._index().values() for path, _ in members}

    def _index(self) -> dict[str, list[tuple[Path, dict]]]:
        """FITS files under ``files`` by rootname (file name), with their header facts."""
        from .archive.headers import FITS_SUFFIXES, describe_file, split_name
        from .errors import InputError

        if self.files is None:
            return {}
        by_rootname: dict[str, list[tuple[Path, dict]]] = {}
        for path in sorted(self.files.rglob("*")):
            parts = split_name(path.name)
            if parts is None or not path.name.lower().endswith(FITS_SUFFIXES) \
                    or not path.is_file():
                continue
            stat = path.stat()
            key = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                cached = self._facts.get(path)
            if cached is None or cached[0] != key:
                try:
                    facts = dict(describe_file(path))
                except InputError as exc:
                    _log.warning("fake MAST: not serving %s", exc)
                    continue
                facts["file_type"] = parts[1]
                cached = (key, facts)
                with self._lock:
                    self._facts[path] = cached
            by_rootname.setdefault(parts[0], []).append((path, cached[1]))
        return by_rootname


class _FakeMastHTTPServer(ThreadingHTTPServer):
    fake: FakeMast

    def handle_error(self, request, client_address) -> None:
        # A client hanging up mid-download (as astroquery does after a HEAD) is routine.
        _log.debug("fake MAST: request from %s ended abruptly", client_address, exc_info=True)


class _FakeMastHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stopping the server leaves no idle sockets.
    protocol_version = "HTTP/1.0"
    server_version = "FakeMAST/1.0"
    server: _FakeMastHTTPServer

    def do_GET(self) -> None:
        self.server.fake._serve(self, "GET")

    def do_HEAD(self) -> None:
        self.server.fake._serve(self, "HEAD")

    def do_POST(self) -> None:
        self.server.fake._serve(self, "POST")

    def log_message(self, format: str, *args) -> None:
        _log.debug("fake MAST: " + format, *args)


def _send_bytes(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
                head: bool = False) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not head:
        handler.wfile.write(body)


def _send_json(handler: BaseHTTPRequestHandler, payload: Any) -> None:
    _send_bytes(handler, 200, json.dumps(payload).encode(), "application/json")


def _error_envelope(message: str) -> dict[str, Any]:
    return {"status": "ERROR", "msg": message, "data": [], "fields": []}


def _copy(source, destination, length: int) -> None:
    while length > 0:
        block = source.read(min(length, 1 << 16))
        if not block:
            break
        destination.write(block)
        length -= len(block)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``bytes=a-b`` / ``a-`` / ``-n`` range; None otherwise."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if match is None or match[1] == match[2] == "":
        return None
    if match[1] == "":
        first, last = max(0, size - int(match[2])), size - 1
    else:
        first = int(match[1])
        last = min(size - 1, int(match[2])) if match[2] else size - 1
    return (first, last) if first <= last else None


def _stable_id(text: str) -> int:
    """A stable 10-digit integer for a name (CAOM obsid look-alike)."""
    return 2_000_000_000 + zlib.crc32(text.encode()) % 1_000_000_000


def _like(value: str, pattern: str) -> bool:
    """SQL ``LIKE`` (``%`` any run, ``_`` one character), case-insensitive as MAST's."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _row_passes(row: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    """Whether an observation row satisfies every Mashup filter (AND of filters)."""
    for entry in filters:
        name = str(entry.get("paramName", ""))
        value = next((v for k, v in row.items() if k.lower() == name.lower()), None)
        values = entry.get("values") or []
        free_text = entry.get("freeText")
        if values and isinstance(values[0], dict):
            low, high = values[0].get("min"), values[0].get("max")
            try:
                number = float(value)
            except (TypeError, ValueError):
                return False
            if (low is not None and number < float(low)) or \
                    (high is not None and number > float(high)):
                return False
            continue
        if not values and not free_text:
            continue
        separator = entry.get("separator")
        text = "" if value is None else str(value)
        candidates = [c.strip() for c in (text.split(separator) if separator else [text])]
        exact = {str(v).strip().upper() for v in values}
        if not any(c.upper() in exact or (free_text and _like(c, str(free_text)))
                   for c in candidates):
            return False
    return True


@pytest.fixture
def fake_mast(pytestconfig):
    """Factory starting loopback MAST servers, stopped when the test ends.

    ``fake_mast(files=None)`` returns a started :class:`FakeMast` serving the FITS files
    under ``files`` (or, without, the recorded responses).  Skips the test when the
    recorded responses (``../shared/data/mast``) are absent.
    """
    shared = find_shared_data(Path(str(pytestconfig.rootpath)))
    if shared is None:
        pytest.skip("recorded MAST responses not available: ../shared/data is absent "
                    "(set HSTCAL_SHARED_DATA to point at it)")
    recorded = shared / "mast"
    if not all((recorded / name).is_file() for name in _RECORDED):
        pytest.skip(f"recorded MAST responses not available: {recorded} lacks "
                    f"{', '.join(_RECORDED)}")
    started: list[FakeMast] = []

    def start(files: Path | None = None) -> FakeMast:
        server = FakeMast(recorded, files).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
