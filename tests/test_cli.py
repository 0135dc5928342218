"""The command line: the interface outside checks rely on, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tunetrust.store.keys import encode_key, new_key


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tunetrust", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.fixture
def home(tmp_path: Path) -> str:
    h = str(tmp_path / "h")
    assert run("--home", h, "init").returncode == 0
    assert run("--home", h, "member", "add", "ann").returncode == 0
    return h


def test_init_writes_a_private_key(tmp_path: Path) -> None:
    h = tmp_path / "h"
    result = run("--home", str(h), "init")
    assert result.returncode == 0, result.stderr
    mode = stat.S_IMODE((h / "master.key").stat().st_mode)
    assert mode == 0o600
    assert (h / "tunetrust.db").exists() and (h / "events").is_dir()
    assert run("--home", str(h), "init").returncode == 0  # idempotent


def test_init_with_key_in_environment_writes_no_key_file(tmp_path: Path) -> None:
    env = {"TUNETRUST_MASTER_KEY": encode_key(new_key()), "TUNETRUST_HOME": str(tmp_path / "e")}
    assert run("init", env=env).returncode == 0
    assert not (tmp_path / "e" / "master.key").exists()
    # the same home with another key is refused clearly
    other = {**env, "TUNETRUST_MASTER_KEY": encode_key(new_key())}
    result = run("init", env=other)
    assert result.returncode == 1
    assert "wrong master key" in result.stderr


def test_import_json_interface(home: str, tmp_path: Path) -> None:
    z = str(tmp_path / "c.zip")
    assert (
        run(
            "--home",
            home,
            "synth",
            "--variant",
            "extended-c",
            "--listens",
            "800",
            "--seed",
            "4",
            "--out",
            z,
        ).returncode
        == 0
    )
    result = run("--home", home, "import", z, "--member", "ann", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert isinstance(summary["listens_added"], int) and summary["listens_added"] > 700
    assert summary["duplicates_skipped"] == 0
    assert summary["listens_added"] + sum(summary["dropped"].values()) == 800
    assert all({"name", "kind", "status"} <= f.keys() for f in summary["files"])
    assert list(Path(home, "events").rglob("*.parquet"))
    again = json.loads(run("--home", home, "import", z, "--member", "ann", "--json").stdout)
    assert again["listens_added"] == 0 and again["duplicates_skipped"] == summary["listens_added"]


def test_refused_import_is_one_line_on_stderr(home: str, tmp_path: Path) -> None:
    bad = tmp_path / "endsong_0.json"
    bad.write_text('[{"ts": "2020-01-01T00:00:00Z", "ms_pla')
    result = run("--home", home, "import", str(bad), "--member", "ann", "--json")
    assert result.returncode == 1
    # --json callers read stdout: the refusal is there as JSON too
    error = json.loads(result.stdout)["error"]
    assert (error["type"], error["file"], error["row"]) == ("ExportError", "endsong_0.json", None)
    assert error["problem"].startswith("is not valid JSON")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: endsong_0.json: is not valid JSON")
    assert "Traceback" not in result.stderr
    assert not list(Path(home, "events").rglob("*.parquet"))


def test_other_services_export_is_named_in_json(home: str, tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "apple.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Apple Media Services information/Apple Music Play Activity.csv", "a,b\n")
    result = run("--home", home, "import", str(path), "--member", "ann", "--json")
    assert result.returncode == 1
    assert "Apple Music" in json.loads(result.stdout)["error"]["problem"]
    assert "cannot import yet" in result.stderr


def test_human_summary_and_member_list(home: str, tmp_path: Path) -> None:
    z = str(tmp_path / "a.zip")
    run("--home", home, "synth", "--variant", "account", "--listens", "300", "--out", z)
    result = run("--home", home, "import", z, "--member", "ann")
    assert result.returncode == 0
    # a passing import is a summary line, any check that did not pass, and a next step
    lines = result.stdout.strip().splitlines()
    assert len(lines) <= 8, result.stdout
    assert "plays added for ann" in lines[0]
    assert lines[-1].startswith("Full report: tunetrust contribution show ")
    assert "ann" in run("--home", home, "member", "list").stdout
    z2 = str(tmp_path / "b.zip")
    run("--home", home, "synth", "--variant", "account", "--seed", "2", "--out", z2)
    full = run("--home", home, "import", z2, "--member", "ann", "--report")
    assert "Userdata.json" in full.stdout and "Files in the export" in full.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("member", "add", "ann"), "a member named 'ann' exists already"),
        (("import", "nothing.zip", "--member", "ann"), "nothing.zip: no such file or folder"),
        (("import", "x.zip", "--member", "bob"), "no member named 'bob'"),
    ],
)
def test_errors_exit_1_with_one_line(home: str, args: tuple[str, ...], message: str) -> None:
    result = run("--home", home, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_uninitialised_home_says_what_to_do(tmp_path: Path) -> None:
    result = run("--home", str(tmp_path / "none"), "member", "list")
    assert result.returncode == 1
    assert "tunetrust --home" in result.stderr and "init" in result.stderr


def test_synth_rejects_unknown_variant(tmp_path: Path) -> None:
    result = run("synth", "--variant", "extended-z", "--out", str(tmp_path / "z.zip"))
    assert result.returncode == 2
    assert "extended-c" in result.stderr


def test_demo_is_the_main_job(tmp_path: Path) -> None:
    result = run("--home", str(tmp_path / "d"), "demo", "--listens", "2000")
    assert result.returncode == 0, result.stderr
    assert "already counted" in result.stdout
    # the commands to try next are whole lines, however narrow the (piped) output
    where = result.stdout.split("Where to look", 1)[1]
    assert any(
        line.endswith("insights --member member-01 --year 2024") for line in where.splitlines()
    )
    assert any("import YOUR-EXPORT.zip --member YOU" in line for line in where.splitlines())
    assert list((tmp_path / "d" / "events").rglob("*.parquet"))


def test_a_long_member_list_prints_plain_lines(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunetrust import Settings, add_member, init_home
    from tunetrust.cli import app

    home = init_home(Settings(home=tmp_path / "home"))
    names = [f"member {i:03d}" for i in range(201)]
    for name in names:
        add_member(home, name)
    home.close()
    shown = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "member", "list"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["name", "joined", "keeps", "incognito", "plays"]
    assert [line[: len(names[0])] for line in lines[1:]] == names  # one line each, in order
    assert all(line.endswith("  no") for line in lines[1:])
