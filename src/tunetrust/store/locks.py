"""The home's write lock, behind one small interface: a file lock or a PostgreSQL lock.

Only writers of files take it (imports, rebuilds, erasures, key rotation, release
builds); reads never do, so a listing or an insights report answers while a long
import runs. With SQLite the lock is ``fcntl.flock`` on ``<home>/.lock`` (processes
on one machine); with PostgreSQL it is a session-level advisory lock in the
cooperative's database, which every process that reaches the database respects.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text

from tunetrust.store import private

# one lock per cooperative database: the key only has to differ from other users' keys
ADVISORY_KEY = int.from_bytes(
    hashlib.sha256(b"tunetrust home write lock").digest()[:8], "big", signed=True
)


class Lock(Protocol):
    """A lock held across processes for the duration of a ``with`` block."""

    def hold(self) -> AbstractContextManager[None]:
        """Wait for the lock and hold it until the block ends."""


class FileLock:
    """``flock`` on a file: one holder among the processes of one machine."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for the lock and hold it until the block ends."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, private.FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class AdvisoryLock:
    """``pg_advisory_lock``: one holder among every process using the database."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for the lock and hold it until the block ends (on its own connection)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
            conn.commit()  # a session lock outlives transactions; end this one now
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.commit()


def lock_for(home: Path, engine: Engine) -> Lock:
    """The write lock of a home: advisory on PostgreSQL, a file lock otherwise."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return FileLock(home / ".lock")
