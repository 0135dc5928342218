"""A cooperative home: metadata database, events store, vault, master key, write lock.

Opening a home reads nothing but the database's revision: no lock, no recovery, so
reads never wait behind writes. What a killed process left is settled by the next
writer when it takes the write lock (:meth:`Home.lock`), and by ``tunetrust doctor``;
until then readers resolve a committed but unpublished file themselves (the events
store and the vault read ``<file>.tmp`` when the committed name is not there yet).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tunetrust.errors import ConflictError, SetupError
from tunetrust.settings import Settings
from tunetrust.store import db, durable, keys, private
from tunetrust.store.locks import Lock, lock_for
from tunetrust.store.models import Contribution, Member, Release, Secret
from tunetrust.store.objects import LocalObjectStore, ObjectStore

if TYPE_CHECKING:
    from tunetrust.store.events import EventsStore
    from tunetrust.store.vault import Vault

ACCOUNT_HASH_SECRET = "account-hash"
EVENTS, VAULT, RELEASES = "events", "vault", "releases"  # the home's stores (keys' prefixes)
STAGED_RELEASE = ".tmp-"  # releases/.tmp-<id>/…: a release being built (releases/build.py)
WITNESS = "audit.head"
LOCK = ".lock"
NEW_KEY_SUFFIX = ".new"


@dataclass
class Home:
    """An opened cooperative home. Build one with :func:`init_home` or :func:`open_home`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(init=False)
    objects: ObjectStore = field(init=False)
    releases: ObjectStore = field(init=False)
    _lock: Lock = field(init=False)
    _threads: threading.RLock = field(init=False)
    _held: int = field(init=False, default=0)
    _settled: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.sessions = db.sessions(self.engine)
        # one store for the home's files; each part sees its own prefix (store/objects.py)
        self.objects = LocalObjectStore(self.settings.home)
        self.releases = self.objects.scope(RELEASES)
        self._lock = lock_for(self.settings.home, self.engine)
        self._threads = threading.RLock()

    @cached_property
    def events(self) -> EventsStore:
        """The de-identified events store (Parquet), built on first use: a command that
        reads only the database never imports pyarrow (``bench/startup.py``)."""
        from tunetrust.store.events import EventsStore

        return EventsStore(self.objects.scope(EVENTS))

    @cached_property
    def vault(self) -> Vault:
        """The members' encrypted raw exports, built on first use."""
        from tunetrust.store.vault import Vault

        return Vault(self.objects.scope(VAULT))

    @cached_property
    def master_key(self) -> bytes:
        """The master key (read once, on first use; a half-done rotation is settled first)."""
        pending = self.settings.key_file.with_name(self.settings.key_file.name + NEW_KEY_SUFFIX)
        if not self.settings.master_key and pending.exists():
            if self._held:
                _recover_rotation(self)
            else:
                with self.lock():  # settles the rotation with everything else
                    pass
        return keys.load_master_key(self.settings.master_key, self.settings.key_file)

    def secret(self, name: str) -> bytes:
        """A cooperative secret, unwrapped with the master key."""
        with self.sessions() as s:
            row = s.get(Secret, name)
        if row is None:
            raise SetupError(f"the cooperative secret {name!r} is missing; was init run?")
        return keys.unseal(self.master_key, row.wrapped, name.encode(), f"the secret {name!r}")

    @contextmanager
    def lock(self, *, settle: bool = True) -> Iterator[None]:
        """Hold the home's write lock: one writer of files at a time, across processes.

        Re-entrant within one ``Home``. On taking it, what a killed writer left is
        settled first (``settle=False`` only while the database is being created).
        """
        with self._threads:  # other threads of this process wait; this one re-enters
            if self._held:
                self._held += 1
                try:
                    yield
                finally:
                    self._held -= 1
                return
            with self._lock.hold():
                self._held = 1
                try:
                    if settle:
                        self._settled = self._settle()
                    yield
                finally:
                    self._held = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; after it commits, the audit head witness is updated."""
        with db.transaction(self.sessions) as s:
            yield s
            head = s.info.pop("audit_head", None)  # commits as this block ends
        if head is not None:
            try:
                write_witness(self.settings.home, *head)
            except OSError:
                # committed already: the witness may lag (audit verify --head says so),
                # but callers must not take this for a failed commit and undo files
                pass

    def recover(self) -> int:
        """Settle files after a crash (``tunetrust doctor``); returns how many were fixed."""
        if self._held:
            return self._settle()
        with self.lock():
            return self._settled

    def _settle(self) -> int:
        """Key rotation, events, vault, releases: finish or undo what a killed writer left."""
        fixed = _recover_rotation(self)
        with self.sessions() as s:
            members = s.execute(select(Member.pseudonym, Member.events_file)).all()
            vault_files = s.execute(
                select(Member.pseudonym, Contribution.vault_file).join(
                    Contribution, Contribution.member_id == Member.id
                )
            ).all()
        committed: dict[str, set[str]] = {p: set() for p, _ in members}
        for p, f in vault_files:
            if f:
                committed[p].add(f)
        fixed += self.events.recover(dict(members))
        fixed += self.vault.recover(committed)
        fixed += self._recover_releases()
        return fixed

    def _recover_releases(self) -> int:
        """A release still under its staged prefix: publish it if committed, else drop it."""
        staged = sorted(
            {k.split("/")[0] for k in self.releases.list() if k.startswith(STAGED_RELEASE)}
        )
        for prefix in staged:
            release_id = prefix.removeprefix(STAGED_RELEASE)
            with self.sessions() as s:
                committed = s.get(Release, release_id) is not None
            if committed:
                self.releases.publish_tree(prefix, release_id)
            else:
                self.releases.delete_tree(prefix)
        return len(staged)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def write_witness(home: Path, seq: int, entry_hash: str) -> None:
    """Copy the audit head to ``<home>/audit.head`` atomically (lagging behind is fine)."""
    tmp = home / f".{WITNESS}.{os.getpid()}"
    private.create(tmp).write_text(f"{seq} {entry_hash}\n")
    os.replace(tmp, home / WITNESS)


def read_witness(home: Path) -> tuple[int, str] | None:
    """The audit head as last witnessed, if a witness file exists."""
    try:
        seq, entry_hash = (home / WITNESS).read_text().split()
        return int(seq), entry_hash
    except (OSError, ValueError):
        return None


def _recover_rotation(home: Home) -> int:
    """A rotation killed half-way: keep whichever key the database is sealed with."""
    new = home.settings.key_file.with_name(home.settings.key_file.name + NEW_KEY_SUFFIX)
    if home.settings.master_key or not new.exists():
        return 0
    with home.sessions() as s:
        row = s.get(Secret, ACCOUNT_HASH_SECRET)
    try:
        # an empty or cut-off pending key was never fully written, so nothing can have
        # been wrapped under it (it is synced before the rewrap commits): it goes
        new_key = keys.load_master_key(None, new)
        if row is None:
            raise SetupError("no secret to test against")
        keys.unseal(new_key, row.wrapped, ACCOUNT_HASH_SECRET.encode(), "canary")
    except SetupError:
        new.unlink()  # the rewrap never committed: the old key is still the key
        return 1
    durable.replace(new, home.settings.key_file)  # committed: finish the switch
    home.__dict__.pop("master_key", None)
    return 1


def init_home(settings: Settings) -> Home:
    """Create a cooperative home (idempotent for folders; refuses to replace a key)."""
    home = settings.home
    home.parent.mkdir(parents=True, exist_ok=True)  # outside the home: the caller's to guard
    if settings.events_dir.is_dir():  # a home already: tighten one an older version wrote
        private.tighten(home)
    for folder in (home, settings.events_dir, home / VAULT, home / RELEASES):
        private.mkdir(folder)
    if not settings.master_key and not settings.key_file.exists():
        keys.write_key_file(settings.key_file, keys.new_key())
    engine = db.make_engine(settings.db_url)
    result = Home(settings, engine)
    with result.lock(settle=False):
        _migrate(engine, result)
        with db.transaction(result.sessions) as s:
            if s.get(Secret, ACCOUNT_HASH_SECRET) is None:
                wrapped = keys.seal(result.master_key, os.urandom(32), ACCOUNT_HASH_SECRET.encode())
                s.add(Secret(name=ACCOUNT_HASH_SECRET, wrapped=wrapped))
    result.recover()
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
    private.tighten(settings.home)
    engine = db.make_engine(settings.db_url)
    result = Home(settings, engine)
    try:
        try:
            current = db.is_current(engine)
        except OperationalError:
            raise SetupError(f"cannot open the metadata database of {settings.home}") from None
        if not current:
            with result.lock(settle=False):
                _migrate(engine, result)
    except BaseException:
        result.close()
        raise
    return result


def _migrate(engine: Engine, home: Home) -> None:
    try:
        db.migrate(engine, lambda: home.master_key, home.settings.epsilon_cap)
    except OperationalError as exc:
        if "locked" in str(exc):
            raise ConflictError("the metadata database is busy; try again") from None
        raise SetupError("cannot create or upgrade the metadata database") from None
