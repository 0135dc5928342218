"""Members: add, find, list. A member's pseudonym is the only name the events store knows.

Names are checked and compared by ``tunetrust.names`` (look-alikes share one key,
stored unique in ``members.name_key``); ``coop/profile.py`` gathers what
``member show`` tells.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tunetrust.coop import audit
from tunetrust.coop.keyring import seal_new_data_key
from tunetrust.errors import ConflictError, NotFoundError
from tunetrust.names import check_name, folded, name_key
from tunetrust.store.home import Home
from tunetrust.store.models import Member


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
                actor=audit.actor(home),
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
            if member is not None and folded(member.name or "") != folded(typed):
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
