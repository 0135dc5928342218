"""Members: add, find, list, show. A member's pseudonym is the only name the events store knows.

Names are shown as typed (after NFKC), but compared by a key that look-alikes share:
the Unicode TR39 skeleton (disarm's ``skeleton_key``) of the case-folded name, so
"ALICE", full-width "ａｌｉｃｅ" and "аlice" with a Cyrillic "а" cannot join beside
"alice". The key's digest is stored, unique, in ``members.name_key``.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import disarm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tunetrust.coop import audit
from tunetrust.coop.keyring import seal_new_data_key
from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, Member


def check_name(name: str) -> str:
    """A member name as shown: NFKC, trimmed; refuses empty, over-long or control characters."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        raise InputError("a member name cannot be empty")
    if len(name) > 200:
        raise InputError("a member name can be at most 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError("a member name cannot contain control characters")
    return name


def _folded(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def name_key(name: str) -> str:
    """What names that look alike share: a digest of the TR39 skeleton of the folded name.

    Case is folded first (as IDNA does for host names), then every confusable character
    is mapped to its prototype, digits included ("a1ice" is "alice"). The digest keeps
    the indexed column short: a skeleton can be several times longer than its name.
    """
    folded = _folded(name)
    skeleton = disarm.skeleton_key(folded, digit_policy="tr39")
    # a name made only of characters the skeleton drops (private use) is compared as typed
    basis = skeleton or "\x00" + folded
    return hashlib.sha256(basis.encode()).hexdigest()


def add_member(home: Home, name: str, *, keep_incognito: bool = False) -> Member:
    """Add a member with a fresh random pseudonym and data key; look-alike names are refused."""
    typed, name = name, check_name(name)
    member = Member(
        name=name,
        name_key=name_key(name),
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
        raise _name_taken(home, typed, name) from None
    return member


def _name_taken(home: Home, typed: str, name: str) -> ConflictError:
    """Why ``name`` was refused, quoting only what the caller typed, never the other name."""
    if typed.strip() == name:
        with home.sessions() as s:
            if s.scalar(select(Member.id).where(Member.name == name)) is not None:
                return ConflictError(f"a member named {name!r} exists already")
    return ConflictError(
        f"the name {typed.strip()!r} looks like an existing member's name (the same letters "
        "in another case or width, or look-alike letters of another alphabet); choose another"
    )


def get_member(home: Home, name: str) -> Member:
    """The member called ``name``, compared after NFKC and case folding (erased: no name)."""
    typed = check_name(name)
    with home.sessions() as s:
        member = s.scalar(select(Member).where(Member.name == typed))
        if member is None:
            # "ALICE" finds alice, through the indexed key; a mere look-alike does not
            member = s.scalar(select(Member).where(Member.name_key == name_key(typed)))
            if member is not None and _folded(member.name or "") != _folded(typed):
                member = None
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
        name=m.name or name,
        joined=m.created_at,
        keep_incognito=m.keep_incognito,
        account_bound=m.account_hash is not None,
        contributions=n,
        listens=listens,
        consents=consents,
    )
