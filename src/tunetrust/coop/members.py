"""Members: add, find, list. A member's pseudonym is the only name the events store knows."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.store.db import transaction
from tunetrust.store.home import Home
from tunetrust.store.models import Member


def _check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise InputError("a member name cannot be empty")
    if len(name) > 200:
        raise InputError("a member name can be at most 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError("a member name cannot contain control characters")
    return name


def add_member(home: Home, name: str, *, keep_incognito: bool = False) -> Member:
    """Add a member with a fresh random pseudonym."""
    name = _check_name(name)
    member = Member(
        name=name,
        pseudonym=secrets.token_hex(16),
        created_at=datetime.now(UTC),
        keep_incognito=keep_incognito,
        events_file=None,
    )
    try:
        with transaction(home.sessions) as s:
            s.add(member)
    except IntegrityError:
        raise ConflictError(f"a member named {name!r} exists already") from None
    return member


def get_member(home: Home, name: str) -> Member:
    """The member called ``name``."""
    with home.sessions() as s:
        member = s.scalar(select(Member).where(Member.name == _check_name(name)))
    if member is None:
        raise NotFoundError(
            f"no member named {name!r}; add one with: tunetrust member add {name!r}"
        )
    return member


def list_members(home: Home) -> list[Member]:
    """Every member, oldest first."""
    with home.sessions() as s:
        return list(s.scalars(select(Member).order_by(Member.id)))
