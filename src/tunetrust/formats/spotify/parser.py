"""The Spotify export format, every variant seen since 2020.

Account data (about a year, minute resolution, no URIs):
    ``StreamingHistory_music_N.json`` / ``StreamingHistory_podcast_N.json`` /
    ``StreamingHistory_audiobook_N.json`` (2023+),
    ``StreamingHistoryN.json`` (older; music and podcasts mixed, not distinguishable).
Extended streaming history (whole account lifetime, second resolution):
    A (~2020)      ``endsong_N.json``, ``endvideo.json``: minified, unsorted, geo fields
    B (2021–2023)  the same names, no geo fields, ``spotify_track_uri``/``spotify_episode_uri``
    B′ (2023–mid-2024) C's file names with B's fields, short platform names and
                   ``offline_timestamp`` in seconds (read as B: the fields decide)
    C (late 2024+) ``Streaming_History_Audio_<Y>[-<Y2>]_<N>.json`` and
                   ``Streaming_History_Video_<Y>[-<Y2>].json``: pretty-printed, sorted,
                   ``ip_addr`` instead of ``ip_addr_decrypted``, no username or user
                   agent, four ``audiobook_*`` fields, short platform names.

Names suggest, content decides: the generation is read from the fields of the rows,
and a listening file with an unfamiliar name is recognised by its fields. Files that
hold other personal data (library, playlists, searches, inferences, payments …) are
recognised by name and never opened; ``Userdata.json`` is read only for the username.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.errors import ExportError, UnknownContent
from tunetrust.formats import Classification, Parsed, Role, ServiceFacts, normalise
from tunetrust.formats.package import ExportFile
from tunetrust.listens import PARSED_SCHEMA

SERVICE = "spotify"
SERVICE_START = datetime(2008, 10, 7)
"""The service's public launch (naive UTC): no play can be older."""

FACTS = ServiceFacts(
    service=SERVICE,
    started=SERVICE_START,
    # extended history: ISO times to the second; account data: "YYYY-MM-DD HH:MM"
    resolution_ms={"extended": 1_000, "account": 60_000},
    # the next and the back button; every other reason is a play that was not skipped
    skip_reasons=frozenset({"fwdbtn", "backbtn"}),
    reasons=frozenset(
        "trackdone fwdbtn backbtn clickrow playbtn appload remote trackerror endplay logout "
        "unexpected-exit unexpected-exit-while-paused popup uriopen clickside unknown "
        "persisted switched-to-audio switched-to-video finished".split()
    ),
    name_variants=(
        (re.compile(r"endsong_\d+\.json|endvideo", re.I), frozenset({"extended-a", "extended-b"})),
        # 2023 to mid-2024 exports use these names with generation B's fields
        (
            re.compile(r"Streaming_History_(Audio|Video)_", re.I),
            frozenset({"extended-b", "extended-c"}),
        ),
        (re.compile(r"StreamingHistory_music_", re.I), frozenset({"account-music"})),
        (re.compile(r"StreamingHistory_podcast_", re.I), frozenset({"account-podcast"})),
        (re.compile(r"StreamingHistory_audiobook_", re.I), frozenset({"account-audiobook"})),
        (
            re.compile(r"StreamingHistory\d+\.json", re.I),
            frozenset({"account-legacy", "account-music"}),
        ),
    ),
    # a numbered file: <prefix><N>.json, where a prefix ending in a year (range) and "_"
    # belongs to Streaming_History_Audio_<Y>[-<Y2>]_<N>; a bare year is not a number;
    # video files are not numbered in sequence
    numbered_file=re.compile(
        r"^(?!.*video)(?P<prefix>.*?(?:_\d{4}(?:-\d{4})?_|[^\d]))(?P<n>\d{1,3})\.json$", re.I
    ),
    numbered_varies=re.compile(r"_\d{4}(-\d{4})?_$"),  # Audio_<years>_ varies
    sorted_variants=("extended-c", "account"),
    # two downloads of one account a year apart disagree by this much on some plays
    reexport_shift_ms=1_000,
    export_hint="import the zip of 'Extended streaming history' or 'Account data' "
    "exactly as the service sent it",
)
"""Spotify's facts: read by the checks, the deduplication and :func:`normalise`."""

_LISTEN_NAMES: Sequence[tuple[re.Pattern[str], str]] = [
    (re.compile(r"StreamingHistory_music_\d+\.json", re.I), "account-music"),
    (re.compile(r"StreamingHistory_podcast_\d+\.json", re.I), "account-podcast"),
    (re.compile(r"StreamingHistory_audiobook_\d+\.json", re.I), "account-audiobook"),
    (re.compile(r"StreamingHistory\d+\.json", re.I), "account-legacy"),
    (re.compile(r"endsong_\d+\.json", re.I), "extended-audio"),
    (re.compile(r"endvideo(_\d+)?\.json", re.I), "extended-video"),
    (re.compile(r"Streaming_History_Audio_\d{4}(-\d{4})?(_\d+)?\.json", re.I), "extended-audio"),
    (re.compile(r"Streaming_History_Video_\d{4}(-\d{4})?(_\d+)?\.json", re.I), "extended-video"),
]

_OTHER_NAMES: Sequence[tuple[re.Pattern[str], str]] = [
    (re.compile(r"YourLibrary\.json", re.I), "library"),
    (re.compile(r"Playlist\d*\.json", re.I), "playlists"),
    (re.compile(r"SearchQueries\.json", re.I), "search-queries"),
    (re.compile(r"Inferences\.json", re.I), "inferences"),
    (re.compile(r"Payments\.json", re.I), "payments"),
    (re.compile(r"Follow\.json", re.I), "follows"),
    (re.compile(r"Identity\.json", re.I), "identity"),
    (re.compile(r"Identifiers\.json", re.I), "identifiers"),
    (re.compile(r"Marquee\.json", re.I), "marquee"),
    (re.compile(r"Wrapped\d{4}\.json", re.I), "wrapped"),
    (re.compile(r"YourSoundCapsule\.json", re.I), "sound-capsule"),
    (re.compile(r"(FamilyPlan|DuoNewFamily)\.json", re.I), "family-plan"),
    (re.compile(r"(MessageData|Messages?)\w*\.json", re.I), "messages"),
    (re.compile(r"(UserAddress|CustomerServiceHistory)\w*\.json", re.I), "other-personal"),
    (re.compile(r"Read_?Me_?First\w*\.pdf", re.I), "readme"),
]

_EXTENDED_REQUIRED = (
    "ts",
    "ms_played",
    "platform",
    "conn_country",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "episode_name",
    "episode_show_name",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "incognito_mode",
)

# parsed column ← export field
_EXTENDED_COLUMNS = {
    "track_name": "master_metadata_track_name",
    "artist_name": "master_metadata_album_artist_name",
    "album_name": "master_metadata_album_album_name",
    "track_uri": "spotify_track_uri",
    "episode_name": "episode_name",
    "show_name": "episode_show_name",
    "episode_uri": "spotify_episode_uri",
    "audiobook_title": "audiobook_title",
    "audiobook_uri": "audiobook_uri",
    "audiobook_chapter_title": "audiobook_chapter_title",
    "audiobook_chapter_uri": "audiobook_chapter_uri",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
    "shuffle": "shuffle",
    "skipped": "skipped",
    "offline": "offline",
    "conn_country": "conn_country",
    "platform_raw": "platform",
    "incognito": "incognito_mode",
}

_TYPE_WORDS = {
    pa.string(): ("text or null", (str,)),
    pa.bool_(): ("true, false or null", (bool,)),
    pa.int64(): ("a whole number", (int,)),
}


class SpotifyParser:
    """Parser for Spotify's account-data and extended-history packages."""

    service = SERVICE
    facts = FACTS

    def classify(self, file: ExportFile) -> Classification | None:
        """Say what ``file`` is, from its name and, for unfamiliar JSON, its first bytes."""
        base = file.basename
        for pattern, kind in _LISTEN_NAMES:
            if pattern.fullmatch(base):
                return Classification(SERVICE, kind, Role.LISTENS)
        if base.lower() == "userdata.json":
            return Classification(SERVICE, "userdata", Role.IDENTITY)
        for pattern, kind in _OTHER_NAMES:
            if pattern.fullmatch(base):
                note = "read-me document" if kind == "readme" else "personal data, never opened"
                return Classification(SERVICE, kind, Role.IGNORED, note)
        if base.lower().endswith(".json"):
            head = file.head()
            if b'"ms_played"' in head and b'"ts"' in head:
                return Classification(
                    SERVICE,
                    "extended-audio",
                    Role.LISTENS,
                    "recognised by content",
                    by_content=True,
                )
            if b'"msPlayed"' in head and b'"endTime"' in head:
                kind = (
                    "account-podcast"
                    if b'"podcastName"' in head
                    else "account-audiobook"
                    if b'"audiobookName"' in head
                    else "account-music"
                )
                return Classification(
                    SERVICE, kind, Role.LISTENS, "recognised by content", by_content=True
                )
        return None

    def parse(self, file: ExportFile, data: bytes, kind: str) -> Parsed:
        """Parse one listening-history file; the generation is read from its fields.

        The rows come out normalised with :data:`FACTS` (skips filled from end reasons).
        """
        rows = _load_rows(file.name, data)
        if not rows:
            return Parsed(PARSED_SCHEMA.empty_table(), variant=_empty_variant(kind))
        first = rows[0]
        if "ms_played" in first or "ts" in first:
            parsed = _parse_extended(file.name, rows, video=kind == "extended-video")
        elif "msPlayed" in first or "endTime" in first:
            parsed = _parse_account(file.name, rows, kind)
        else:
            raise UnknownContent(
                file.name,
                "the rows have neither extended-history fields (ts, ms_played) "
                "nor account-data fields (endTime, msPlayed)",
                row=1,
                hint="this file is not a listening history this version knows",
            )
        return replace(parsed, table=normalise(parsed.table, FACTS))

    def username(self, file: ExportFile, data: bytes) -> str | None:
        """The ``username`` of ``Userdata.json``; every other field stays unread.

        Only the username is read from this file, so one that is not valid JSON is
        :class:`UnknownContent` (reported and skipped), never a reason to refuse.
        """
        try:
            doc = orjson.loads(_strip_bom(data))
        except orjson.JSONDecodeError:
            raise UnknownContent(
                file.name,
                "is not valid JSON, so the account username could not be read",
                hint="the plays are imported without it and matched by their content",
            ) from None
        value = doc.get("username") if isinstance(doc, dict) else None
        return value if isinstance(value, str) and value else None


def _empty_variant(kind: str) -> str:
    return "account" if kind.startswith("account") else "extended"


def _strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _load_rows(name: str, data: bytes) -> list[dict[str, Any]]:
    data = _strip_bom(data)
    if not data.strip():
        raise ExportError(name, "the file is empty", hint="download the export again")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if _not_utf8(data):
            raise ExportError(
                name, "is not UTF-8 text", hint="it was changed after download; download again"
            ) from None
        raise ExportError(
            name,
            f"is not valid JSON (stops making sense at line {exc.lineno}, "
            f"column {exc.colno}; truncated?)",
            hint="download the export again",
        ) from None
    if not isinstance(doc, list):
        raise ExportError(name, "expected a JSON list of plays", hint="is this the right file?")
    for i, row in enumerate(doc):
        if not isinstance(row, dict):
            raise ExportError(name, "expected an object for each play", row=i + 1)
    return doc


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _require(name: str, rows: list[dict[str, Any]], fields: Sequence[str]) -> None:
    """Every row has ``fields``. A first row without them is a shape this version does not
    know (skipped); a later row without them is a damaged file (refused)."""
    absent = [key for key in fields if key not in rows[0]]
    if absent:
        raise UnknownContent(
            name,
            f"the rows lack the field(s) {', '.join(repr(k) for k in absent)} that every "
            "known listening history has",
            row=1,
            hint="this file is not a listening history this version knows",
        )
    for key in fields:
        for i, row in enumerate(rows):
            if key not in row:
                raise ExportError(
                    name, f"the field '{key}' is missing", row=i + 1, hint="download again"
                )


def _column(name: str, rows: list[dict[str, Any]], key: str, typ: pa.DataType) -> pa.Array:
    """One export field as an Arrow array, with a row-numbered error on a wrong type."""
    values = [r.get(key) for r in rows]
    words, pytypes = _TYPE_WORDS[typ]
    try:
        arr = pa.array(values, type=typ, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = None
    bad = _first_bad(values, pytypes) if arr is None or typ == pa.int64() else None
    if bad is not None or arr is None:
        i, found = bad if bad is not None else (0, "a value of another kind")
        raise ExportError(
            name,
            f"the field '{key}' should be {words}, found {found}",
            row=i + 1,
            hint="the file was changed after download; download again",
        )
    return arr


def _first_bad(values: list[Any], pytypes: tuple[type, ...]) -> tuple[int, str] | None:
    for i, v in enumerate(values):
        if v is None:
            continue
        # bool is a subclass of int; a true/false where a number belongs is wrong
        if not isinstance(v, pytypes) or (pytypes == (int,) and isinstance(v, bool)):
            return i, type(v).__name__
        if isinstance(v, int) and v < 0:
            return i, "a negative number"
        if isinstance(v, int) and v > _INT64_MAX:
            return i, "a number too large to be a play length"
    return None


_INT64_MAX = 2**63 - 1


def _timestamps(name: str, rows: list[dict[str, Any]], key: str, fmt: str) -> pa.Array:
    values = [r.get(key) for r in rows]
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ExportError(name, f"the field '{key}' should be a date and time text", row=i + 1)
    parsed = pc.strptime(pa.array(values, pa.string()), format=fmt, unit="ms", error_is_null=True)
    if parsed.null_count:
        i = parsed.is_null().to_pylist().index(True)
        raise ExportError(
            name,
            f"the field '{key}' is not a date and time in the form {fmt}",
            row=i + 1,
            hint="the file was changed after download; download again",
        )
    return parsed.cast(pa.timestamp("ms", tz="UTC"))


def _not_null(name: str, arr: pa.Array, key: str) -> None:
    if arr.null_count:
        i = arr.is_null().to_pylist().index(True)
        raise ExportError(name, f"the field '{key}' is empty", row=i + 1)


def _extended_variant(first: dict[str, Any]) -> str:
    if "ip_addr" in first or "audiobook_title" in first:
        return "extended-c"
    if "spotify_track_uri" in first or "spotify_episode_uri" in first:
        return "extended-b"
    return "extended-a"


def _parse_extended(name: str, rows: list[dict[str, Any]], *, video: bool) -> Parsed:
    variant = _extended_variant(rows[0])
    _require(name, rows, _EXTENDED_REQUIRED)
    n = len(rows)
    columns: dict[str, pa.Array] = {
        "ts": _timestamps(name, rows, "ts", "%Y-%m-%dT%H:%M:%SZ"),
        "ms_played": _column(name, rows, "ms_played", pa.int64()),
    }
    _not_null(name, columns["ms_played"], "ms_played")
    for col, key in _EXTENDED_COLUMNS.items():
        typ = PARSED_SCHEMA.field(col).type
        # optional fields (URIs, audiobook_*) are absent in older generations
        columns[col] = _column(name, rows, key, typ) if key in rows[0] else pa.nulls(n, typ)
    columns["kind"] = _extended_kind(columns, video=video)
    columns["source"] = pa.array(["extended"] * n, pa.string())
    usernames = frozenset(u for u in {r.get("username") for r in rows} if isinstance(u, str) and u)
    suffix = "-video" if video else ""
    return Parsed(_table(columns), variant=variant + suffix, usernames=usernames)


def _extended_kind(columns: dict[str, pa.Array], *, video: bool) -> pa.Array:
    def present(*cols: str) -> pa.Array:
        out = pc.is_valid(columns[cols[0]])
        for c in cols[1:]:
            out = pc.or_(out, pc.is_valid(columns[c]))
        return out

    n = len(columns["ts"])
    fallback = "video" if video else "unknown"
    episode = "video" if video else "podcast"
    kinds = pc.case_when(
        pc.make_struct(
            present("episode_name", "episode_uri", "show_name"),
            present("audiobook_title", "audiobook_uri"),
            present("track_name", "track_uri", "artist_name"),
        ),
        pa.array([episode] * n, pa.string()),
        pa.array(["audiobook"] * n, pa.string()),
        pa.array(["music"] * n, pa.string()),
        pa.array([fallback] * n, pa.string()),
    )
    return kinds


# account-data shapes: what was played, by the fields of the first row
_ACCOUNT_SHAPES = (
    ("podcast", ("podcastName", "episodeName")),
    ("audiobook", ("audiobookName", "chapterName")),
    ("music", ("artistName", "trackName")),
)


def _parse_account(name: str, rows: list[dict[str, Any]], kind: str) -> Parsed:
    first = rows[0]
    shape = next((s for s, fields in _ACCOUNT_SHAPES if any(f in first for f in fields)), None)
    if shape is None:
        raise UnknownContent(
            name,
            "the rows have account-data times but no fields saying what was played "
            "(artistName/trackName, podcastName/episodeName or audiobookName/chapterName)",
            row=1,
            hint="this file is not a listening history this version knows",
        )
    podcast = shape == "podcast"
    legacy = kind == "account-legacy"
    needed = ("endTime", "msPlayed") + dict(_ACCOUNT_SHAPES)[shape]
    _require(name, rows, needed)
    n = len(rows)
    columns: dict[str, pa.Array] = {
        "ts": _timestamps(name, rows, "endTime", "%Y-%m-%d %H:%M"),
        "ms_played": _column(name, rows, "msPlayed", pa.int64()),
    }
    _not_null(name, columns["ms_played"], "msPlayed")
    if podcast:
        columns["show_name"] = _column(name, rows, "podcastName", pa.string())
        columns["episode_name"] = _column(name, rows, "episodeName", pa.string())
        columns["kind"] = pa.array(["podcast"] * n, pa.string())
    elif shape == "audiobook":
        # authorName is not kept: book and chapter say what was played
        columns["audiobook_title"] = _column(name, rows, "audiobookName", pa.string())
        columns["audiobook_chapter_title"] = _column(name, rows, "chapterName", pa.string())
        columns["kind"] = pa.array(["audiobook"] * n, pa.string())
    else:
        columns["artist_name"] = _column(name, rows, "artistName", pa.string())
        columns["track_name"] = _column(name, rows, "trackName", pa.string())
        # older account data mixes podcasts into the same files under artist/track
        # names; they cannot be told apart, so they count as music (documented)
        columns["kind"] = pa.array(["music"] * n, pa.string())
    columns["source"] = pa.array(["account"] * n, pa.string())
    variant = "account-legacy" if legacy else f"account-{shape}"
    return Parsed(_table(columns), variant=variant)


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    n = len(columns["ts"])
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in PARSED_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=PARSED_SCHEMA)
