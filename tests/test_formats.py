"""Classification and parsing of every Spotify file variant."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tunetrust.errors import ExportError
from tunetrust.formats import Role, classify, registry
from tunetrust.formats.package import ExportFile
from tunetrust.formats.spotify import SpotifyParser
from tunetrust.formats.spotify.synth import render, synthesize

from .factories import extended_row


def _file(name: str, data: bytes) -> ExportFile:
    return ExportFile(name=name, size=len(data), _read=lambda limit: data[:limit])


@pytest.mark.parametrize(
    ("name", "kind", "role"),
    [
        ("Spotify Account Data/StreamingHistory_music_0.json", "account-music", Role.LISTENS),
        ("Spotify Account Data/StreamingHistory_podcast_3.json", "account-podcast", Role.LISTENS),
        ("MyData/StreamingHistory0.json", "account-legacy", Role.LISTENS),
        ("MyData/endsong_12.json", "extended-audio", Role.LISTENS),
        ("MyData/endvideo.json", "extended-video", Role.LISTENS),
        ("Streaming_History_Audio_2019-2020_0.json", "extended-audio", Role.LISTENS),
        ("Streaming_History_Audio_2024_7.json", "extended-audio", Role.LISTENS),
        ("x/Streaming_History_Video_2016-2024.json", "extended-video", Role.LISTENS),
        ("MyData/Userdata.json", "userdata", Role.IDENTITY),
        ("MyData/YourLibrary.json", "library", Role.IGNORED),
        ("MyData/Playlist1.json", "playlists", Role.IGNORED),
        ("MyData/SearchQueries.json", "search-queries", Role.IGNORED),
        ("MyData/Inferences.json", "inferences", Role.IGNORED),
        ("MyData/Payments.json", "payments", Role.IGNORED),
        ("ReadMeFirst_ExtendedStreamingHistory.pdf", "readme", Role.IGNORED),
    ],
)
def test_classify_by_name(name: str, kind: str, role: Role) -> None:
    found = classify(_file(name, b"[]"), registry())
    assert found is not None
    assert (found[1].kind, found[1].role) == (kind, role)


def test_classify_by_content_when_name_is_unfamiliar() -> None:
    extended = orjson.dumps([extended_row("b")])
    account = orjson.dumps(
        [{"endTime": "2020-01-01 10:00", "podcastName": "P", "episodeName": "E", "msPlayed": 1}]
    )
    assert classify(_file("renamed.json", extended), registry())[1].kind == "extended-audio"  # type: ignore[index]
    assert classify(_file("mine.json", account), registry())[1].kind == "account-podcast"  # type: ignore[index]
    assert classify(_file("notes.json", b'{"a": 1}'), registry()) is None
    assert classify(_file("photo.jpg", b"\xff\xd8"), registry()) is None


@pytest.mark.parametrize(
    ("generation", "expected"), [("a", "extended-a"), ("b", "extended-b"), ("c", "extended-c")]
)
def test_generation_is_read_from_content_not_name(generation: str, expected: str) -> None:
    data = orjson.dumps([extended_row(generation)])
    parsed = SpotifyParser().parse(_file("endsong_0.json", data), data, "extended-audio")
    assert parsed.variant == expected
    assert parsed.table.num_rows == 1
    row = parsed.table.to_pylist()[0]
    assert row["track_name"] == "Song" and row["kind"] == "music"
    assert row["track_uri"] == (
        None if generation == "a" else "spotify:track:0000000000000000000001"
    )


def test_usernames_are_collected_not_tabled() -> None:
    data = orjson.dumps([extended_row("b", username="u1"), extended_row("b", username="u2")])
    parsed = SpotifyParser().parse(_file("endsong_0.json", data), data, "extended-audio")
    assert parsed.usernames == {"u1", "u2"}
    assert "username" not in parsed.table.column_names


def test_kinds_of_extended_rows() -> None:
    none = dict(
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
    )
    rows = [
        extended_row("c"),
        extended_row(
            "c",
            **none,
            episode_name="Ep",
            episode_show_name="Show",
            spotify_episode_uri="spotify:episode:1",
        ),
        extended_row(
            "c",
            **none,
            audiobook_title="Book",
            audiobook_uri="spotify:show:1",
            audiobook_chapter_title="Ch 1",
            audiobook_chapter_uri="spotify:chapter:1",
        ),
        extended_row("c", **none),
    ]
    data = orjson.dumps(rows)
    parser = SpotifyParser()
    audio = parser.parse(_file("a.json", data), data, "extended-audio").table["kind"].to_pylist()
    video = parser.parse(_file("v.json", data), data, "extended-video").table["kind"].to_pylist()
    assert audio == ["music", "podcast", "audiobook", "unknown"]
    assert video == ["music", "video", "audiobook", "video"]


def test_skips_are_filled_from_end_reasons_at_parse() -> None:
    """docs/events.md "Skips": the flag as exported, else the reason, else unknown."""
    cases = [(True, "trackdone"), (None, "fwdbtn"), (None, "backbtn"), (None, "trackdone")]
    cases += [(False, "fwdbtn"), (None, None)]
    rows = [
        extended_row("b", skipped=flag, reason_end=reason, ts=f"2021-03-04T05:06:{i:02d}Z")
        for i, (flag, reason) in enumerate(cases)
    ]
    data = orjson.dumps(rows)
    table = SpotifyParser().parse(_file("endsong_0.json", data), data, "extended-audio").table
    assert table["skipped"].to_pylist() == [True, True, True, False, False, None]
    assert table["reason_end"].to_pylist() == [r for _, r in cases]  # kept as exported
    account = orjson.dumps(
        [{"endTime": "2021-03-04 05:06", "artistName": "A", "trackName": "T", "msPlayed": 1}]
    )
    parsed = SpotifyParser().parse(
        _file("StreamingHistory0.json", account), account, "account-legacy"
    )
    assert parsed.table["skipped"].to_pylist() == [None]  # account data says nothing of skips


def test_account_rows() -> None:
    music = orjson.dumps(
        [{"endTime": "2024-01-02 03:04", "artistName": "A", "trackName": "T", "msPlayed": 5}]
    )
    podcast = orjson.dumps(
        [{"endTime": "2024-01-02 03:04", "podcastName": "P", "episodeName": "E", "msPlayed": 6}]
    )
    p = SpotifyParser()
    m = p.parse(_file("StreamingHistory_music_0.json", music), music, "account-music")
    q = p.parse(_file("StreamingHistory_podcast_0.json", podcast), podcast, "account-podcast")
    assert m.variant == "account-music" and q.variant == "account-podcast"
    assert m.table.to_pylist()[0]["artist_name"] == "A"
    assert str(m.table["ts"][0].as_py()) == "2024-01-02 03:04:00+00:00"
    assert q.table.to_pylist()[0]["show_name"] == "P"
    assert q.table["kind"].to_pylist() == ["podcast"]
    assert m.table["source"].to_pylist() == ["account"]


SECRET = "Kx7-private-value"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"ms_played": SECRET}, "row 2: the field 'ms_played' should be a whole number, found str"),
        ({"ms_played": True}, "the field 'ms_played' should be a whole number, found bool"),
        ({"ms_played": -5}, "the field 'ms_played' should be a whole number, found a negative"),
        ({"ms_played": None}, "row 2: the field 'ms_played' is empty"),
        ({"ts": SECRET}, "row 2: the field 'ts' is not a date and time"),
        ({"ts": 1234}, "row 2: the field 'ts' should be a date and time text"),
        ({"shuffle": SECRET}, "the field 'shuffle' should be true, false or null, found str"),
        ({"master_metadata_track_name": 7}, "'master_metadata_track_name' should be text or null"),
    ],
)
def test_wrong_types_name_file_row_and_field_but_never_the_value(
    row: dict[str, object], message: str
) -> None:
    data = orjson.dumps([extended_row("c"), extended_row("c", **row)])
    with pytest.raises(ExportError) as info:
        SpotifyParser().parse(_file("Streaming_History_Audio_2021_0.json", data), data, "x")
    text = str(info.value)
    assert text.startswith("Streaming_History_Audio_2021_0.json, row 2")
    assert message in text
    assert SECRET not in text


def test_missing_field_is_named() -> None:
    bad = extended_row("b")
    del bad["reason_end"]
    data = orjson.dumps([extended_row("b"), extended_row("b"), bad])
    with pytest.raises(
        ExportError, match=r"endsong_0.json, row 3: the field 'reason_end' is missing"
    ):
        SpotifyParser().parse(_file("endsong_0.json", data), data, "extended-audio")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'[{"ts": "2021-03-04T05:06:07Z", "ms_pl',
            "is not valid JSON (stops making sense at line 1",
        ),
        (b"", "the file is empty"),
        (b'{"ts": 1}', "expected a JSON list of plays"),
        (b"[1, 2]", "row 1: expected an object for each play"),
        ('[{"endTime": "x", "artistName": "Bj\u00f6rk"'.encode("latin-1"), "is not UTF-8 text"),
    ],
)
def test_broken_files(data: bytes, message: str) -> None:
    with pytest.raises(ExportError, match="endsong_0.json") as info:
        SpotifyParser().parse(_file("endsong_0.json", data), data, "extended-audio")
    assert message in str(info.value)


def test_utf8_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + orjson.dumps([extended_row("c")])
    assert SpotifyParser().parse(_file("a.json", data), data, "extended-audio").table.num_rows == 1


def test_userdata_yields_only_the_username() -> None:
    data = orjson.dumps({"username": "u", "email": "e@example.invalid", "birthdate": "1990"})
    assert SpotifyParser().username(_file("Userdata.json", data), data) == "u"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, bytes]]:
    h_c = synthesize("extended-c", 2_000, 5)
    return {
        v: render(synthesize(v, 2_000, 5) if v != "account" else h_c, v)
        for v in ("account", "account-legacy", "extended-a", "extended-b", "extended-c")
    }


class TestSynthFidelity:
    """The generator writes each variant the way the service does."""

    def test_folders_and_names(self, rendered: dict[str, dict[str, bytes]]) -> None:
        assert all(n.startswith("Spotify Account Data/") for n in rendered["account"])
        assert all(n.startswith("MyData/") for n in rendered["extended-a"])
        assert any(n.endswith("endvideo.json") for n in rendered["extended-b"])
        c_names = [n.rsplit("/", 1)[1] for n in rendered["extended-c"]]
        assert any(n.startswith("Streaming_History_Audio_") for n in c_names)
        assert any(n.startswith("Streaming_History_Video_") for n in c_names)
        assert "StreamingHistory0.json" in [n.rsplit("/", 1)[1] for n in rendered["account-legacy"]]

    def _rows(self, files: dict[str, bytes], part: str) -> list[dict[str, object]]:
        return [r for n, d in files.items() if part in n for r in orjson.loads(d)]

    def test_generation_fields(self, rendered: dict[str, dict[str, bytes]]) -> None:
        a = self._rows(rendered["extended-a"], "endsong")
        b = self._rows(rendered["extended-b"], "endsong")
        c = self._rows(rendered["extended-c"], "Audio")
        assert {"city", "latitude", "username", "ip_addr_decrypted"} <= a[0].keys()
        assert "spotify_track_uri" not in a[0]
        assert "city" not in b[0] and "spotify_track_uri" in b[0] and "username" in b[0]
        assert "username" not in c[0] and "user_agent_decrypted" not in c[0]
        assert "ip_addr" in c[0] and "audiobook_chapter_title" in c[0]
        assert len(c[0]) == 23 and len(b[0]) == 21 and len(a[0]) == 24
        assert any(r["skipped"] is None for r in a)
        assert any(r["master_metadata_track_name"] is None and r["episode_name"] is None for r in c)

    def test_layout_quirks(self, rendered: dict[str, dict[str, bytes]]) -> None:
        c_file = next(d for n, d in rendered["extended-c"].items() if "Audio" in n)
        b_file = next(d for n, d in rendered["extended-b"].items() if "endsong" in n)
        assert c_file.startswith(b"[\n  {") and b"\n" not in b_file  # pretty vs minified
        c = orjson.loads(c_file)
        b = orjson.loads(b_file)
        assert [r["ts"] for r in c] == sorted(r["ts"] for r in c)
        assert [r["ts"] for r in b] != sorted(r["ts"] for r in b)
        # offline_timestamp: ms (often 0) in A/B, seconds in C, null on video rows
        assert max(r["offline_timestamp"] for r in b) > 10**12
        assert any(r["offline_timestamp"] == 0 for r in b)
        assert max(r["offline_timestamp"] for r in c) < 10**10
        video = self._rows(rendered["extended-c"], "Video")
        assert video and all(r["offline_timestamp"] is None for r in video)

    def test_unknown_country_appears(self) -> None:
        assert "ZZ" in set(synthesize("extended-b", 20_000, 3).country.tolist())

    def test_deterministic_by_seed(self, tmp_path: Path) -> None:
        one = render(synthesize("extended-b", 500, 9), "extended-b")
        two = render(synthesize("extended-b", 500, 9), "extended-b")
        other = render(synthesize("extended-b", 500, 10), "extended-b")
        assert one == two and one != other


def test_content_recognition_is_flagged() -> None:
    data = orjson.dumps([extended_row("b")])
    by_name = classify(_file("endsong_0.json", data), registry())
    by_content = classify(_file("renamed.json", data), registry())
    assert by_name is not None and not by_name[1].by_content
    assert by_content is not None and by_content[1].by_content
