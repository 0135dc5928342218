"""The metadata database: engine, migrations, sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from tunetrust.errors import SetupError
from tunetrust.store import private

if TYPE_CHECKING:
    from alembic.config import Config

WRITE_OPTION = "tunetrust_write"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys and a busy timeout."""
    try:
        engine = create_engine(url, future=True)
    except NoSuchModuleError as exc:
        raise SetupError(f"no database driver for this URL ({exc})") from None
    except ArgumentError:
        raise SetupError("the database URL is not valid") from None
    except ModuleNotFoundError as exc:
        hint = ' — run: pip install "tunetrust[postgres]"' if "psycopg" in str(exc) else ""
        raise SetupError(f"the database driver is not installed ({exc.name}){hint}") from None
    if engine.dialect.name == "sqlite":
        _create_private(engine.url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            # we issue BEGIN ourselves (below); pysqlite's implicit BEGIN is deferred
            conn.isolation_level = None
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            # erased data is overwritten in the file, not left in free pages
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # a write transaction takes the write lock up front (IMMEDIATE): concurrent
            # writers wait their turn (busy_timeout) instead of failing on a read→write
            # upgrade; reads stay DEFERRED and, with WAL, never block anyone
            write = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _create_private(database: str | None) -> None:
    """Create a new SQLite file as an empty, private (0600) file before SQLite opens it.

    SQLite makes a new database 0644 less the umask, but gives its ``-wal``, ``-shm`` and
    journal files the database file's own mode, so this one file sets all of them.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        private.create_new(Path(database))
    except OSError:
        pass  # no such folder, or not ours: SQLite's own error will say so on connect


HEAD = "0014"
"""The newest migration: opening a home compares it with the database's revision without
importing Alembic (a test checks it is Alembic's head)."""


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("tunetrust.store").joinpath("migrations"))
    )
    cfg.attributes["engine"] = engine
    return cfg


def migrate(
    engine: Engine,
    master_key: Callable[[], bytes] | None = None,
    epsilon_cap: float | None = None,
) -> None:
    """Bring the schema to the newest revision (``master_key``: for revisions that seal;
    ``epsilon_cap``: the cap a revision that makes it a rule starts from)."""
    cfg = _alembic_config(engine)
    cfg.attributes["master_key"] = master_key
    cfg.attributes["epsilon_cap"] = epsilon_cap
    from alembic import command

    command.upgrade(cfg, "head")


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest revision (``HEAD``)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD


def compact(engine: Engine) -> None:
    """Fold SQLite's write-ahead log into the database file and empty it (after erasure)."""
    if engine.dialect.name == "sqlite":
        # on the raw connection: a checkpoint cannot run inside the BEGIN we add
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
        finally:
            raw.close()


def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with factory() as session, session.begin():
        session.connection(execution_options={WRITE_OPTION: True})
        yield session
