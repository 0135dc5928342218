"""Hostile and broken packages: each refused with a clear error, nothing stored."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tunetrust import ExportError, Home, import_export
from tunetrust.formats.package import open_package
from tunetrust.settings import ImportLimits, Settings
from tunetrust.store.home import init_home
from tunetrust.store.models import Contribution

from .factories import export_zip, extended_row, json_bytes, zip_of, zip_with_bytes


def _store_files(home: Home) -> list[str]:
    return sorted(
        str(p.relative_to(home.settings.home)) for p in home.settings.events_dir.rglob("*")
    )


def _refused(home: Home, member: str, path: Path | list[Path], message: str) -> str:
    before = _store_files(home)
    with pytest.raises(ExportError) as info:
        import_export(home, member, path)
    assert message in str(info.value)
    assert _store_files(home) == before
    with home.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contribution)) == 0
    return str(info.value)


def test_path_traversal_entry_is_refused(home: Home, member: str, tmp_path: Path) -> None:
    path = zip_of(tmp_path, {"../../etc/evil.json": b"[]", "MyData/endsong_0.json": b"[]"})
    _refused(home, member, path, "points outside the package")


def test_absolute_entry_is_refused(home: Home, member: str, tmp_path: Path) -> None:
    path = zip_of(tmp_path, {"/abs/endsong_0.json": b"[]"})
    _refused(home, member, path, "points outside the package")


def test_zip_bomb_by_ratio(home: Home, member: str, tmp_path: Path) -> None:
    # 50 MB of one byte compresses about 1000:1
    bomb = zip_with_bytes(tmp_path, "MyData/endsong_0.json", b"[" + b" " * 50_000_000 + b"]")
    msg = _refused(home, member, bomb, "expands more than 200 times")
    assert "zip bomb" in msg


def test_zip_whose_declared_size_is_huge(tmp_path: Path) -> None:
    path = zip_with_bytes(tmp_path, "endsong_0.json", b"[" + b" " * 2_000_000 + b"]")
    with pytest.raises(ExportError, match="unpacks to 2,000,002 bytes"):
        with open_package([path], ImportLimits(max_total_bytes=1_000_000)):
            pass


def test_file_over_size_limit(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", limits=ImportLimits(max_file_bytes=1_000))
    home = init_home(settings)
    from tunetrust import add_member

    add_member(home, "bob")
    rows = json_bytes([extended_row("c") for _ in range(20)])
    path = tmp_path / "Streaming_History_Audio_2021_0.json"
    path.write_bytes(rows)
    _refused(home, "bob", path, "Streaming_History_Audio_2021_0.json: the file is larger than")
    home.close()


def test_empty_zip(home: Home, member: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    zipfile.ZipFile(path, "w").close()
    _refused(home, member, path, "empty.zip: the package is empty")


def test_zip_that_is_not_an_export(home: Home, member: str, tmp_path: Path) -> None:
    path = zip_of(tmp_path, {"holiday.jpg": b"\xff\xd8\xff", "notes.txt": b"hi"})
    msg = _refused(home, member, path, "no listening history found in this package")
    assert "export.zip" in msg


def test_damaged_zip(home: Home, member: str, tmp_path: Path) -> None:
    good = export_zip(tmp_path, "extended-c", 200)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(home, member, broken, "broken.zip: the zip file is damaged or truncated")


def test_truncated_json_inside_zip(home: Home, member: str, tmp_path: Path) -> None:
    data = json_bytes([extended_row("c")] * 3)[:-20]
    path = zip_of(
        tmp_path, {"Spotify Extended Streaming History/Streaming_History_Audio_2021_0.json": data}
    )
    _refused(home, member, path, "Streaming_History_Audio_2021_0.json: is not valid JSON")


def test_one_bad_file_refuses_the_whole_export(home: Home, member: str, tmp_path: Path) -> None:
    good = json_bytes([extended_row("c")])
    bad = json_bytes([extended_row("c", ms_played="x")])
    path = zip_of(
        tmp_path,
        {"Streaming_History_Audio_2020_0.json": good, "Streaming_History_Audio_2021_1.json": bad},
    )
    _refused(home, member, path, "Streaming_History_Audio_2021_1.json, row 1")


def test_symlink_in_folder_is_refused(home: Home, member: str, tmp_path: Path) -> None:
    folder = tmp_path / "MyData"
    folder.mkdir()
    (folder / "endsong_0.json").write_bytes(json_bytes([extended_row("b")]))
    os.symlink("/etc/passwd", folder / "endsong_1.json")
    _refused(home, member, folder, "symbolic links are not followed")


def test_missing_path(home: Home, member: str, tmp_path: Path) -> None:
    _refused(home, member, tmp_path / "nope.zip", "no such file or folder")


def test_files_with_no_plays(home: Home, member: str, tmp_path: Path) -> None:
    path = zip_of(tmp_path, {"MyData/endsong_0.json": b"[]"})
    _refused(home, member, path, "hold no plays")


# --- hostile inputs found by crafting files (issue 13, item 14) ----------------------


def test_huge_play_length_is_a_clear_error(home: Home, member: str, tmp_path: Path) -> None:
    path = tmp_path / "Streaming_History_Audio_2021_0.json"
    path.write_bytes(json_bytes([extended_row("c"), extended_row("c", ms_played=2**63)]))
    _refused(home, member, path, "row 2: the field 'ms_played' should be a whole number")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_at_once(home: Home, member: str, device: str) -> None:
    started = time.monotonic()
    _refused(home, member, Path(device), "is not a regular file")
    assert time.monotonic() - started < 10  # refused before anything reads it


def test_a_named_pipe_is_refused_without_blocking(home: Home, member: str, tmp_path: Path) -> None:
    fifo = tmp_path / "endsong_0.json"
    os.mkfifo(fifo)
    _refused(home, member, fifo, "is not a regular file")
    folder = tmp_path / "MyData"
    folder.mkdir()
    os.mkfifo(folder / "endsong_1.json")
    _refused(home, member, folder, "is not a regular file")


@pytest.mark.parametrize("target", ["zip", "json"])
def test_a_symbolic_link_given_as_the_export_is_refused(
    home: Home, member: str, tmp_path: Path, target: str
) -> None:
    real = (
        zip_of(tmp_path, {"endsong_0.json": json_bytes([extended_row("b")])})
        if target == "zip"
        else tmp_path / "endsong_0.json"
    )
    if target == "json":
        real.write_bytes(json_bytes([extended_row("b")]))
    link = tmp_path / f"link.{target}"
    os.symlink(real, link)
    _refused(home, member, link, "symbolic links are not followed")
    # among loose files too
    _refused(home, member, [real, link] if target == "json" else [link], "symbolic links")


def test_a_folder_over_the_total_limit_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "MyData"
    folder.mkdir()
    for i in range(3):
        (folder / f"endsong_{i}.json").write_bytes(b"[" + b" " * 400_000 + b"]")
    with pytest.raises(ExportError, match="over the limit of 1,000,000"):
        with open_package([folder], ImportLimits(max_total_bytes=1_000_000)):
            pass
