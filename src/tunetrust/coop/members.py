"""Members: add, find, list. A member's pseudonym is the only name the events store knows.

Names are checked and compared by ``tunetrust.names`` (look-alikes share one key,
stored keyed and unique in ``members.name_key``). The name itself is stored sealed
with the member's data key (``coop/keyring.py``), so it is found through the keyed
key and unsealed here: every row these functions return carries its name
(``Member.name``). ``coop/profile.py`` gathers what ``member show`` tells.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunetrust.coop import audit
from tunetrust.coop.keyring import derived_key, reveal, seal_name, seal_new_data_key
from tunetrust.errors import ConflictError, NotFoundError
from tunetrust.names import check_name, folded, lookup_key
from tunetrust.store import keys
from tunetrust.store.home import Home
from tunetrust.store.models import Member


def add_member(home: Home, name: str, *, keep_incognito: bool = False) -> Member:
    """Add a member with a fresh random pseudonym and data key; look-alike names are refused."""
    member = new_member(home, name, keep_incognito=keep_incognito)
    try:
        with home.transaction() as s:
            insert_member(home, s, member)
    except IntegrityError:
        raise name_refused(home, name, member) from None
    return member


def new_member(home: Home, name: str, *, keep_incognito: bool = False) -> Member:
    """A member row not stored yet: the name checked and sealed, a pseudonym, a data key."""
    name = check_name(name)
    member = Member(
        name_key=lookup_key(derived_key(home, keys.NAME_KEY), name),
        pseudonym=secrets.token_hex(16),
        created_at=datetime.now(UTC),
        keep_incognito=keep_incognito,
        events_file=None,
    )
    seal_name(seal_new_data_key(home, member), member, name)
    member.show_name(name)
    return member


def insert_member(home: Home, session: Session, member: Member) -> None:
    """Store a :func:`new_member` row in the caller's transaction, and audit it (a name
    taken meanwhile fails the transaction with an IntegrityError: see name_refused)."""
    session.add(member)
    session.flush()
    audit.record(
        session,
        actor=audit.actor(home),
        action="member.add",
        subject=member.pseudonym,
        payload={"keep_incognito": member.keep_incognito},
    )


def name_is_taken(home: Home, member: Member) -> bool:
    """Whether another member holds ``member``'s name (or a look-alike of it)."""
    assert member.name_key is not None
    return _holder(home, member.name_key) is not None


def name_refused(home: Home, typed: str, member: Member) -> ConflictError:
    """Why ``member``'s name (as the person typed it) was refused."""
    assert member.name is not None and member.name_key is not None
    return _name_taken(home, typed, member.name, member.name_key)


def _name_taken(home: Home, typed: str, name: str, key: str) -> ConflictError:
    """Why ``name`` was refused, quoting only what the caller typed, never the other name."""
    if typed.strip() == name:
        holder = _holder(home, key)
        if holder is not None and holder.name == name:
            return ConflictError(f"a member named {name!r} exists already")
    return ConflictError(
        f"the name {typed.strip()!r} looks like an existing member's name (the same letters "
        "in another case or width, or look-alike letters of another alphabet); choose another"
    )


def _holder(home: Home, key: str) -> Member | None:
    """The member whose name has the keyed look-alike key ``key`` (one at most: unique)."""
    with home.sessions() as s:
        member = s.scalar(select(Member).where(Member.name_key == key))
    return reveal(home, member) if member is not None else None


def _keyless(home: Home, typed: str) -> Member | None:
    """A member called exactly ``typed`` among look-alikes an older version let in.

    They have no key (the oldest of them holds it, migration 0006), so they are found
    by unsealing their names: a handful of rows at most, and none in a new cooperative.
    """
    with home.sessions() as s:
        rows = list(
            s.scalars(
                select(Member).where(
                    Member.name_key.is_(None),
                    Member.erased_at.is_(None),
                    Member.name_sealed.is_not(None),
                )
            )
        )
    return next((m for m in rows if reveal(home, m).name == typed), None)


def get_member(home: Home, name: str) -> Member:
    """The member called ``name``, compared after NFKC and case folding (erased: no name)."""
    typed = check_name(name)
    holder = _holder(home, lookup_key(derived_key(home, keys.NAME_KEY), typed))
    member = holder if holder is not None and holder.name == typed else _keyless(home, typed)
    # "ALICE" finds alice, through the keyed key; a mere look-alike does not
    if member is None and holder is not None and folded(holder.name or "") == folded(typed):
        member = holder
    if member is None:
        raise NotFoundError(
            f"no member named {name!r}; add one with: tunetrust member add {name!r}"
        )
    return member


def list_members(home: Home) -> list[Member]:
    """Every member not erased, oldest first."""
    with home.sessions() as s:
        rows = list(s.scalars(select(Member).where(Member.erased_at.is_(None)).order_by(Member.id)))
    return [reveal(home, m) for m in rows]
