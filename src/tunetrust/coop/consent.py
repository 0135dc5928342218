"""Consent per purpose: opt-in, with full history (granted / withdrawn, when, by whom)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust.coop import audit
from tunetrust.coop.members import get_member
from tunetrust.errors import InputError
from tunetrust.store.home import Home
from tunetrust.store.models import Consent


def _check_purpose(home: Home, purpose: str) -> str:
    if purpose not in home.settings.purposes:
        raise InputError(
            f"unknown purpose {purpose!r}; choose from {', '.join(home.settings.purposes)}"
        )
    return purpose


def in_force(session: Session, member_id: int) -> dict[str, bool]:
    """Each purpose the member ever decided on → whether consent is given now."""
    rows = session.scalars(
        select(Consent).where(Consent.member_id == member_id).order_by(Consent.id)
    )
    state: dict[str, bool] = {}
    for row in rows:
        state[row.purpose] = row.granted
    return state


def consenting(session: Session, purpose: str) -> set[int]:
    """Ids of the members whose consent to ``purpose`` is in force (their newest decision)."""
    state: dict[int, bool] = {}
    for member_id, granted in session.execute(
        select(Consent.member_id, Consent.granted)
        .where(Consent.purpose == purpose)
        .order_by(Consent.id)
    ):
        state[member_id] = granted
    return {m for m, ok in state.items() if ok}


def decide(home: Home, name: str, purpose: str, *, granted: bool) -> bool:
    """Grant or withdraw consent; returns False when it was already so (nothing recorded)."""
    purpose = _check_purpose(home, purpose)
    member = get_member(home, name)
    with home.transaction() as s:
        if in_force(s, member.id).get(purpose, False) == granted:
            return False
        s.add(
            Consent(
                member_id=member.id,
                purpose=purpose,
                granted=granted,
                at=datetime.now(UTC),
                actor=audit.actor(home),
            )
        )
        audit.record(
            s,
            actor=audit.actor(home),
            action="consent.grant" if granted else "consent.withdraw",
            subject=member.pseudonym,
            payload={"purpose": purpose},
        )
    return True


def history(home: Home, name: str) -> list[Consent]:
    """Every consent decision of a member, oldest first."""
    member = get_member(home, name)
    with home.sessions() as s:
        return list(
            s.scalars(select(Consent).where(Consent.member_id == member.id).order_by(Consent.id))
        )
