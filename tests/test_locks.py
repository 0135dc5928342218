"""Reads never wait behind writes; writers queue on one lock (a file, or PostgreSQL's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tunetrust import Settings, add_member, get_member, import_export, init_home, open_home

from .factories import export_zip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    return env | extra


def _cli(settings: Settings, *args: str) -> list[str]:
    base = [sys.executable, "-m", "tunetrust", "--home", str(settings.home)]
    if settings.database_url:
        base += ["--database-url", settings.database_url]
    return base + list(args)


@pytest.fixture
def paused_import(
    tmp_path: Path, db_url: str | None
) -> Iterator[tuple[Settings, subprocess.Popen[bytes], Path]]:
    """A cooperative whose import for 'ben' is held inside the write lock."""
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    home = init_home(settings)
    add_member(home, "ann")
    add_member(home, "ben")
    add_member(home, "cy")
    import_export(home, "ann", export_zip(tmp_path, "extended-c", 600, seed=1))
    home.close()
    marker = tmp_path / "paused"
    log = tmp_path / "writer.log"
    with log.open("wb") as err:
        writer = subprocess.Popen(
            _cli(settings, "import", str(export_zip(tmp_path, "extended-c", 600, seed=2)))
            + ["--member", "ben", "--json"],
            env=_env(TUNETRUST_PAUSE_AT="import.locked", TUNETRUST_PAUSE_FILE=str(marker)),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert writer.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the import never reached its lock"
        time.sleep(0.05)
    try:
        yield settings, writer, marker
    finally:
        marker.unlink(missing_ok=True)
        writer.wait(timeout=120)


def test_reads_answer_while_an_import_holds_the_lock(
    paused_import: tuple[Settings, subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    settings, writer, marker = paused_import
    for args in (
        ("member", "list"),
        ("insights", "--member", "ann", "--json"),
        ("audit", "head"),
        ("contribution", "list"),
    ):
        done = subprocess.run(
            _cli(settings, *args), env=_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (args, done.stderr)
    assert (
        json.loads(
            subprocess.run(
                _cli(settings, "insights", "--member", "ann", "--json"),
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        )["plays"]
        > 0
    )
    # another writer of files queues behind the held lock, then goes ahead: it pauses
    # at the same point inside the lock, so its marker says when it got the lock
    second_marker = tmp_path / "second-in-lock"
    log = tmp_path / "second.log"
    with log.open("wb") as err:
        second = subprocess.Popen(
            _cli(settings, "import", str(export_zip(tmp_path, "extended-c", 600, seed=3)))
            + ["--member", "cy"],
            env=_env(TUNETRUST_PAUSE_AT="import.locked", TUNETRUST_PAUSE_FILE=str(second_marker)),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    time.sleep(5)
    assert second.poll() is None, log.read_text()
    assert not second_marker.exists()  # it has not got the lock while the first holds it
    marker.unlink()
    assert writer.wait(timeout=120) == 0
    deadline = time.monotonic() + 120
    while not second_marker.exists():  # the lock passes to the waiting writer
        assert second.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the second writer never got the lock"
        time.sleep(0.05)
    second_marker.unlink()
    assert second.wait(timeout=120) == 0, log.read_text()
    home = open_home(settings)
    try:
        assert all(get_member(home, n).events_file for n in ("ann", "ben", "cy"))
    finally:
        home.close()


def test_a_committed_file_is_read_before_anyone_settles_it(tmp_path: Path) -> None:
    """Killed between commit and publish: readers see the committed plays at once."""
    settings = Settings(home=tmp_path / "home")
    home = init_home(settings)
    add_member(home, "ann")
    home.close()
    done = subprocess.run(
        _cli(settings, "import", str(export_zip(tmp_path, "extended-c", 500)))
        + ["--member", "ann"],
        env=_env(TUNETRUST_CRASH_AT="import.committed"),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9
    home = open_home(settings)  # no recovery on open any more
    try:
        m = get_member(home, "ann")
        assert m.events_file is not None
        staged = home.events.partition(m.pseudonym) / (m.events_file + ".tmp")
        assert staged.exists()  # nobody settled it yet
        assert home.events.count(m.pseudonym, m.events_file) > 400
        assert home.recover() >= 1  # the next writer (or doctor) settles it
        assert not staged.exists()
        assert home.events.count(m.pseudonym, m.events_file) > 400
    finally:
        home.close()


@pytest.mark.slow
def test_reads_answer_during_a_real_500000_listen_import(tmp_path: Path) -> None:
    """No pause marker here: a real import of 500,000 listens, and reads meanwhile."""
    settings = Settings(home=tmp_path / "home")
    home = init_home(settings)
    add_member(home, "ann")
    add_member(home, "ben")
    import_export(home, "ann", export_zip(tmp_path, "extended-c", 600, seed=1))
    home.close()
    big = export_zip(tmp_path, "extended-c", 500_000, seed=3, years=12)
    writer = subprocess.Popen(
        _cli(settings, "import", str(big), "--member", "ben", "--json"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)  # the import has opened the export and is reading it
        answered = []
        for args in (
            ("member", "list", "--json"),
            ("insights", "--member", "ann", "--json"),
            ("audit", "head"),
        ):
            done = subprocess.run(
                _cli(settings, *args), env=_env(), capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, (args, done.stderr)
            answered.append(writer.poll() is None)
        assert all(answered), "the import ended before the reads: the test proved nothing"
    finally:
        _, err = writer.communicate(timeout=600)
    assert writer.returncode == 0, err.decode()
    home = open_home(settings)
    try:
        ben = get_member(home, "ben")
        assert home.events.count(ben.pseudonym, ben.events_file) > 400_000
    finally:
        home.close()
