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

import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.errors import ExportError, UnknownContent
from tunetrust.formats import Classification, Parsed, Role, ServiceFacts, normalise
from tunetrust.formats.jsonlist import json_list
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
    export_steps=(
        "Sign in to your account on the service's website (not the app) and open "
        '<strong>Account → Privacy settings</strong> (sometimes called "Account privacy").',
        "Tick <strong>Extended streaming history</strong>: every play since you opened the "
        "account, with how long you listened. The smaller <strong>Account data</strong> "
        "package covers only the last year; it works too, with less detail.",
        "Confirm the request from the e-mail the service sends you.",
        "Wait. Account data usually arrives within 5 days, extended streaming history within "
        "30 days. An e-mail brings a download link, which expires after about 14 days.",
        "Download the zip file. Do not unpack or edit it: upload it as it is.",
    ),
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

    def parse(self, file: ExportFile, data: bytes | IO[bytes], kind: str) -> Parsed:
        """Parse one listening-history file; the generation is read from its fields.

        ``data`` is the file's bytes or a stream of them, read in bounded batches of
        rows (each turned into Arrow columns before the next is read), so memory holds
        the parsed table and one batch, never the file's rows as Python objects. The
        rows come out normalised with :data:`FACTS` (skips filled from end reasons).
        """
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        batches = json_list(file.name, stream)
        rows = next(batches, None)
        if rows is None:
            return Parsed(PARSED_SCHEMA.empty_table(), variant=_empty_variant(kind))
        first = rows[0]
        try:
            if "ms_played" in first or "ts" in first:
                reader: _Reader = _Extended(file.name, first, video=kind == "extended-video")
            elif "msPlayed" in first or "endTime" in first:
                reader = _Account(file.name, first, kind)
            else:
                raise UnknownContent(
                    file.name,
                    "the rows have neither extended-history fields (ts, ms_played) "
                    "nor account-data fields (endTime, msPlayed)",
                    row=1,
                    hint="this file is not a listening history this version knows",
                )
        except UnknownContent:
            _drain(batches)  # a damaged file is refused, not skipped as unknown
            raise
        tables, usernames, offset = [], set(), 0
        for batch in _chain(rows, batches):
            table, names = reader.batch(batch, offset)
            tables.append(normalise(table, FACTS))
            usernames |= names
            offset += len(batch)
        return Parsed(
            pa.concat_tables(tables), variant=reader.variant, usernames=frozenset(usernames)
        )

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


def _drain(batches: Iterator[list[dict[str, Any]]]) -> None:
    for _ in batches:
        pass


def _chain(
    first: list[dict[str, Any]], rest: Iterator[list[dict[str, Any]]]
) -> Iterator[list[dict[str, Any]]]:
    yield first
    yield from rest


def _require_first(name: str, first: dict[str, Any], fields: Sequence[str]) -> None:
    """A first row without ``fields`` is a shape this version does not know (skipped)."""
    absent = [key for key in fields if key not in first]
    if absent:
        raise UnknownContent(
            name,
            f"the rows lack the field(s) {', '.join(repr(k) for k in absent)} that every "
            "known listening history has",
            row=1,
            hint="this file is not a listening history this version knows",
        )


def _require(name: str, rows: list[dict[str, Any]], fields: Sequence[str], offset: int) -> None:
    """Every row has ``fields``: a later row without them is a damaged file (refused)."""
    for key in fields:
        for i, row in enumerate(rows):
            if key not in row:
                raise ExportError(
                    name, f"the field '{key}' is missing", row=offset + i + 1, hint="download again"
                )


def _column(
    name: str, rows: list[dict[str, Any]], key: str, typ: pa.DataType, offset: int
) -> pa.Array:
    """One export field as an Arrow array, with a row-numbered error on a wrong type.

    ``offset`` is the number of rows of the file before ``rows`` (batches are numbered
    as one file)."""
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
            row=offset + i + 1,
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


def _timestamps(name: str, rows: list[dict[str, Any]], key: str, fmt: str, offset: int) -> pa.Array:
    values = [r.get(key) for r in rows]
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ExportError(
                name, f"the field '{key}' should be a date and time text", row=offset + i + 1
            )
    parsed = pc.strptime(pa.array(values, pa.string()), format=fmt, unit="ms", error_is_null=True)
    if parsed.null_count:
        i = parsed.is_null().to_pylist().index(True)
        raise ExportError(
            name,
            f"the field '{key}' is not a date and time in the form {fmt}",
            row=offset + i + 1,
            hint="the file was changed after download; download again",
        )
    return parsed.cast(pa.timestamp("ms", tz="UTC"))


def _not_null(name: str, arr: pa.Array, key: str, offset: int) -> None:
    if arr.null_count:
        i = arr.is_null().to_pylist().index(True)
        raise ExportError(name, f"the field '{key}' is empty", row=offset + i + 1)


def _extended_variant(first: dict[str, Any]) -> str:
    if "ip_addr" in first or "audiobook_title" in first:
        return "extended-c"
    if "spotify_track_uri" in first or "spotify_episode_uri" in first:
        return "extended-b"
    return "extended-a"


class _Reader(Protocol):
    """Turns batches of one file's rows into parsed tables; the first row decided how."""

    variant: str

    def batch(self, rows: list[dict[str, Any]], offset: int) -> tuple[pa.Table, set[str]]:
        """The rows as a parsed table, and the usernames they name."""
        ...


class _Extended:
    """Extended streaming history: the generation and optional fields from the first row."""

    def __init__(self, name: str, first: dict[str, Any], *, video: bool) -> None:
        _require_first(name, first, _EXTENDED_REQUIRED)
        self.name, self.video = name, video
        self.variant = _extended_variant(first) + ("-video" if video else "")
        # optional fields (URIs, audiobook_*) are absent in older generations
        self.present = frozenset(k for k in _EXTENDED_COLUMNS.values() if k in first)

    def batch(self, rows: list[dict[str, Any]], offset: int) -> tuple[pa.Table, set[str]]:
        """The rows as a parsed table, and the usernames they name."""
        name = self.name
        _require(name, rows, _EXTENDED_REQUIRED, offset)
        n = len(rows)
        columns: dict[str, pa.Array] = {
            "ts": _timestamps(name, rows, "ts", "%Y-%m-%dT%H:%M:%SZ", offset),
            "ms_played": _column(name, rows, "ms_played", pa.int64(), offset),
        }
        _not_null(name, columns["ms_played"], "ms_played", offset)
        for col, key in _EXTENDED_COLUMNS.items():
            typ = PARSED_SCHEMA.field(col).type
            columns[col] = (
                _column(name, rows, key, typ, offset) if key in self.present else pa.nulls(n, typ)
            )
        columns["kind"] = _extended_kind(columns, video=self.video)
        columns["source"] = pa.array(["extended"] * n, pa.string())
        usernames = {u for u in {r.get("username") for r in rows} if isinstance(u, str) and u}
        return _table(columns), usernames


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


class _Account:
    """Account data: what was played (music, podcast, audiobook) from the first row."""

    def __init__(self, name: str, first: dict[str, Any], kind: str) -> None:
        shape = next((s for s, fields in _ACCOUNT_SHAPES if any(f in first for f in fields)), None)
        if shape is None:
            raise UnknownContent(
                name,
                "the rows have account-data times but no fields saying what was played "
                "(artistName/trackName, podcastName/episodeName or audiobookName/chapterName)",
                row=1,
                hint="this file is not a listening history this version knows",
            )
        self.needed = ("endTime", "msPlayed") + dict(_ACCOUNT_SHAPES)[shape]
        _require_first(name, first, self.needed)
        self.name, self.shape = name, shape
        self.variant = "account-legacy" if kind == "account-legacy" else f"account-{shape}"

    def batch(self, rows: list[dict[str, Any]], offset: int) -> tuple[pa.Table, set[str]]:
        """The rows as a parsed table (account data names no username)."""
        name = self.name
        _require(name, rows, self.needed, offset)
        n = len(rows)
        columns: dict[str, pa.Array] = {
            "ts": _timestamps(name, rows, "endTime", "%Y-%m-%d %H:%M", offset),
            "ms_played": _column(name, rows, "msPlayed", pa.int64(), offset),
        }
        _not_null(name, columns["ms_played"], "msPlayed", offset)
        if self.shape == "podcast":
            columns["show_name"] = _column(name, rows, "podcastName", pa.string(), offset)
            columns["episode_name"] = _column(name, rows, "episodeName", pa.string(), offset)
        elif self.shape == "audiobook":
            # authorName is not kept: book and chapter say what was played
            columns["audiobook_title"] = _column(name, rows, "audiobookName", pa.string(), offset)
            columns["audiobook_chapter_title"] = _column(
                name, rows, "chapterName", pa.string(), offset
            )
        else:
            columns["artist_name"] = _column(name, rows, "artistName", pa.string(), offset)
            columns["track_name"] = _column(name, rows, "trackName", pa.string(), offset)
        # older account data mixes podcasts into the same files under artist/track
        # names; they cannot be told apart, so they count as music (documented)
        columns["kind"] = pa.array([self.shape] * n, pa.string())
        columns["source"] = pa.array(["account"] * n, pa.string())
        return _table(columns), set()


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    n = len(columns["ts"])
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in PARSED_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=PARSED_SCHEMA)
