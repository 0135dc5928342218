"""Shared fixtures: a fresh cooperative home per test, with real SQLite and Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tunetrust import Home, Settings, add_member, init_home


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
