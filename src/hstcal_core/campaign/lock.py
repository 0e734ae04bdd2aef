"""One writer per store: an exclusive ``flock`` on a lock file beside the store.

The kernel drops the lock when its process dies (even by SIGKILL), so a crashed run
never leaves a stale lock; the file's content only serves the error message.
PostgreSQL databases are locked with a session advisory lock instead.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import zlib
from pathlib import Path

import sqlalchemy as sa

from ..errors import HstcalError

__all__ = ["StoreLocked", "StoreLock"]


class StoreLocked(HstcalError):
    """Another campaign is writing the same store."""


class StoreLock:
    """Exclusive lock on the stores of a campaign (its output directory and database).

    Parameters
    ----------
    out : Path
        The product directory; the lock file is ``out/.hstcal-campaign.lock``.
    campaign : str
        Name written into the lock file for the message another run prints.
    engine : sqlalchemy.Engine, optional
        Also lock the database (advisory lock on PostgreSQL; for SQLite a lock file
        beside the database file).
    """

    def __init__(self, out: Path, campaign: str, engine: sa.Engine | None = None):
        self.paths = [Path(out) / ".hstcal-campaign.lock"]
        self.campaign = campaign
        self.engine = engine
        self._files: list = []
        self._pg_conn = None
        if engine is not None and engine.dialect.name == "sqlite":
            db = engine.url.database
            if db and db != ":memory:":
                lock = Path(db + ".lock")
                if lock.resolve() != self.paths[0].resolve():
                    self.paths.append(lock)

    def __enter__(self) -> "StoreLock":
        try:
            for path in self.paths:
                self._lock_file(path)
            if self.engine is not None and self.engine.dialect.name == "postgresql":
                self._lock_postgres()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _lock_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = _describe(f.read())
            f.close()
            raise StoreLocked(
                f"store {path.parent} is being written by {holder}; two campaigns cannot "
                f"write the same store at once — wait for it to finish or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"campaign": self.campaign, "pid": os.getpid(),
                            "host": socket.gethostname(),
                            "since": dt.datetime.now().isoformat(timespec="seconds")}))
        f.flush()
        self._files.append(f)

    def _lock_postgres(self) -> None:
        key = zlib.crc32(f"hstcal:{self.engine.url.database}".encode())
        conn = self.engine.connect()
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()  # not idle in a transaction for the whole run; the lock is the session's
        if not got:
            conn.close()
            raise StoreLocked(f"database {self.engine.url.render_as_string(hide_password=True)}"
                              f" is being written by another campaign")
        self._pg_conn = conn

    def release(self) -> None:
        for f in self._files:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            finally:
                f.close()
        self._files = []
        if self._pg_conn is not None:
            # End the session: closing alone would return it to the pool, lock and all.
            self._pg_conn.invalidate()
            self._pg_conn.close()
            self._pg_conn = None


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"campaign '{info['campaign']}' (pid {info['pid']} on {info['host']}, "
                f"since {info['since']})")
    except (ValueError, KeyError, TypeError):
        return "another campaign"
