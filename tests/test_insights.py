"""Insights equal a plain reference computation, edge cases included."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from tunetrust import Home, InputError, add_member, get_member, import_export
from tunetrust.insights.stats import Period, compute, member_insights

from .factories import export_zip, extended_row, json_bytes


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
    per_day: Counter[date] = Counter()
    for r in p:
        per_day[r["local"].date()] += r["ms_played"]
    busiest = min(per_day.items(), key=lambda kv: (-kv[1], kv[0])) if per_day else None
    clock = [[0] * 24 for _ in range(7)]
    for r in p:
        clock[r["local"].weekday()][r["local"].hour] += r["ms_played"]
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
    new = {a for a, t in first.items() if inside({"local": t})}
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
        "new_artist_time_share": new_ms / artist_ms if artist_ms else None,
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
    ):
        assert getattr(got, key) == want[key], key
    for key in ("skip_rate", "shuffle_share", "offline_share", "new_artist_time_share"):
        assert getattr(got, key) == pytest.approx(want[key]), key
    assert got.platform_share == pytest.approx(want["platform_share"])
    assert [(a.name, a.ms, a.plays) for a in got.top_artists] == want["top_artists"]
    assert [((t.name, t.by), t.ms, t.plays) for t in got.top_tracks] == want["top_tracks"]
    assert [(s.name, s.ms, s.plays) for s in got.top_shows] == want["top_shows"]
    assert sum(m["new_artists"] for m in got.new_artists_per_month) == want["new_artists"]


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
    assert got.notes == ["no listens in this period"]


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


def test_forgotten_favourites(home: Home, tmp_path: Path) -> None:
    rows = [
        extended_row(
            "c",
            ts="2022-05-01T10:00:00Z",
            master_metadata_album_artist_name="Old",
            spotify_track_uri="spotify:track:old",
        ),
        extended_row("c", ts="2024-05-01T10:00:00Z"),
    ]
    got = compute(_table(home, tmp_path, rows), Period.parse(None, None, 2024))
    assert [a.name for a in got.forgotten_favourites] == ["Old"]
    assert got.new_artist_time_share == 1.0  # "Artist" was first heard in 2024


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
