"""A cooperative home: metadata database, events store, master key, and the write lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tunetrust.errors import ConflictError, SetupError
from tunetrust.settings import Settings
from tunetrust.store import db, keys
from tunetrust.store.events import EventsStore
from tunetrust.store.models import Member, Secret

ACCOUNT_HASH_SECRET = "account-hash"


@dataclass
class Home:
    """An opened cooperative home. Build one with :func:`init_home` or :func:`open_home`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(init=False)
    events: EventsStore = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = db.sessions(self.engine)
        self.events = EventsStore(self.settings.events_dir)

    @cached_property
    def master_key(self) -> bytes:
        """The master key (read once, on first use)."""
        return keys.load_master_key(self.settings.master_key, self.settings.key_file)

    def secret(self, name: str) -> bytes:
        """A cooperative secret, unwrapped with the master key."""
        with self.sessions() as s:
            row = s.get(Secret, name)
        if row is None:
            raise SetupError(f"the cooperative secret {name!r} is missing; was init run?")
        return keys.unseal(self.master_key, row.wrapped, name.encode(), f"the secret {name!r}")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the home's write lock: one writer at a time, across processes."""
        path = self.settings.home / ".lock"
        with path.open("a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def recover(self) -> int:
        """Settle the events store after a crash (under the write lock)."""
        with self.lock(), self.sessions() as s:
            current = {p: f for p, f in s.execute(select(Member.pseudonym, Member.events_file))}
            return self.events.recover(current)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def init_home(settings: Settings) -> Home:
    """Create a cooperative home (idempotent for folders; refuses to replace a key)."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    settings.events_dir.mkdir(exist_ok=True)
    (home / "vault").mkdir(exist_ok=True)
    (home / "releases").mkdir(exist_ok=True)
    if not settings.master_key and not settings.key_file.exists():
        keys.write_key_file(settings.key_file, keys.new_key())
    engine = db.make_engine(settings.db_url)
    result = Home(settings, engine)
    with result.lock():
        _migrate(engine)
        with db.transaction(result.sessions) as s:
            if s.get(Secret, ACCOUNT_HASH_SECRET) is None:
                wrapped = keys.seal(result.master_key, os.urandom(32), ACCOUNT_HASH_SECRET.encode())
                s.add(Secret(name=ACCOUNT_HASH_SECRET, wrapped=wrapped))
    # a wrong key for an existing home must fail here, not at the first import
    result.secret(ACCOUNT_HASH_SECRET)
    return result


def open_home(settings: Settings) -> Home:
    """Open an existing home, migrating its database if the software is newer."""
    if not settings.events_dir.is_dir():
        raise SetupError(
            f"no cooperative in {settings.home}; create one with: "
            f"tunetrust --home {settings.home} init"
        )
    engine = db.make_engine(settings.db_url)
    result = Home(settings, engine)
    try:
        current = db.is_current(engine)
    except OperationalError:
        raise SetupError(f"cannot open the metadata database of {settings.home}") from None
    if not current:
        with result.lock():
            _migrate(engine)
    result.recover()
    return result


def _migrate(engine: Engine) -> None:
    try:
        db.migrate(engine)
    except OperationalError as exc:
        if "locked" in str(exc):
            raise ConflictError("the metadata database is busy; try again") from None
        raise SetupError("cannot create or upgrade the metadata database") from None
