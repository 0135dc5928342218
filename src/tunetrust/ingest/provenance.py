"""Where an export's listening already is: copies, split histories, corroboration.

Three judgements of one export against the other members' fingerprints
(ingest/fingerprint.py), looked up in the index, never by reading every member:

- ``copied_data``: the share of the export's listening *sequences* found in another
  member's history. Sequences do not change when times are shifted, lengths edited or
  names re-spaced, so a doctored copy is rejected. When the copied plays are also
  *unaltered* (same second, same millisecond), the export may be the owner's own
  download of an account someone else contributed first: the import is held as a
  dispute for the steward (coop/disputes.py), not rejected.
- ``split_history``: another member's listening matches this export's tracks closely
  and the two never play at the same time although, were they two people, they would
  (or one ends where the other begins): one history split between two memberships.
  Flagged, and the export earns only what it adds to the two together.
- corroboration (a quality part, ingest/quality.py): the share of a history's tracks
  that at least two other members also play, against the same share of the
  cooperative's typical member. Music nobody else has ever played is what a fabrication
  is made of; it is judged once the cooperative has enough members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from tunetrust.ingest.fingerprint import (
    HOLDERS_COUNTED,
    MIN_SAMPLE,
    PLAY,
    SEQUENCE,
    TRACK,
    Matches,
    Prints,
    held_of,
    holders,
    lookup,
)
from tunetrust.ingest.validate import FAIL, HOLD, PASS, WARN, Check, grade
from tunetrust.settings import Checks
from tunetrust.store.home import Home
from tunetrust.store.models import CoopFigure, Fingerprint, Member

DAY_MS = 86_400_000
INTERLEAVED = 10  # simultaneous plays two people would have, none seen: a split
TYPICAL_SAMPLE = 25  # members whose corroborated share makes the typical one
UNALTERED = 0.9  # share of the plays in the holder's span that must be theirs, unaltered
TYPICAL = "typical_corroborated_share"  # its name in coop_figures
CORROBORATING_MEMBERS = HOLDERS_COUNTED  # other members who must play a track to corroborate


@dataclass(frozen=True)
class Provenance:
    """What the index says about one export."""

    copied: Check
    split: Check
    copied_share: float  # of the export's sequences, found in other members' histories
    typical: float | None  # the typical member's corroborated share (None: not judged)
    dispute_with: int | None  # the member whose unaltered plays or account these are
    split_with: int | None  # the member whose listens this export continues or splits
    known_tracks: dict[int, int]  # track → other members holding it, as looked up


def assess(
    home: Home,
    session: Session,
    member: Member,
    listens: pa.Table,
    prints: Prints,
    checks: Checks,
    *,
    now: datetime,
) -> Provenance:
    """Judge ``listens`` (the export's de-identified rows) by its fingerprints ``prints``
    (in a transaction: the typical member's share may be computed again and kept)."""
    known: dict[int, int] = {}
    matches = lookup(
        session, prints, member_id=member.id, kinds=(SEQUENCE, PLAY, TRACK), known=known
    )
    copied, share, holder = _copied(matches, prints, checks)
    split_with, split = _split(home, session, member, listens, prints, matches, checks)
    return Provenance(
        copied=copied,
        split=split,
        copied_share=share,
        typical=typical_corroboration(session, except_id=member.id, checks=checks, now=now),
        dispute_with=holder,
        split_with=split_with,
        known_tracks=known,
    )


def _copied(matches: Matches, prints: Prints, checks: Checks) -> tuple[Check, float, int | None]:
    name = "copied_data"
    sampled = matches.sampled[SEQUENCE]
    if sampled < MIN_SAMPLE:
        why = f"too few plays to compare ({sampled} of {MIN_SAMPLE} sampled sequences needed)"
        return Check(name, PASS, None, None, f"Not judged: {why}."), 0.0, None
    # a sequence many members share is common listening (an album in order), not a copy
    distinct = {h for h, n in matches.holders[SEQUENCE].items() if n <= checks.copy_common_members}
    share = len(distinct) / sampled
    exact = matches.share(PLAY)
    what = (
        f"Listening sequences already contributed by other members (plays unaltered: "
        f"{exact * 100:.1f} %)"
    )
    check = grade(name, share, checks.copied_warn, checks.copied_fail, "%", what)
    # most of what is copied must be copied unaltered, and make up the span it covers
    unaltered = check.status == FAIL and exact >= UNALTERED * share
    holder = _owner_like(matches, prints) if unaltered else None
    if holder is not None:
        # the very same plays, to the second and the millisecond, and nothing else in
        # their span: perhaps the owner's own download of an account another member
        # contributed first (a newer download holds the same plays and more recent ones)
        check = Check(
            name,
            HOLD,
            check.value,
            check.threshold,
            f"{what}: {share * 100:.1f} %. The same plays, unaltered, are already another "
            "member's: held for the steward, who decides whose they are (if they are "
            "yours, a newer export of the same account shows it).",
        )
    elif check.status == FAIL:
        check = Check(
            name,
            FAIL,
            check.value,
            check.threshold,
            f"{what}: {share * 100:.1f} %. The same listening, with times or lengths "
            "changed or mixed with other listening, is already another member's.",
        )
    return check, share, holder


def _owner_like(matches: Matches, prints: Prints) -> int | None:
    """The member whose plays this export holds unaltered, with nothing else in the span
    they cover (as a newer download of the same account would), or None."""
    counts = matches.by_member[PLAY]
    if not counts:
        return None
    holder = max(counts, key=lambda m: counts[m])
    times = [prints.play_times[h] for h, held in matches.member_ids[PLAY].items() if holder in held]
    lo, hi = min(times), max(times)
    inside = sum(1 for t in prints.play_times.values() if lo <= t <= hi)
    return holder if inside and len(times) / inside >= UNALTERED else None


def _corroborated(
    session: Session, prints: Prints, member_id: int, known: dict[int, int]
) -> float | None:
    """The share of a history's sampled tracks that at least two other members play."""
    tracks = len(prints.hashes[TRACK])
    if not tracks:
        return None
    held = holders(session, TRACK, prints.hashes[TRACK], member_id=member_id, known=known)
    return sum(1 for n in held.values() if n >= CORROBORATING_MEMBERS) / tracks


def typical_corroboration(
    session: Session, *, except_id: int, checks: Checks, now: datetime
) -> float | None:
    """The median corroborated share of up to 25 members spread through the index (None
    while it holds fewer than ``checks.corroboration_members`` other members).

    The importing member ``except_id`` is neither picked nor counted as a holder, so a
    member's own imports do not move it and their increments add up. It is kept in
    ``coop_figures`` with the number of (other) members it was computed over, and
    computed again when that number moves by a hundredth or the figure is a day old: it
    moves only as members come and go, and computing it reads thousands of the index's
    keys (0.4 s at every import of a cooperative of 10,000). Call it in a transaction.
    """
    others = (  # members with fingerprints: from the members table, not a scan of the index
        Member.fingerprinted.is_not(None),
        Member.erased_at.is_(None),
        Member.id != except_id,
    )
    members = session.scalar(select(func.count()).select_from(Member).where(*others)) or 0
    if members < checks.corroboration_members:
        return None
    kept = session.get(CoopFigure, TYPICAL)
    if (
        kept is not None
        and abs(kept.basis - members) * 100 < members
        and now - _aware(kept.computed_at) < timedelta(days=1)
    ):
        return kept.value
    ids = list(session.scalars(select(Member.id).where(*others).order_by(Member.id)))
    picked = ids[:: max(1, len(ids) // TYPICAL_SAMPLE)][:TYPICAL_SAMPLE]
    value = _typical(session, picked, except_id)
    if kept is None:
        session.add(CoopFigure(name=TYPICAL, value=value, basis=len(ids), computed_at=now))
    else:
        kept.value, kept.basis, kept.computed_at = value, len(ids), now
    return value


def _aware(when: datetime) -> datetime:
    """A stored time in UTC (SQLite gives it back without its zone)."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _typical(session: Session, picked: list[int], except_id: int) -> float | None:
    """The median share of ``picked`` members' sampled tracks that two others (not
    ``except_id``) play."""
    other = aliased(Fingerprint)
    # a track corroborates when two others hold it: the third holder, the picked member
    # counted, is looked for by the key and no further (not every holder counted)
    third = (
        select(other.member_id)
        .where(other.kind == TRACK, other.hash == Fingerprint.hash, other.member_id != except_id)
        .order_by(other.member_id)
        .limit(1)
        .offset(CORROBORATING_MEMBERS)
        .scalar_subquery()
    )
    shares = [
        float(known or 0) / n
        for _, n, known in session.execute(
            select(
                Fingerprint.member_id,
                func.count(),
                func.sum(case((third.is_not(None), 1), else_=0)),
            )
            .where(Fingerprint.kind == TRACK, Fingerprint.member_id.in_(picked))
            .group_by(Fingerprint.member_id)
        )
        if n
    ]
    return float(np.median(shares)) if shares else None


def corroboration(
    session: Session,
    prints: Prints,
    *,
    member_id: int,
    typical: float | None,
    known: dict[int, int] | None = None,
) -> float | None:
    """Quality's corroboration part of a history: its corroborated share against the
    typical member's, at most 1 (None: not judged, a young cooperative). ``known``:
    holders of tracks looked up already in this import (ingest/fingerprint.py)."""
    if typical is None:
        return None
    share = _corroborated(session, prints, member_id, {} if known is None else known)
    if share is None:
        return None
    return 1.0 if typical <= 0 else min(1.0, share / typical)


def _intervals(t: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (epoch ms) of each play of 30 s or more, by start."""
    t = t.filter(pc.greater_equal(t["ms_played"], 30_000))
    end = t["ts"].cast(pa.int64()).to_numpy()
    start = end - t["ms_played"].to_numpy()
    order = np.argsort(start, kind="stable")
    return start[order], end[order]


def _busy(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as disjoint, sorted intervals."""
    if not len(start):
        return start, end
    run_end = np.maximum.accumulate(end)
    new = np.r_[True, start[1:] > run_end[:-1]]
    idx = np.flatnonzero(new)
    return start[idx], np.r_[run_end[idx[1:] - 1], run_end[-1]]


def _simultaneous(
    mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]
) -> tuple[int, float]:
    """Plays of ``mine`` during a play of ``theirs`` (allowing 15 s of slack), and how
    many would be expected were the two independent people listening in the same span."""
    b_start, b_end = _busy(*theirs)
    s, e = mine
    if not len(s) or not len(b_start):
        return 0, 0.0
    i = np.searchsorted(b_start, e - 15_000) - 1
    seen = int(np.sum((i >= 0) & (b_end[np.maximum(i, 0)] > s + 15_000)))
    lo, hi = max(s.min(), b_start.min()), min(e.max(), b_end.max())
    if hi <= lo:
        return seen, 0.0
    inside = (s >= lo) & (e <= hi)
    busy = float(np.sum(np.clip(np.minimum(b_end, hi) - np.maximum(b_start, lo), 0, None)))
    return seen, float(np.sum(inside)) * busy / (hi - lo)


def _split(
    home: Home,
    session: Session,
    member: Member,
    listens: pa.Table,
    prints: Prints,
    matches: Matches,
    checks: Checks,
) -> tuple[int | None, Check]:
    name = "split_history"
    rule = "warn when another member's history looks like another part of this one"
    plays = sum(prints.track_plays.values())
    if prints.plays < checks.min_plays_for_patterns or len(prints.track_plays) < MIN_SAMPLE:
        return None, Check(name, PASS, None, None, "Not judged: too few plays.")
    # the three members holding most of the export's tracks (ranked on a bounded sample
    # of them), then the share of its plays on the tracks each holds
    counts = matches.by_member[TRACK]
    alike: dict[int, float] = {}
    for m in sorted(counts, key=lambda m: -counts[m])[:3]:
        held = held_of(session, TRACK, prints.hashes[TRACK], m)
        alike[m] = sum(n for h, n in prints.track_plays.items() if h in held) / plays
    candidates = sorted(
        (m for m, share in alike.items() if share >= checks.split_similarity),
        key=lambda m: -alike[m],
    )
    mine = _intervals(listens)
    for other_id in candidates:
        other = session.get(Member, other_id)
        if other is None or other.events_file is None:
            continue
        theirs = _intervals(home.events.read(other.pseudonym, other.events_file))
        if not len(theirs[0]) or not len(mine[0]):
            continue
        seen, expected = _simultaneous(mine, theirs)
        gap = max(mine[0].min() - theirs[1].max(), theirs[0].min() - mine[1].max())
        adjacent = 0 <= gap < 30 * DAY_MS
        # none seen where ten were expected: by chance once in 20,000 (Poisson)
        interleaved = seen == 0 and expected >= INTERLEAVED
        if adjacent or interleaved:
            how = (
                "one begins where the other ends"
                if adjacent
                else f"they never play at the same time (two people would, about "
                f"{expected:.0f} times)"
            )
            return other_id, Check(
                name,
                WARN,
                round(alike[other_id], 4),
                rule,
                f"{alike[other_id] * 100:.0f} % of these plays are of tracks another "
                f"member plays, and {how}: this looks like one person's history split "
                "between two memberships. Accepted, but it earns only what it adds to "
                "the two histories together; if you are a different person, ask the "
                "steward to review it.",
            )
    return None, Check(
        name,
        PASS,
        round(max(alike.values(), default=0.0), 4),
        rule,
        "No other member's history looks like another part of this one.",
    )


__all__ = ["Provenance", "assess", "corroboration", "typical_corroboration"]
