"""A member's profile: what ``member show`` tells, gathered from members, consent and events.

Its own module so that members and consent need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from tunetrust.coop.consent import in_force
from tunetrust.coop.members import get_member
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution


@dataclass(frozen=True)
class MemberView:
    """What ``member show`` tells about a member."""

    name: str
    joined: datetime
    keep_incognito: bool
    account_bound: bool
    contributions: int
    listens: int
    consents: dict[str, bool]


def show_member(home: Home, name: str) -> MemberView:
    """A member's metadata, consents in force, contributions and stored listens."""
    m = get_member(home, name)
    with home.sessions() as s:
        n = s.scalar(select(func.count()).where(Contribution.member_id == m.id)) or 0
        consents = in_force(s, m.id)
    listens = home.events.count(m.pseudonym, m.events_file)
    return MemberView(
        name=m.name or name,
        joined=m.created_at,
        keep_incognito=m.keep_incognito,
        account_bound=m.account_hash is not None,
        contributions=n,
        listens=listens,
        consents=consents,
    )
