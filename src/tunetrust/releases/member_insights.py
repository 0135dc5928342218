"""The cooperative's releases for its own members (purpose ``member-insights``).

Each month the steward builds three ordinary releases (``build_release``: consent,
budget, OpenDP noise, manifest, audit entry), whose specs are written here so that every
month's are alike:

* ``hours``: how many members fall in each fixed bucket of listening hours
  (``member_hours``, public keys, one partition per member, Laplace noise: pure ε-DP);
* ``artists``: the artists most members listened to (private keys, distinct members);
* ``tracks``: the tracks most members listened to (private keys, distinct members).

ε per month is ``HOURS + ARTISTS + TRACKS`` = 0.25, so twelve months spend 3, the
cooperative's default yearly cap per purpose. A part a plan expects to be empty (too few
members for any private key to pass its threshold) is skipped and spends nothing.
A member's comparison reads only these releases (``latest``), never anyone's listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from tunetrust.errors import InputError, NotFoundError
from tunetrust.releases import build, manifest
from tunetrust.releases.spec import parse_spec
from tunetrust.store.home import Home
from tunetrust.store.models import Release

PURPOSE = "member-insights"
PARTS = ("hours", "artists", "tracks")
_GROUP_BY = {"hours": ["member_hours"], "artists": ["artist"], "tracks": ["track"]}


@dataclass(frozen=True)
class Part:
    """How one part is protected: ε, how many keys a member may touch, the fewest
    members a released private key describes."""

    epsilon: float
    max_partitions: int = 1
    min_listeners: int | None = None


DEFAULT_PARTS = {
    "hours": Part(0.1),
    "artists": Part(0.075, max_partitions=3),
    "tracks": Part(0.075, max_partitions=5),
}


def month_period(month: str) -> tuple[date, date]:
    """The first and last day of a month written YYYY-MM."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise InputError("a month is written YYYY-MM, e.g. 2024-03") from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def spec_text(part: str, month: str, parts: dict[str, Part] | None = None) -> str:
    """The release spec (YAML) of one part for one month: written verbatim to the manifest."""
    p = (parts or DEFAULT_PARTS)[part]
    first, last = month_period(month)
    lines = [
        f"purpose: {PURPOSE}",
        f"filters: {{kind: music, min_seconds: 30, period: {{from: {first}, to: {last}}}}}",
        f"group_by: [{', '.join(_GROUP_BY[part])}]",
        "metrics: [listeners]",
        f"bounds: {{max_partitions: {p.max_partitions}, max_plays_per_partition: 1, "
        "max_minutes_per_play: 10}",
    ]
    if part == "hours":
        lines += [f"privacy: {{epsilon: {p.epsilon}, noise: laplace}}", "keys: public"]
    else:
        lines += [f"privacy: {{epsilon: {p.epsilon}, delta: 1.0e-7}}", "keys: private"]
        if p.min_listeners is not None:
            lines.append(f"min_listeners: {p.min_listeners}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    """One part of a month's build: the release built, or why it was skipped."""

    part: str
    release: str | None
    members_included: int
    skipped: str | None = None


def build_month(
    home: Home,
    month: str,
    *,
    allow_empty: bool = False,
    parts: dict[str, Part] | None = None,
    _noise: bool = True,
) -> list[Outcome]:
    """Build a month's three releases in turn; a part expected to be empty is skipped
    (unless ``allow_empty``) and spends nothing."""
    outcomes = []
    for part in PARTS:
        spec = parse_spec(spec_text(part, month, parts), source_name=f"member-insights {part}")
        plan = build.plan_release(home, spec, allow_empty=True)
        if plan.outcome.expected_empty and not allow_empty:
            outcomes.append(Outcome(part, None, 0, skipped=plan.outcome.to_dict()["statement"]))
            continue
        built = build.build_release(home, spec, allow_empty=allow_empty, _noise=_noise)
        outcomes.append(Outcome(part, built.id, built.members_included))
    return outcomes


@dataclass(frozen=True)
class Published:
    """One published part: its release, month and released rows (labels and listeners)."""

    part: str
    release: str
    month: str
    built_at: str
    rows: list[dict[str, Any]]
    period: tuple[str, str]


def _part_of(doc: dict[str, Any]) -> str | None:
    group_by = doc.get("spec_parsed", {}).get("group_by")
    return next((p for p, keys in _GROUP_BY.items() if keys == group_by), None)


def latest(home: Home) -> dict[str, Published]:
    """The newest month's published parts (hours first decides the month), by part."""
    with home.sessions() as s:
        rows = list(
            s.scalars(
                select(Release)
                .where(Release.purpose == PURPOSE)
                .order_by(Release.created_at.desc(), Release.id)
            )
        )
    found: dict[str, Published] = {}
    for row in rows:
        files = home.releases.scope(row.id)
        try:
            doc = manifest.read_manifest(files)
        except NotFoundError:  # committed, not yet published: not shown until it is
            continue
        part = _part_of(doc)
        period_from, period_to = doc["spec_parsed"]["period"]
        month = str(period_from)[:7]
        if part is None or part in found:
            continue
        if found and next(iter(found.values())).month != month:
            continue  # only the newest month's parts go together
        table = pq.read_table(pa.BufferReader(files.get("data.parquet")))
        found[part] = Published(
            part=part,
            release=row.id,
            month=month,
            built_at=str(doc["created_at"]),
            rows=table.to_pylist(),
            period=(str(period_from), str(period_to)),
        )
    return found
