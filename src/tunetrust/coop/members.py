"""Members: add, find, list, show. A member's pseudonym is the only name the events store knows."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tunetrust.coop import audit
from tunetrust.coop.keyring import seal_new_data_key
from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, Member


def check_name(name: str) -> str:
    """A member name, normalised; refuses empty, over-long or control characters."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise InputError("a member name cannot be empty")
    if len(name) > 200:
        raise InputError("a member name can be at most 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError("a member name cannot contain control characters")
    return name


def add_member(home: Home, name: str, *, keep_incognito: bool = False) -> Member:
    """Add a member with a fresh random pseudonym and data key."""
    name = check_name(name)
    member = Member(
        name=name,
        pseudonym=secrets.token_hex(16),
        created_at=datetime.now(UTC),
        keep_incognito=keep_incognito,
        events_file=None,
    )
    seal_new_data_key(home, member)
    try:
        with home.transaction() as s:
            s.add(member)
            s.flush()
            audit.record(
                s,
                actor=home.settings.actor,
                action="member.add",
                subject=member.pseudonym,
                payload={"keep_incognito": keep_incognito},
            )
    except IntegrityError:
        raise ConflictError(f"a member named {name!r} exists already") from None
    return member


def get_member(home: Home, name: str) -> Member:
    """The member called ``name`` (erased members have no name)."""
    with home.sessions() as s:
        member = s.scalar(select(Member).where(Member.name == check_name(name)))
    if member is None:
        raise NotFoundError(
            f"no member named {name!r}; add one with: tunetrust member add {name!r}"
        )
    return member


def list_members(home: Home) -> list[Member]:
    """Every member not erased, oldest first."""
    with home.sessions() as s:
        return list(s.scalars(select(Member).where(Member.erased_at.is_(None)).order_by(Member.id)))


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
    from tunetrust.coop.consent import in_force

    m = get_member(home, name)
    with home.sessions() as s:
        n = s.scalar(select(func.count()).where(Contribution.member_id == m.id)) or 0
        consents = in_force(s, m.id)
    listens = home.events.count(m.pseudonym, m.events_file)
    return MemberView(
        name=name,
        joined=m.created_at,
        keep_incognito=m.keep_incognito,
        account_bound=m.account_hash is not None,
        contributions=n,
        listens=listens,
        consents=consents,
    )
