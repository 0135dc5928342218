"""The audit log: append-only, hash-chained, verifiable by anyone with the database.

Each entry hashes its own fields together with the previous entry's hash::

    entry_hash = sha256(canonical JSON of [seq, at, actor, action, subject,
                                           payload_digest, prev_hash])

The payload itself is stored beside the chain (``audit_payloads``) and only its
digest is chained, so erasing a member can delete payloads while the chain still
verifies. Entries name members by pseudonym, never by name: as the subject, as the
actor (``member:<pseudonym>`` when members act for themselves, as when they vote) or
in the payload; :func:`about` finds all three. Appends take the
``audit_head`` row lock, so concurrent writers form one chain. After each commit the
head is copied to ``<home>/audit.head`` (a witness that catches truncation), and
``audit head`` prints it for anchoring anywhere else.

Who acts: every entry names its actor. A service call runs ``with acting_as(actor)``
for the person it was called for (a member, a buyer, a steward), and :func:`actor`
gives that name to every entry written inside; outside any service call (library
use, migrations) the settings' actor is named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from tunetrust.store.home import Home, read_witness
from tunetrust.store.models import AuditEntry, AuditHead, AuditPayload

GENESIS = "0" * 64

_acting: ContextVar[str | None] = ContextVar("tunetrust_acting", default=None)


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Entries written inside name ``name`` as their actor (per thread and per task)."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def actor(home: Home) -> str:
    """The actor for an entry written now: the service call's, else the settings'."""
    return _acting.get() or home.settings.actor


def digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a payload's canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def entry_hash(
    seq: int, at: str, actor: str, action: str, subject: str, payload_digest: str, prev: str
) -> str:
    """The hash that links an entry into the chain."""
    fields = [seq, at, actor, action, subject, payload_digest, prev]
    return hashlib.sha256(orjson.dumps(fields)).hexdigest()


def record(
    session: Session, *, actor: str, action: str, subject: str, payload: dict[str, Any]
) -> AuditEntry:
    """Append an entry inside the caller's transaction (so it commits with the change)."""
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:  # pragma: no cover - created by migration 0002
        raise RuntimeError("audit head row missing")
    seq = head.seq + 1
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    pd = digest(payload)
    h = entry_hash(seq, at, actor, action, subject, pd, head.entry_hash)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        payload_digest=pd,
        prev_hash=head.entry_hash,
        entry_hash=h,
    )
    session.add(entry)
    session.flush()
    session.add(AuditPayload(seq=seq, payload=payload))
    head.seq, head.entry_hash = seq, h
    session.info["audit_head"] = (seq, h)  # Home.transaction() witnesses it after commit
    return entry


def head(session: Session) -> tuple[int, str]:
    """The newest entry's number and hash (0 and the genesis hash when empty)."""
    row = session.get(AuditHead, 1)
    return (row.seq, row.entry_hash) if row else (0, GENESIS)


@dataclass(frozen=True)
class Verdict:
    """The result of verifying the chain."""

    ok: bool
    entries: int
    head: str
    problem: str | None = None
    first_bad: int | None = None


def verify(session: Session, *, witness: tuple[int, str] | None, anchor: str | None) -> Verdict:
    """Recompute the chain; name the first bad entry, or the truncation, if any."""
    prev, expected_seq, count = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    payloads: dict[int, dict[str, Any]] = {
        seq: payload
        for seq, payload in session.execute(select(AuditPayload.seq, AuditPayload.payload))
    }
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        count += 1
        problem = None
        if e.seq != expected_seq:
            problem = f"expected entry {expected_seq} here, found {e.seq} (deleted or inserted)"
        elif e.prev_hash != prev:
            problem = "its previous-hash does not match the entry before it (reordered or inserted)"
        elif (
            entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.payload_digest, e.prev_hash)
            != e.entry_hash
        ):
            problem = "its fields do not match its hash (edited)"
        elif e.seq in payloads and digest(payloads[e.seq]) != e.payload_digest:
            problem = "its payload does not match its digest (edited)"
        if problem:
            return Verdict(False, count, prev, f"entry {e.seq}: {problem}", e.seq)
        hashes[e.seq] = e.entry_hash
        prev, expected_seq = e.entry_hash, e.seq + 1
    stored = session.get(AuditHead, 1)
    last = expected_seq - 1
    if stored is not None and (stored.seq, stored.entry_hash) != (last, prev):
        return Verdict(
            False,
            count,
            prev,
            f"the head says entry {stored.seq}, the chain ends at {last} (truncated)",
            min(stored.seq, last) + 1,
        )
    if witness is not None:
        wseq, whash = witness
        if wseq > last:
            return Verdict(
                False,
                count,
                prev,
                f"the witness file has seen entry {wseq}, the chain ends at {last} (truncated)",
                last + 1,
            )
        if wseq and hashes.get(wseq) != whash:
            return Verdict(
                False,
                count,
                prev,
                f"entry {wseq} differs from the witnessed hash (rewritten)",
                wseq,
            )
    if anchor is not None and anchor not in hashes.values() and anchor != prev:
        return Verdict(
            False,
            count,
            prev,
            "the anchored head hash is not in the chain (truncated or rewritten)",
        )
    return Verdict(True, count, prev)


def entries(session: Session, subject: str | None = None) -> list[AuditEntry]:
    """Entries in order, optionally only those about one subject."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    return list(session.scalars(query))


def member_actor(pseudonym: str) -> str:
    """How an entry's actor names a member acting for themselves."""
    return f"member:{pseudonym}"


def about(session: Session, pseudonym: str) -> list[AuditEntry]:
    """Every entry about one member, in order: by subject, actor or payload.

    Their pseudonym is the entry's subject, its actor (``member:<pseudonym>``) or is
    anywhere in its payload: a vote names the request as its subject and the member
    as actor and in the payload. Only the subject is indexed; the actor and payload
    are scanned (a cooperative's log is small enough), which also finds entries that
    older versions wrote. After an erasure the payloads are gone, and the subject and
    actor still find the entries.
    """
    payload_text = cast(AuditPayload.payload, Text)
    query = (
        select(AuditEntry)
        .outerjoin(AuditPayload, AuditPayload.seq == AuditEntry.seq)
        .where(
            or_(
                AuditEntry.subject == pseudonym,
                AuditEntry.actor == member_actor(pseudonym),
                payload_text.contains(pseudonym, autoescape=True),
            )
        )
        .order_by(AuditEntry.seq)
    )
    return list(session.scalars(query))


def verify_home(home: Home, anchor: str | None = None) -> Verdict:
    """Verify a home's chain against its witness file and an optional anchored hash."""
    with home.sessions() as s:
        return verify(s, witness=read_witness(home.settings.home), anchor=anchor)
