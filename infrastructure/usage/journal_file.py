"""Journal segments on disk: append-only files of usage records, one encoded record a line.

A segment is written by one process, which holds an exclusive ``flock`` on it from creation until the records are
in the database and the file is deleted. A segment nobody holds a lock on was left by a process that died (or shut
down with the database unreachable): any process may take it over, write its records to the database and delete
it. Blocking calls only: the recorder runs them in a worker thread, never on the event loop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from domain.usage.model import UsageRecord
from infrastructure.usage.codec import decode

logger = logging.getLogger("switchboard.usage")

SUFFIX = ".journal"


class Segment:
    """One open, locked journal file."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.count = 0  # records appended and synced
        self.opened = time.monotonic()

    @classmethod
    def create(cls, directory: Path) -> Segment:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"usage-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else can hold it
        _sync_directory(directory)  # the file's name survives a host crash too
        return cls(path, fd)

    @classmethod
    def take_over(cls, path: Path) -> Segment | None:
        """The segment at ``path``, locked for this process; ``None`` when a live process holds it (or it is gone)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # deleted by its last holder between our open and our lock
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, data: bytes, count: int) -> None:
        """Writes ``data`` (whole lines) and waits until it is on stable storage: the group commit's one fsync."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self.count += count

    def read(self) -> list[UsageRecord]:
        """Every record of the file; a line that does not decode (a torn last write) is skipped and reported."""
        records = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                records.append(decode(line))
            except ValueError as exc:
                logger.warning("skipping an unreadable usage journal line %s:%d (%s)", self.path.name, number, exc)
        return records

    def delete(self) -> None:
        """Removes the file (its records are in the database), then lets go of the lock."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def segment_paths(directory: Path) -> Iterator[Path]:
    """The journal files of ``directory``, oldest first."""
    if directory.is_dir():
        yield from sorted(directory.glob(f"usage-*{SUFFIX}"))


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
