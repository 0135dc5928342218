"""A member's year (or any period) told as a story: cards of plain sentences.

Every number a sentence shows is a :class:`Figure`: its value, the words the sentence
writes it in, and where it comes from: paths into ``tunetrust insights --json`` for a
period (``--from``/``--to``), summed where there are several, divided by ``per`` for a
share. So each number can be checked against the insights a member can ask for
(``tests/test_story.py`` does), and nothing is said that the figures do not show.

What stats.py lacks is computed here, over the same events table with DuckDB and the
same definitions: each month's top song (``top_tracks[0]`` of that month), the period
before (``total_ms`` and ``plays``), and the years that have listening. The listening
personality is read from the member's own measured habits, each against a stated mark
(``TRAITS``): the habit that passes its mark by the most names it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.coop.members import get_member
from tunetrust.insights.stats import Insights, Period, compute
from tunetrust.store.home import Home

# the units a figure's text is written in (its value is always the insights' own unit)
UNITS = (
    "hours",  # milliseconds, written in hours
    "days",  # milliseconds, written in whole days
    "percent",  # a share from 0 to 1, written as a whole percentage
    "change",  # a ratio minus one, written as a whole percentage (more or less)
    "count",  # a whole number, with a word after it ("301 days", "87 plays")
    "name",  # a name or label, written as it is
    "date",  # an ISO date, written as 2 March 2024
    "month",  # YYYY-MM, written as its month's name (and year, across years)
    "year",  # a year
    "clock",  # an hour of the day, written as 22:00 (a constant of a rule)
)


@dataclass(frozen=True)
class Source:
    """A path into ``tunetrust insights --json`` for ``--from start --to end``.

    Paths are dotted (``top_artists.0.ms``); ``*`` sums every item at that level
    (``clock_ms.*.22`` is 22:00–23:00 on every weekday).
    """

    start: str | None
    end: str | None
    path: str


@dataclass(frozen=True)
class Figure:
    """One number (or name) of a sentence: its value, its words, where it comes from.

    ``value`` is the sum of ``of`` divided by the sum of ``per`` (when given); a
    ``change`` is that ratio minus one. A figure with no source is a constant of a rule
    (a personality's mark, an hour of the clock).
    """

    key: str
    value: int | float | str
    text: str
    unit: str
    of: list[Source] = field(default_factory=list)
    per: list[Source] = field(default_factory=list)


@dataclass(frozen=True)
class Part:
    """A piece of a sentence: words, or a figure's text (``figure`` names its key)."""

    text: str
    figure: str | None = None


@dataclass(frozen=True)
class Line:
    """A sentence, whole (``text``) and in parts (figures marked)."""

    text: str
    parts: list[Part]


@dataclass(frozen=True)
class Card:
    """One card of the story: a title and a few sentences, with every figure they show."""

    key: str
    title: str
    lines: list[Line]
    figures: list[Figure]


@dataclass(frozen=True)
class Trait:
    """A listening habit measured against its mark; ``holds`` when it reaches the mark."""

    key: str
    label: str
    measured: Figure
    mark: Figure
    holds: bool
    line: Line  # how it reads: "12 % of your listening time fell between 22:00 and 04:00"
    figures: list[Figure]  # every figure the line shows (the measure, hours of the clock)


@dataclass(frozen=True)
class Story:
    """The story of a period; ``to_dict()`` is ``tunetrust insights --story --json``.

    ``empty`` stories have one card that says why (no listens yet: import first; none
    in this period: the years that have some). No member name or id is in a story.
    """

    period: str
    start: str | None
    end: str | None
    tz: str
    min_seconds: int
    empty: bool
    personality: str | None
    cards: list[Card]
    traits: list[Trait]

    def heading(self) -> str:
        """The story's title, in the member's words: "My 2024 in music"."""
        if self.start is None and self.end is None:
            return "My music, all time"
        if self.period.isdigit():
            return f"My {self.period} in music"
        return f"My music, {self.period}"

    def figure(self, key: str) -> Figure | None:
        """The figure named ``key`` on any card."""
        return next((f for c in self.cards for f in c.figures if f.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


# --- how figures are written --------------------------------------------------------


def _plural(n: int | float, one: str, many: str) -> str:
    return one if n == 1 else many


def _hours(ms: int) -> str:
    h = ms / 3_600_000
    if h >= 10:
        return f"{h:,.0f} hours"
    return f"{h:.1f} {_plural(round(h, 1), 'hour', 'hours')}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {_plural(n, one, many)}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _date(iso: str) -> str:
    d = date.fromisoformat(iso[:10])
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def _month(ym: str, with_year: bool) -> str:
    year, month = ym.split("-")
    name = calendar.month_name[int(month)]
    return f"{name} {year}" if with_year else name


# --- reading figures from an insights dictionary ---------------------------------------


def _at(data: Any, path: str) -> Any:
    """The value at ``path`` (``*`` sums a list's items at that level)."""
    head, _, rest = path.partition(".")
    if head == "*":
        return sum(_at(item, rest) if rest else item for item in data)
    item = data[int(head)] if isinstance(data, list) else data[head]
    return _at(item, rest) if rest else item


class _Figures:
    """Figures of one period's insights, each value read from the paths it names."""

    def __init__(self, data: dict[str, Any], period: Period) -> None:
        self.data = data
        self.start, self.end = _iso(period.start), _iso(period.end)

    def src(self, path: str) -> Source:
        return Source(self.start, self.end, path)

    def fig(
        self,
        key: str,
        unit: str,
        of: list[str],
        per: list[str] | None = None,
        text: Callable[[Any], str] | None = None,
    ) -> Figure:
        """A figure of this period: its value computed from the paths it names."""
        values = [_at(self.data, p) for p in of]
        value: Any = values[0] if len(values) == 1 else sum(values)
        if per:
            value = value / sum(_at(self.data, p) for p in per)
        shown = text(value) if text else _write(unit, value)
        return Figure(
            key, value, shown, unit, [self.src(p) for p in of], [self.src(p) for p in per or []]
        )


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _write(unit: str, value: Any) -> str:
    if unit == "hours":
        return _hours(int(value))
    if unit == "percent":
        return _pct(float(value))
    if unit == "date":
        return _date(str(value))
    if unit == "clock":
        return f"{int(value):02d}:00"
    return str(value)


def _line(*pieces: str | Figure) -> Line:
    """A sentence from words and figures, in order."""
    parts = [Part(p.text, p.key) if isinstance(p, Figure) else Part(p) for p in pieces if p != ""]
    return Line("".join(p.text for p in parts), parts)


def _card(key: str, title: str, lines: list[Line], figures: list[Figure]) -> Card:
    used = {p.figure for line in lines for p in line.parts if p.figure}
    return Card(key, title, lines, [f for f in figures if f.key in used])


# --- the listening personality ----------------------------------------------------------

NIGHT = (22, 23, 0, 1, 2, 3)
MORNING = (5, 6, 7, 8)


@dataclass(frozen=True)
class _Rule:
    key: str
    label: str
    mark: float  # the share from which the habit holds


TRAITS = (
    # each mark is well above what listening spread evenly over the clock would give
    _Rule("night_owl", "Night owl", 0.30),  # listening time from 22:00 to 04:00 (even: 25 %)
    _Rule("early_bird", "Early bird", 0.25),  # from 05:00 to 09:00 (even: 17 %)
    _Rule("weekend", "Weekend listener", 0.40),  # Saturdays and Sundays (2/7 is 29 %)
    _Rule("explorer", "Explorer", 0.30),  # artists first heard in the period, of all played
    _Rule("devoted", "Devoted fan", 0.10),  # the top artist's share of listening time
    _Rule("shuffler", "Shuffler", 0.60),  # listens on shuffle, where known
    _Rule("skipper", "Restless skipper", 0.30),  # listens skipped, where known
)


def _traits(f: _Figures, discovery: bool) -> list[Trait]:
    d = f.data
    traits: list[Trait] = []
    for rule in TRAITS:
        k = f"trait.{rule.key}"
        mark = Figure(f"{k}.mark", rule.mark, _pct(rule.mark), "percent")
        extra: list[Figure] = []
        if rule.key in ("night_owl", "early_bird"):
            if not d["total_ms"]:
                continue
            hours = NIGHT if rule.key == "night_owl" else MORNING
            m = f.fig(k, "percent", [f"clock_ms.*.{h}" for h in hours], ["total_ms"])
            until = (hours[-1] + 1) % 24
            extra = [
                Figure(f"{k}.from", hours[0], _write("clock", hours[0]), "clock"),
                Figure(f"{k}.to", until, _write("clock", until), "clock"),
            ]
            line = _line(m, " of your listening time fell between ", extra[0], " and ", extra[1])
        elif rule.key == "weekend":
            if not d["total_ms"]:
                continue
            m = f.fig(k, "percent", ["clock_ms.5.*", "clock_ms.6.*"], ["total_ms"])
            line = _line(m, " of your listening time fell on Saturdays and Sundays")
        elif rule.key == "explorer":
            if not discovery or not d["distinct_artists"]:
                continue
            m = f.fig(k, "percent", ["new_artists_per_month.*.new_artists"], ["distinct_artists"])
            line = _line(m, " of the artists you listened to were new to you")
        elif rule.key == "devoted":
            if not d["top_artists"] or not d["total_ms"]:
                continue
            m = f.fig(k, "percent", ["top_artists.0.ms"], ["total_ms"])
            line = _line("your top artist had ", m, " of your listening time")
        else:
            column = "shuffle_share" if rule.key == "shuffler" else "skip_rate"
            if d[column] is None:
                continue
            m = f.fig(k, "percent", [column])
            what = "on shuffle" if rule.key == "shuffler" else "skipped"
            line = _line(m, f" of your listens were {what}")
        holds = float(m.value) >= rule.mark
        traits.append(Trait(rule.key, rule.label, m, mark, holds, line, [m, *extra]))
    return traits


def _personality(traits: list[Trait]) -> Trait | None:
    """The habit that passes its mark by the most (ties: the order of ``TRAITS``)."""
    held = [t for t in traits if t.holds]
    return max(held, key=lambda t: float(t.measured.value) / float(t.mark.value), default=None)


# --- what stats.py does not compute --------------------------------------------------


@dataclass(frozen=True)
class _Top:
    bucket: str  # YYYY-MM or YYYY
    track: str
    by: str | None
    ms: int
    plays: int


def _bounds(period: Period) -> tuple[datetime | None, datetime | None]:
    lo = datetime.combine(period.start, datetime.min.time()) if period.start else None
    hi = (
        datetime.combine(period.end, datetime.min.time()) + timedelta(days=1)
        if period.end
        else None
    )
    return lo, hi


class _Extras:
    """One DuckDB connection over the member's listens, in local time (as stats.py)."""

    def __init__(self, listens: pa.Table, tz: str, min_seconds: int) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.register("events", listens)
        self.con.execute(
            """
            CREATE TEMP TABLE h AS
            SELECT timezone($tz, ts) AS local, ms_played, ms_played >= $min_ms AS is_play,
                   track_name, artist_name
            FROM events""",
            {"tz": tz, "min_ms": min_seconds * 1000},
        )

    def close(self) -> None:
        self.con.close()

    def _inside(self, period: Period) -> tuple[str, dict[str, Any]]:
        lo, hi = _bounds(period)
        return "($lo IS NULL OR local >= $lo) AND ($hi IS NULL OR local < $hi)", {
            "lo": lo,
            "hi": hi,
        }

    def tops(self, period: Period, by_year: bool) -> list[_Top]:
        """Each month's (or year's) ``top_tracks[0]``: most time, ties by name, artist."""
        where, params = self._inside(period)
        fmt = "%Y" if by_year else "%Y-%m"
        rows = self.con.execute(
            f"""
            SELECT bucket, track_name, artist_name, ms, plays FROM (
                SELECT strftime(local, '{fmt}') AS bucket, track_name, artist_name,
                       SUM(ms_played) AS ms, COUNT(*) FILTER (is_play) AS plays,
                       row_number() OVER (
                           PARTITION BY strftime(local, '{fmt}')
                           ORDER BY SUM(ms_played) DESC, track_name, artist_name) AS rank
                FROM h WHERE track_name IS NOT NULL AND {where}
                GROUP BY 1, 2, 3)
            WHERE rank = 1 ORDER BY bucket""",
            params,
        ).fetchall()
        return [_Top(b, t, a, int(ms), int(n)) for b, t, a, ms, n in rows]

    def totals(self, period: Period) -> tuple[int, int]:
        """``total_ms`` and ``plays`` of a period."""
        where, params = self._inside(period)
        row = self.con.execute(
            f"SELECT COALESCE(SUM(ms_played), 0), COUNT(*) FILTER (is_play) FROM h WHERE {where}",
            params,
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def years(self) -> list[int]:
        """The years (local) with any listen: all time's ``per_year[*].year``."""
        return [
            int(y)
            for (y,) in self.con.execute("SELECT DISTINCT YEAR(local) FROM h ORDER BY 1").fetchall()
        ]


# --- periods -------------------------------------------------------------------------


def latest_year(listens: pa.Table, tz: str = "UTC") -> Period:
    """The calendar year (in ``tz``) of the member's latest listen: a story's default."""
    last = pc.max(listens["ts"]).as_py() if listens.num_rows else None
    year = last.astimezone(ZoneInfo(tz)).year if last else date.today().year
    return Period(date(year, 1, 1), date(year, 12, 31))


def _whole_year(period: Period) -> bool:
    return bool(
        period.start
        and period.end
        and (period.start.month, period.start.day) == (1, 1)
        and period.end == date(period.start.year, 12, 31)
    )


def previous(period: Period) -> Period | None:
    """The period just before a closed one: the year before a calendar year, else as many
    days before it; ``None`` for a period open at either end."""
    if period.start is None or period.end is None:
        return None
    if _whole_year(period):
        y = period.start.year - 1
        return Period(date(y, 1, 1), date(y, 12, 31))
    days = (period.end - period.start).days + 1
    return Period(period.start - timedelta(days=days), period.start - timedelta(days=1))


def _bucket_period(bucket: str, period: Period) -> Period:
    """A month (YYYY-MM) or year (YYYY) within ``period``, as inclusive dates."""
    if len(bucket) == 4:
        first, last = date(int(bucket), 1, 1), date(int(bucket), 12, 31)
    else:
        y, m = (int(x) for x in bucket.split("-"))
        first, last = date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])
    start = max(first, period.start) if period.start else first
    end = min(last, period.end) if period.end else last
    return Period(start, end)


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month + 1


# --- the story -----------------------------------------------------------------------


def story(
    listens: pa.Table,
    period: Period | None = None,
    *,
    tz: str = "UTC",
    min_seconds: int = 30,
) -> Story:
    """The story of ``period`` (default: the year of the latest listen) in cards."""
    chosen = period or latest_year(listens, tz)
    i = compute(listens, chosen, min_seconds=min_seconds, tz=tz)
    extras = _Extras(listens, i.tz, min_seconds)
    try:
        return _tell(listens, chosen, i, extras)
    finally:
        extras.close()


def member_story(home: Home, name: str, period: Period | None = None, **options: Any) -> Story:
    """A member's story, read from their events partition (never from the vault)."""
    member = get_member(home, name)
    return story(home.events.read(member.pseudonym, member.events_file), period, **options)


def _tell(listens: pa.Table, period: Period, i: Insights, extras: _Extras) -> Story:
    f = _Figures(i.to_dict(), period)

    def told(cards: list[Card | None], traits: list[Trait], label: str | None = None) -> Story:
        kept = [c for c in cards if c is not None]
        empty = not traits and len(kept) == 1 and kept[0].key in ("import-first", "nothing")
        return Story(
            period=i.period,
            start=f.start,
            end=f.end,
            tz=i.tz,
            min_seconds=i.min_seconds,
            empty=empty,
            personality=label,
            cards=kept,
            traits=traits,
        )

    if listens.num_rows == 0:
        line = _line(
            "We have none of your plays yet. Import the export you requested from your "
            "streaming service, and your story is told from it."
        )
        return told([Card("import-first", "Import your export first", [line], [])], [])
    if i.listens == 0:
        return told([_nothing(f, i, extras)], [])
    discovery = period.start is not None  # from the first listen on, every artist is new
    traits = _traits(f, discovery)
    chosen = _personality(traits)
    return told(
        [
            _time(f, i, period),
            _favourites(f, i),
            _tops(f, i, period, extras),
            _compare(f, i, period, extras),
            _discovery(f, i, discovery),
            _character(traits, chosen),
        ],
        traits,
        chosen.label if chosen else None,
    )


def _nothing(f: _Figures, i: Insights, extras: _Extras) -> Card:
    label = f.fig("period", "name", ["period"])
    lines = [_line("You have no listening in ", label, ".")]
    years = extras.years()
    if years:
        every = [
            Figure(f"years.{n}", y, str(y), "year", [Source(None, None, f"per_year.{n}.year")])
            for n, y in enumerate(years)
        ]
        pieces: list[str | Figure] = ["You have listening in "]
        for n, y in enumerate(every):
            if n:
                pieces.append(" and " if n == len(every) - 1 else ", ")
            pieces.append(y)
        lines.append(_line(*pieces, ": choose one of them."))
        return _card("nothing", "Nothing in this period", lines, [label, *every])
    return _card("nothing", "Nothing in this period", lines, [label])


def _over(f: _Figures, period: Period) -> list[str | Figure]:
    """How a sentence names the period: "In 2024", "Over 2024-03-01 – 2024-05-31"."""
    if period.start is None and period.end is None:
        return ["Over all your listening,"]
    return ["In " if _whole_year(period) else "Over ", f.fig("period", "name", ["period"])]


def _time(f: _Figures, i: Insights, period: Period) -> Card:
    hours = f.fig("hours", "hours", ["total_ms"])
    days = f.fig(
        "days", "days", ["total_ms"], text=lambda ms: _count(round(ms / 86_400_000), "day", "days")
    )
    plays = f.fig("plays", "count", ["plays"], text=lambda n: _count(n, "play", "plays"))
    active = f.fig("active_days", "count", ["active_days"], text=lambda n: _count(n, "day", "days"))
    first = [*_over(f, period), " you spent ", hours, " with music"]
    if i.total_ms >= 86_400_000:
        first += [": about ", days, " around the clock"]
    lines = [_line(*first, "."), _line("That was ", plays, " on ", active, " with music.")]
    figures = [x for x in first if isinstance(x, Figure)] + [days, plays, active]
    if i.longest_streak_days >= 2 and i.longest_streak_start:
        streak = f.fig("streak", "count", ["longest_streak_days"], text=lambda n: f"{n:,} days")
        since = f.fig("streak_start", "date", ["longest_streak_start"])
        lines.append(_line("Your longest run was ", streak, " in a row, from ", since, "."))
        figures += [streak, since]
    if i.busiest_day:
        day = f.fig("busiest_day", "date", ["busiest_day"])
        most = f.fig("busiest_day_hours", "hours", ["busiest_day_ms"])
        lines.append(_line("Your busiest day was ", day, ", with ", most, "."))
        figures += [day, most]
    return _card("time", "Time with music", lines, figures)


def _favourites(f: _Figures, i: Insights) -> Card | None:
    lines, figures = [], []
    if i.top_artists and i.total_ms:
        artist = f.fig("top_artist", "name", ["top_artists.0.name"])
        hours = f.fig("top_artist_hours", "hours", ["top_artists.0.ms"])
        share = f.fig("top_artist_share", "percent", ["top_artists.0.ms"], ["total_ms"])
        lines.append(
            _line(
                "Your top artist was ", artist, ": ", hours, ", ", share, " of your listening time."
            )
        )
        figures += [artist, hours, share]
    if i.top_tracks:
        track = f.fig("top_track", "name", ["top_tracks.0.name"])
        plays = f.fig(
            "top_track_plays",
            "count",
            ["top_tracks.0.plays"],
            text=lambda n: _count(n, "play", "plays"),
        )
        pieces: list[str | Figure] = ["Your top song was “", track, "”"]
        if i.top_tracks[0].by:
            by = f.fig("top_track_artist", "name", ["top_tracks.0.by"])
            pieces += [" by ", by]
            figures.append(by)
        lines.append(_line(*pieces, ", with ", plays, "."))
        figures += [track, plays]
    return _card("favourites", "Your favourites", lines, figures) if lines else None


def _tops(f: _Figures, i: Insights, period: Period, extras: _Extras) -> Card | None:
    """The top song of each month (each year, over more than 13 months)."""
    first = period.start or (date.fromisoformat(i.first_listen[:10]) if i.first_listen else None)
    last = period.end or (date.fromisoformat(i.last_listen[:10]) if i.last_listen else None)
    if first is None or last is None:
        return None
    by_year = _months_between(first, last) > 13
    one_year = first.year == last.year
    index = {
        (str(row["year"]) if by_year else row["month"]): n
        for n, row in enumerate(i.per_year if by_year else i.per_month)
    }
    lines, figures = [], []
    for top in extras.tops(period, by_year):
        n = index[top.bucket]
        if by_year:
            when = f.fig(f"tops.{top.bucket}", "year", [f"per_year.{n}.year"])
        else:
            when = f.fig(
                f"tops.{top.bucket}",
                "month",
                [f"per_month.{n}.month"],
                text=lambda m: _month(m, not one_year),
            )
        within = _bucket_period(top.bucket, period)
        s, e = _iso(within.start), _iso(within.end)
        track = Figure(
            f"tops.{top.bucket}.track",
            top.track,
            top.track,
            "name",
            [Source(s, e, "top_tracks.0.name")],
        )
        plays = Figure(
            f"tops.{top.bucket}.plays",
            top.plays,
            _count(top.plays, "play", "plays"),
            "count",
            [Source(s, e, "top_tracks.0.plays")],
        )
        pieces: list[str | Figure] = [when, ": “", track, "”"]
        if top.by is not None:
            by = Figure(
                f"tops.{top.bucket}.by", top.by, top.by, "name", [Source(s, e, "top_tracks.0.by")]
            )
            pieces += [" by ", by]
            figures.append(by)
        lines.append(_line(*pieces, ", ", plays, "."))
        figures += [when, track, plays]
    if not lines:
        return None
    title = "Your song of each year" if by_year else "Your song of each month"
    return _card("tops", title, lines, figures)


def _compare(f: _Figures, i: Insights, period: Period, extras: _Extras) -> Card | None:
    before = previous(period)
    if before is None:
        return None
    last_ms, last_plays = extras.totals(before)
    if last_ms == 0 or i.total_ms == 0:
        return None
    b = _Figures({}, before)
    then = Figure("before.period", before.label(), before.label(), "name", [b.src("period")])
    now = f.fig("compare.period", "name", ["period"])
    hours = f.fig("compare.hours", "hours", ["total_ms"])
    last_hours = Figure("before.hours", last_ms, _hours(last_ms), "hours", [b.src("total_ms")])
    ratio = i.total_ms / last_ms - 1
    change = Figure(
        "change", ratio, _pct(abs(ratio)), "change", [f.src("total_ms")], [b.src("total_ms")]
    )
    if round(abs(ratio) * 100) == 0:
        middle: list[str | Figure] = [", about as much as in "]
    else:
        middle = [", ", change, " more than in " if ratio > 0 else " less than in "]
    lines = [_line("In ", now, " you listened for ", hours, *middle, then, " (", last_hours, ").")]
    plays = f.fig("compare.plays", "count", ["plays"], text=lambda n: _count(n, "play", "plays"))
    last_plays_fig = Figure(
        "before.plays", last_plays, _count(last_plays, "play", "plays"), "count", [b.src("plays")]
    )
    lines.append(_line("That is ", plays, " against ", last_plays_fig, "."))
    title = "Against the year before" if _whole_year(period) else "Against the period before"
    return _card(
        "compare", title, lines, [now, then, hours, last_hours, change, plays, last_plays_fig]
    )


def _discovery(f: _Figures, i: Insights, discovery: bool) -> Card | None:
    if not discovery or not i.distinct_artists:
        return None
    new = f.fig(
        "new_artists",
        "count",
        ["new_artists_per_month.*.new_artists"],
        text=lambda n: _count(n, "artist", "artists"),
    )
    share = f.fig(
        "new_share", "percent", ["new_artists_per_month.*.new_artists"], ["distinct_artists"]
    )
    every = f.fig(
        "artists", "count", ["distinct_artists"], text=lambda n: _count(n, "artist", "artists")
    )
    if not new.value:
        line = _line(
            "You found no artist new to you: all ", every, " you listened to you knew before."
        )
        return _card("discovery", "New to you", [line], [every])
    lines = [
        _line("You found ", new, " new to you: ", share, " of the ", every, " you listened to.")
    ]
    figures = [new, share, every]
    if i.new_artist_time_share is not None:
        time = f.fig("new_time_share", "percent", ["new_artist_time_share"])
        lines.append(_line("They had ", time, " of your time with artists."))
        figures.append(time)
    months = i.new_artists_per_month
    best = max(range(len(months)), key=lambda n: (months[n]["new_artists"], -n))
    if len(months) > 1:
        one_year = months[0]["month"][:4] == months[-1]["month"][:4]
        when = f.fig(
            "discovery_month",
            "month",
            [f"new_artists_per_month.{best}.month"],
            text=lambda m: _month(m, not one_year),
        )
        most = f.fig(
            "discovery_month_new",
            "count",
            [f"new_artists_per_month.{best}.new_artists"],
            text=lambda n: _count(n, "new artist", "new artists"),
        )
        lines.append(_line(when, " brought the most: ", most, "."))
        figures += [when, most]
    return _card("discovery", "New to you", lines, figures)


def _pieces(line: Line, figures: list[Figure]) -> list[str | Figure]:
    """A line's parts again as words and figures (to say it inside another sentence)."""
    by_key = {f.key: f for f in figures}
    return [by_key[p.figure] if p.figure else p.text for p in line.parts]


def _character(traits: list[Trait], chosen: Trait | None) -> Card | None:
    if not traits:
        return None
    if chosen is None:
        lines = [_line("Steady listener: none of the habits below reached its mark.")]
    else:
        pieces = _pieces(chosen.line, chosen.figures)
        lines = [_line(f"{chosen.label}: ", *pieces, " (the mark is ", chosen.mark, ").")]
    for t in traits:
        if t is not chosen:
            pieces = _pieces(t.line, t.figures)
            lines.append(_line(f"{t.label} from ", t.mark, ": ", *pieces, "."))
    figures = [x for t in traits for x in (*t.figures, t.mark)]
    return _card("personality", "Your listening personality", lines, figures)
