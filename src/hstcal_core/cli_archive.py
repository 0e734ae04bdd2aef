"""``hstcal archive index|query|stats``: the local archive from the command line.

The database is ``--database`` (a SQLAlchemy URL or a file path, which means
SQLite), else the ``HSTCAL_DATABASE`` environment variable, else
``<DIR>/.hstcal/archive.sqlite`` inside the archive directory.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta
from pathlib import Path

import click

from .archive.base import Dataset, QueryCriteria
from .archive.local import LocalArchive
from .db import connect, database_url
from .errors import ConfigError, InputError

__all__ = ["archive", "default_database", "mjd_to_iso", "parse_mjd"]

_MJD_EPOCH = datetime(1858, 11, 17)
_DATABASE_HELP = ("Database URL or SQLite file path [default: $HSTCAL_DATABASE, else "
                  "DIR/.hstcal/archive.sqlite].")


def default_database(directory: Path | None) -> str:
    """``$HSTCAL_DATABASE`` if set, else ``<directory>/.hstcal/archive.sqlite``."""
    env = os.environ.get("HSTCAL_DATABASE")
    if env:
        return env
    if directory is None:
        raise ConfigError("no database: give the archive DIR, --database or set HSTCAL_DATABASE")
    return str(Path(directory).expanduser().resolve() / ".hstcal" / "archive.sqlite")


def parse_mjd(text: str, option: str) -> float:
    """An MJD from ``"53371.5"`` or an ISO date/time (UTC) such as ``"2005-01-01"``."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", ""))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is neither an MJD nor an ISO date "
                          "(YYYY-MM-DD[THH:MM:SS])") from None
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None) - moment.utcoffset()
    return (moment - _MJD_EPOCH) / timedelta(days=1)


def mjd_to_iso(mjd: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) of an MJD; ``"?"`` when unknown."""
    if mjd is None or not math.isfinite(mjd):
        return "?"
    return (_MJD_EPOCH + timedelta(days=mjd)).isoformat(timespec="seconds")


def _open(directory: Path | None, database: str | None, *, must_exist: bool) -> LocalArchive:
    if directory is not None and not directory.is_dir():
        raise InputError(directory, "archive directory does not exist")
    url = database_url(database or default_database(directory))
    if must_exist and url.startswith("sqlite:///"):
        path = url.split("sqlite:///", 1)[1]
        if path != ":memory:" and not Path(path).is_file():
            where = directory if directory is not None else "DIR"
            raise InputError(path, f"no archive index here; run `hstcal archive index {where}` "
                                   "first (or give --database)")
    try:
        # The archive creates its own table; other owners' tables are not needed here.
        engine = connect(url, create=False)
    except ImportError as exc:
        raise ConfigError(f"database {url!r} needs a driver that is not installed "
                          f"({exc})") from None
    return LocalArchive(directory, engine)


@click.group()
def archive() -> None:
    """Index a directory of HST files and query it offline (the local archive).

    The database is --database, else $HSTCAL_DATABASE, else DIR/.hstcal/archive.sqlite.
    """


@archive.command("index")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--database", default=None, help=_DATABASE_HELP)
@click.option("--no-checksums", is_flag=True, help="Do not compute MD5 checksums (faster).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def index_command(directory: Path, database: str | None, no_checksums: bool,
                  as_json: bool) -> None:
    """Build or update the index of DIR.

    Only new and changed files are read; vanished files are dropped; unreadable
    ones are listed with the reason and not indexed.
    """
    local = _open(directory, database, must_exist=False)
    report = local.index(checksums=not no_checksums)
    if as_json:
        click.echo(json.dumps({"root": report.root, "added": report.added,
                               "updated": report.updated, "removed": report.removed,
                               "unchanged": report.unchanged,
                               "bad": [{"path": p, "reason": r} for p, r in report.bad],
                               "seconds": round(report.seconds, 3)}, indent=2))
        return
    click.echo(f"indexed {report.root}: {report.summary()} ({report.seconds:.1f} s)")
    for path, reason in report.bad:
        click.echo(f"bad  {path}: {reason}")


@archive.command("query")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--database", default=None, help=_DATABASE_HELP)
@click.option("--instrument-name", "instrument_names", multiple=True,
              help="MAST instrument_name or pattern (STIS/CCD, WFPC2*); repeatable.")
@click.option("--target", "targets", multiple=True, help="Target name pattern (DARK*); repeatable.")
@click.option("--file-type", "file_types", multiple=True,
              help="File type wanted (RAW, FLT, SPT); the first is the primary; repeatable "
                   "[default: RAW].")
@click.option("--start", default=None, help="Exposures starting at or after (ISO date or MJD).")
@click.option("--end", default=None, help="Exposures starting before (ISO date or MJD).")
@click.option("--intent", type=click.Choice(["calibration", "science"]), default=None,
              help="MAST intentType [default: either].")
@click.option("--exptime", nargs=2, type=float, default=None, metavar="MIN MAX",
              help="Inclusive exposure-time range in seconds.")
@click.option("--proposal", "proposals", multiple=True, help="Proposal ID; repeatable.")
@click.option("--header", "header_pairs", multiple=True, metavar="KEY=VALUE",
              help="Primary-header equality (CCDAMP=D); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def query_command(directory, database, instrument_names, targets, file_types, start, end, intent,
                  exptime, proposals, header_pairs, as_json) -> None:
    """List the indexed exposures matching the filters.

    Without DIR, every archive root in the database is searched.
    Exposures lacking some of the wanted file types are listed with what they
    have and the missing types named.
    """
    local = _open(directory, database, must_exist=True)
    header = {}
    for pair in header_pairs:
        if "=" not in pair:
            raise ConfigError(f"--header {pair!r} is not KEY=VALUE")
        key, value = pair.split("=", 1)
        header[key.strip().upper()] = value.strip()
    time = None
    if start is not None or end is not None:
        time = (parse_mjd(start, "--start") if start is not None else -math.inf,
                parse_mjd(end, "--end") if end is not None else math.inf)
    wanted = tuple(t.upper() for t in file_types) or ("RAW",)
    criteria = QueryCriteria(detector="", purpose="query", instrument_name=tuple(instrument_names),
                             file_types=wanted, intent=intent, target_name=tuple(targets),
                             exptime=tuple(exptime) if exptime else None,
                             proposals=tuple(proposals), header=header, time=time)
    datasets = local.query(criteria)
    if as_json:
        click.echo(json.dumps([_as_dict(d, wanted) for d in datasets], indent=2))
        return
    if datasets:
        click.echo(f"{'rootname':<10} {'instrument_name':<15} {'target':<20} "
                   f"{'start (UTC)':<19} {'exptime':>9}  files")
    for d in datasets:
        have = " ".join(f.file_type for f in d.files)
        missing = [t for t in wanted if d.file(t) is None]
        if missing:
            have += f"  (missing {' '.join(missing)})"
        click.echo(f"{d.rootname:<10} {d.instrument_name:<15} {d.target[:20]:<20} "
                   f"{mjd_to_iso(d.start_mjd):<19} {_number(d.exptime):>9}  {have}")
    click.echo(f"{len(datasets)} dataset(s)")


@archive.command("stats")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--database", default=None, help=_DATABASE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats_command(directory, database, as_json) -> None:
    """Summarise the index: files per instrument and type, time span."""
    stats = _open(directory, database, must_exist=True).stats()
    if as_json:
        click.echo(json.dumps(stats.as_dict(), indent=2))
        return
    for root in stats.roots:
        click.echo(f"root      {root}")
    click.echo(f"files     {stats.files} ({stats.total_bytes / 1e6:.1f} MB), "
               f"{stats.datasets} exposure(s)")
    if stats.start_mjd is not None:
        click.echo(f"span      {mjd_to_iso(stats.start_mjd)} .. {mjd_to_iso(stats.end_mjd)} "
                   f"(MJD {stats.start_mjd:.3f} .. {stats.end_mjd:.3f})")
    click.echo("by instrument_name")
    for name, count in stats.by_instrument_name.items():
        click.echo(f"  {name or '(none)':<15} {count}")
    click.echo("by file type")
    for name, count in stats.by_file_type.items():
        click.echo(f"  {name:<15} {count}")


def _number(value: float) -> str:
    return "?" if not math.isfinite(value) else f"{value:g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _as_dict(dataset: Dataset, wanted: tuple[str, ...]) -> dict:
    return {
        "rootname": dataset.rootname,
        "instrument_name": dataset.instrument_name,
        "target": dataset.target,
        "proposal": dataset.proposal,
        "start_mjd": _finite(dataset.start_mjd),
        "end_mjd": _finite(dataset.end_mjd),
        "start": mjd_to_iso(dataset.start_mjd),
        "exptime": _finite(dataset.exptime),
        "files": {f.file_type: f.location for f in dataset.files},
        "missing": [t for t in wanted if dataset.file(t) is None],
    }
