"""Me and my cooperative: a member's listening beside the cooperative's, computed privately.

The cooperative's side comes only from its ``member-insights`` releases (built by
``releases/member_insights.py`` with OpenDP noise; the service hands them here as
:class:`Released`), never from other members' listens. The member's side comes from
their own listens, counted exactly as the releases count them: music, plays of at least
30 seconds, the release's month in UTC. So the member is placed in the hours bucket the
release placed them in, if they were included.

Three figures: the share of members in a higher hours bucket (and in the member's own),
the rank of the member's top artist among the artists the release names (by noisy
distinct listeners; a name is released only when enough members listened to it), and
the cooperative's top tracks of the month. Nothing here names another member.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from tunetrust.coop.consent import in_force
from tunetrust.coop.members import get_member
from tunetrust.store.home import Home

PURPOSE = "member-insights"
MIN_SECONDS = 30  # as the releases count a play (releases/member_insights.py)
TOP_TRACKS = 10


@dataclass(frozen=True)
class Released:
    """One published part as the service hands it: release id, period, labelled rows."""

    part: str  # hours | artists | tracks
    release: str
    month: str
    period_from: str
    period_to: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Bucket:
    """One hours bucket of the release: from (inclusive) to (exclusive; None: no end)."""

    from_hours: int
    to_hours: int | None
    members: int  # noisy


@dataclass(frozen=True)
class Hours:
    """The member's hours in the month and where they stand among the members."""

    release: str
    my_hours: float
    my_bucket: Bucket
    share_more: float | None  # noisy members in higher buckets ÷ noisy members in all
    share_same: float | None
    members_counted: int  # noisy
    buckets: list[Bucket]


@dataclass(frozen=True)
class Artist:
    """The member's top artist of the month and its rank among the released artists."""

    release: str
    name: str | None
    rank: int | None  # 1 + released artists with more (noisy) listeners; None: not named
    listeners: int | None  # noisy
    artists_released: int


@dataclass(frozen=True)
class Track:
    """One of the cooperative's top tracks ("artist — track"), by noisy listeners."""

    rank: int
    track: str
    listeners: int


@dataclass(frozen=True)
class Comparison:
    """What ``insights --cooperative`` shows: a state, sentences, and the figures."""

    state: str  # ready | needs-consent | not-published
    message: str
    month: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    hours: Hours | None = None
    artist: Artist | None = None
    top_tracks: list[Track] = field(default_factory=list)
    tracks_release: str | None = None
    sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)


NEEDS_CONSENT = (
    "Comparing your listening with the cooperative's needs your consent to "
    "member-insights: the cooperative then counts you, privately, in the figures it "
    "publishes to its members."
)
NOT_PUBLISHED = (
    "The cooperative has not published its member insights yet: a steward builds them each month."
)


@dataclass(frozen=True)
class Own:
    """The member's own side, from their listens: hours and top artist in the period."""

    ms: int
    top_artist: str | None


def own_figures(listens: pa.Table, period_from: date, period_to: date) -> Own:
    """Hours and top artist (by time) of music plays of ≥ 30 s in the period, UTC."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("events", listens)
        where = (
            "kind = 'music' AND ms_played >= $min_ms AND ts >= $lo AND ts < $hi "
            "AND ms_played IS NOT NULL"
        )
        params = {
            "min_ms": MIN_SECONDS * 1000,
            "lo": datetime.combine(period_from, time(), tzinfo=UTC),
            "hi": datetime.combine(period_to + timedelta(days=1), time(), tzinfo=UTC),
        }
        (ms,) = con.execute(
            f"SELECT COALESCE(SUM(ms_played), 0) FROM events WHERE {where}", params
        ).fetchone() or (0,)
        top = con.execute(
            f"SELECT artist_name FROM events WHERE {where} AND artist_name IS NOT NULL "
            "GROUP BY artist_name ORDER BY SUM(ms_played) DESC, artist_name LIMIT 1",
            params,
        ).fetchone()
    finally:
        con.close()
    return Own(int(ms), str(top[0]) if top else None)


def _hours(part: Released, own: Own) -> Hours:
    counts = sorted((int(r["member_hours"]), max(0, int(r["listeners"]))) for r in part.rows)
    buckets = [
        Bucket(b, counts[i + 1][0] if i + 1 < len(counts) else None, n)
        for i, (b, n) in enumerate(counts)
    ]
    mine = max(
        (b for b in buckets if own.ms >= b.from_hours * 3_600_000), key=lambda b: b.from_hours
    )
    total = sum(b.members for b in buckets)
    more = sum(b.members for b in buckets if b.from_hours > mine.from_hours)
    return Hours(
        release=part.release,
        my_hours=round(own.ms / 3_600_000, 1),
        my_bucket=mine,
        share_more=more / total if total else None,
        share_same=mine.members / total if total else None,
        members_counted=total,
        buckets=buckets,
    )


def _artist(part: Released, own: Own) -> Artist:
    listeners = {str(r["artist"]): max(0, int(r["listeners"])) for r in part.rows}
    mine = listeners.get(own.top_artist) if own.top_artist is not None else None
    rank = None if mine is None else 1 + sum(1 for n in listeners.values() if n > mine)
    return Artist(part.release, own.top_artist, rank, mine, len(listeners))


def _tracks(part: Released) -> list[Track]:
    ranked = sorted(
        ((str(r["track"]), max(0, int(r["listeners"]))) for r in part.rows),
        key=lambda t: (-t[1], t[0]),
    )
    return [Track(i + 1, name, n) for i, (name, n) in enumerate(ranked[:TOP_TRACKS])]


def _share(x: float) -> str:
    return f"{round(100 * x)} %"


def _span(b: Bucket) -> str:
    return (
        f"{b.from_hours} hours or more"
        if b.to_hours is None
        else (f"{b.from_hours} to {b.to_hours} hours")
    )


def _sentences(c: Comparison) -> list[str]:
    said = []
    if c.hours is not None:
        h = c.hours
        said.append(f"In {c.month} you listened to {h.my_hours:g} hours of music.")
        if h.share_more is not None and h.share_same is not None:
            said.append(
                f"About {_share(h.share_more)} of the cooperative's members listened more "
                f"(more than {h.my_bucket.to_hours} hours); about {_share(h.share_same)} "
                f"listened {_span(h.my_bucket)}, as you did."
                if h.my_bucket.to_hours is not None
                else f"About {_share(h.share_same)} of the cooperative's members listened "
                f"{_span(h.my_bucket)}, as you did; no bucket is higher."
            )
    if c.artist is not None:
        a = c.artist
        if a.name is None:
            said.append("You had no top artist this month.")
        elif a.rank is None:
            said.append(
                f"Your top artist, {a.name}, is not among the {a.artists_released} artists "
                "the cooperative's release names (a name appears only once enough members "
                "listened to it)."
            )
        else:
            said.append(
                f"Your top artist, {a.name}, ranks {a.rank} of {a.artists_released} among "
                "the cooperative's artists by listeners."
            )
    if c.tracks_release is not None:
        if c.top_tracks:
            said.append(f"The cooperative's top track this month: {c.top_tracks[0].track}.")
        else:
            said.append("No track had enough listeners to be named this month.")
    said.append(
        "The cooperative's figures are differentially private releases with noise added; "
        "no other member's listens were read to make this page."
    )
    return said


def compare(home: Home, name: str, published: dict[str, Released]) -> Comparison:
    """The member's comparison with the newest published member insights (see module)."""
    member = get_member(home, name)
    with home.sessions() as s:
        consented = in_force(s, member.id).get(PURPOSE, False)
    if not consented:
        return Comparison(state="needs-consent", message=NEEDS_CONSENT)
    if not published:
        return Comparison(state="not-published", message=NOT_PUBLISHED)
    first = next(iter(published.values()))
    period_from, period_to = (
        date.fromisoformat(first.period_from),
        date.fromisoformat(first.period_to),
    )
    listens = home.events.read(member.pseudonym, member.events_file)  # empty: none yet
    own = own_figures(listens, period_from, period_to)
    hours = published.get("hours")
    artists = published.get("artists")
    tracks = published.get("tracks")
    c = Comparison(
        state="ready",
        message=f"Your listening in {first.month} beside the cooperative's.",
        month=first.month,
        period_from=first.period_from,
        period_to=first.period_to,
        hours=_hours(hours, own) if hours else None,
        artist=_artist(artists, own) if artists else None,
        top_tracks=_tracks(tracks) if tracks else [],
        tracks_release=tracks.release if tracks else None,
    )
    return Comparison(**{**c.__dict__, "sentences": _sentences(c)})
