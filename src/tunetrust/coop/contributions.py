"""Contributions: each import's record, its report and its quality score."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tunetrust.coop.keyring import reveal
from tunetrust.coop.members import get_member
from tunetrust.errors import NotFoundError
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, Member

ACCEPTED, WITH_WARNINGS, REJECTED = "accepted", "accepted_with_warnings", "rejected"
DISPUTED, REVOKED, RESOLVED = "disputed", "revoked", "resolved"
"""A disputed import is held for the steward's decision (coop/disputes.py); a revoked
contribution was accepted, then found by a decision to be another person's data; a
resolved dispute was decided for its member and imported again as a new contribution."""
COUNTED = (ACCEPTED, WITH_WARNINGS)
"""The verdicts whose listens are stored and whose quality weighs payouts."""
MAX_WEIGHT = 1.0
"""A member's weight is capped at one whole history's best quality score: however many
contributions add up, no member takes more than that share of a sale."""


def get_contribution(home: Home, contribution_id: str) -> Contribution:
    """One contribution by id (the full id, or a unique prefix of at least 6 characters)."""
    with home.sessions() as s:
        rows = (
            list(
                s.scalars(
                    select(Contribution).where(
                        Contribution.id.startswith(contribution_id.strip().lower(), autoescape=True)
                    )
                ).all()
            )
            if len(contribution_id.strip()) >= 6
            else []
        )
    if len(rows) != 1:
        raise NotFoundError(
            f"no contribution {contribution_id!r}; list them with: tunetrust contribution list"
        )
    return rows[0]


@dataclass(frozen=True)
class ContributionRow:
    """One line of ``contribution list``."""

    id: str
    member: str
    at: datetime
    verdict: str
    listens_added: int
    quality_score: float


def list_contributions(home: Home, member: str | None = None) -> list[ContributionRow]:
    """Contributions, oldest first, optionally of one member."""
    query = select(Contribution, Member).join(Member).order_by(Contribution.created_at)
    if member is not None:
        query = query.where(Contribution.member_id == get_member(home, member).id)
    with home.sessions() as s:
        rows = [(c, m) for c, m in s.execute(query)]
    names: dict[int, str | None] = {}  # each member's name unsealed once
    for _, m in rows:
        if m.id not in names:
            names[m.id] = reveal(home, m).name
    return [
        ContributionRow(
            c.id,
            names[m.id] or "(erased)",
            c.created_at,
            c.verdict,
            c.listens_added,
            c.quality_score,
        )
        for c, m in rows
    ]


def owner_name(home: Home, contribution_id: str) -> str | None:
    """The name of the member a contribution belongs to (None once erased)."""
    row = get_contribution(home, contribution_id)
    with home.sessions() as s:
        owner = s.get(Member, row.member_id)
    return reveal(home, owner).name if owner is not None else None


def member_weights(session: Session, member_ids: list[int]) -> dict[int, float]:
    """Members' quality weights: the sums of their counted contributions' increments,
    capped at :data:`MAX_WEIGHT`."""
    if not member_ids:
        return {}
    sums = {
        m: min(MAX_WEIGHT, float(total or 0.0))
        for m, total in session.execute(
            select(Contribution.member_id, func.sum(Contribution.quality_score))
            .where(Contribution.member_id.in_(member_ids), Contribution.verdict.in_(COUNTED))
            .group_by(Contribution.member_id)
        )
    }
    return {m: sums.get(m, 0.0) for m in member_ids}


def member_weight(home: Home, member_id: int) -> float:
    """One member's quality weight."""
    with home.sessions() as s:
        return member_weights(s, [member_id])[member_id]
