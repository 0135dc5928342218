"""Custody: every file TuneTrust writes is its owner's alone (files 0600, folders 0700)."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tunetrust import (
    Settings,
    add_member,
    decide_consent,
    export_member,
    get_member,
    import_export,
    init_home,
    open_home,
)
from tunetrust.releases.build import build_release
from tunetrust.releases.spec import parse_spec
from tunetrust.store.events import EVENTS_SCHEMA

from .factories import export_zip

SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [month]
metrics: [plays]
bounds: {max_partitions: 3, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: private
"""


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual shell umask, under which plain writes come out world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _not_private(root: Path) -> dict[str, str]:
    """Every folder not 0700 and every file not 0600 under ``root`` (itself included)."""
    found = {} if _mode(root) == 0o700 else {".": oct(_mode(root))}
    for folder, dirs, files in os.walk(root):
        for name, want in [*((d, 0o700) for d in dirs), *((f, 0o600) for f in files)]:
            path = Path(folder) / name
            if _mode(path) != want:
                found[str(path.relative_to(root))] = oct(_mode(path))
    return found


def _loosen(root: Path) -> None:
    """Make a home look like one an older version wrote: folders 0755, files 0644."""
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(Path(folder) / d, 0o755)
        for f in files:
            os.chmod(Path(folder) / f, 0o644)
    os.chmod(root, 0o755)


def test_everything_written_in_the_home_is_private(tmp_path: Path, umask_022: None) -> None:
    settings = Settings(home=tmp_path / "home")
    home = init_home(settings)
    try:
        for i, name in enumerate(("alice", "bob")):  # a release needs two members at least
            add_member(home, name)
            import_export(home, name, export_zip(tmp_path, "extended-c", 300, seed=i + 1))
            decide_consent(home, name, "research", granted=True)
        built = build_release(home, parse_spec(SPEC), allow_empty=True)
        report = export_member(home, "alice", tmp_path / "out" / "alice.zip")
        # staged files, as a crash would leave them
        m = get_member(home, "alice")
        home.events.stage(m.pseudonym, "probe.parquet", EVENTS_SCHEMA.empty_table())
        home.vault.stage(m.pseudonym, "probe.bin", os.urandom(32), io.BytesIO(b"raw"))

        # checked while the home is open: SQLite removes -wal and -shm on close
        names = {p.name for p in settings.home.rglob("*")}
        assert {
            "tunetrust.db",
            "tunetrust.db-wal",
            "tunetrust.db-shm",
            "master.key",
            ".lock",
            "audit.head",
            "probe.parquet.tmp",
            "probe.bin.tmp",
            "manifest.json",
            "data.parquet",
            "data.csv",
        } <= names
        assert any(p.suffix == ".parquet" for p in home.events.partition(m.pseudonym).iterdir())
        assert any(home.vault.folder(m.pseudonym).glob("*.zip.bin"))
        assert built.path.parent == settings.home / "releases"
        assert _not_private(settings.home) == {}
        assert _mode(report.path) == 0o600
    finally:
        home.close()


def test_an_older_world_readable_home_is_tightened_on_open(tmp_path: Path, umask_022: None) -> None:
    settings = Settings(home=tmp_path / "home")
    home = init_home(settings)
    add_member(home, "alice")
    import_export(home, "alice", export_zip(tmp_path, "extended-c", 300))
    home.close()
    _loosen(settings.home)
    assert _not_private(settings.home) != {}

    open_home(settings).close()
    assert _not_private(settings.home) == {}

    _loosen(settings.home)
    init_home(settings).close()
    assert _not_private(settings.home) == {}


def test_reports_written_by_the_cli_are_private(settings: Settings, tmp_path: Path) -> None:
    """The insights report and the demo's report describe a person's listening."""
    import subprocess
    import sys

    home = init_home(settings)
    add_member(home, "ann")
    import_export(home, "ann", export_zip(tmp_path, "extended-c", 400))
    home.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}

    def run(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "tunetrust", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: os.umask(0o022),  # the usual shell umask
        )
        assert done.returncode == 0, done.stderr

    report = tmp_path / "out" / "ann.html"
    run("--home", str(settings.home), "insights", "--member", "ann", "--html", str(report))
    assert _mode(report) == 0o600
    demo = tmp_path / "demo"
    run("--home", str(demo), "demo", "--listens", "300")
    assert _not_private(demo) == {}
