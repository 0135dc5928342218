"""Settings: one default and help per field, validated when built, the environment named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tunetrust.errors import InputError
from tunetrust.settings import DEFAULT_PURPOSES, Checks, ImportLimits, Settings

ROOT = Path(__file__).resolve().parent.parent
MODELS: list[type[BaseModel]] = [Settings, ImportLimits, Checks]
FIELDS = [(model, name) for model in MODELS for name in model.model_fields]
ENV_FIELDS = [name for name in Settings.model_fields if Settings.env_var(name)]
# Settings documented nowhere yet; an entry fails once the README documents it, so
# the list only shrinks. TUNETRUST_ENGINE: there is one engine so far (README row needed).
UNDOCUMENTED: set[str] = set()


@pytest.fixture(autouse=True)
def _no_tunetrust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("TUNETRUST_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=[f"{m.__name__}.{n}" for m, n in FIELDS])
def test_every_field_has_one_default_and_help(model: type[BaseModel], name: str) -> None:
    info = model.model_fields[name]
    assert not info.is_required(), f"{model.__name__}.{name} has no default"
    assert info.description and info.description.strip(), f"{model.__name__}.{name}: no help"


def test_the_environment_adds_no_defaults_of_its_own(tmp_path: Path) -> None:
    # from_env() used to repeat "steward", 3.0 and "duckdb"; now both read the fields
    assert Settings.from_env(home=tmp_path) == Settings(home=tmp_path)
    assert Settings().home == Settings.from_env().home  # the per-user folder, both ways


@pytest.mark.parametrize(
    "bad",
    [
        {"epsilon_cap": -1},
        {"epsilon_cap": 101},
        {"epsilon_cap": "lots"},
        {"actor": ""},
        {"engine": "Spark!"},
        {"purposes": ()},
        {"purposes": ("research", "two words")},
        {"database_url": ""},
        {"limits": {"max_file_bytes": 0}},
        {"limits": {"max_ratio": 0.5}},
        {"checks": {"copied_warn": 1.5}},
        {"checks": {"overlap_warn": 0.3, "overlap_fail": 0.2}},  # warns above where it fails
        {"epsilon_caps": 3},  # a misspelt name is not silently ignored
    ],
    ids=lambda bad: ",".join(f"{k}={v}" for k, v in bad.items()),
)
def test_bad_values_fail_at_construction(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, **bad)


def test_values_are_kept_and_frozen(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, epsilon_cap=2, limits=ImportLimits(max_entries=5))
    assert settings.epsilon_cap == 2.0 and settings.limits.max_entries == 5
    with pytest.raises(ValidationError):
        settings.epsilon_cap = 5
    with pytest.raises(ValidationError):
        Checks(copied_warn=0.5).copied_warn = 0
    assert hash(settings) == hash(
        Settings(home=tmp_path, epsilon_cap=2.0, limits=ImportLimits(max_entries=5))
    )


def test_direct_construction_does_not_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNETRUST_EPSILON_CAP", "7")
    monkeypatch.setenv("TUNETRUST_DATABASE_URL", "postgresql+psycopg://elsewhere/db")
    settings = Settings(home=tmp_path)  # what a test or an embedding program builds
    assert settings.epsilon_cap == 3.0 and settings.database_url is None
    assert Settings.from_env(home=tmp_path).epsilon_cap == 7.0


def test_from_env_reads_each_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "TUNETRUST_HOME": str(tmp_path / "env-home"),
        "TUNETRUST_DATABASE_URL": "postgresql+psycopg://db/coop",
        "TUNETRUST_MASTER_KEY": "k" * 43,
        "TUNETRUST_PURPOSES": "music-research, research,,public-statistics,music-research",
        "TUNETRUST_EPSILON_CAP": "4.5",
        "TUNETRUST_ACTOR": "alice@coop",
        "TUNETRUST_ENGINE": "spark",
        "TUNETRUST_LIMITS": "not read: set in code",
        "TUNETRUST_CHECKS": "not read either",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.home == tmp_path / "env-home"
    assert settings.database_url == "postgresql+psycopg://db/coop"
    assert settings.master_key == "k" * 43
    assert settings.purposes == (*DEFAULT_PURPOSES, "music-research", "public-statistics")
    assert (settings.epsilon_cap, settings.actor, settings.engine) == (4.5, "alice@coop", "spark")
    assert settings.limits == ImportLimits() and settings.checks == Checks()
    explicit = Settings.from_env(home=tmp_path / "flag", database_url="sqlite:///x.db")
    assert explicit.home == tmp_path / "flag" and explicit.database_url == "sqlite:///x.db"


def test_an_empty_variable_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TUNETRUST_EPSILON_CAP", "TUNETRUST_ACTOR", "TUNETRUST_DATABASE_URL"):
        monkeypatch.setenv(name, "")
    assert Settings.from_env(home=tmp_path) == Settings(home=tmp_path)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TUNETRUST_EPSILON_CAP", "abc-secret-value"),
        ("TUNETRUST_EPSILON_CAP", "101"),
        ("TUNETRUST_EPSILON_CAP", "-1"),
        ("TUNETRUST_ENGINE", "Spark!"),
        ("TUNETRUST_PURPOSES", "two words"),
    ],
)
def test_a_bad_variable_is_named_and_its_value_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=f"^{name}: ") as caught:
        Settings.from_env(home=tmp_path)
    assert value not in str(caught.value)


def test_the_command_line_says_which_variable_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    env["TUNETRUST_EPSILON_CAP"] = "abc"
    done = subprocess.run(
        [sys.executable, "-m", "tunetrust", "--home", str(tmp_path), "member", "list"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: TUNETRUST_EPSILON_CAP: ")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_replace_validates(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, epsilon_cap=2.0, database_url="sqlite:///a.db")
    copy = settings.replace(home=tmp_path / "b", database_url=None)
    assert type(copy) is Settings
    assert (copy.home, copy.database_url, copy.epsilon_cap) == (tmp_path / "b", None, 2.0)
    with pytest.raises(ValidationError):
        settings.replace(epsilon_cap=-1)


def test_derived_paths(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.db_url == f"sqlite:///{tmp_path / 'tunetrust.db'}"
    assert settings.events_dir == tmp_path / "events"
    assert settings.key_file == tmp_path / "master.key"
    assert Settings(home=tmp_path, database_url="sqlite:///b.db").db_url == "sqlite:///b.db"


def _configuration_rows() -> dict[str, str]:
    """README's configuration table: each TUNETRUST_ variable → the row that names it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("|"):
            for name in re.findall(r"`(TUNETRUST_[A-Z_]+)", line):
                rows[name] = line
    return rows


@pytest.mark.parametrize("name", ENV_FIELDS)
def test_the_readme_documents_each_variable_and_its_default(name: str) -> None:
    var = Settings.env_var(name)
    rows = _configuration_rows()
    if var in UNDOCUMENTED:
        assert var not in rows, f"{var} is documented now: remove it from UNDOCUMENTED"
        return
    assert var in rows, f"README's configuration table does not mention {var}"
    default = Settings.model_fields[name].default
    # as the table writes them: 3 (not 3.0), `steward`, each purpose in backticks
    if isinstance(default, float):
        assert f"| {default:g} |" in rows[var]
    elif isinstance(default, str):
        assert f"`{default}`" in rows[var]
    elif isinstance(default, tuple):
        assert all(f"`{part}`" in rows[var] for part in default)


def test_the_readme_names_no_variable_the_settings_lack() -> None:
    known = {Settings.env_var(n) for n in ENV_FIELDS}
    assert set(_configuration_rows()) <= known
