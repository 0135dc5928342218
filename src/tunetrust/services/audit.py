"""Audit use cases: the chain (verify, head, entries) and master-key rotation."""

from __future__ import annotations

from tunetrust.coop import audit, keyring
from tunetrust.coop.members import get_member
from tunetrust.services._access import acting, for_member, reader, steward_only
from tunetrust.services.models import (
    Actor,
    AuditEntryInfo,
    AuditHead,
    AuditVerdict,
    KeyRotation,
    StateInfo,
    Verification,
)
from tunetrust.store.home import Home


def verify_chain(home: Home, actor: Actor, *, anchor: str | None = None) -> AuditVerdict:
    """Recompute the chain (and check it against a head anchored elsewhere, if given)."""
    reader(actor, "verify the audit log")
    v = audit.verify_home(home, anchor=anchor)
    return AuditVerdict(
        ok=v.ok, entries=v.entries, head=v.head, problem=v.problem, first_bad=v.first_bad
    )


def head(home: Home, actor: Actor) -> AuditHead:
    """The newest entry's sequence number and hash, for anchoring outside."""
    reader(actor, "read the audit head")
    with home.sessions() as s:
        seq, entry_hash = audit.head(s)
    return AuditHead(seq=seq, entry_hash=entry_hash)


def entries(home: Home, actor: Actor, *, member: str | None = None) -> list[AuditEntryInfo]:
    """Entries, oldest first; ``member``: only those about them (subject, actor, payload)."""
    if member is None:
        reader(actor, "read the audit log")
    else:
        for_member(actor, member, "read the audit entries about a member")
    pseudonym = get_member(home, member).pseudonym if member else None
    with home.sessions() as s:
        rows = audit.about(s, pseudonym) if pseudonym else audit.entries(s)
        return [
            AuditEntryInfo(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                entry_hash=e.entry_hash,
            )
            for e in rows
        ]


def rotate_master_key(home: Home, actor: Actor, *, new_key: bytes | None = None) -> KeyRotation:
    """Rewrap every member key under a new master key (data is not re-encrypted)."""
    steward_only(actor, "rotate the master key")
    with acting(home, actor):
        count = keyring.rotate_master_key(home, actor=audit.actor(home), new_key=new_key)
    return KeyRotation(keys_rewrapped=count)


def verify_everything(home: Home, actor: Actor, *, anchor: str | None = None) -> Verification:
    """The audit chain, the ledger, and every state-bearing table against the chain."""
    from tunetrust.services.governance import verify_ledger
    from tunetrust.services.verify import verify_state

    chain = verify_chain(home, actor, anchor=anchor)
    money = verify_ledger(home, actor)
    state = verify_state(home)
    return Verification(
        ok=chain.ok and money.ok and state.ok,
        audit=chain,
        ledger=money,
        state=StateInfo(ok=state.ok, checked=state.checked, problems=state.problems),
    )
