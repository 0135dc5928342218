"""Shared fixtures: a fresh cooperative home per test, with real SQLite and Parquet."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunetrust import Home, Settings, add_member, init_home

_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the folders the browser tests kept screenshots in during this run."""
    from tests.browser import screenshot_root

    root = screenshot_root()
    if root.is_dir():
        fresh = Counter(p.parent for p in root.rglob("*.png") if p.stat().st_mtime >= _STARTED)
        for folder, n in sorted(fresh.items()):
            terminalreporter.write_line(f"screenshots: {n} in {folder}")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TUNETRUST_HOME", "TUNETRUST_DATABASE_URL", "TUNETRUST_MASTER_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def home(settings: Settings) -> Iterator[Home]:
    h = init_home(settings)
    yield h
    h.close()


@pytest.fixture
def member(home: Home) -> str:
    add_member(home, "alice")
    return "alice"


# --- PostgreSQL: the same tests on a real server -------------------------------------

PG_ADMIN_URL = os.environ.get(
    "TUNETRUST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_problem() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        return 'the PostgreSQL driver is missing: pip install "tunetrust[postgres]"'
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no server here
        return f"no PostgreSQL server at {PG_ADMIN_URL} ({type(exc).__name__})"
    return None


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    problem = _postgres_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests must run in CI: {problem}")
        pytest.skip(problem)
    from sqlalchemy import create_engine

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the embedded SQLite default, else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    from sqlalchemy import text

    admin = request.getfixturevalue("postgres_admin")
    name = f"tt_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def coop(tmp_path: Path, db_url: str | None) -> Iterator[Home]:
    """A home on each metadata backend (SQLite, then PostgreSQL)."""
    h = init_home(Settings(home=tmp_path / "home", database_url=db_url))
    yield h
    h.close()
