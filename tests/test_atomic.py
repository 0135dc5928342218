"""An import is all or nothing, even when its process is killed (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tunetrust import Settings, add_member, get_member, import_export, init_home, open_home
from tunetrust.store.models import Contribution

from .factories import export_zip


def _check_consistent(settings: Settings, member: str) -> int:
    """Open (which recovers) and check: one committed file, rows match the contributions."""
    home = open_home(settings)
    try:
        m = get_member(home, member)
        folder = home.events.partition(m.pseudonym)
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        assert names == ([m.events_file] if m.events_file else [])
        stored = home.events.read(m.pseudonym, m.events_file).num_rows
        with home.sessions() as s:
            added = s.scalar(select(func.coalesce(func.sum(Contribution.listens_added), 0)))
            n = s.scalar(select(func.count()).select_from(Contribution))
        assert stored == added
        assert n is not None
        return n
    finally:
        home.close()


def _spawn_import(settings: Settings, path: Path, member: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tunetrust",
            "--home",
            str(settings.home),
            "import",
            str(path),
            "--member",
            member,
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_killed_imports_leave_a_consistent_home(settings: Settings, tmp_path: Path) -> None:
    home = init_home(settings)
    add_member(home, "k")
    home.close()
    exports = [export_zip(tmp_path, "extended-c", 40_000, seed) for seed in (1, 2, 3, 4)]
    outcomes = []
    for i, delay in enumerate((0.05, 0.4, 0.7, 1.0)):
        proc = _spawn_import(settings, exports[i], "k")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.append(_check_consistent(settings, "k"))
    # counts only ever grow by whole contributions
    assert outcomes == sorted(outcomes)


@pytest.mark.slow
def test_kill_between_staging_and_commit_window(settings: Settings, tmp_path: Path) -> None:
    """Kill the moment the staged partition file appears: before or after commit, all is well."""
    home = init_home(settings)
    add_member(home, "k")
    pseudonym = get_member(home, "k").pseudonym
    home.close()
    folder = settings.events_dir / f"pseudonym={pseudonym}"
    for seed in (5, 6):
        proc = _spawn_import(settings, export_zip(tmp_path, "extended-c", 40_000, seed), "k")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if folder.exists() and any(p.suffix == ".tmp" for p in folder.iterdir()):
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        _check_consistent(settings, "k")


def test_recovery_rules(settings: Settings, tmp_path: Path) -> None:
    """Recovery renames a committed staged file and removes uncommitted or stale ones."""
    home = init_home(settings)
    add_member(home, "r")
    import_export(home, "r", export_zip(tmp_path, "extended-c", 300))
    m = get_member(home, "r")
    assert m.events_file is not None
    folder = home.events.partition(m.pseudonym)
    current = folder / m.events_file
    # 1. a staged file of an import that never committed
    (folder / "deadbeef.parquet.tmp").write_bytes(b"partial")
    # 2. a superseded file that was not yet removed
    (folder / "old.parquet").write_bytes(b"old")
    assert home.recover() == 2
    assert sorted(p.name for p in folder.iterdir()) == [m.events_file]
    # 3. committed but not yet renamed: roll forward
    os.replace(current, folder / (m.events_file + ".tmp"))
    assert home.recover() == 1
    assert current.exists()
    home.close()


def test_concurrent_imports_for_one_member(settings: Settings, tmp_path: Path) -> None:
    home = init_home(settings)
    add_member(home, "c")
    home.close()
    same = export_zip(tmp_path, "extended-b", 20_000, 9)
    procs = [_spawn_import(settings, same, "c") for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    n = _check_consistent(settings, "c")
    assert n == 2
    home = open_home(settings)
    with home.sessions() as s:
        added = sorted(s.scalars(select(Contribution.listens_added)))
    home.close()
    assert added[0] == 0 and added[1] > 19_000  # the second one found every play stored
