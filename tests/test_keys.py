"""Master key: rotation rewraps without re-encrypting; wrong or missing keys fail clearly."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

from tunetrust import (
    Home,
    Settings,
    SetupError,
    add_member,
    export_member,
    import_export,
    init_home,
    open_home,
    rotate_master_key,
    verify_audit,
)
from tunetrust.store.keys import encode_key, new_key

from .factories import export_zip


def test_rotation_rewraps_and_keeps_data_readable(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    add_member(coop, "ben")
    path = export_zip(tmp_path, "extended-b", 300)
    import_export(coop, "ann", path)
    vault_files = {p: p.read_bytes() for p in (coop.settings.home / "vault").rglob("*.bin")}
    old_key = coop.settings.key_file.read_text()
    assert rotate_master_key(coop, actor="steward") == 3  # two members + one secret
    assert coop.settings.key_file.read_text() != old_key
    assert oct(coop.settings.key_file.stat().st_mode & 0o777) == "0o600"
    # vault files untouched (no re-encryption), still readable with the new key
    assert {p: p.read_bytes() for p in vault_files} == vault_files
    reopened = open_home(coop.settings)
    report = export_member(reopened, "ann", tmp_path / "ann.zip")
    assert f"raw/{next(iter(vault_files)).name.removesuffix('.bin')}" in report.files
    assert verify_audit(reopened).ok
    reopened.close()


def test_old_key_no_longer_opens_the_vault(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    import_export(coop, "ann", export_zip(tmp_path, "extended-c", 200))
    old = coop.settings.key_file.read_text()
    rotate_master_key(coop, actor="steward")
    coop.settings.key_file.write_text(old)
    with closing(open_home(coop.settings)) as reopened, pytest.raises(SetupError, match="wrong"):
        export_member(reopened, "ann", tmp_path / "x.zip")


def test_wrong_key_in_environment(tmp_path: Path) -> None:
    key = encode_key(new_key())
    home = init_home(Settings(home=tmp_path / "h", master_key=key))
    add_member(home, "ann")
    home.close()
    wrong = Settings(home=tmp_path / "h", master_key=encode_key(new_key()))
    with pytest.raises(SetupError, match="wrong master key"):
        init_home(wrong)
    with closing(open_home(wrong)) as home, pytest.raises(SetupError, match="wrong master key"):
        import_export(home, "ann", export_zip(tmp_path, "extended-c", 50))


@pytest.mark.parametrize(
    ("content", "message"),
    [("not base64!!", "not valid base64"), (encode_key(b"short"), "must be 32 bytes")],
)
def test_malformed_key_file(tmp_path: Path, content: str, message: str) -> None:
    settings = Settings(home=tmp_path / "h")
    init_home(settings).close()
    settings.key_file.write_text(content)
    with pytest.raises(SetupError, match=message):
        init_home(settings)


def test_missing_key_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h")
    home = init_home(settings)
    add_member(home, "ann")
    home.close()
    settings.key_file.unlink()
    with closing(open_home(settings)) as home, pytest.raises(SetupError, match="no master key"):
        import_export(home, "ann", export_zip(tmp_path, "extended-c", 50))


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h")
    init_home(settings).close()
    os.chmod(settings.key_file, 0o644)
    with pytest.raises(SetupError, match="chmod 600"):
        init_home(settings)


def test_rotation_with_key_in_environment(tmp_path: Path) -> None:
    old = encode_key(new_key())
    home = init_home(Settings(home=tmp_path / "h", master_key=old))
    add_member(home, "ann")
    with pytest.raises(SetupError, match="TUNETRUST_NEW_MASTER_KEY"):
        rotate_master_key(home, actor="steward")
    fresh = new_key()
    rotate_master_key(home, actor="steward", new_key=fresh)
    home.close()
    reopened = init_home(Settings(home=tmp_path / "h", master_key=encode_key(fresh)))
    assert reopened.secret("account-hash")
    reopened.close()


@pytest.mark.parametrize("leftover", [b"", b"c2hvcnQ"])  # empty; cut off mid-write
def test_a_half_written_pending_key_is_removed_on_open(tmp_path: Path, leftover: bytes) -> None:
    """A power cut while writing master.key.new: nothing was wrapped under it yet."""
    settings = Settings(home=tmp_path / "h")
    home = init_home(settings)
    add_member(home, "ann")
    import_export(home, "ann", export_zip(tmp_path, "extended-c", 50))
    home.close()
    pending = settings.key_file.with_name("master.key.new")
    pending.write_bytes(leftover)
    os.chmod(pending, 0o600)
    with closing(open_home(settings)) as home:
        assert verify_audit(home).ok
        export_member(home, "ann", tmp_path / "ann.zip")  # the vault still opens
        assert not pending.exists()  # settled when the key was first needed


def test_rotation_syncs_the_new_key_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "h")
    home = init_home(settings)
    synced: set[int] = set()
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.add(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    rotate_master_key(home, actor="steward")
    home.close()
    # the key file's bytes (written as master.key.new, renamed) and the folder's entries
    assert settings.key_file.stat().st_ino in synced
    assert settings.home.stat().st_ino in synced
