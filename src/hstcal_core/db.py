"""One SQLAlchemy database for the archive index and campaign state.

SQLite file by default (WAL journal, so readers never block the single writer,
and a busy timeout instead of "database is locked"); PostgreSQL or any other
SQLAlchemy URL when given one.  Tables are declared on :data:`metadata` by the
modules that own them (``archive.local``, ``campaign.state``) and created with
:func:`connect`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from .errors import ConfigError

__all__ = ["metadata", "database_url", "connect"]

metadata = sa.MetaData()


def database_url(value: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (which means SQLite)."""
    text = str(value)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def connect(url: str | Path, *, create: bool = True) -> sa.Engine:
    """Open (and by default create the tables of) the database at ``url``.

    Raises
    ------
    ConfigError
        When the URL is malformed or the database cannot be reached; the message names it.
    """
    url = database_url(url)
    try:
        if url.startswith("sqlite"):
            path = url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 60})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        if create:
            # Import the table owners so every table exists on first use.
            from .archive import local  # noqa: F401
            from .campaign import state  # noqa: F401

            metadata.create_all(engine)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"database URL {url!r} needs the driver {exc.name!r}; "
                          f"install it (e.g. pip install psycopg)") from None
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"cannot open database {url}: {exc.orig}") from None
    return engine
