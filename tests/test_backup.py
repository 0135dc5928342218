"""Backup and restore: a whole home, encrypted with a passphrase, restored byte for byte."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from tunetrust import (
    ConflictError,
    Home,
    InputError,
    Settings,
    add_member,
    export_member,
    init_home,
    open_home,
    verify_audit,
)
from tunetrust.coop import ledger
from tunetrust.coop.backup import Kdf, backup_home, restore_home
from tunetrust.store.keys import encode_key, new_key

from .test_cli import run
from .test_rights import fill_cooperative

PASSPHRASE = "correct horse battery staple"
CHEAP = Kdf(memory_kib=1024, iterations=1, lanes=1)  # where the KDF's cost is not the point


def _contents(path: Path) -> dict[str, bytes]:
    """The files inside an export zip (the zip's own timestamps aside)."""
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    # the README says when it was exported: the one line two exports may not share
    files["README.txt"] = b"\n".join(
        line for line in files["README.txt"].split(b"\n") if not line.startswith(b"Exported ")
    )
    return files


def test_restore_into_a_new_folder_gives_the_same_cooperative(home: Home, tmp_path: Path) -> None:
    fill_cooperative(home, tmp_path)
    verdict = verify_audit(home)
    balances = {(b.account, b.currency, b.cents) for b in ledger.balances(home)}
    assert verdict.ok and balances
    report = backup_home(home, tmp_path / "coop.ttbackup", PASSPHRASE)  # the default KDF
    assert report.audit_head == (verdict.entries, verdict.head)
    assert report.database_included and report.key_included
    data = report.path.read_bytes()
    assert data[:4] == b"TTBK" and b"SQLite format 3" not in data and b"zelda" not in data
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600

    restored_settings = Settings(home=tmp_path / "restored")
    restored_report = restore_home(restored_settings, report.path, PASSPHRASE)
    assert restored_report.audit_head == report.audit_head and restored_report.key_checked
    restored = open_home(restored_settings)
    try:
        again = verify_audit(restored)
        assert again.ok and (again.entries, again.head) == (verdict.entries, verdict.head)
        check = ledger.verify(restored)
        assert check.ok and check.transactions > 0
        assert {(b.account, b.currency, b.cents) for b in ledger.balances(restored)} == balances
        source, copy = home.settings.home, restored_settings.home
        assert (copy / "master.key").read_bytes() == (source / "master.key").read_bytes()
        for folder in ("events", "vault", "releases"):
            files = sorted(p.relative_to(source) for p in (source / folder).rglob("*"))
            assert files and files == sorted(
                p.relative_to(copy) for p in (copy / folder).rglob("*")
            )
            for rel in files:
                if (source / rel).is_file():
                    assert (copy / rel).read_bytes() == (source / rel).read_bytes()
                    assert stat.S_IMODE((copy / rel).stat().st_mode) == 0o600
        assert stat.S_IMODE(copy.stat().st_mode) == 0o700
        # a member's export from each home holds the very same bytes
        mine = export_member(home, "zelda", tmp_path / "from-source.zip")
        theirs = export_member(restored, "zelda", tmp_path / "from-restored.zip")
        assert _contents(mine.path) == _contents(theirs.path)
    finally:
        restored.close()
    # the backup itself is on record in the source home, after the copied head
    from tunetrust.coop import audit

    with home.sessions() as s:
        assert "home.backup" in [e.action for e in audit.entries(s, "cooperative")]
    assert not list(tmp_path.glob(".restored.restore-*"))


def test_wrong_passphrase_is_one_line_and_restores_nothing(home: Home, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunetrust.cli import app

    add_member(home, "ann")
    h, target, backup = str(home.settings.home), tmp_path / "r", str(tmp_path / "b.ttbackup")
    ok = {"TUNETRUST_BACKUP_PASSPHRASE": PASSPHRASE}
    made = CliRunner().invoke(app, ["--home", h, "backup", "--out", backup], env=ok)
    assert made.exit_code == 0, made.output
    assert "Backed up" in made.stdout and "audit head in the backup" in made.stdout
    # a real process, so the error goes through main(): one line on stderr, exit 1
    wrong = {"TUNETRUST_BACKUP_PASSPHRASE": PASSPHRASE + "!"}
    result = run("--home", str(target), "restore", backup, env=wrong)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: wrong passphrase for this backup (or its header was altered)"
    )
    assert not target.exists() and not list(tmp_path.glob(".r.restore-*"))
    good = CliRunner().invoke(app, ["--home", str(target), "restore", backup], env=ok)
    assert good.exit_code == 0, good.output
    assert "audit chain holds" in good.stdout


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("body", "altered, damaged or cut short"),
        ("last", "altered, damaged or cut short"),
        ("truncate", "altered, damaged or cut short"),
        ("salt", "wrong passphrase for this backup"),
        ("check", "wrong passphrase for this backup"),
        ("params", "header is damaged"),
        ("magic", "not a TuneTrust backup"),
    ],
)
def test_a_tampered_backup_is_refused(home: Home, tmp_path: Path, where: str, message: str) -> None:
    add_member(home, "ann")
    report = backup_home(home, tmp_path / "b.ttbackup", PASSPHRASE, kdf=CHEAP)
    data = bytearray(report.path.read_bytes())
    at = {"body": len(data) // 2, "last": len(data) - 5, "salt": 20, "check": 40, "params": 9}
    if where == "truncate":
        del data[-100:]
    elif where == "magic":
        data[0] ^= 1
    elif where == "params":
        data[6:10] = (2**31).to_bytes(4, "big")  # memory far beyond the limit
    else:
        data[at[where]] ^= 1
    report.path.write_bytes(bytes(data))
    target = tmp_path / "restored"
    with pytest.raises(InputError, match=message):
        restore_home(Settings(home=target), report.path, PASSPHRASE)
    assert not target.exists() and not list(tmp_path.glob(".restored.restore-*"))


def test_refusals_before_anything_is_written(home: Home, tmp_path: Path) -> None:
    add_member(home, "ann")
    with pytest.raises(InputError, match="at least 12 characters"):
        backup_home(home, tmp_path / "b.ttbackup", "short pass")
    with pytest.raises(InputError, match="outside the home"):
        backup_home(home, home.settings.home / "releases" / "b.ttbackup", PASSPHRASE, kdf=CHEAP)
    assert not (tmp_path / "b.ttbackup").exists()
    report = backup_home(home, tmp_path / "b.ttbackup", PASSPHRASE, kdf=CHEAP)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        restore_home(Settings(home=busy), report.path, PASSPHRASE)
    assert (busy / "something").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore_home(Settings(home=empty), report.path, PASSPHRASE).audit_head is not None


def test_a_key_from_the_environment_is_not_in_the_backup(tmp_path: Path) -> None:
    key = encode_key(new_key())
    settings = Settings(home=tmp_path / "h", master_key=key)
    home = init_home(settings)
    try:
        add_member(home, "ann")
        report = backup_home(home, tmp_path / "b.ttbackup", PASSPHRASE, kdf=CHEAP)
    finally:
        home.close()
    assert not report.key_included
    restored = restore_home(Settings(home=tmp_path / "r", master_key=key), report.path, PASSPHRASE)
    assert not restored.key_included and restored.key_checked
    assert not (tmp_path / "r" / "master.key").exists()
    other = Settings(home=tmp_path / "r2", master_key=encode_key(new_key()))
    with pytest.raises(Exception, match="wrong master key"):
        restore_home(other, report.path, PASSPHRASE)
    assert not other.home.exists()


def test_postgresql_database_is_left_to_pg_dump(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    if coop.settings.database_url:
        with pytest.raises(InputError, match="pg_dump"):
            backup_home(coop, tmp_path / "b.ttbackup", PASSPHRASE, kdf=CHEAP)
    report = backup_home(coop, tmp_path / "b.ttbackup", PASSPHRASE, files_only=True, kdf=CHEAP)
    assert not report.database_included and report.key_included and report.audit_head is None
    target = coop.settings.replace(home=tmp_path / "r")
    restored = restore_home(target, report.path, PASSPHRASE)
    assert not restored.database_included and restored.audit_head is None
    assert (tmp_path / "r" / "master.key").read_bytes() == coop.settings.key_file.read_bytes()
    assert not (tmp_path / "r" / "tunetrust.db").exists()


def test_init_tells_the_steward_to_back_up_the_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunetrust.cli import app

    result = CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "init"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if "Back up" in line]
    assert f"Back up {tmp_path / 'h' / 'master.key'}" in line and "tunetrust backup" in line
    assert os.path.exists(tmp_path / "h" / "master.key")
