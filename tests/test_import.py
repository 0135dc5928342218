"""Importing exports: round trips per variant, re-imports, dedup across kinds, layouts."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from tunetrust import Home, add_member, get_member, import_export
from tunetrust.formats.spotify.synth import (
    PARSED_AS,
    VARIANTS,
    render,
    synthesize,
    write_export,
    write_zip,
)
from tunetrust.store.events import EVENTS_SCHEMA

from . import reference
from .factories import export_zip, extended_row, json_bytes

FIELDS = (
    "ts",
    "ms_played",
    "source",
    "artist_name",
    "track_name",
    "show_name",
    "episode_name",
    "audiobook_title",
    "audiobook_chapter_title",
    "track_uri",
    "episode_uri",
    "reason_end",
    "skipped",  # filled at import from the service's skip reasons (docs/events.md)
)


def _source_rows(path: Path) -> dict[str, list[dict[str, object]]]:
    """The listening-history files of a zip, parsed as plain JSON (name → rows)."""
    with zipfile.ZipFile(path) as zf:
        return {
            n: orjson.loads(zf.read(n))
            for n in zf.namelist()
            if n.endswith(".json")
            and "Userdata" not in n
            and any(k in n for k in ("/StreamingHistory", "/Streaming_History_", "/end"))
        }


def _stored(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Stored rows with ``ts`` as epoch milliseconds, as the reference writes it."""
    out = []
    for r in rows:
        ts = r["ts"]
        assert isinstance(ts, datetime)
        out.append({**r, "ts": int(ts.timestamp() * 1000)})
    return out


def _events(home: Home, name: str) -> list[dict[str, object]]:
    m = get_member(home, name)
    table = home.events.read(m.pseudonym, m.events_file)
    rows: list[dict[str, object]] = table.to_pylist()
    return rows


@pytest.mark.parametrize("variant", VARIANTS)
def test_round_trip_every_variant(home: Home, member: str, tmp_path: Path, variant: str) -> None:
    result = write_export(variant, 3_000, 11, tmp_path / "x.zip")
    summary = import_export(home, member, result.path)
    assert summary.listens_in_export == result.listens
    incognito = summary.dropped.get("incognito", 0)
    assert summary.listens_added + incognito + summary.duplicates_skipped == result.listens
    if variant.startswith("account"):
        # minute resolution: two identical plays in one minute cannot be told apart
        # (docs/events.md); they are rare and the only duplicates allowed here
        assert summary.duplicates_skipped == summary.duplicates["repeated_in_export"]
        assert summary.duplicates_skipped <= result.listens * 0.005
    else:
        assert summary.duplicates_skipped == 0
    assert summary.listens_total == summary.listens_added
    assert len(_events(home, member)) == summary.listens_added
    if variant.startswith("extended"):
        assert summary.dropped["incognito"] == result.incognito > 0
    imported = [f for f in summary.files if f.status == "imported"]
    assert sum(f.rows or 0 for f in imported) == result.listens
    parsed_as = PARSED_AS.get(variant, variant)
    assert {f.kind for f in imported} <= {
        "account-music",
        "account-podcast",
        "account-audiobook",
        "account-legacy",
        f"{parsed_as}",
        f"{parsed_as}-video",
    }
    # what is stored, row by row, against the rules of docs/events.md read independently
    expected = reference.merge([], reference.listens_from_source(_source_rows(result.path)))
    stored = _events(home, member)
    assert reference.multiset(_stored(stored), FIELDS) == reference.multiset(expected, FIELDS)
    assert reference.totals(_stored(stored)) == reference.totals(expected)


def test_events_partition_layout_and_schema(home: Home, member: str, tmp_path: Path) -> None:
    import_export(home, member, export_zip(tmp_path, "extended-c", 500))
    m = get_member(home, member)
    files = list((home.settings.events_dir / f"pseudonym={m.pseudonym}").iterdir())
    assert [f.name for f in files] == [m.events_file]
    table = pq.read_table(files[0])
    assert table.schema.names == EVENTS_SCHEMA.names
    assert set(table["platform"].to_pylist()) <= {
        "android",
        "ios",
        "desktop",
        "web",
        "speaker",
        "tv",
        "car",
        "other",
    }
    ts = table["ts"].to_pylist()
    assert ts == sorted(ts)


def test_reimport_adds_nothing(home: Home, member: str, tmp_path: Path) -> None:
    path = export_zip(tmp_path, "extended-b", 2_000)
    first = import_export(home, member, path)
    file_before = get_member(home, member).events_file
    second = import_export(home, member, path)
    assert second.listens_added == 0
    assert second.duplicates_skipped == first.listens_added
    assert second.duplicates["already_imported"] == first.listens_added
    assert second.same_export_as == first.contribution
    assert get_member(home, member).events_file == file_before  # nothing rewritten


def test_extended_then_account_counts_each_play_once(
    home: Home, member: str, tmp_path: Path
) -> None:
    history = synthesize("extended-c", 4_000, 21)
    ext, acc = tmp_path / "ext.zip", tmp_path / "acc.zip"
    write_zip(render(history, "extended-c"), ext)
    write_zip(render(history, "account"), acc)
    first = import_export(home, member, ext)
    second = import_export(home, member, acc)
    assert second.listens_in_export > 100
    assert second.listens_added == 0
    assert second.duplicates["covered_by_extended_history"] == second.listens_in_export
    assert second.listens_total == first.listens_added


def test_account_then_extended_replaces_account_rows(
    home: Home, member: str, tmp_path: Path
) -> None:
    history = synthesize("extended-c", 4_000, 22)
    ext, acc = tmp_path / "ext.zip", tmp_path / "acc.zip"
    write_zip(render(history, "extended-c"), ext)
    write_zip(render(history, "account"), acc)
    first = import_export(home, member, acc)
    second = import_export(home, member, ext)
    assert second.account_rows_superseded == first.listens_added
    rows = _events(home, member)
    assert {r["source"] for r in rows} == {"extended"}
    assert len(rows) == second.listens_total == second.listens_added


def test_account_plays_not_in_extended_are_kept(home: Home, member: str, tmp_path: Path) -> None:
    acc = tmp_path / "acc.json"
    acc.write_bytes(
        json_bytes(
            [
                {
                    "endTime": "2021-03-04 05:06",
                    "artistName": "Artist",
                    "trackName": "Song",
                    "msPlayed": 200000,
                },
                {
                    "endTime": "2021-03-04 06:00",
                    "artistName": "Other",
                    "trackName": "Tune",
                    "msPlayed": 1000,
                },
            ]
        )
    )
    ext = tmp_path / "Streaming_History_Audio_2021_0.json"
    ext.write_bytes(json_bytes([extended_row("c")]))  # ends 05:06:07, Artist / Song, 200000 ms
    import_export(home, member, acc)
    summary = import_export(home, member, ext)
    assert summary.account_rows_superseded == 1
    assert sorted((r["source"], r["artist_name"]) for r in _events(home, member)) == [
        ("account", "Other"),
        ("extended", "Artist"),
    ]


def test_repeated_rows_inside_an_export_count_once(home: Home, member: str, tmp_path: Path) -> None:
    # a few repeated rows happen in real exports; many are an attack (test_validate.py).
    # 250 evenly spaced plays: below the 300 plays the fabrication checks need to judge
    start = datetime(2021, 3, 4, tzinfo=UTC)
    rows = [
        extended_row(
            "b",
            ms_played=100_000 + i,
            ts=(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for i in range(250)
    ]
    path = tmp_path / "endsong_0.json"
    path.write_bytes(json_bytes(rows + rows[:2]))
    summary = import_export(home, member, path)
    assert summary.listens_added == 250
    assert summary.duplicates == {
        "already_imported": 0,
        "repeated_in_export": 2,
        "covered_by_extended_history": 0,
    }


def test_generations_of_the_same_account_overlap(home: Home, member: str, tmp_path: Path) -> None:
    """A 2020 export without URIs and a 2023 export with them: the same plays match by name."""
    b_row = extended_row("b")
    a_row = extended_row("a")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "endsong_0.json").write_bytes(json_bytes([a_row]))
    (tmp_path / "b" / "endsong_0.json").write_bytes(
        json_bytes([b_row, extended_row("b", ts="2022-01-01T00:00:00Z")])
    )
    import_export(home, member, tmp_path / "a")
    summary = import_export(home, member, tmp_path / "b")
    assert (summary.listens_added, summary.duplicates_skipped) == (1, 1)


def test_folder_and_loose_files(home: Home, member: str, tmp_path: Path) -> None:
    zpath = export_zip(tmp_path, "account", 1_500)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(folder)
    from_zip = import_export(home, member, zpath)
    # the same files again, as a folder and as loose files: each play is recognised
    from_folder = import_export(home, member, folder)
    loose = sorted(folder.rglob("StreamingHistory_*.json"))
    from_files = import_export(home, member, loose)
    assert len(loose) >= 2
    assert from_zip.listens_added > 1_400
    assert (
        from_folder.listens_in_export == from_files.listens_in_export == from_zip.listens_in_export
    )
    assert from_folder.listens_added == from_files.listens_added == 0


def test_incognito_plays_only_with_opt_in(home: Home, tmp_path: Path) -> None:
    def export(name: str, ms: int) -> Path:
        path = tmp_path / name / "Streaming_History_Audio_2021_0.json"
        path.parent.mkdir()
        path.write_bytes(
            json_bytes(
                [
                    extended_row("c", ms_played=ms),
                    extended_row("c", incognito_mode=True, ms_played=ms + 1),
                ]
            )
        )
        return path

    add_member(home, "private")
    add_member(home, "open", keep_incognito=True)
    assert import_export(home, "private", export("p", 100_000)).dropped == {"incognito": 1}
    assert import_export(home, "open", export("o", 200_000)).listens_added == 2


def test_unknown_member(home: Home, tmp_path: Path) -> None:
    from tunetrust import NotFoundError

    with pytest.raises(NotFoundError, match="no member named 'zed'"):
        import_export(home, "zed", export_zip(tmp_path, "extended-c", 10))


def test_other_files_are_reported_and_never_opened(home: Home, member: str, tmp_path: Path) -> None:
    files = render(synthesize("account", 200, 3), "account")
    # an unreadable (not even JSON) library file proves it is never opened
    files["Spotify Account Data/YourLibrary.json"] = b"\x00not json"
    path = tmp_path / "acc.zip"
    write_zip(files, path)
    summary = import_export(home, member, path)
    by_kind = {f.kind: f for f in summary.files}
    assert by_kind["library"].status == "skipped"
    assert by_kind["userdata"].status == "read"
    assert by_kind["search-queries"].reason == "personal data, never opened"


def test_the_same_file_again_is_recognised_before_reading(
    home: Home, member: str, tmp_path: Path
) -> None:
    from sqlalchemy import func, select

    from tunetrust.store.models import Contribution

    path = export_zip(tmp_path, "extended-c", 2_000)
    first = import_export(home, member, path)
    read: list[str] = []
    again = import_export(home, member, path, progress=lambda name, done, total: read.append(name))
    assert read == []  # nothing was unpacked or parsed
    assert (again.contribution, again.same_export_as) == (first.contribution, first.contribution)
    assert again.listens_added == 0
    assert again.duplicates["already_imported"] == first.listens_added
    assert again.listens_total == first.listens_total
    with home.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contribution)) == 1  # none recorded
    # the same plays in another file are still recognised play by play, and recorded
    copy = tmp_path / "copy.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(copy, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    other = import_export(home, member, copy)
    assert other.same_export_as == first.contribution and other.contribution != first.contribution
