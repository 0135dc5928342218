"""Who may do what, and who the audit log names: the one place a service checks its actor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tunetrust.coop import audit
from tunetrust.coop.members import get_member
from tunetrust.errors import ForbiddenError
from tunetrust.names import name_key
from tunetrust.services.models import Actor
from tunetrust.store.home import Home


def steward_only(actor: Actor, what: str) -> None:
    """Refuse anyone but a steward."""
    if actor.kind != "steward":
        raise ForbiddenError(f"only a steward can {what}")


def reader(actor: Actor, what: str) -> None:
    """Stewards and auditors: what is not personal (the chain, manifests, the ledger)."""
    if actor.kind not in ("steward", "auditor"):
        raise ForbiddenError(f"only a steward or an auditor can {what}")


def for_member(actor: Actor, member: str, what: str) -> None:
    """A member acts for themselves only; a steward may act for any member."""
    if actor.kind == "steward":
        return
    if actor.kind == "member" and name_key(actor.name) == name_key(member):
        return
    raise ForbiddenError(f"only the member themselves or a steward can {what}")


def audit_name(home: Home, actor: Actor) -> str:
    """How the audit log names the actor: members by pseudonym, never by name."""
    if actor.kind == "member":
        return audit.member_actor(get_member(home, actor.name).pseudonym)
    if actor.kind == "buyer":
        return f"buyer:{actor.name}"
    if actor.kind == "auditor":
        return f"auditor:{actor.name}"
    return actor.name


@contextmanager
def acting(home: Home, actor: Actor) -> Iterator[None]:
    """Every audit entry written inside names ``actor``."""
    with audit.acting_as(audit_name(home, actor)):
        yield
