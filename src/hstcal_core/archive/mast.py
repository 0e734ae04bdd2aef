"""MAST as an archive backend, through astroquery.

:class:`MastArchive` answers :class:`~hstcal_core.archive.base.QueryCriteria` with
astroquery's CAOM flow — ``Observations.query_criteria`` → ``get_product_list`` →
keep the wanted ``productSubGroupDescription`` values — and downloads the files of a
:class:`~hstcal_core.archive.base.Dataset` into a scratch directory, resumably and
atomically (``<name>.part`` + size/checksum check + :func:`os.replace`), retrying
transient failures with exponential backoff.

The server is a constructor argument, not global configuration: astroquery 0.4.11
copies ``conf.server`` into class attributes of its connection classes at import
time, so each :class:`MastArchive` builds its own ``ObservationsClass`` and sets the
URLs as *instance* attributes of that object's connections.  Tests point it at the
loopback fake in :mod:`hstcal_core.testing`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import requests

from ..errors import ArchiveError, ConfigError
from .base import ArchiveFile, Dataset, QueryCriteria, match_name
from .headers import file_checksum, split_name

if TYPE_CHECKING:  # astroquery is imported when an archive is built (it is slow to import)
    from astroquery.mast import ObservationsClass

__all__ = ["MastArchive", "DEFAULT_SERVER"]

log = logging.getLogger(__name__)

DEFAULT_SERVER = "https://mast.stsci.edu"

T = TypeVar("T")

# HTTP statuses worth asking again for; any other 4xx is an answer, not a hiccup.
_TRANSIENT_STATUS = frozenset({408, 425, 429})

# obsids per Mast.Caom.Products request (astroquery sends them comma-separated in one form field).
_PRODUCT_BATCH = 500


class _Retry(Exception):
    """A download or request attempt failed in a way another attempt may fix."""


class _GiveUp(Exception):
    """A failure another attempt cannot fix (404, refused file name, ...)."""


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives every request of a session a time-out (astroquery's portal requests have none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class MastArchive:
    """HST exposures from MAST (or a MAST-compatible server) via ``astroquery.mast``.

    Parameters
    ----------
    server : str
        Base URL of the MAST server, without a trailing slash (``https://mast.stsci.edu``;
        the loopback fake's ``url`` in tests).
    cloud : bool
        Download public HST files from the STScI open-data copy on AWS S3
        (``Observations.enable_cloud_dataset(provider="AWS")``; needs ``boto3``); files
        missing from the cloud copy fall back to ``server``.  Queries always go to
        ``server``.
    retries : int
        How many times a failed request or download is tried *again* (total attempts:
        ``retries + 1``).  Retried: connection errors, time-outs, HTTP 5xx/408/429,
        short or corrupt downloads.  Not retried: other HTTP 4xx (404: no such file).
    backoff : float
        Seconds before the first retry; doubled before each further retry.
    timeout : float
        Seconds to wait for the server on one request (connect, and between bytes of an
        answer); applies to queries and downloads.
    pagesize : int or None
        Rows per page of MAST query answers (astroquery's ``conf.pagesize`` when None).
    chunk_size : int
        Bytes per block written while streaming a download.

    Raises
    ------
    ConfigError
        When ``cloud=True`` and ``boto3`` is not installed, or a parameter is invalid.

    Notes
    -----
    Datasets are returned even when MAST lists none (or only some) of the wanted file
    types: :attr:`Dataset.files` holds what was found, and the caller rejects incomplete
    datasets with a reason (MAST's answer is the fact; the policy is the campaign's).
    MAST's product list carries no checksum, so :attr:`ArchiveFile.checksum` is None
    and downloads are verified by size; a checksum given by a caller is verified too.
    """

    name = "mast"
    local = False

    def __init__(self, server: str = DEFAULT_SERVER, *, cloud: bool = False, retries: int = 4,
                 backoff: float = 2.0, timeout: float = 600.0, pagesize: int | None = None,
                 chunk_size: int = 1 << 20) -> None:
        if retries < 0:
            raise ConfigError(f"retries: must be >= 0, got {retries}")
        if backoff < 0:
            raise ConfigError(f"backoff: must be >= 0 seconds, got {backoff}")
        if pagesize is not None and pagesize < 1:
            raise ConfigError(f"pagesize: must be >= 1, got {pagesize}")
        from astroquery.mast import ObservationsClass

        self.server = server.rstrip("/")
        self.cloud = cloud
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self.chunk_size = int(chunk_size)
        self._observations: ObservationsClass = ObservationsClass()
        self._point_at(self.server, pagesize)
        adapter = _TimeoutAdapter(self.timeout)
        self._observations._session.mount("http://", adapter)
        self._observations._session.mount("https://", adapter)
        if cloud:
            try:
                self._observations.enable_cloud_dataset(provider="AWS", verbose=False)
            except ImportError as exc:
                raise ConfigError(f"cloud: downloading from the AWS copy of MAST needs boto3 "
                                  f"({exc}); install boto3 or use cloud=False") from None

    def _point_at(self, server: str, pagesize: int | None) -> None:
        # astroquery 0.4.11 binds these URLs as class attributes from conf.server at import
        # (discovery_portal.PortalAPI, services.ServiceAPI, auth.MastAuth); instance
        # attributes shadow them for this archive only.
        portal = self._observations._portal_api_connection
        portal.MAST_REQUEST_URL = f"{server}/api/v0/invoke"
        portal.COLUMNS_CONFIG_URL = f"{server}/portal/Mashup/Mashup.asmx/columnsconfig"
        portal.MAST_DOWNLOAD_URL = f"{server}/api/v0.1/Download/file"
        portal.MAST_BUNDLE_URL = f"{server}/api/v0.1/Download/bundle"
        # The columns-config cache is a class-level dict shared by every PortalAPI.
        portal._column_configs = {}
        if pagesize is not None:
            portal.PAGESIZE = int(pagesize)
        services = self._observations._service_api_connection
        services.SERVICE_URL = server
        services.REQUEST_URL = f"{server}/api/v0.1/"
        services.MISSIONS_DOWNLOAD_URL = f"{server}/search/"
        services.MAST_DOWNLOAD_URL = f"{server}/api/v0.1/Download/file"
        self._observations._auth_obj.SESSION_INFO_URL = f"{server}/whoami"

    def __repr__(self) -> str:
        return f"MastArchive(server={self.server!r}, cloud={self.cloud})"

    def close(self) -> None:
        """Close the HTTP session (its pooled connections)."""
        self._observations._session.close()

    def __enter__(self) -> MastArchive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ query

    def query(self, criteria: QueryCriteria) -> list[Dataset]:
        """List the exposures matching ``criteria``, with the wanted files MAST has.

        Parameters
        ----------
        criteria : QueryCriteria
            What to look for; ``time`` is a half-open ``[start, end)`` window on the
            exposure start (MAST filters ``t_min`` inclusively; the end is enforced here).

        Returns
        -------
        list of Dataset
            One per observation (``obs_id`` lower cased as rootname), sorted by start
            time then rootname; ``files`` lists the wanted product subgroups found, in the
            order of ``criteria.file_types`` (possibly fewer than asked, see Notes of the
            class).

        Raises
        ------
        ArchiveError
            When MAST cannot be reached after the retries or rejects the query.
        """
        observations: dict[str, dict[str, Any]] = {}
        for filters in self._filter_sets(criteria):
            rows = self._call("query", lambda f=filters: self._observations.query_criteria(**f))
            for row in rows:
                observations.setdefault(str(row["obsid"]), row)
        kept = {obsid: row for obsid, row in observations.items() if _row_matches(row, criteria)}
        log.info("MAST %s: %d observation(s) for %s/%s (%d before client-side checks)",
                 self.server, len(kept), criteria.detector, criteria.purpose, len(observations))
        products = self._products(list(kept))
        wanted = tuple(t.upper() for t in criteria.file_types)
        datasets = [_dataset(row, products.get(obsid, []), wanted) for obsid, row in kept.items()]
        datasets.sort(key=lambda d: (d.start_mjd if not math.isnan(d.start_mjd) else math.inf,
                                     d.rootname))
        return datasets

    def _filter_sets(self, criteria: QueryCriteria) -> list[dict[str, Any]]:
        """astroquery ``query_criteria`` keyword sets covering ``criteria``.

        astroquery accepts one wildcard value per filter (it warns and drops the others),
        so several wildcard patterns become several queries, merged by ``obsid``.
        """
        base: dict[str, Any] = {"project": criteria.project}
        if criteria.intent is not None:
            base["intentType"] = criteria.intent
        if criteria.exptime is not None:
            base["t_exptime"] = [float(criteria.exptime[0]), float(criteria.exptime[1])]
        if criteria.time is not None:
            base["t_min"] = [float(criteria.time[0]), float(criteria.time[1])]
        if criteria.proposals:
            base["proposal_id"] = [str(p) for p in criteria.proposals]
        sets = []
        for instruments, targets in itertools.product(_value_groups(criteria.instrument_name),
                                                      _value_groups(criteria.target_name)):
            filters = dict(base)
            if instruments:
                filters["instrument_name"] = instruments
            if targets:
                filters["target_name"] = targets
            sets.append(filters)
        return sets

    def _products(self, obsids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Product rows per parent ``obsid`` (Mast.Caom.Products), in batches."""
        by_obsid: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(obsids), _PRODUCT_BATCH):
            batch = list(obsids[i:i + _PRODUCT_BATCH])
            rows = self._call("product list",
                              lambda b=batch: self._observations.get_product_list(b))
            for row in rows:
                by_obsid.setdefault(str(row.get("obsID")), []).append(row)
        return by_obsid

    def _call(self, what: str, request: Callable[[], Any]) -> list[dict[str, Any]]:
        """Run one astroquery request with retries; the answer table as plain dicts."""
        from astroquery.exceptions import (InvalidQueryError, NoResultsWarning,
                                           RemoteServiceError)

        def attempt():
            with warnings.catch_warnings():
                # An empty answer is an answer (logged by the caller), not a warning.
                warnings.simplefilter("ignore", NoResultsWarning)
                try:
                    return request()
                except (RemoteServiceError, InvalidQueryError) as exc:
                    raise _GiveUp(f"{type(exc).__name__}: {exc}") from None
                except Exception as exc:
                    raise _as_retry(exc) from None

        table = self._with_retries(attempt, lambda problem, attempts: ArchiveError(
            f"MAST {what} at {self.server} failed after {attempts} attempt(s): {problem}"))
        return _records(table)

    def _with_retries(self, attempt: Callable[[], T],
                      failure: Callable[[str, int], ArchiveError]) -> T:
        problem = ""
        for number in range(1, self.retries + 2):
            try:
                return attempt()
            except _GiveUp as exc:
                raise failure(str(exc), number) from None
            except _Retry as exc:
                problem = str(exc)
            if number <= self.retries:
                delay = self.backoff * 2 ** (number - 1)
                log.warning("%s; retrying in %.3g s (%d of %d)", problem, delay, number,
                            self.retries)
                time.sleep(delay)
        raise failure(problem, self.retries + 1)

    # ------------------------------------------------------------------ fetch

    def fetch(self, dataset: Dataset, scratch: Path) -> dict[str, Path]:
        """Download the files of ``dataset`` into ``scratch`` (flat) and return their paths.

        A file already in ``scratch`` with the expected size (and checksum, when known)
        is not downloaded again, so an interrupted fetch resumes file by file.  Each file
        is streamed to ``<name>.part``, verified against the announced
        ``Content-Length``, MAST's size and the checksum, then renamed into place: a file
        under its final name is always complete.

        Parameters
        ----------
        dataset : Dataset
            As returned by :meth:`query`.
        scratch : Path
            Download directory (created if needed).

        Returns
        -------
        dict of str to Path
            ``{file_type: path}`` for every file of the dataset.

        Raises
        ------
        ArchiveError
            When a file cannot be downloaded after the retries, or the server says it
            does not exist; the message names the file, the URL and the last problem.
        """
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for archive_file in dataset.files:
            name = Path(archive_file.name).name
            if not name or name != archive_file.name or name.endswith(".part"):
                raise ArchiveError(f"{archive_file.name!r}: refusing to write a file of "
                                   f"{dataset.rootname} under this name")
            target = scratch / name
            if _is_complete(target, archive_file):
                log.debug("%s: already in %s", name, scratch)
            else:
                self._download(archive_file, target)
            paths[archive_file.file_type] = target
        return paths

    def download_url(self, location: str) -> str:
        """The HTTP URL this archive downloads a ``mast:`` data URI from."""
        if location.startswith(("http://", "https://")):
            return location
        base = self._observations._portal_api_connection.MAST_DOWNLOAD_URL
        return f"{base}?uri={quote(location, safe=':/')}"

    def _download(self, archive_file: ArchiveFile, target: Path) -> None:
        url = self.download_url(archive_file.location)
        part = target.with_name(target.name + ".part")

        def attempt() -> None:
            try:
                announced = self._transfer(archive_file, url, part)
                _verify(part, archive_file, announced)
                os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)

        log.info("downloading %s from %s", archive_file.name, url)
        self._with_retries(attempt, lambda problem, attempts: ArchiveError(
            f"{archive_file.name}: download from {url} failed after {attempts} attempt(s): "
            f"{problem}"))

    def _transfer(self, archive_file: ArchiveFile, url: str, part: Path) -> int | None:
        """Write the bytes of one file to ``part``; the announced byte count if any."""
        if self._observations._cloud_connection is not None and url != archive_file.location:
            try:
                status, message, _ = self._observations.download_file(
                    archive_file.location, local_path=str(part), cache=False, verbose=False)
            except Exception as exc:
                raise _as_retry(exc) from None
            if status != "COMPLETE":
                raise _Retry(f"{status}: {message}")
            return None
        try:
            with self._observations._session.get(url, stream=True,
                                                 timeout=self.timeout) as response:
                response.raise_for_status()
                announced = response.headers.get("Content-Length")
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                with open(part, "wb") as out:
                    out.writelines(response.iter_content(self.chunk_size))
        except Exception as exc:
            raise _as_retry(exc) from None
        return int(announced) if announced is not None and not encoded else None


# ---------------------------------------------------------------------- helpers


def _as_retry(exc: Exception) -> Exception:
    """Classify a requests/astroquery exception as worth another attempt or not."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        problem = f"HTTP {status} {getattr(exc.response, 'reason', '') or ''}".strip()
        if status is None or status >= 500 or status in _TRANSIENT_STATUS:
            return _Retry(problem)
        return _GiveUp(problem)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        # the body ended before its announced Content-Length (urllib3 IncompleteRead)
        return _Retry(f"short download: {exc.args[-1] if exc.args else exc}")
    if isinstance(exc, (requests.RequestException, OSError, ValueError)):
        # connection refused/reset, time-outs, truncated bodies, garbled JSON
        return _Retry(f"{type(exc).__name__}: {exc}")
    return exc


def _value_groups(patterns: Iterable[str]) -> list[list[str]]:
    """Split values into groups of exact values plus at most one wildcard pattern each."""
    exact = [p for p in patterns if "*" not in p and "%" not in p]
    wild = [p for p in patterns if "*" in p or "%" in p]
    if not wild:
        return [exact]
    return [exact + wild[:1]] + [[w] for w in wild[1:]]


def _records(table) -> list[dict[str, Any]]:
    """Rows of an astropy table as dicts of Python values (masked and NaN → None)."""
    if table is None or len(table) == 0:
        return []
    columns = {name: table[name].tolist() for name in table.colnames}
    rows = []
    for i in range(len(table)):
        row = {}
        for name, values in columns.items():
            value = values[i]
            if isinstance(value, float) and math.isnan(value):
                value = None
            row[name] = value
        rows.append(row)
    return rows


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _row_matches(row: dict[str, Any], criteria: QueryCriteria) -> bool:
    """Client-side check of what MAST cannot express (half-open end) or may bend."""
    start = _float(row.get("t_min"))
    if criteria.time is not None and not (criteria.time[0] <= start < criteria.time[1]):
        return False
    if criteria.exptime is not None:
        exptime = _float(row.get("t_exptime"))
        if not criteria.exptime[0] <= exptime <= criteria.exptime[1]:
            return False
    if not match_name(str(row.get("instrument_name") or ""), criteria.instrument_name):
        return False
    if not match_name(str(row.get("target_name") or ""), criteria.target_name):
        return False
    if criteria.proposals and str(row.get("proposal_id") or "").strip() not in {
            str(p).strip() for p in criteria.proposals}:
        return False
    return True


def _dataset(row: dict[str, Any], products: list[dict[str, Any]],
             wanted: tuple[str, ...]) -> Dataset:
    rootname = str(row["obs_id"]).strip().lower()
    candidates: dict[str, dict[str, dict[str, Any]]] = {}
    for product in products:
        file_type = str(product.get("productSubGroupDescription") or "").strip().upper()
        filename = str(product.get("productFilename") or "")
        if file_type in wanted and filename:
            candidates.setdefault(file_type, {})[filename] = product
    files = []
    for file_type in wanted:
        found = candidates.get(file_type, {})
        # An association lists its members' files under its own obsid; the exposure's own
        # file is the one named by its rootname (JIF/JIT files carry another last letter).
        own = [p for name, p in found.items() if (split_name(name) or ("",))[0] == rootname]
        chosen = own[0] if own else (next(iter(found.values())) if len(found) == 1 else None)
        if chosen is None:
            if found:
                log.debug("%s: %d %s products, none named after it; skipped", rootname,
                          len(found), file_type)
            continue
        size = chosen.get("size")
        files.append(ArchiveFile(file_type=file_type, name=str(chosen["productFilename"]),
                                 location=str(chosen["dataURI"]),
                                 size=int(size) if size is not None else None,
                                 checksum=None))
    return Dataset(rootname=rootname,
                   instrument_name=str(row.get("instrument_name") or ""),
                   target=str(row.get("target_name") or ""),
                   start_mjd=_float(row.get("t_min")),
                   end_mjd=_float(row.get("t_max")),
                   exptime=_float(row.get("t_exptime")),
                   files=tuple(files),
                   proposal=str(row.get("proposal_id") or ""))


def _checksum_matches(path: Path, checksum: str) -> bool:
    algorithm, _, digest = checksum.partition(":")
    if not digest:
        algorithm, digest = "md5", algorithm
    return file_checksum(path, algorithm.lower()).partition(":")[2] == digest.lower()


def _is_complete(path: Path, archive_file: ArchiveFile) -> bool:
    """Whether a file already in place can be taken as downloaded.

    Only verified downloads are renamed into place, so without a known size or
    checksum an existing file is accepted.
    """
    if not path.is_file():
        return False
    if archive_file.size is not None and path.stat().st_size != archive_file.size:
        log.info("%s: present with %d bytes, MAST lists %d; downloading again", path.name,
                 path.stat().st_size, archive_file.size)
        return False
    if archive_file.checksum and not _checksum_matches(path, archive_file.checksum):
        log.info("%s: present but its checksum differs; downloading again", path.name)
        return False
    return True


def _verify(part: Path, archive_file: ArchiveFile, announced: int | None) -> None:
    got = part.stat().st_size
    if announced is not None and got != announced:
        raise _Retry(f"short download: {got} of {announced} bytes")
    if archive_file.size is not None and got != archive_file.size:
        if announced is None:
            raise _Retry(f"short download: {got} of {archive_file.size} bytes")
        # The server delivered what it announced; MAST's catalogue size is stale.
        log.warning("%s: MAST lists %d bytes, the server sent %d", archive_file.name,
                    archive_file.size, got)
    if archive_file.checksum and not _checksum_matches(part, archive_file.checksum):
        raise _Retry(f"checksum mismatch: expected {archive_file.checksum}, got "
                     f"{file_checksum(part)}")
