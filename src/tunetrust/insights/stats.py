"""A member's listening statistics, computed by DuckDB over their Parquet partition.

Definitions (also in docs/insights.md):

* a *listen* is any stored row; a *play* is a listen of at least ``min_seconds``;
* ``total_ms`` sums every listen in the period; counts of plays use plays only;
* periods and day / hour buckets are in the member's time zone (``tz``, default UTC);
  ``from`` and ``to`` are inclusive local dates; a period open on one side is titled by
  the day of its first (or last) listen, never "the beginning" or "today";
* the listening clock and the busiest day count *when* the member was listening: each
  listen covers the ``ms_played`` before its end, overlapping listens count once, and
  that time is split at local hours (``insights/clock.py``), so an hour of one day holds
  at most an hour and a day at most its own length (23, 24 or 25 h with DST);
* a listen is a skip when ``skipped`` is true; the import fills it from the service's
  skip reasons where the export has no flag (``formats.normalise``), so no reason code
  is named here; where it is null the listen does not count either way;
* an artist is *first heard* at their earliest play in the member's whole history; it is
  a *discovery* only from ``discovery_from`` on, the first whole month after the
  history's first four weeks (what a history starts with was known already, so "all
  time" does not count every artist as new);
* *forgotten favourites* are the top artists before the period with no listen in it,
  among those with at least ``FAVOURITE_PLAYS`` plays and ``FAVOURITE_MS`` of listening.

The raw vault is never read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa

from tunetrust.coop.members import get_member
from tunetrust.errors import InputError
from tunetrust.insights import clock
from tunetrust.store.home import Home

FAVOURITE_PLAYS = 10  # a forgotten favourite was played this often before the period …
FAVOURITE_MS = 3_600_000  # … for at least an hour in all
DISCOVERY_WARMUP = timedelta(days=28)  # what a history starts with was known already
COLUMNS = (  # what the statistics read of the events schema (the rest is not loaded)
    "ts",
    "ms_played",
    "track_name",
    "artist_name",
    "album_name",
    "show_name",
    "skipped",
    "shuffle",
    "offline",
    "platform",
)


@dataclass(frozen=True)
class Period:
    """Inclusive local dates; ``None`` leaves that side open."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise InputError(f"the period starts ({self.start}) after it ends ({self.end})")

    @classmethod
    def parse(cls, start: str | None, end: str | None, year: int | None) -> Period:
        """A period from ``--from``, ``--to`` and ``--year`` options."""
        if year is not None:
            if start or end:
                raise InputError("give either --year or --from/--to, not both")
            return cls(date(year, 1, 1), date(year, 12, 31))
        return cls(_date(start, "--from"), _date(end, "--to"))

    def label(self, first: date | None = None, last: date | None = None) -> str:
        """How the period reads in a title; an open side reads as the day of the first
        (``first``) or last (``last``) listen in it, when there is one."""
        if (
            self.start
            and self.end
            and (self.start.month, self.start.day) == (1, 1)
            and (self.end == date(self.start.year, 12, 31))
        ):
            return str(self.start.year)
        start, end = self.start or first, self.end or last
        if start and end:
            return f"{start} – {end}"
        if start:
            return f"from {start}"
        if end:
            return f"until {end}"
        return "all time"


def _date(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} must be a date like 2024-03-31") from None


@dataclass(frozen=True)
class Ranked:
    """One entry of a top list."""

    name: str
    ms: int
    plays: int
    by: str | None = None  # the artist of a track or album


@dataclass(frozen=True)
class Insights:
    """Everything ``insights`` shows; ``to_dict()`` is the ``--json`` output."""

    period: str
    tz: str
    min_seconds: int
    total_ms: int
    listens: int
    plays: int
    distinct_tracks: int
    distinct_artists: int
    distinct_albums: int
    active_days: int
    first_listen: str | None
    last_listen: str | None
    top_artists: list[Ranked]
    top_artists_by_plays: list[Ranked]
    top_tracks: list[Ranked]
    top_tracks_by_plays: list[Ranked]
    top_albums: list[Ranked]
    top_shows: list[Ranked]
    per_year: list[dict[str, Any]]
    per_month: list[dict[str, Any]]
    clock_ms: list[list[int]]  # [weekday Mon=0][hour] → ms
    longest_streak_days: int
    longest_streak_start: str | None
    busiest_day: str | None
    busiest_day_ms: int
    skip_rate: float | None
    shuffle_share: float | None
    offline_share: float | None
    platform_share: dict[str, float]
    new_artists_per_month: list[dict[str, Any]]
    new_artist_time_share: float | None
    forgotten_favourites: list[Ranked]
    history_first_day: str | None  # the member's first and last listen (local dates) …
    history_last_day: str | None  # … in the whole history; None: no listen at all
    discovery_from: str | None  # the first day a first play is a discovery (or None)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def _check_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {tz!r}; use a name like Europe/Berlin") from None
    return tz


def _ranked(rows: list[tuple[Any, ...]]) -> list[Ranked]:
    """Rows of (name, [by,] ms, plays) as ranked entries."""
    return [
        Ranked(name=r[0], ms=int(r[-2]), plays=int(r[-1]), by=r[1] if len(r) == 4 else None)
        for r in rows
    ]


def compute(
    listens: pa.Table,
    period: Period,
    *,
    min_seconds: int = 30,
    top: int = 10,
    tz: str = "UTC",
) -> Insights:
    """Statistics of ``listens`` (the events-store schema) for ``period``."""
    if min_seconds < 0 or top < 1:
        raise InputError("--min-seconds must be at least 0 and --top at least 1")
    tz = _check_tz(tz)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("events", listens)
        con.execute(
            f"""
            CREATE TEMP TABLE h AS
            SELECT {", ".join(COLUMNS)}, timezone($tz, ts) AS local,
                   ms_played >= $min_ms AS is_play, skipped AS skip
            FROM events
            """,
            {"tz": tz, "min_ms": min_seconds * 1000},
        )
        lo = datetime.combine(period.start, datetime.min.time()) if period.start else None
        hi = (
            datetime.combine(period.end, datetime.min.time()) + timedelta(days=1)
            if period.end
            else None
        )
        con.execute(
            "CREATE TEMP TABLE p AS SELECT * FROM h WHERE ($lo IS NULL OR local >= $lo) "
            "AND ($hi IS NULL OR local < $hi)",
            {"lo": lo, "hi": hi},
        )
        return _collect(con, listens, period, tz, min_seconds, top, lo, hi)
    finally:
        con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> Any:
    row = con.execute(sql, params or {}).fetchone()
    assert row is not None
    return row


def _all(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> Any:
    return con.execute(sql, params or {}).fetchall()


def _top(con: duckdb.DuckDBPyConnection, keys: str, where: str, order: str, top: int) -> Any:
    return _all(
        con,
        f"SELECT {keys}, SUM(ms_played) AS ms, COUNT(*) FILTER (is_play) AS plays "
        f"FROM p WHERE {where} GROUP BY ALL ORDER BY {order}, 1, 2 LIMIT {int(top)}",
    )


def _collect(
    con: duckdb.DuckDBPyConnection,
    listens: pa.Table,
    period: Period,
    tz: str,
    min_seconds: int,
    top: int,
    lo: datetime | None,
    hi: datetime | None,
) -> Insights:
    (total_ms, n, plays, tracks, artists, albums, days, first, last) = _one(
        con,
        """
        SELECT COALESCE(SUM(ms_played), 0), COUNT(*), COUNT(*) FILTER (is_play),
               COUNT(DISTINCT (artist_name, track_name)) FILTER (track_name IS NOT NULL),
               COUNT(DISTINCT artist_name),
               COUNT(DISTINCT (artist_name, album_name)) FILTER (album_name IS NOT NULL),
               COUNT(DISTINCT CAST(local AS DATE)) FILTER (is_play),
               MIN(local), MAX(local)
        FROM p""",
    )
    artist = "artist_name IS NOT NULL"
    top_artists = _ranked(_top(con, "artist_name", artist, "ms DESC", top))
    top_artists_plays = _ranked(_top(con, "artist_name", artist, "plays DESC, ms DESC", top))
    track_keys = "track_name, artist_name"
    top_tracks = _ranked(_top(con, track_keys, "track_name IS NOT NULL", "ms DESC", top))
    top_tracks_plays = _ranked(
        _top(con, track_keys, "track_name IS NOT NULL", "plays DESC, ms DESC", top)
    )
    top_albums = _ranked(
        _top(con, "album_name, artist_name", "album_name IS NOT NULL", "ms DESC", top)
    )
    top_shows = _ranked(_top(con, "show_name", "show_name IS NOT NULL", "ms DESC", top))

    per_year = [
        {"year": y, "ms": int(ms), "plays": int(p)}
        for y, ms, p in _all(
            con,
            """
        SELECT YEAR(local), SUM(ms_played), COUNT(*) FILTER (is_play) FROM p
        GROUP BY 1 ORDER BY 1""",
        )
    ]
    per_month = [
        {"month": m, "ms": int(ms), "plays": int(p)}
        for m, ms, p in _all(
            con,
            """
        SELECT strftime(local, '%Y-%m'), SUM(ms_played), COUNT(*) FILTER (is_play) FROM p
        GROUP BY 1 ORDER BY 1""",
        )
    ]
    active = [
        d
        for (d,) in _all(
            con,
            """
        SELECT DISTINCT CAST(local AS DATE) FROM p WHERE is_play ORDER BY 1""",
        )
    ]
    streak, streak_start = _longest_streak(active)
    # the clock and the busiest day: when the member was listening, in local time
    covered = clock.covered(listens, tz, clock.utc_ms(period.start, tz), _end_ms(period.end, tz))
    busiest_day, busiest_ms = covered.busiest_day()

    skip, shuffle, offline = _one(
        con,
        """
        SELECT AVG(CAST(skip AS DOUBLE)), AVG(CAST(shuffle AS DOUBLE)),
               AVG(CAST(offline AS DOUBLE)) FROM p""",
    )
    platform_ms = _all(
        con,
        """
        SELECT platform, SUM(ms_played) FROM p WHERE platform IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC, 1""",
    )
    platform_total = sum(int(ms) for _, ms in platform_ms)
    platform_share = {name: int(ms) / platform_total for name, ms in platform_ms if platform_total}

    history_first, history_last = _one(con, "SELECT MIN(local), MAX(local) FROM h")
    discovery = _discovery_from(history_first, history_last)
    new_per_month: list[dict[str, Any]] = []
    new_share: float | None = None
    # discovery: an artist is first heard at their earliest play in the whole history,
    # and only a first play from the discovery day on is a discovery
    start = max(lo, discovery) if lo and discovery else discovery
    if start is not None and (hi is None or start < hi):
        con.execute("""
            CREATE TEMP TABLE firsts AS
            SELECT artist_name, MIN(local) AS first FROM h
            WHERE is_play AND artist_name IS NOT NULL GROUP BY 1""")
        in_period = "first >= $lo AND ($hi IS NULL OR first < $hi)"
        bounds = {"lo": start, "hi": hi}
        new_per_month = [
            {"month": m, "new_artists": int(k)}
            for m, k in _all(
                con,
                f"""
            SELECT strftime(first, '%Y-%m'), COUNT(*) FROM firsts WHERE {in_period}
            GROUP BY 1 ORDER BY 1""",
                bounds,
            )
        ]
        new_ms, artist_ms = _one(
            con,
            f"""
            SELECT COALESCE(SUM(ms_played) FILTER (artist_name IN
                       (SELECT artist_name FROM firsts WHERE {in_period})), 0),
                   COALESCE(SUM(ms_played), 0)
            FROM p WHERE artist_name IS NOT NULL""",
            bounds,
        )
        new_share = int(new_ms) / int(artist_ms) if artist_ms else None
    forgotten: list[Ranked] = []
    if lo is not None:
        forgotten = _ranked(
            _all(
                con,
                f"""
            SELECT artist_name, SUM(ms_played) AS ms, COUNT(*) FILTER (is_play) AS plays
            FROM h WHERE local < $lo AND artist_name IS NOT NULL
              AND artist_name NOT IN (SELECT artist_name FROM p WHERE artist_name IS NOT NULL)
            GROUP BY 1 HAVING plays >= $plays AND ms >= $ms
            ORDER BY ms DESC, 1 LIMIT {int(top)}""",
                {"lo": lo, "plays": FAVOURITE_PLAYS, "ms": FAVOURITE_MS},
            )
        )

    notes = []
    if history_first is None:
        notes.append("no listens yet: import your export first")
    elif n == 0:
        notes.append(
            f"no listens in this period (yours run from {history_first.date()} "
            f"to {history_last.date()})"
        )
    return Insights(
        period=period.label(first.date() if first else None, last.date() if last else None),
        tz=tz,
        min_seconds=min_seconds,
        total_ms=int(total_ms),
        listens=int(n),
        plays=int(plays),
        distinct_tracks=int(tracks),
        distinct_artists=int(artists),
        distinct_albums=int(albums),
        active_days=int(days),
        first_listen=first.isoformat() if first else None,
        last_listen=last.isoformat() if last else None,
        top_artists=top_artists,
        top_artists_by_plays=top_artists_plays,
        top_tracks=top_tracks,
        top_tracks_by_plays=top_tracks_plays,
        top_albums=top_albums,
        top_shows=top_shows,
        per_year=per_year,
        per_month=per_month,
        clock_ms=covered.clock,
        longest_streak_days=streak,
        longest_streak_start=streak_start.isoformat() if streak_start else None,
        busiest_day=busiest_day.isoformat() if busiest_day else None,
        busiest_day_ms=busiest_ms,
        skip_rate=skip,
        shuffle_share=shuffle,
        offline_share=offline,
        platform_share=platform_share,
        new_artists_per_month=new_per_month,
        new_artist_time_share=new_share,
        forgotten_favourites=forgotten,
        notes=notes,
        history_first_day=history_first.date().isoformat() if history_first else None,
        history_last_day=history_last.date().isoformat() if history_last else None,
        discovery_from=discovery.date().isoformat() if discovery else None,
    )


def _end_ms(end: date | None, tz: str) -> int | None:
    """UTC epoch ms of the local midnight after the period's last day."""
    return clock.utc_ms(end + timedelta(days=1), tz) if end else None


def _discovery_from(first: datetime | None, last: datetime | None) -> datetime | None:
    """The first whole month after the history's first four weeks (``None``: too short)."""
    if first is None or last is None:
        return None
    warm = (first + DISCOVERY_WARMUP).date()
    if warm.day != 1:
        warm = date(warm.year + warm.month // 12, warm.month % 12 + 1, 1)
    start = datetime.combine(warm, datetime.min.time())
    return start if start <= last else None


def _longest_streak(days: list[date]) -> tuple[int, date | None]:
    best, best_start, run, run_start = 0, None, 0, None
    previous: date | None = None
    for d in days:
        if previous is not None and d - previous == timedelta(days=1):
            run += 1
        else:
            run, run_start = 1, d
        if run > best:
            best, best_start = run, run_start
        previous = d
    return best, best_start


def member_insights(home: Home, name: str, period: Period, **options: Any) -> Insights:
    """Insights for a member, read from their events partition (never from the vault)."""
    member = get_member(home, name)
    listens = home.events.read(member.pseudonym, member.events_file, columns=COLUMNS)
    return compute(listens, period, **options)
