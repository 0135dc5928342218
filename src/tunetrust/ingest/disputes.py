"""Disputes: an import held because its account or its plays are another member's.

An export is not signed by the service, so the first member to import an account's
history is not always its owner: someone may have imported a stolen copy first. The
import of the same account (or of the same plays, unaltered) for a second member is
therefore *held* (verdict ``disputed``): its raw export is kept in that member's vault,
nothing else changes, and the steward decides.

- **For the claimant** (the member whose import was held): the holder's contributions
  that carry the claimant's account or any of the held export's plays are revoked (their
  listens leave the holder's partition, their weight no longer counts, the account is
  unbound from the holder), then the held export is imported again for the claimant,
  with every check, as a new contribution. The held one is marked ``resolved``.
- **For the holder**: the held import is rejected and its raw export deleted.

What helps the steward decide: the owner of an account can download a *newer* export of
it, holding plays after the dispute was opened, which a copy taken earlier cannot; the
dates of both histories are in the dispute (docs/contributions.md, "Disputes"). Who
holds what is recorded in the ``disputes`` table, which only the steward reads: neither
member's report, audit entries or data export name the other. Every decision is an
audit entry (``contribution.dispute.decide``, about the member it changes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust import faults
from tunetrust.coop import audit
from tunetrust.coop.contributions import COUNTED, DISPUTED, REJECTED, RESOLVED, REVOKED
from tunetrust.coop.keyring import data_key, reveal
from tunetrust.errors import InputError, NotFoundError
from tunetrust.ingest import fingerprint as prints
from tunetrust.ingest.dedup import coarse_key
from tunetrust.ingest.pipeline import ImportSummary, import_export
from tunetrust.ingest.rebuild import decrypted, vault_listens
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, DisputeRecord, Member

CLAIMANT, HOLDER = "claimant", "holder"


@dataclass(frozen=True)
class Side:
    """One side of a dispute, by pseudonym: what the steward weighs."""

    pseudonym: str
    joined: datetime
    contributions: int  # counted ones
    listens: int
    first_play: str | None  # YYYY-MM-DD
    last_play: str | None


@dataclass(frozen=True)
class Dispute:
    """A held import and the two members it is between."""

    contribution: str
    opened: datetime
    reason: str  # account | copy
    claimant: Side
    holder: Side | None  # None once the holder was erased
    listens_in_export: int


@dataclass(frozen=True)
class Decision:
    """What deciding a dispute did."""

    contribution: str
    decided_for: str  # claimant | holder
    revoked: list[str]  # the holder's contributions revoked
    listens_removed: int  # from the holder's partition
    imported: ImportSummary | None  # the claimant's export, imported again


def _side(home: Home, member: Member, export: dict[str, str] | None = None) -> Side:
    with home.sessions() as s:
        counted = s.scalars(
            select(Contribution.id).where(
                Contribution.member_id == member.id, Contribution.verdict.in_(COUNTED)
            )
        ).all()
    listens = home.events.read(member.pseudonym, member.events_file)
    first = last = None
    if listens.num_rows:
        first = f"{pc.min(listens['ts']).as_py():%Y-%m-%d}"
        last = f"{pc.max(listens['ts']).as_py():%Y-%m-%d}"
    if export:  # the held export's own days (its listens are not stored)
        first, last = export.get("export_first", first), export.get("export_last", last)
    return Side(member.pseudonym, member.created_at, len(counted), listens.num_rows, first, last)


def _held(
    home: Home, contribution_id: str
) -> tuple[Contribution, DisputeRecord, Member, Member | None]:
    with home.sessions() as s:
        rows = (
            s.execute(
                select(Contribution, DisputeRecord)
                .join(DisputeRecord, DisputeRecord.contribution_id == Contribution.id)
                .where(
                    Contribution.id.startswith(contribution_id.strip().lower(), autoescape=True),
                    Contribution.verdict == DISPUTED,
                    DisputeRecord.decided_at.is_(None),
                )
            ).all()
            if len(contribution_id.strip()) >= 6
            else []
        )
        if len(rows) != 1:
            raise NotFoundError(
                f"no open dispute {contribution_id!r}; list them with: "
                "tunetrust contribution disputes"
            )
        held, record = rows[0]
        claimant = s.get(Member, record.claimant_id)
        holder = s.get(Member, record.holder_id) if record.holder_id is not None else None
        s.expunge_all()
    assert claimant is not None
    return held, record, claimant, holder


def list_disputes(home: Home) -> list[Dispute]:
    """Open disputes, oldest first."""
    with home.sessions() as s:
        ids = s.scalars(
            select(DisputeRecord.contribution_id)
            .where(DisputeRecord.decided_at.is_(None))
            .order_by(DisputeRecord.opened_at)
        ).all()
    out = []
    for cid in ids:
        held, record, claimant, holder = _held(home, cid)
        about = held.summary.get("dispute", {})
        out.append(
            Dispute(
                contribution=held.id,
                opened=record.opened_at,
                reason=record.reason,
                claimant=_side(home, claimant, about),
                holder=_side(home, holder) if holder is not None else None,
                listens_in_export=int(held.summary.get("listens_in_export", 0)),
            )
        )
    return out


def decide(home: Home, contribution_id: str, *, decided_for: str, actor: str) -> Decision:
    """Decide a dispute for the ``claimant`` or the ``holder`` (see the module docstring)."""
    if decided_for not in (CLAIMANT, HOLDER):
        raise InputError(
            f"decide for {CLAIMANT!r} or {HOLDER!r}, not {decided_for!r}",
            fields=[("decided_for", f"one of {CLAIMANT}, {HOLDER}")],
        )
    with home.lock():
        held, _, claimant, holder = _held(home, contribution_id)
        if decided_for == HOLDER or holder is None:
            return _against_claimant(home, held, claimant, actor)
        revoked, removed = _revoke_holder(home, held, claimant, holder, actor)
        with home.sessions() as s:
            row = s.get(Member, claimant.id)
            assert row is not None
            name = reveal(home, row).name
            key = data_key(home, s, row)
        assert name is not None
        with decrypted(home, claimant, key, held) as path:
            imported = import_export(home, name, path, again=True)
        with home.transaction() as s:
            row_c = s.get(Contribution, held.id)
            assert row_c is not None
            row_c.verdict = RESOLVED
            _decided(s, held.id, CLAIMANT)
            vault_file, row_c.vault_file = row_c.vault_file, None  # imported again: a new copy
            audit.record(
                s,
                actor=actor,
                action="contribution.dispute.resolved",
                subject=claimant.pseudonym,
                payload={"contribution": held.id, "imported_as": imported.contribution},
            )
        if vault_file:
            home.vault.remove(claimant.pseudonym, vault_file)
    return Decision(held.id, CLAIMANT, revoked, removed, imported)


def _decided(session: Session, contribution_id: str, decided_for: str) -> None:
    record = session.get(DisputeRecord, contribution_id)
    assert record is not None
    record.decided_at = datetime.now(UTC)
    record.decided_for = decided_for


def _against_claimant(home: Home, held: Contribution, claimant: Member, actor: str) -> Decision:
    with home.transaction() as s:
        row = s.get(Contribution, held.id)
        assert row is not None
        row.verdict = REJECTED
        vault_file, row.vault_file = row.vault_file, None
        _decided(s, held.id, HOLDER)
        # neither side's entries name the other (each member's export holds their own)
        audit.record(
            s,
            actor=actor,
            action="contribution.dispute.decide",
            subject=claimant.pseudonym,
            payload={"contribution": held.id, "decided_for": HOLDER},
        )
    if vault_file:
        home.vault.remove(claimant.pseudonym, vault_file)
    return Decision(held.id, HOLDER, [], 0, None)


def _revoke_holder(
    home: Home, held: Contribution, claimant: Member, holder: Member, actor: str
) -> tuple[list[str], int]:
    """Revoke the holder's contributions that carry the claimant's account or plays, and
    take their listens out of the holder's partition; returns (revoked, listens removed)."""
    with home.sessions() as s:
        key = data_key(home, s, claimant)
        contributions = list(
            s.scalars(
                select(Contribution).where(
                    Contribution.member_id == holder.id, Contribution.verdict.in_(COUNTED)
                )
            )
        )
        s.expunge_all()
    claimed, facts = vault_listens(home, claimant, key, held)
    listens = home.events.read(holder.pseudonym, holder.events_file)
    # the same play, at account data's resolution (an owner's account data matches a
    # thief's extended history of the same account)
    matched = pc.is_in(coarse_key(listens, facts), value_set=coarse_key(claimed, facts))
    carrying = set(pc.unique(listens.filter(matched)["contribution"]).to_pylist())
    accounts = set(held.account_hashes or [])
    revoked = [
        c.id for c in contributions if c.id in carrying or accounts & set(c.account_hashes or [])
    ]
    keep = pc.invert(pc.is_in(listens["contribution"], value_set=pa.array(revoked, pa.string())))
    kept = listens.filter(keep)
    removed = listens.num_rows - kept.num_rows
    new_file = f"{uuid.uuid4().hex}.parquet" if removed else holder.events_file
    fkey = prints.key_of(home)
    try:
        if removed:
            assert new_file is not None
            home.events.stage(holder.pseudonym, new_file, kept)
        faults.reach("dispute.staged")
        with home.transaction() as s:
            row = s.get(Member, holder.id)
            assert row is not None
            for cid in revoked:
                c = s.get(Contribution, cid)
                assert c is not None
                c.verdict = REVOKED
            if row.account_hash is not None and row.account_hash in accounts:
                row.account_hash = None  # the claimant's import binds it to them
                row.account_marker = None
            row.events_file = new_file
            if removed:
                prints.store(s, row, prints.fingerprint(fkey, kept), new_file)
            audit.record(
                s,
                actor=actor,
                action="contribution.dispute.decide",
                subject=holder.pseudonym,
                payload={
                    "contribution": held.id,
                    "decided_for": CLAIMANT,
                    "revoked": revoked,
                    "listens_removed": removed,
                },
            )
    except BaseException:
        if removed and new_file:
            home.events.discard(holder.pseudonym, new_file)
        raise
    faults.reach("dispute.committed")
    if removed and new_file:
        home.events.publish(holder.pseudonym, new_file)
    return revoked, removed


__all__ = ["CLAIMANT", "HOLDER", "Decision", "Dispute", "Side", "decide", "list_disputes"]
