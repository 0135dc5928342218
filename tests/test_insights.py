"""Insights equal a plain reference computation, edge cases included."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from tunetrust import Home, InputError, add_member, get_member, import_export
from tunetrust.insights.stats import (
    FAVOURITE_MS,
    FAVOURITE_PLAYS,
    Period,
    compute,
    member_insights,
)

from .factories import export_zip, extended_row, json_bytes

HOUR = 3_600_000


def covered(
    rows: list[dict[str, Any]], zone: ZoneInfo, lo: int | None, hi: int | None
) -> Counter[tuple[date, int, int]]:
    """When the member was listening: ms by (local date, weekday, hour), overlaps once.

    Each listen covers the ``ms_played`` before its end; the intervals are merged, clipped
    to [lo, hi) (UTC ms) and walked from one local hour to the next by the zone's offset
    at each point (tunetrust cuts at UTC quarter hours instead)."""
    spans = sorted(
        (end - r["ms_played"], end)
        for r in rows
        if r["ms_played"] > 0
        for end in [round(r["ts"].timestamp() * 1000)]
    )
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out: Counter[tuple[date, int, int]] = Counter()
    for s, e in merged:
        s, e = max(s, lo) if lo is not None else s, min(e, hi) if hi is not None else e
        while s < e:
            local = datetime.fromtimestamp(s / 1000, zone)
            offset = round(local.utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]
            step = min(e, ((s + offset) // HOUR + 1) * HOUR - offset)
            out[(local.date(), local.weekday(), local.hour)] += step - s
            s = step
    return out


def midnight(day: date | None, zone: ZoneInfo) -> int | None:
    """Local midnight at the start of ``day`` as UTC ms."""
    if day is None:
        return None
    return round(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def reference(
    rows: list[dict[str, Any]],
    period: Period,
    tz: str = "UTC",
    min_seconds: int = 30,
    top: int = 10,
) -> dict[str, Any]:
    """The same numbers, computed the obvious way, row by row."""
    zone = ZoneInfo(tz)
    for r in rows:
        r["local"] = r["ts"].astimezone(zone).replace(tzinfo=None)
        r["is_play"] = r["ms_played"] >= min_seconds * 1000
        # the import filled ``skipped`` from the end reasons (tests/test_import.py checks
        # it against tests/reference.py); insights read the column alone
        r["skip"] = r["skipped"]

    def inside(r: dict[str, Any]) -> bool:
        d = r["local"].date()
        return (period.start is None or d >= period.start) and (
            period.end is None or d <= period.end
        )

    p = [r for r in rows if inside(r)]

    def ranked(key: Any, keep: Any) -> list[tuple[Any, int, int]]:
        ms: Counter[Any] = Counter()
        plays: Counter[Any] = Counter()
        for r in p:
            if keep(r):
                ms[key(r)] += r["ms_played"]
                plays[key(r)] += r["is_play"]
        return sorted(((k, ms[k], plays[k]) for k in ms), key=lambda t: (-t[1], t[0]))[:top]

    def share(col: str) -> float | None:
        known = [r[col] for r in p if r[col] is not None]
        return sum(known) / len(known) if known else None

    active = sorted({r["local"].date() for r in p if r["is_play"]})
    best = run = 0
    for i, d in enumerate(active):
        run = run + 1 if i and d - active[i - 1] == timedelta(days=1) else 1
        best = max(best, run)
    end = period.end + timedelta(days=1) if period.end else None
    cover = covered(rows, zone, midnight(period.start, zone), midnight(end, zone))
    per_day: Counter[date] = Counter()
    clock = [[0] * 24 for _ in range(7)]
    for (day, weekday, hour), ms in cover.items():
        per_day[day] += ms
        clock[weekday][hour] += ms
    busiest = min(per_day.items(), key=lambda kv: (-kv[1], kv[0])) if per_day else None
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in p:
        m = months[r["local"].strftime("%Y-%m")]
        m[0] += r["ms_played"]
        m[1] += r["is_play"]
    first: dict[str, datetime] = {}
    for r in rows:
        if r["is_play"] and r["artist_name"] is not None:
            a = r["artist_name"]
            first[a] = min(first.get(a, r["local"]), r["local"])
    # a first play is a discovery from the first whole month after the history's first
    # four weeks (docs/insights.md)
    start = min((r["local"] for r in rows), default=None)
    found = None
    if start is not None:
        warm = start.date() + timedelta(days=28)
        if warm.day != 1:
            warm = (warm.replace(day=1) + timedelta(days=32)).replace(day=1)
        if datetime.combine(warm, datetime.min.time()) <= max(r["local"] for r in rows):
            found = warm
    new = {
        a
        for a, t in first.items()
        if found is not None and t.date() >= found and inside({"local": t})
    }
    lost: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if period.start is not None:
        heard = {r["artist_name"] for r in p}
        for r in rows:
            a = r["artist_name"]
            if a is not None and a not in heard and r["local"].date() < period.start:
                lost[a][0] += r["ms_played"]
                lost[a][1] += r["is_play"]
    forgotten = sorted(
        ((a, ms, n) for a, (ms, n) in lost.items() if n >= FAVOURITE_PLAYS and ms >= FAVOURITE_MS),
        key=lambda t: (-t[1], t[0]),
    )[:top]
    discovering = found is not None and (
        period.end is None or max(found, period.start or found) <= period.end
    )
    artist_ms = sum(r["ms_played"] for r in p if r["artist_name"] is not None)
    new_ms = sum(r["ms_played"] for r in p if r["artist_name"] in new)
    platform: Counter[str] = Counter()
    for r in p:
        if r["platform"] is not None:
            platform[r["platform"]] += r["ms_played"]
    return {
        "total_ms": sum(r["ms_played"] for r in p),
        "listens": len(p),
        "plays": sum(r["is_play"] for r in p),
        "distinct_artists": len({r["artist_name"] for r in p if r["artist_name"] is not None}),
        "distinct_tracks": len(
            {(r["artist_name"], r["track_name"]) for r in p if r["track_name"] is not None}
        ),
        "distinct_albums": len(
            {(r["artist_name"], r["album_name"]) for r in p if r["album_name"] is not None}
        ),
        "active_days": len(active),
        "top_artists": ranked(lambda r: r["artist_name"], lambda r: r["artist_name"]),
        "top_tracks": ranked(
            lambda r: (r["track_name"], r["artist_name"]), lambda r: r["track_name"]
        ),
        "top_shows": ranked(lambda r: r["show_name"], lambda r: r["show_name"]),
        "per_month": [{"month": k, "ms": v[0], "plays": v[1]} for k, v in sorted(months.items())],
        "clock_ms": clock,
        "longest_streak_days": best,
        "busiest_day": busiest[0].isoformat() if busiest else None,
        "skip_rate": share("skip"),
        "shuffle_share": share("shuffle"),
        "offline_share": share("offline"),
        "platform_share": {k: v / sum(platform.values()) for k, v in platform.items()},
        "new_artists": len(new),
        "new_artist_time_share": new_ms / artist_ms if artist_ms and discovering else None,
        "discovery_from": found.isoformat() if found else None,
        "busiest_day_ms": busiest[1] if busiest else 0,
        "forgotten_favourites": forgotten,
    }


def _compare(table: pa.Table, period: Period, **kw: Any) -> None:
    got = compute(table, period, **kw)
    want = reference(table.to_pylist(), period, **kw)
    for key in (
        "total_ms",
        "listens",
        "plays",
        "distinct_artists",
        "distinct_tracks",
        "distinct_albums",
        "active_days",
        "per_month",
        "clock_ms",
        "longest_streak_days",
        "busiest_day",
        "busiest_day_ms",
        "discovery_from",
    ):
        assert getattr(got, key) == want[key], key
    for key in ("skip_rate", "shuffle_share", "offline_share", "new_artist_time_share"):
        assert getattr(got, key) == pytest.approx(want[key]), key
    assert got.platform_share == pytest.approx(want["platform_share"])
    assert [(a.name, a.ms, a.plays) for a in got.top_artists] == want["top_artists"]
    assert [((t.name, t.by), t.ms, t.plays) for t in got.top_tracks] == want["top_tracks"]
    assert [(s.name, s.ms, s.plays) for s in got.top_shows] == want["top_shows"]
    assert sum(m["new_artists"] for m in got.new_artists_per_month) == want["new_artists"]
    forgotten = [(a.name, a.ms, a.plays) for a in got.forgotten_favourites]
    assert forgotten == want["forgotten_favourites"]


@pytest.fixture(scope="module")
def history_table(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    from tunetrust import Settings, init_home

    tmp = tmp_path_factory.mktemp("insights")
    home = init_home(Settings(home=tmp / "h"))
    add_member(home, "m")
    import_export(home, "m", export_zip(tmp, "extended-c", 20_000, 8))
    m = get_member(home, "m")
    table = home.events.read(m.pseudonym, m.events_file)
    home.close()
    return table


@pytest.mark.parametrize(
    ("period", "tz", "min_seconds"),
    [
        (Period(), "UTC", 30),
        (Period.parse(None, None, 2022), "UTC", 30),
        (Period.parse(None, None, 2022), "Europe/Berlin", 30),
        (Period.parse("2021-03-01", "2021-06-30", None), "America/New_York", 10),
        (Period.parse("2024-01-01", None, None), "Asia/Kolkata", 60),
    ],
)
def test_equals_reference_on_synthetic_history(
    history_table: pa.Table, period: Period, tz: str, min_seconds: int
) -> None:
    _compare(history_table, period, tz=tz, min_seconds=min_seconds, top=15)


def _table(home: Home, tmp_path: Path, rows: list[dict[str, Any]]) -> pa.Table:
    add_member(home, "edge")
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_bytes(json_bytes(rows))
    import_export(home, "edge", path)
    m = get_member(home, "edge")
    return home.events.read(m.pseudonym, m.events_file)


def test_one_listen(home: Home, tmp_path: Path) -> None:
    table = _table(home, tmp_path, [extended_row("c", ms_played=95_000)])
    got = compute(table, Period())
    assert (got.total_ms, got.plays, got.active_days, got.longest_streak_days) == (95_000, 1, 1, 1)
    assert [(a.name, a.ms, a.plays) for a in got.top_artists] == [("Artist", 95_000, 1)]
    _compare(table, Period())


def test_period_with_no_listens(home: Home, tmp_path: Path) -> None:
    table = _table(home, tmp_path, [extended_row("c")])
    got = compute(table, Period.parse(None, None, 1999))
    assert (got.total_ms, got.plays, got.top_artists, got.per_month) == (0, 0, [], [])
    assert got.skip_rate is None and got.busiest_day is None and got.longest_streak_days == 0
    assert got.notes == ["no listens in this period (yours run from 2021-03-04 to 2021-03-04)"]
    assert got.period == "1999"


def test_podcasts_only(home: Home, tmp_path: Path) -> None:
    none = dict(
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
    )
    rows = [
        extended_row(
            "c",
            **none,
            episode_name=f"Ep {i}",
            episode_show_name="Show",
            spotify_episode_uri=f"spotify:episode:{i}",
            ts=f"2024-02-0{i + 1}T10:00:00Z",
            ms_played=600_000,
        )
        for i in range(3)
    ]
    table = _table(home, tmp_path, rows)
    got = compute(table, Period())
    assert got.top_artists == [] and got.distinct_tracks == 0
    assert [(s.name, s.ms, s.plays) for s in got.top_shows] == [("Show", 1_800_000, 3)]
    assert got.new_artist_time_share is None
    _compare(table, Period())


def test_plays_under_the_threshold(home: Home, tmp_path: Path) -> None:
    rows = [
        extended_row("c", ms_played=29_999, ts="2024-01-01T10:00:00Z"),
        extended_row("c", ms_played=30_000, ts="2024-01-02T10:00:00Z"),
        extended_row("c", ms_played=5_000, ts="2024-01-03T10:00:00Z", skipped=True),
    ]
    table = _table(home, tmp_path, rows)
    got = compute(table, Period())
    assert (got.total_ms, got.listens, got.plays, got.active_days) == (64_999, 3, 1, 1)
    assert compute(table, Period(), min_seconds=5).plays == 3
    assert got.skip_rate == pytest.approx(1 / 3)
    _compare(table, Period())


def test_year_boundary_and_dst_in_local_time(home: Home, tmp_path: Path) -> None:
    rows = [
        extended_row("c", ts="2023-12-31T23:30:00Z", ms_played=60_000),  # 00:30 in Berlin
        extended_row("c", ts="2024-03-31T00:30:00Z", ms_played=61_000),  # 01:30 CET
        extended_row("c", ts="2024-03-31T01:30:00Z", ms_played=62_000),  # 03:30 CEST
    ]
    table = _table(home, tmp_path, rows)
    utc_2023 = compute(table, Period.parse(None, None, 2023))
    berlin_2023 = compute(table, Period.parse(None, None, 2023), tz="Europe/Berlin")
    assert utc_2023.total_ms == 60_000 and berlin_2023.total_ms == 0
    berlin = compute(table, Period.parse(None, None, 2024), tz="Europe/Berlin")
    sunday = berlin.clock_ms[6]
    assert (sunday[1], sunday[2], sunday[3]) == (61_000, 0, 62_000)  # 02:00 never happened
    assert berlin.clock_ms[0][0] == 60_000  # Monday 1 January, 00:30
    _compare(table, Period.parse(None, None, 2024), tz="Europe/Berlin")


def test_skip_from_reason_when_skipped_is_null(home: Home, tmp_path: Path) -> None:
    rows = [
        extended_row("c", skipped=None, reason_end="fwdbtn", ts="2024-01-01T10:00:00Z"),
        extended_row("c", skipped=None, reason_end="trackdone", ts="2024-01-01T11:00:00Z"),
        extended_row("c", skipped=None, reason_end="trackdone", ts="2024-01-01T12:00:00Z"),
        extended_row("c", skipped=True, reason_end="trackdone", ts="2024-01-01T13:00:00Z"),
    ]
    assert compute(_table(home, tmp_path, rows), Period()).skip_rate == pytest.approx(0.5)


def _plays(artist: str, n: int, ms: int, day: str) -> list[dict[str, Any]]:
    """``n`` plays of ``ms`` each by ``artist``, a minute apart from ``day`` 10:00 UTC."""
    start = datetime.fromisoformat(f"{day}T10:00:00+00:00")
    return [
        extended_row(
            "c",
            ts=(start + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ms_played=ms,
            master_metadata_album_artist_name=artist,
            spotify_track_uri=f"spotify:track:{artist}{i}",
        )
        for i in range(n)
    ]


def test_forgotten_favourites_need_plays_and_time(home: Home, tmp_path: Path) -> None:
    rows = [
        *_plays("Loved", FAVOURITE_PLAYS, FAVOURITE_MS // FAVOURITE_PLAYS, "2022-05-01"),
        *_plays("Once", 1, 1_000, "2022-05-02"),  # one play, no time: the reported defect
        *_plays("Brief", FAVOURITE_PLAYS * 3, 60_000, "2022-05-03"),  # often, but 30 min
        *_plays("Long", FAVOURITE_PLAYS - 1, 3_000_000, "2022-05-04"),  # long, too rarely
        extended_row("c", ts="2024-05-01T10:00:00Z"),
    ]
    table = _table(home, tmp_path, rows)
    got = compute(table, Period.parse(None, None, 2024))
    assert [(a.name, a.ms, a.plays) for a in got.forgotten_favourites] == [
        ("Loved", FAVOURITE_MS, FAVOURITE_PLAYS)
    ]
    assert got.new_artist_time_share == 1.0  # "Artist" was first heard in 2024
    assert got.discovery_from == "2022-06-01"  # four weeks after 2022-05-01, whole months
    _compare(table, Period.parse(None, None, 2024))


def test_all_time_is_titled_by_the_data_and_discovery_skips_the_start(
    home: Home, tmp_path: Path
) -> None:
    rows = [
        *_plays("First", 3, 200_000, "2021-03-04"),
        *_plays("Early", 2, 200_000, "2021-03-20"),  # inside the first four weeks: known
        *_plays("Found", 2, 200_000, "2021-05-02"),  # the first discovery
        *_plays("Later", 1, 200_000, "2021-08-30"),
    ]
    table = _table(home, tmp_path, rows)
    got = compute(table, Period(), tz="Asia/Tokyo")
    assert got.period == "2021-03-04 – 2021-08-30"  # was "the beginning – today"
    assert (got.history_first_day, got.history_last_day) == ("2021-03-04", "2021-08-30")
    assert got.discovery_from == "2021-04-01"  # 28 days on, a whole month starts
    assert got.new_artists_per_month == [
        {"month": "2021-05", "new_artists": 1},
        {"month": "2021-08", "new_artists": 1},
    ]  # not "every artist new in the first month" (100 %)
    assert got.new_artist_time_share == pytest.approx(3 / 8)
    assert compute(table, Period.parse("2021-04-01", None, None)).period == (
        "2021-04-01 – 2021-08-30"
    )
    assert compute(table, Period.parse(None, "2021-03-31", None)).period == (
        "2021-03-04 – 2021-03-31"
    )
    early = compute(table, Period.parse(None, "2021-03-31", None))
    assert early.new_artists_per_month == [] and early.new_artist_time_share is None
    april = compute(table, Period.parse("2021-04-01", "2021-04-30", None))
    assert april.new_artists_per_month == [] and april.new_artist_time_share is None
    assert compute(table, Period.parse("2030-01-01", None, None)).period == "from 2030-01-01"
    short = compute(_table_of(rows[:3]), Period())
    assert short.discovery_from is None and short.new_artist_time_share is None
    _compare(table, Period(), tz="Asia/Tokyo")


def _table_of(rows: list[dict[str, Any]]) -> pa.Table:
    """Stored listens made directly (no import, so no plausibility check stops them)."""
    from tunetrust.store.events import EVENTS_SCHEMA

    base = {f.name: None for f in EVENTS_SCHEMA}
    out = []
    for r in rows:
        row = dict(base, kind="music", source="extended", contribution="c", platform="ios")
        if "master_metadata_album_artist_name" in r:  # an export row
            ts = datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
            r = dict(
                ts=ts,
                ms_played=r["ms_played"],
                artist_name=r["master_metadata_album_artist_name"],
                track_name=r["master_metadata_track_name"],
            )
        row.update(r)
        out.append(row)
    return pa.Table.from_pylist(out, schema=EVENTS_SCHEMA)


def _nonstop(first: datetime, last: datetime) -> list[dict[str, Any]]:
    """Hour-long listens ending every 30 minutes from ``first`` to ``last`` (UTC): every
    moment covered twice, as when two devices play at once."""
    rows, end = [], first
    while end <= last:
        rows.append({"ts": end, "ms_played": HOUR, "artist_name": "A", "track_name": "T"})
        end += timedelta(minutes=30)
    return rows


@pytest.mark.parametrize(
    ("day", "start_utc", "hours", "repeated", "missing"),
    [
        ("2024-03-31", "2024-03-30T23:00", 23, None, 2),  # clocks go forward: 02:00 is skipped
        ("2023-10-29", "2023-10-28T22:00", 25, 2, None),  # clocks go back: 02:00 comes twice
        ("2024-05-01", "2024-04-30T22:00", 24, None, None),
    ],
)
def test_a_day_never_holds_more_than_its_own_length(
    day: str, start_utc: str, hours: int, repeated: int | None, missing: int | None
) -> None:
    """Busiest day 25 h (the defect): overlapping listens counted twice, whole listens at
    their end. Now a local day holds the time covered in it, in the report's zone."""
    start = datetime.fromisoformat(start_utc + ":00+00:00")
    # covered from 3 h before the local day to 3 h after it, twice over
    rows = _nonstop(start - timedelta(hours=2), start + timedelta(hours=hours + 3))
    table = _table_of(rows)
    got = compute(table, Period(), tz="Europe/Berlin")
    assert sum(r["ms_played"] for r in rows) > 2 * hours * HOUR  # what was summed before
    assert got.busiest_day == day and got.busiest_day_ms == hours * HOUR
    weekday = date.fromisoformat(day).weekday()
    for hour, ms in enumerate(got.clock_ms[weekday]):
        want = 0 if hour == missing else 2 * HOUR if hour == repeated else HOUR
        assert ms == want, hour
    one_day = compute(table, Period.parse(day, day, None), tz="Europe/Berlin")
    assert one_day.busiest_day_ms == hours * HOUR and sum(map(sum, one_day.clock_ms)) == (
        hours * HOUR
    )
    _compare(table, Period.parse(day, day, None), tz="Europe/Berlin")


def test_days_and_hours_are_counted_in_the_reports_zone() -> None:
    table = _table_of(
        [
            # ends 00:20 on 2 May in Berlin (22:20 UTC on 1 May): 40 min on 1 May, 20 on 2 May
            {"ts": datetime(2024, 5, 1, 22, 20, tzinfo=UTC), "ms_played": HOUR},
            # 23:00 to 23:50 UTC on Friday 3 May: 01:00 to 01:50 on Saturday 4 May in Berlin
            {"ts": datetime(2024, 5, 3, 23, 50, tzinfo=UTC), "ms_played": 50 * 60_000},
        ]
    )
    berlin = compute(table, Period(), tz="Europe/Berlin")
    assert (berlin.busiest_day, berlin.busiest_day_ms) == ("2024-05-04", 50 * 60_000)
    assert berlin.clock_ms[2][23] == 40 * 60_000 and berlin.clock_ms[3][0] == 20 * 60_000
    assert berlin.clock_ms[5][1] == 50 * 60_000 and berlin.clock_ms[4][23] == 0
    utc = compute(table, Period(), tz="UTC")
    assert (utc.busiest_day, utc.busiest_day_ms) == ("2024-05-01", HOUR)
    assert utc.clock_ms[2][21] == 40 * 60_000 and utc.clock_ms[2][22] == 20 * 60_000
    assert utc.clock_ms[4][23] == 50 * 60_000
    may_2 = compute(table, Period.parse("2024-05-02", "2024-05-02", None), tz="Europe/Berlin")
    assert may_2.busiest_day_ms == 20 * 60_000 and may_2.total_ms == HOUR  # ended that day
    for tz in ("Europe/Berlin", "UTC", "Asia/Kolkata", "America/St_Johns"):
        _compare(table, Period(), tz=tz)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, None, None, "Mars/Olympus"), "unknown time zone"),
        (("2024-02-01", "2024-01-01", None, "UTC"), "starts (2024-02-01) after it ends"),
        (("2024-13-01", None, None, "UTC"), "--from must be a date"),
        (("2024-01-01", None, 2024, "UTC"), "either --year or --from/--to"),
    ],
)
def test_bad_options(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        compute(pa.table({}), Period.parse(args[0], args[1], args[2]), tz=args[3])


def test_never_reads_the_vault(home: Home, tmp_path: Path) -> None:
    table = _table(home, tmp_path, [extended_row("c")])
    for f in (home.settings.home / "vault").rglob("*.bin"):
        f.write_bytes(b"destroyed")  # insights still work: they read the events store only
    assert member_insights(home, "edge", Period()).total_ms == table["ms_played"][0].as_py()


def test_cli_json_interface(tmp_path: Path) -> None:
    from .test_cli import run

    h = str(tmp_path / "h")
    run("--home", h, "init")
    run("--home", h, "member", "add", "ann")
    z = str(tmp_path / "c.zip")
    run("--home", h, "synth", "--variant", "extended-c", "--listens", "3000", "--out", z)
    run("--home", h, "import", z, "--member", "ann")
    result = run("--home", h, "insights", "--member", "ann", "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data["total_ms"], int) and isinstance(data["plays"], int)
    assert len(data["top_artists"]) == 3 and len(data["top_tracks"]) == 3
    assert all({"name", "ms", "plays"} <= a.keys() for a in data["top_artists"])
    assert [a["ms"] for a in data["top_tracks"]] == sorted(
        (a["ms"] for a in data["top_tracks"]), reverse=True
    )
    text = run("--home", h, "insights", "--member", "ann", "--year", "2023")
    assert text.returncode == 0 and "Listening clock" in text.stdout


def test_cli_tells_an_empty_member_to_import_first(tmp_path: Path) -> None:
    """Was "0 days from None", an empty clock and an empty report."""
    from .test_cli import run

    h = str(tmp_path / "h")
    run("--home", h, "init")
    run("--home", h, "member", "add", "nobody")
    report = tmp_path / "r.html"
    text = run("--home", h, "insights", "--member", "nobody", "--html", str(report))
    assert text.returncode == 0, text.stderr
    said = " ".join(text.stdout.split())
    assert "No listens yet for nobody: import your export first" in said
    assert "tunetrust import" in said and "None" not in said and "0 days" not in said
    html = report.read_text("utf-8")
    assert "Import your export first" in html and "<svg" not in html and "None" not in html
    data = json.loads(run("--home", h, "insights", "--member", "nobody", "--json").stdout)
    assert data["history_first_day"] is None and data["period"] == "all time"
    assert data["notes"] == ["no listens yet: import your export first"]
