"""A rollback journal under HDF5: a file object that undoes a crashed writer's writes.

HDF5 does not journal.  A flush rewrites B-tree nodes, object headers and the
superblock in place, in an order of its choosing, so a writer killed inside a flush
can leave a file whose *committed* rows no longer read ("addr overflow", "filter
returned failure").  :class:`JournaledFile` is handed to h5py as a Python file
object (h5py's ``fileobj`` driver), so it sees every write HDF5 makes.  Before any
byte that existed at the last commit is overwritten (or truncated away), its old
content is appended to ``<file>-journal``; bytes beyond the committed size are new
and need no copy.  :meth:`JournaledFile.commit` (called when the file is consistent,
after an HDF5 flush) deletes the journal: that unlink is the commit point.  After a
crash, :func:`recover` writes the saved bytes back, newest first, and truncates the
file to its committed size, restoring it byte for byte (SQLite's rollback journal).

Journal format: ``MAGIC, committed_size (u64), crc32 (u32)`` then records
``offset (u64), length (u32), crc32 (u32), old bytes``.  A record is complete before
the write it protects starts, so a torn last record protects a write that never
happened and is ignored.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import zlib
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["JournaledFile", "LockedError", "journal_path", "recover"]

log = logging.getLogger(__name__)

MAGIC = b"HSTCALJ1"
_HEADER = struct.Struct("<8sQI")
_RECORD = struct.Struct("<QII")


class LockedError(OSError):
    """Another process holds the file open for writing."""


def journal_path(path: str | Path) -> Path:
    """Where the journal of ``path`` lives (``<name>-journal`` beside it)."""
    path = Path(path)
    return path.with_name(path.name + "-journal")


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise LockedError(f"{path} is open for writing by another process") from None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _apply(fd: int, journal: Path) -> tuple[int, int | None]:
    """Undo the journal's records onto ``fd``; return (records applied, committed size)."""
    data = journal.read_bytes()
    if len(data) < _HEADER.size:
        return 0, None
    magic, committed, crc = _HEADER.unpack_from(data)
    if magic != MAGIC or crc != zlib.crc32(data[:_HEADER.size - 4]):
        return 0, None  # torn header: written before any protected write, none happened
    records = []
    at = _HEADER.size
    while at + _RECORD.size <= len(data):
        offset, length, crc = _RECORD.unpack_from(data, at)
        old = data[at + _RECORD.size:at + _RECORD.size + length]
        if len(old) != length or crc != zlib.crc32(old, zlib.crc32(data[at:at + 12])):
            break  # torn last record: its write never started
        records.append((offset, old))
        at += _RECORD.size + length
    for offset, old in reversed(records):  # the oldest copy of a region is applied last
        os.pwrite(fd, old, offset)
    os.ftruncate(fd, committed)
    os.fsync(fd)
    return len(records), committed


def recover(path: str | Path) -> bool:
    """Roll ``path`` back to its last commit if a crashed writer left a journal.

    Returns
    -------
    bool
        Whether a journal was found (and applied).

    Raises
    ------
    LockedError
        A live writer holds the file (its journal is not a crash's).
    """
    path = Path(path)
    journal = journal_path(path)
    if not journal.exists():
        return False
    if not path.exists():
        journal.unlink()
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        _lock(fd, path)
        if not journal.exists():  # the writer committed while we waited for the lock
            return False
        applied, committed = _apply(fd, journal)
        journal.unlink()
        _fsync_dir(journal)
    finally:
        os.close(fd)  # also releases the lock
    log.warning("%s: rolled back an interrupted write (%d region(s) restored, size %s)",
                path, applied, committed)
    return True


class JournaledFile(io.RawIOBase):
    """A read/write binary file whose overwrites since the last commit can be undone.

    Parameters
    ----------
    path : str or Path
        An existing file.  It is locked (``flock``) for as long as this object is
        open; a crashed writer's journal is rolled back first.
    durable : bool
        ``fsync`` the journal before each protected write and the file at each
        commit, so the rollback also survives a power cut, not only a killed process.
    """

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.durable = durable
        self._raw = open(self.path, "r+b", buffering=0)  # noqa: SIM115 - closed in close()
        try:
            _lock(self._raw.fileno(), self.path)
            if self.journal.exists():
                applied, _ = _apply(self._raw.fileno(), self.journal)
                self.journal.unlink()
                log.warning("%s: rolled back an interrupted write (%d region(s) restored)",
                            self.path, applied)
        except BaseException:
            self._raw.close()
            raise
        self._committed = os.fstat(self._raw.fileno()).st_size
        self._journal_fh: io.BufferedWriter | None = None
        self._saved: set[tuple[int, int]] = set()
        #: In-place (journaled) writes since opening; tests use it to aim crashes.
        self.protected_writes = 0

    # -- the file protocol h5py's fileobj driver uses -----------------------------------
    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer) -> int:
        return self._raw.readinto(buffer)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        at = self._raw.tell()
        if at < self._committed:
            self._save(at, min(at + len(view), self._committed))
        written = 0
        while written < len(view):
            written += self._raw.write(view[written:])
        return written

    def truncate(self, size: int | None = None) -> int:
        size = self._raw.tell() if size is None else size
        if size < self._committed:
            self._save(size, self._committed)
        return self._raw.truncate(size)

    def flush(self) -> None:
        pass  # unbuffered: every write already reached the OS

    def close(self) -> None:
        """Close without committing: a journal left behind is rolled back on next open."""
        if not self.closed:
            if self._journal_fh is not None:
                self._journal_fh.close()
            self._raw.close()  # releases the lock
        super().close()

    # -- journal ---------------------------------------------------------------------------
    def _save(self, start: int, stop: int) -> None:
        if (start, stop) in self._saved:
            return  # already holds this region's committed bytes
        old = os.pread(self._raw.fileno(), stop - start, start)
        fh = self._journal_fh
        if fh is None:
            fh = self._journal_fh = open(self.journal, "wb")  # noqa: SIM115
            head = MAGIC + struct.pack("<Q", self._committed)
            fh.write(head + struct.pack("<I", zlib.crc32(head)))
        head = struct.pack("<QI", start, len(old))
        fh.write(head + struct.pack("<I", zlib.crc32(old, zlib.crc32(head))) + old)
        fh.flush()
        if self.durable:
            os.fsync(fh.fileno())
            if len(self._saved) == 0:
                _fsync_dir(self.journal)
        self._saved.add((start, stop))
        self.protected_writes += 1

    def commit(self) -> None:
        """Make the file's present content the state a crash rolls back to.

        Call only when the file is consistent (after an HDF5 flush).
        """
        if self.durable:
            os.fsync(self._raw.fileno())
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None
            self.journal.unlink()
            if self.durable:
                _fsync_dir(self.journal)
        self._saved.clear()
        self._committed = os.fstat(self._raw.fileno()).st_size
