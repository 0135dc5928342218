"""Members' rights: access and portability (GDPR art. 15, 20) and erasure (art. 17)."""

from __future__ import annotations

import hashlib
import io
import os
import textwrap
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from tunetrust import faults
from tunetrust.coop import accounts, audit, budget, governance, jobs, tokens
from tunetrust.coop.budget import Epsilon
from tunetrust.coop.consent import in_force
from tunetrust.coop.keyring import data_key
from tunetrust.coop.members import get_member
from tunetrust.store import db, private
from tunetrust.store.events import EVENTS_SCHEMA
from tunetrust.store.home import Home
from tunetrust.store.models import (
    FINGERPRINT_KINDS,
    ApiToken,
    AuditEntry,
    AuditPayload,
    BudgetCap,
    BudgetCarryover,
    BudgetSpend,
    Consent,
    Contribution,
    DataRequest,
    DisputeRecord,
    Fingerprint,
    Invitation,
    Job,
    LedgerBalance,
    LedgerEntry,
    LedgerTransaction,
    Member,
    Passkey,
    RecoveryCode,
    Vote,
    WebSession,
)

_README = """\
Everything this data cooperative holds about you
================================================

Exported {when} at your request (right of access and to data portability).
Every time in these files is in UTC (ISO 8601).

member.json            your member record: name, date joined, settings, consents in force
consents.json          every consent decision you made, with its time
contributions.json     every import of your data, with its summary and checks' verdict
listens.parquet        your de-identified listens, as the cooperative stores them
listens.csv            the same listens as CSV (open with any spreadsheet)
votes.json             every data request you could vote on or voted on: your vote in
                       force, when you cast it, and every vote you cast on it (changes)
payouts.json           money paid to you: your account's lines and balance, from the
                       cooperative's ledger (amounts in the currency's smallest unit,
                       cents for EUR)
budget.json            your privacy budget: the epsilon each release spent from it,
                       per purpose and year, the caps you set yourself, and the
                       epsilon carried over from an earlier membership of your
                       streaming account (it counts against this year's budget)
sign_in.json           how you sign in to the web app: your passkeys (their ids, when
                       added and last used), how many recovery codes you have left,
                       your open sessions, the invitations made for you and your
                       personal API tokens (never a secret: codes, links and tokens
                       are kept only as hashes)
uploads.json           every upload you made in the web app and how its import ended
disputes.json          imports held because their account or plays were another
                       member's: yours (as claimant) and those about data you hold
                       (as holder), with the steward's decision; the other member is
                       never named
fingerprints.json      the fingerprints of your listening the contribution checks compare
                       (keyed hashes of a sample of your plays, play sequences and
                       tracks; they cannot be read back into songs), counted and listed
audit.json             every audit-log entry about you, with its payload
raw/                   your original exports, decrypted from the vault

Your listens are stored under a random pseudonym, not your name; the same pseudonym
appears in audit.json and names your ledger account. The cooperative never stored
your IP addresses, user agents, device names, locations or incognito plays (unless
you opted in).

Columns of listens.csv and listens.parquet
------------------------------------------
One row per play. An empty cell: your export did not say. In listens.csv a
date-time reads like 2024-05-01 17:29:49.000Z (the Z means UTC).

{columns}
"""

# What each stored column means, in words a member can read (docs/events.md has the
# same table for developers; tests/test_rights.py keeps both in step with the schema).
LISTEN_COLUMNS: dict[str, str] = {
    "ts": "when the play ended (not when it started), in UTC; for account data only to the minute",
    "ms_played": "how long it actually played, in milliseconds",
    "kind": "music, podcast, audiobook, video or unknown",
    "track_name": "the track's title (music)",
    "artist_name": "the track's artist (music)",
    "album_name": "the track's album (music)",
    "track_uri": "the service's identifier of the track",
    "episode_name": "the episode's title (podcasts and videos)",
    "show_name": "the show the episode belongs to",
    "episode_uri": "the service's identifier of the episode",
    "audiobook_title": "the audiobook's title",
    "audiobook_uri": "the service's identifier of the audiobook",
    "audiobook_chapter_title": "the chapter's title",
    "audiobook_chapter_uri": "the service's identifier of the chapter",
    "reason_start": "why the play started, as the service recorded it (e.g. trackdone)",
    "reason_end": "why the play ended, as the service recorded it (e.g. fwdbtn: the next button)",
    "shuffle": "whether shuffle was on",
    "skipped": "whether the play was skipped: as the service marked it, else from why it "
    "ended (empty when neither is known, as for account data)",
    "offline": "whether it was played offline",
    "country": "the country you were connected from (two letters; ZZ: unknown)",
    "platform": "the kind of device: android, ios, desktop, web, speaker, tv, car or "
    "other (the model is never kept); empty for account data",
    "source": "which part of your export it came from: extended (extended streaming "
    "history, to the second) or account (account data, to the minute)",
    "contribution": "the import that added it (an id in contributions.json)",
}


def _kind_of(field: pa.Field) -> str:
    """A column's type in words."""
    if pa.types.is_timestamp(field.type):
        return "date-time"
    if pa.types.is_integer(field.type):
        return "integer"
    if pa.types.is_boolean(field.type):
        return "true/false"
    return "text"


def data_dictionary() -> str:
    """One entry per stored column, from the events schema itself: name, type, meaning."""
    width = max(len(name) for name in EVENTS_SCHEMA.names)
    indent = " " * (2 + width + 2 + 10 + 2)
    return "\n".join(
        textwrap.fill(
            f"  {f.name:<{width}}  {_kind_of(f):<10}  {LISTEN_COLUMNS[f.name]}",
            width=92,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
        for f in EVENTS_SCHEMA
    )


def _when(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with its zone (SQLite hands back naive UTC times)."""
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _write_export(home: Home, held: _Held, tmp: Path) -> list[str]:
    """Write the export zip to ``tmp``; returns the names written."""
    written: list[str] = []
    # the zip holds the decrypted raw exports: private (0600) before the first byte
    with zipfile.ZipFile(private.create(tmp), "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def put(arcname: str, data: bytes) -> None:
            zf.writestr(arcname, data)
            written.append(arcname)

        put(
            "README.txt",
            _README.format(
                when=datetime.now(UTC).isoformat(timespec="seconds"), columns=data_dictionary()
            ).encode(),
        )
        put(
            "member.json",
            _json(
                {
                    "name": held.member.name,
                    "pseudonym": held.member.pseudonym,
                    "joined": _when(held.member.created_at),
                    "keep_incognito": held.member.keep_incognito,
                    "streaming_account_hash": held.member.account_hash,
                    "consents_in_force": held.consents_in_force,
                }
            ),
        )
        put(
            "consents.json",
            _json(
                [
                    {
                        "purpose": c.purpose,
                        "granted": c.granted,
                        "at": _when(c.at),
                        "actor": c.actor,
                    }
                    for c in held.consents
                ]
            ),
        )
        put(
            "contributions.json",
            _json(
                [
                    {
                        "id": c.id,
                        "at": _when(c.created_at),
                        "service": c.service,
                        "verdict": c.verdict,
                        "listens_added": c.listens_added,
                        "duplicates_skipped": c.duplicates_skipped,
                        "quality_score": c.quality_score,
                        "export_sha256": c.export_digest,
                        "streaming_account_hashes": c.account_hashes,
                        "summary": c.summary,
                    }
                    for c in held.contributions
                ]
            ),
        )
        buf = io.BytesIO()
        pq.write_table(held.listens, buf, compression="zstd")
        put("listens.parquet", buf.getvalue())
        buf = io.BytesIO()
        pacsv.write_csv(held.listens, buf)
        put("listens.csv", buf.getvalue())
        put("votes.json", _json(held.votes))
        put("payouts.json", _json(held.payouts))
        put("budget.json", _json(held.budget))
        put("sign_in.json", _json(held.sign_in))
        put("uploads.json", _json(held.uploads))
        put("disputes.json", _json(held.disputes))
        put(
            "fingerprints.json",
            _json(
                {
                    "about": "keyed 64-bit hashes of a sample of your listening, compared by "
                    "the contribution checks (copies, split histories, corroboration); "
                    "without the cooperative's key they cannot be matched to songs",
                    "counts": {k: len(v) for k, v in held.fingerprints.items()},
                    "hashes": held.fingerprints,
                }
            ),
        )
        put(
            "audit.json",
            _json(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.actor,
                        "action": e.action,
                        "subject": e.subject,
                        "payload": held.payloads.get(e.seq),
                        "entry_hash": e.entry_hash,
                    }
                    for e in held.entries
                ]
            ),
        )
        for c in held.contributions:
            if c.vault_file:
                arcname = "raw/" + c.vault_file.removesuffix(".bin")
                with zf.open(arcname, "w", force_zip64=True) as sink:
                    for chunk in home.vault.read(held.member.pseudonym, c.vault_file, held.key):
                        sink.write(chunk)
                written.append(arcname)
    return written


@dataclass(frozen=True)
class ExportReport:
    """What ``member export`` wrote."""

    path: Path
    files: list[str]
    sha256: str


@dataclass(frozen=True)
class _Held:
    """Everything the cooperative holds about one member, gathered for an export."""

    member: Member
    consents: list[Consent]
    contributions: list[Contribution]
    entries: list[AuditEntry]
    payloads: dict[int, Any]
    consents_in_force: dict[str, bool]
    votes: list[dict[str, Any]]
    payouts: dict[str, Any]
    budget: dict[str, Any]
    sign_in: dict[str, Any]
    uploads: list[dict[str, Any]]
    fingerprints: dict[str, list[int]]
    disputes: list[dict[str, Any]]
    key: bytes
    listens: pa.Table


def _votes(
    session: Session, member: Member, entries: list[AuditEntry], payloads: dict[int, Any]
) -> list[dict[str, Any]]:
    """Every request the member could vote on or voted on, with each vote they cast."""
    cast = {
        v.request_id: v for v in session.scalars(select(Vote).where(Vote.member_id == member.id))
    }
    changes: dict[str, list[dict[str, Any]]] = {}
    for e in entries:  # coop/governance.py audits a vote: the request as subject, the choice
        if e.action == "vote.cast":
            choice = (payloads.get(e.seq) or {}).get("choice")
            changes.setdefault(e.subject, []).append({"at": e.at, "choice": choice})
    requests = session.scalars(select(DataRequest).order_by(DataRequest.created_at))
    return [
        {
            "request": r.id,
            "purpose": r.purpose,
            "state": r.state,
            "eligible": member.id in (r.eligible or []),
            "choice": cast[r.id].choice if r.id in cast else None,
            "at": _when(cast[r.id].at) if r.id in cast else None,
            "changes": changes.get(r.id, []),
        }
        for r in requests
        if r.id in cast or r.id in changes or member.id in (r.eligible or [])
    ]


def _payouts(session: Session, account: str) -> dict[str, Any]:
    """The member's ledger account: every line and the balance kept beside them."""
    lines = session.execute(
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account == account)
        .order_by(LedgerTransaction.id, LedgerEntry.id)
    )
    balances = session.scalars(
        select(LedgerBalance)
        .where(LedgerBalance.account == account)
        .order_by(LedgerBalance.currency)
    )
    return {
        "account": account,
        "lines": [
            {
                "transaction": tx.id,
                "at": _when(tx.at),
                "memo": tx.memo,
                "request": tx.request_id,
                "currency": e.currency,
                "amount": e.cents,
            }
            for e, tx in lines
        ],
        "balances": [{"currency": b.currency, "amount": b.cents} for b in balances],
    }


def _budget(session: Session, member: Member) -> dict[str, Any]:
    """The ε each release spent from the member's budget, the ε carried over, their caps."""
    member_id = member.id
    spends = session.scalars(
        select(BudgetSpend).where(BudgetSpend.member_id == member_id).order_by(BudgetSpend.id)
    )
    caps = session.scalars(
        select(BudgetCap).where(BudgetCap.member_id == member_id).order_by(BudgetCap.purpose)
    )
    carried = session.scalars(
        select(BudgetCarryover)
        .where(BudgetCarryover.account_marker == member.account_marker)
        .order_by(BudgetCarryover.year, BudgetCarryover.purpose)
    )
    return {
        "carried_over": [
            {
                "purpose": c.purpose,
                "year": c.year,
                "epsilon": str(Epsilon(c.micro_epsilon)),
                "micro_epsilon": c.micro_epsilon,
            }
            for c in (carried if member.account_marker is not None else [])
        ],
        "spends": [
            {
                "release": b.release_id,
                "purpose": b.purpose,
                "year": b.year,
                "epsilon": str(Epsilon(b.micro_epsilon)),
                "micro_epsilon": b.micro_epsilon,
                "at": _when(b.at),
            }
            for b in spends
        ],
        "caps": [
            {
                "purpose": c.purpose,
                "epsilon": str(Epsilon(c.micro_epsilon)),
                "micro_epsilon": c.micro_epsilon,
            }
            for c in caps
        ],
    }


def _sign_in(session: Session, member_id: int) -> dict[str, Any]:
    """Passkeys, recovery codes, sessions and invitations: their records, no secret."""

    def rows(table: Any) -> list[Any]:
        return list(session.scalars(select(table).where(table.member_id == member_id)))

    return {
        "passkeys": [
            {
                "credential_id": p.credential_id,
                "added": _when(p.created_at),
                "last_used": _when(p.last_used_at),
                "sign_count": p.sign_count,
            }
            for p in rows(Passkey)
        ],
        "recovery_codes": [
            {"used": _when(c.used_at)}
            for c in rows(RecoveryCode)  # the codes are hashes
        ],
        "sessions": [
            {"opened": _when(w.created_at), "expires": _when(w.expires_at)}
            for w in rows(WebSession)
        ],
        "invitations": [
            {
                "id": i.id,
                "made": _when(i.created_at),
                "expires": _when(i.expires_at),
                "used": _when(i.used_at),
            }
            for i in rows(Invitation)
        ],
        "api_tokens": [
            {
                "id": t.id,
                "label": t.label,
                "scopes": list(t.scopes or ()),
                "made": _when(t.created_at),
                "expires": _when(t.expires_at),
                "revoked": _when(t.revoked_at),
                "last_used": _when(t.last_used_at),
            }
            for t in rows(ApiToken)  # the secrets are digests
        ],
    }


def _uploads(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Every web upload's job: when, the file's name, how it ended."""
    return [
        {
            "job": j.id,
            "at": _when(j.created_at),
            "file": j.params.get("filename"),
            "state": j.state,
            "stage": j.stage,
            "contribution": (j.result or {}).get("contribution"),
            "error": j.error,
        }
        for j in session.scalars(
            select(Job).where(Job.member_id == member_id).order_by(Job.created_at)
        )
    ]


def _fingerprints(session: Session, member_id: int) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {k: [] for k in FINGERPRINT_KINDS.values()}
    for kind, h in session.execute(
        select(Fingerprint.kind, Fingerprint.hash)
        .where(Fingerprint.member_id == member_id)
        .order_by(Fingerprint.kind, Fingerprint.hash)
    ):
        held[FINGERPRINT_KINDS[kind]].append(int(h))
    return held


def _disputes(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(DisputeRecord)
        .where((DisputeRecord.claimant_id == member_id) | (DisputeRecord.holder_id == member_id))
        .order_by(DisputeRecord.opened_at)
    )
    return [
        {
            "role": "claimant" if r.claimant_id == member_id else "holder",
            # your own held import; a holder is not told whose import it was
            "contribution": r.contribution_id if r.claimant_id == member_id else None,
            "reason": r.reason,
            "opened": _when(r.opened_at),
            "decided": _when(r.decided_at),
            "decided_for": r.decided_for,
        }
        for r in rows
    ]


def _gather(home: Home, member: Member) -> _Held:
    with home.sessions() as s:
        entries = audit.about(s, member.pseudonym)
        seqs = [e.seq for e in entries]
        payloads = {
            seq: payload
            for seq, payload in s.execute(
                select(AuditPayload.seq, AuditPayload.payload).where(AuditPayload.seq.in_(seqs))
            )
        }
        return _Held(
            member=member,
            consents=list(
                s.scalars(
                    select(Consent).where(Consent.member_id == member.id).order_by(Consent.id)
                )
            ),
            contributions=list(
                s.scalars(
                    select(Contribution)
                    .where(Contribution.member_id == member.id)
                    .order_by(Contribution.created_at)
                )
            ),
            entries=entries,
            payloads=payloads,
            consents_in_force=in_force(s, member.id),
            votes=_votes(s, member, entries, payloads),
            # the ledger names members by pseudonym (coop/ledger.py): member:<pseudonym>
            payouts=_payouts(s, f"member:{member.pseudonym}"),
            budget=_budget(s, member),
            sign_in=_sign_in(s, member.id),
            uploads=_uploads(s, member.id),
            fingerprints=_fingerprints(s, member.id),
            disputes=_disputes(s, member.id),
            key=data_key(home, s, member),
            listens=home.events.read(member.pseudonym, member.events_file),
        )


def export_member(home: Home, name: str, out: Path) -> ExportReport:
    """Write everything held about a member to a zip (atomically), and audit it."""
    member = get_member(home, name)
    held = _gather(home, member)
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = _write_export(home, held, tmp)
        sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
        with home.transaction() as s:
            audit.record(
                s,
                actor=audit.actor(home),
                action="member.export",
                subject=member.pseudonym,
                payload={"files": written, "sha256": sha},
            )
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written is left behind
        raise
    os.replace(tmp, out)
    return ExportReport(out, written, sha)


def _delete(session: Session, statement: Any) -> int:
    """Run a DELETE and say how many rows it removed."""
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return result.rowcount


@dataclass(frozen=True)
class ErasureReport:
    """What ``member erase`` removed."""

    pseudonym: str
    contributions: int
    listens: int
    consents: int
    audit_payloads: int


def erase_member(home: Home, name: str) -> ErasureReport:
    """Erase a member: events, vault, data key, consents, contributions, their name.

    Kept: the member row with its pseudonym and erasure time (the ledger's pseudonymous
    lines point at it), the audit chain (entries name the pseudonym; their payloads
    are deleted), votes on closed requests (their tallies are frozen), and the ε spent,
    under the streaming account's marker with no member id (``coop/budget.py``).
    Votes on open requests are deleted. The name was only ever stored sealed with the
    data key, which is destroyed; SQLite also overwrites deleted rows (secure_delete)
    and its write-ahead log is emptied.
    """
    member = get_member(home, name)
    with home.lock():
        listens = home.events.count(member.pseudonym, member.events_file)
        with home.transaction() as s:
            row = s.get(Member, member.id)
            assert row is not None
            seqs = [e.seq for e in audit.about(s, row.pseudonym)]
            n_payloads = _delete(s, delete(AuditPayload).where(AuditPayload.seq.in_(seqs)))
            n_consents = _delete(s, delete(Consent).where(Consent.member_id == row.id))
            # disputes: their own go; where they held another's data, the holder is gone
            _delete(s, delete(DisputeRecord).where(DisputeRecord.claimant_id == row.id))
            s.execute(
                update(DisputeRecord)
                .where(DisputeRecord.holder_id == row.id)
                .values(holder_id=None)
            )
            n_contrib = _delete(s, delete(Contribution).where(Contribution.member_id == row.id))
            # the fingerprints are derived from the listens: they go with them
            _delete(s, delete(Fingerprint).where(Fingerprint.member_id == row.id))
            row.fingerprinted = None
            now = datetime.now(UTC)
            # the person's spent ε outlives the member row, under their account's marker
            carried = budget.carry_over(s, row, now)
            ballots = governance.drop_ballots(s, row.id, actor=audit.actor(home))
            # no way back in: passkeys, recovery codes, sessions, invitations and
            # unfinished uploads go with the rest
            sign_ins = accounts.forget(s, row.id) + tokens.forget(s, row.id)
            uploads = jobs.forget(s, row.id)
            row.name_sealed = None  # unreadable anyway once the data key is gone
            row.name_key = None  # frees the name, and look-alikes of it
            row.data_key_wrapped = None  # crypto-shredding: vault copies and name unreadable
            row.account_hash = None
            row.account_marker = None
            row.events_file = None
            row.keep_incognito = False
            row.erased_at = now
            audit.record(
                s,
                actor=audit.actor(home),
                action="member.erase",
                subject=row.pseudonym,
                payload={
                    "contributions": n_contrib,
                    "listens": listens,
                    "budget_rows_carried_over": carried,
                    "open_requests_ballot_dropped": ballots,
                    "sign_in_records": sign_ins,
                },
            )
        faults.reach("erase.committed")
        home.events.recover({member.pseudonym: None})
        home.vault.remove_member(member.pseudonym)
        for key in uploads:
            jobs.uploads(home).delete(key)
    db.compact(home.engine)
    return ErasureReport(member.pseudonym, n_contrib, listens, n_consents, n_payloads)


__all__ = ["ErasureReport", "ExportReport", "erase_member", "export_member"]
