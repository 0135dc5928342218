"""Members' rights: access and portability (GDPR art. 15, 20) and erasure (art. 17)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from tunetrust import faults
from tunetrust.coop import audit
from tunetrust.coop.consent import in_force
from tunetrust.coop.keyring import data_key
from tunetrust.coop.members import get_member
from tunetrust.store import db, private
from tunetrust.store.home import Home
from tunetrust.store.models import AuditEntry, AuditPayload, Consent, Contribution, Member

_README = """\
Everything this data cooperative holds about you
================================================

Exported {when} at your request (right of access and to data portability).

member.json            your member record: name, date joined, settings, consents in force
consents.json          every consent decision you made, with its time
contributions.json     every import of your data, with its summary
listens.parquet        your de-identified listens, as the cooperative stores them
listens.csv            the same listens as CSV (open with any spreadsheet)
votes.json             your votes on data requests (none are recorded by this version)
payouts.json           money paid to you (none are recorded by this version)
audit.json             every audit-log entry about you, with its payload
raw/                   your original exports, decrypted from the vault

Your listens are stored under a random pseudonym, not your name; the same pseudonym
appears in audit.json. The cooperative never stored your IP addresses, user agents,
device names, locations or incognito plays (unless you opted in).
"""


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
            _README.format(when=datetime.now(UTC).isoformat(timespec="seconds")).encode(),
        )
        put(
            "member.json",
            _json(
                {
                    "name": held.member.name,
                    "pseudonym": held.member.pseudonym,
                    "joined": held.member.created_at.isoformat(),
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
                        "at": c.at.isoformat(),
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
                        "at": c.created_at.isoformat(),
                        "service": c.service,
                        "listens_added": c.listens_added,
                        "duplicates_skipped": c.duplicates_skipped,
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
        put("votes.json", b"[]")
        put("payouts.json", b"[]")
        put(
            "audit.json",
            _json(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.actor,
                        "action": e.action,
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
    key: bytes
    listens: pa.Table


def _gather(home: Home, member: Member) -> _Held:
    with home.sessions() as s:
        entries = audit.entries(s, subject=member.pseudonym)
        seqs = [e.seq for e in entries]
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
            payloads={
                seq: payload
                for seq, payload in s.execute(
                    select(AuditPayload.seq, AuditPayload.payload).where(AuditPayload.seq.in_(seqs))
                )
            },
            consents_in_force=in_force(s, member.id),
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
                actor=home.settings.actor,
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
    lines point at it) and the audit chain (entries name the pseudonym; their payloads
    are deleted). The metadata database overwrites deleted rows (secure_delete) and
    its write-ahead log is emptied, so nothing of the member stays in the home's files.
    """
    member = get_member(home, name)
    with home.lock():
        listens = home.events.count(member.pseudonym, member.events_file)
        with home.transaction() as s:
            row = s.get(Member, member.id)
            assert row is not None
            seqs = [e.seq for e in audit.entries(s, subject=row.pseudonym)]
            n_payloads = _delete(s, delete(AuditPayload).where(AuditPayload.seq.in_(seqs)))
            n_consents = _delete(s, delete(Consent).where(Consent.member_id == row.id))
            n_contrib = _delete(s, delete(Contribution).where(Contribution.member_id == row.id))
            row.name = None
            row.name_key = None  # frees the name, and look-alikes of it
            row.data_key_wrapped = None  # crypto-shredding: vault copies become unreadable
            row.account_hash = None
            row.events_file = None
            row.keep_incognito = False
            row.erased_at = datetime.now(UTC)
            audit.record(
                s,
                actor=home.settings.actor,
                action="member.erase",
                subject=row.pseudonym,
                payload={"contributions": n_contrib, "listens": listens},
            )
        faults.reach("erase.committed")
        home.events.recover({member.pseudonym: None})
        home.vault.remove_member(member.pseudonym)
    db.compact(home.engine)
    return ErasureReport(member.pseudonym, n_contrib, listens, n_consents, n_payloads)


__all__ = ["ErasureReport", "ExportReport", "erase_member", "export_member"]
