"""Shapes seen in real exports (held outside the project), rebuilt synthetically.

Each test reproduces one finding of the run on real exports: what was stored wrong,
refused or warned about, and what must happen instead.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tunetrust import ExportError, Home, get_member, import_export
from tunetrust.formats.spotify.synth import downloaded_again, render, synthesize, write_zip
from tunetrust.ingest.pipeline import ContributionRejected, ImportSummary
from tunetrust.ingest.validate import FAIL, PASS, WARN

from . import reference
from .factories import extended_row, json_bytes, zip_of
from .test_import import FIELDS, _source_rows, _stored


def _import(home: Home, member: str, files: dict[str, bytes], tmp: Path) -> ImportSummary:
    path = tmp / "export.zip"
    write_zip(files, path)
    try:
        return import_export(home, member, path)
    except ContributionRejected as rejected:
        return rejected.summary


def _episode(**fields: Any) -> dict[str, Any]:
    """An extended row of generation C for an episode of the show "Show"."""
    return extended_row(
        "c",
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
        episode_show_name="Show",
        **fields,
    )


def _check(summary: ImportSummary, name: str) -> tuple[str, str]:
    found = next(c for c in summary.checks if c.name == name)
    return found.status, found.message


def _stored_rows(home: Home, member: str) -> list[dict[str, Any]]:
    m = get_member(home, member)
    return _stored(home.events.read(m.pseudonym, m.events_file).to_pylist())


# --- 1. dedup: which rows are stored ---------------------------------------------------


@pytest.mark.parametrize("where", ["start", "middle", "end", "across-files"])
def test_repeated_rows_anywhere_store_every_play_once(
    home: Home, member: str, tmp_path: Path, where: str
) -> None:
    files = render(synthesize("extended-b", 3_000, 31), "extended-b")
    names = sorted(n for n in files if "endsong" in n or "endvideo" in n)
    audio = orjson.loads(files[names[0]])
    repeats = {"start": audio[:5], "middle": audio[1000:1005], "end": audio[-5:]}
    if where == "across-files":
        # rows of the first file repeated at the start of the last file (the video file)
        video = orjson.loads(files[names[-1]])
        files[names[-1]] = orjson.dumps(audio[:5] + video)
    else:
        at = {"start": 0, "middle": 1500, "end": len(audio)}[where]
        files[names[0]] = orjson.dumps(audio[:at] + repeats[where] + audio[at:])
    path = tmp_path / "export.zip"
    write_zip(files, path)
    summary = import_export(home, member, path)
    assert summary.duplicates["repeated_in_export"] == 5
    expected = reference.merge([], reference.listens_from_source(_source_rows(path)))
    stored = _stored_rows(home, member)
    assert reference.multiset(stored, FIELDS) == reference.multiset(expected, FIELDS)
    assert reference.totals(stored) == reference.totals(expected)
    assert len(stored) == summary.listens_total


# --- 2. crossfade overlaps are not fabrication ---------------------------------------


def test_crossfade_overlaps_are_accepted(home: Home, member: str, tmp_path: Path) -> None:
    history = synthesize("extended-c", 3_000, 41, crossfade=True)
    summary = _import(home, member, render(history, "extended-c"), tmp_path)
    status, message = _check(summary, "play_density")
    assert status == PASS, message
    assert summary.verdict != "rejected"
    # the shape is there: finished plays start 3 to 5 s before the previous one ends
    starts = history.end_ms - history.ms_played
    overlap = history.end_ms[:-1] - starts[1:]
    assert ((overlap >= 3_000) & (overlap <= 5_000)).mean() > 0.5


def test_overlaps_beyond_any_crossfade_still_count(home: Home, member: str, tmp_path: Path) -> None:
    """Plays on one device that overlap by a minute are impossible, crossfade or not."""
    start = datetime(2022, 5, 1, tzinfo=UTC)
    rows, t = [], start
    for i in range(400):
        t += timedelta(seconds=150 + (i * 37) % 90)
        rows.append(
            extended_row(
                "c",
                ts=t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ms_played=210_000 + i * 13,
                platform="ios",
                master_metadata_track_name=f"T{i % 90}",
            )
        )
    summary = _import(
        home, member, {"x/Streaming_History_Audio_2022_0.json": json_bytes(rows)}, tmp_path
    )
    assert _check(summary, "play_density")[0] == FAIL


# --- 3. the audiobook file of account data; unknown files are skipped -----------------


def test_account_audiobook_file_is_parsed(home: Home, member: str, tmp_path: Path) -> None:
    history = synthesize("account", 3_000, 51)
    files = render(history, "account")
    name = "Spotify Account Data/StreamingHistory_audiobook_0.json"
    assert name in files
    books = orjson.loads(files[name])
    assert books and set(books[0]) == {
        "endTime",
        "audiobookName",
        "authorName",
        "chapterName",
        "msPlayed",
    }
    summary = _import(home, member, files, tmp_path)
    assert summary.verdict != "rejected"
    report = next(f for f in summary.files if f.name == name)
    assert (report.status, report.kind, report.rows) == (
        "imported",
        "account-audiobook",
        len(books),
    )
    stored = [r for r in _stored_rows(home, member) if r["kind"] == "audiobook"]
    assert len(stored) == len({(b["endTime"], b["chapterName"], b["msPlayed"]) for b in books})
    assert {r["audiobook_title"] for r in stored} == {b["audiobookName"] for b in books}
    assert all(r["artist_name"] is None for r in stored)  # the author is not kept


def test_unknown_well_formed_file_is_skipped_not_fatal(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("account", 1_500, 52), "account")
    odd = "Spotify Account Data/StreamingHistory_video_0.json"
    files[odd] = json_bytes([{"endTime": "2024-01-01 10:00", "msPlayed": 5, "videoName": "x"}])
    summary = _import(home, member, files, tmp_path)
    assert summary.verdict != "rejected"
    report = next(f for f in summary.files if f.name == odd)
    assert report.status == "skipped"
    assert "no fields saying what was played" in (report.reason or "")
    status, message = _check(summary, "structure")
    assert status == WARN and "StreamingHistory_video_0.json" in message
    assert summary.listens_added > 1_000


def test_only_unknown_files_is_a_clear_refusal(home: Home, member: str, tmp_path: Path) -> None:
    path = zip_of(
        tmp_path,
        {
            "StreamingHistory_video_0.json": json_bytes(
                [{"endTime": "2024-01-01 10:00", "msPlayed": 5}]
            )
        },
    )
    with pytest.raises(ExportError, match="no listening history this version can read"):
        import_export(home, member, path)


def test_a_damaged_row_in_a_known_file_still_refuses(
    home: Home, member: str, tmp_path: Path
) -> None:
    rows = [
        {"endTime": "2024-01-01 10:00", "artistName": "A", "trackName": "T", "msPlayed": 5},
        {"endTime": "2024-01-01 10:05", "artistName": "A", "msPlayed": 5},
    ]
    path = zip_of(tmp_path, {"StreamingHistory_music_0.json": json_bytes(rows)})
    with pytest.raises(ExportError, match="row 2: the field 'trackName' is missing"):
        import_export(home, member, path)


# --- 4. renamed files of any size are recognised by content --------------------------


@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_renamed_real_size_file_imports(
    home: Home, member: str, tmp_path: Path, layout: str
) -> None:
    files = render(synthesize("extended-c", 400, 61), "extended-c")
    name = next(n for n in files if "Audio" in n)
    data = files[name]
    assert len(data) > 20_000
    if layout == "zip":
        path = zip_of(tmp_path, {"my history.json": data})
    else:
        path = tmp_path / "unpacked"
        path.mkdir()
        (path / "my history.json").write_bytes(data)
    summary = import_export(home, member, path)
    assert summary.listens_in_export == len(orjson.loads(data))
    assert summary.files[0].reason == "recognised by content"


# --- 5. the 2023 to mid-2024 layout --------------------------------------------------


def test_2023_layout_parses_without_false_warnings(home: Home, member: str, tmp_path: Path) -> None:
    files = render(synthesize("extended-b2", 3_000, 71), "extended-b2")
    audio = next(d for n, d in files.items() if "Streaming_History_Audio_" in n)
    first = orjson.loads(audio)[0]
    assert {"username", "ip_addr_decrypted", "user_agent_decrypted"} <= first.keys()
    assert "audiobook_title" not in first and "ip_addr" not in first
    assert first["platform"] in {"android", "ios", "windows", "osx", "linux", "web_player"} or (
        " " not in first["platform"]
    )
    summary = _import(home, member, files, tmp_path)
    assert summary.verdict == "accepted", [c for c in summary.checks if c.status != PASS]
    assert _check(summary, "file_names")[0] == PASS
    assert {f.kind for f in summary.files if f.status == "imported"} <= {
        "extended-b",
        "extended-b-video",
    }


# --- 6. two downloads of one account a second apart ----------------------------------


def test_second_download_with_one_second_shifts_adds_nothing(
    home: Home, member: str, tmp_path: Path
) -> None:
    history = synthesize("extended-c", 3_000, 81)
    later = downloaded_again(history, share=0.1)
    moved = int((later.end_ms != history.end_ms).sum())
    assert moved > 100
    first = _import(home, member, render(history, "extended-c"), tmp_path)
    second = _import(home, member, render(later, "extended-c"), tmp_path)
    assert second.listens_added == 0
    assert second.duplicates["already_imported"] == first.listens_added
    assert second.listens_total == first.listens_total


def test_a_play_two_seconds_later_is_a_new_play(home: Home, member: str, tmp_path: Path) -> None:
    one = tmp_path / "one" / "Streaming_History_Audio_2021_0.json"
    two = tmp_path / "two" / "Streaming_History_Audio_2021_0.json"
    for p, ts in ((one, "2021-03-04T05:06:07Z"), (two, "2021-03-04T05:06:09Z")):
        p.parent.mkdir()
        p.write_bytes(json_bytes([extended_row("c", ts=ts)]))
    import_export(home, member, one)
    assert import_export(home, member, two).listens_added == 1


# --- 7. no false warnings on real shapes ----------------------------------------------


def test_account_data_rounded_lengths_of_real_level_pass(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("account", 3_000, 91), "account")
    name = "Spotify Account Data/StreamingHistory_music_0.json"
    rows = orjson.loads(files[name])
    for r in rows[::11]:  # 9 % of plays last a whole number of seconds, as on real data
        r["msPlayed"] -= r["msPlayed"] % 1000
    files[name] = orjson.dumps(rows)
    summary = _import(home, member, files, tmp_path)
    assert _check(summary, "rounded_lengths")[0] == PASS


def test_a_year_in_a_file_name_is_not_a_sequence_number(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("extended-c", 1_000, 92), "extended-c")
    renamed = {
        (n.rsplit("/", 1)[0] + "/Streaming_History_Audio_2023.json" if "Audio" in n else n): d
        for n, d in files.items()
    }
    summary = _import(home, member, renamed, tmp_path)
    assert _check(summary, "file_sequence") == (PASS, "No numbered file is missing.")


def test_finished_is_a_known_end_reason(home: Home, member: str, tmp_path: Path) -> None:
    files = render(synthesize("extended-b", 1_500, 93), "extended-b")
    rows = orjson.loads(files["MyData/endsong_0.json"])
    for r in rows[::20]:  # 5 % of plays, as in older video-era files
        r["reason_end"] = "finished"
    files["MyData/endsong_0.json"] = orjson.dumps(rows)
    summary = _import(home, member, files, tmp_path)
    assert _check(summary, "reason_codes")[0] == PASS


def test_account_data_with_video_files_does_not_disagree(
    home: Home, member: str, tmp_path: Path
) -> None:
    """The same episode in account data (minute, names) and a video file (second, URI)."""
    files = render(synthesize("account", 1_500, 94), "account")
    account, video = [], []
    for i in range(3):
        ms = 1_800_000 + i
        account.append(
            {"endTime": f"2024-01-0{i + 1} 10:00", "podcastName": "Show", "episodeName": "Ep"}
            | {"msPlayed": ms}
        )
        video.append(
            _episode(
                ts=f"2024-01-0{i + 1}T10:00:00Z",
                ms_played=ms,
                episode_name="Ep",
                spotify_episode_uri="spotify:episode:0000000000000000000007",
            )
        )
    files["Spotify Account Data/StreamingHistory_podcast_9.json"] = json_bytes(account)
    files["Streaming_History_Video_2024.json"] = json_bytes(video)
    summary = _import(home, member, files, tmp_path)
    assert _check(summary, "video_audio_agree")[0] == PASS


def test_mostly_skipped_video_episodes_are_not_a_skip_pattern(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("extended-c", 1_500, 95), "extended-c")
    start = datetime(2024, 1, 1, 7, tzinfo=UTC)
    video = [
        _episode(
            ts=(start + timedelta(minutes=37 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ms_played=2_000 + i,
            episode_name=f"Clip {i % 50}",
            spotify_episode_uri=f"spotify:episode:{i % 50:022d}",
            skipped=True,
            reason_end="fwdbtn",
        )
        for i in range(8_000)
    ]
    files["Spotify Extended Streaming History/Streaming_History_Video_2024.json"] = json_bytes(
        video
    )
    summary = _import(home, member, files, tmp_path)
    status, message = _check(summary, "skip_pattern")
    assert status == PASS, message


# --- 8. messages -----------------------------------------------------------------------


def test_rejected_report_does_not_claim_the_account_was_bound(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("extended-b", 600, 96), "extended-b")
    name = next(n for n in files if "endsong" in n)
    rows = orjson.loads(files[name])
    files[name] = orjson.dumps(rows + rows)  # every row doubled: rejected
    summary = _import(home, member, files, tmp_path)
    assert summary.verdict == "rejected"
    status, message = _check(summary, "account")
    assert status == PASS
    assert "now bound" not in message
    assert get_member(home, member).account_hash is None


def test_broken_userdata_is_skipped_with_a_warning(home: Home, member: str, tmp_path: Path) -> None:
    files = render(synthesize("account", 1_000, 97), "account")
    files["Spotify Account Data/Userdata.json"] = b'{"username": "trunc'
    summary = _import(home, member, files, tmp_path)
    assert summary.verdict != "rejected"
    report = next(f for f in summary.files if f.name.endswith("Userdata.json"))
    assert report.status == "skipped"
    assert "username could not be read" in (report.reason or "")
    assert summary.listens_added > 500


@pytest.mark.parametrize(
    ("names", "service"),
    [
        (
            [
                "Apple Media Services information/Apple_Media_Services/Apple Music Activity/"
                "Apple Music Play Activity.csv"
            ],
            "Apple Music",
        ),
        (["Takeout/YouTube and YouTube Music/history/watch-history.json"], "YouTube"),
        (["scrobbles.csv"], "Last.fm"),
    ],
)
def test_other_services_exports_are_named(
    home: Home, member: str, tmp_path: Path, names: list[str], service: str
) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for n in names:
            zf.writestr(n, "a,b\n1,2\n")
    with pytest.raises(ExportError, match=f"looks like an export from {service}") as info:
        import_export(home, member, path)
    assert "not import yet" in str(info.value) or "cannot import yet" in str(info.value)
