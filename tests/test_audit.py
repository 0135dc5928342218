"""The audit chain: every state change recorded; edits, deletions, reorders, insertions
and truncation detected and named — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tunetrust import Home, add_member, decide_consent, import_export, verify_audit
from tunetrust.coop import audit
from tunetrust.store.home import read_witness

from .factories import export_zip


@pytest.fixture
def chain(coop: Home, tmp_path: Path) -> Home:
    add_member(coop, "ann")
    add_member(coop, "ben")
    import_export(coop, "ann", export_zip(tmp_path, "extended-c", 200))
    decide_consent(coop, "ann", "research", granted=True)
    decide_consent(coop, "ben", "ai-training", granted=True)
    decide_consent(coop, "ann", "research", granted=False)
    return coop


def _sql(home: Home, statement: str, **params: object) -> None:
    with home.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_every_change_is_recorded_and_the_chain_holds(chain: Home) -> None:
    with chain.sessions() as s:
        actions = [e.action for e in audit.entries(s)]
        seq, head = audit.head(s)
    assert actions == [
        "member.add",
        "member.add",
        "member.import",
        "consent.grant",
        "consent.grant",
        "consent.withdraw",
    ]
    verdict = verify_audit(chain)
    assert verdict.ok and verdict.entries == 6 and verdict.head == head
    assert read_witness(chain.settings.home) == (seq, head)
    assert verify_audit(chain, anchor=head).ok


def test_edited_field(chain: Home) -> None:
    _sql(chain, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3")
    v = verify_audit(chain)
    assert not v.ok and v.first_bad == 3 and "edited" in (v.problem or "")


def test_edited_payload(chain: Home) -> None:
    _sql(chain, "UPDATE audit_payloads SET payload = :p WHERE seq = 4", p='{"purpose": "ai"}')
    v = verify_audit(chain)
    assert not v.ok and v.first_bad == 4 and "payload" in (v.problem or "")


def test_deleted_entry(chain: Home) -> None:
    _sql(chain, "DELETE FROM audit_payloads WHERE seq = 2")
    _sql(chain, "DELETE FROM audit_entries WHERE seq = 2")
    v = verify_audit(chain)
    assert not v.ok and v.first_bad == 3 and "deleted or inserted" in (v.problem or "")


def test_reordered_entries(chain: Home) -> None:
    # swap the contents of entries 4 and 5 (numbers stay in order)
    with chain.engine.begin() as conn:
        rows = {
            r.seq: r
            for r in conn.execute(
                text(
                    "SELECT seq, at, actor, action, subject, payload_digest, prev_hash, entry_hash "
                    "FROM audit_entries WHERE seq IN (4, 5)"
                )
            )
        }
        for a, b in ((4, 5), (5, 4)):
            r = rows[b]
            conn.execute(
                text(
                    "UPDATE audit_entries SET at=:at, actor=:actor, action=:action, "
                    "subject=:subject, payload_digest=:pd, prev_hash=:prev, entry_hash=:h "
                    "WHERE seq=:seq"
                ),
                dict(
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    subject=r.subject,
                    pd=r.payload_digest,
                    prev=r.prev_hash,
                    h=r.entry_hash,
                    seq=a,
                ),
            )
    v = verify_audit(chain)
    assert not v.ok and v.first_bad == 4


def test_inserted_entry_with_recomputed_hashes_after_it(chain: Home) -> None:
    """An attacker who inserts an entry and rehashes everything after it still fails
    against the witness file, which holds the original head."""
    with chain.sessions() as s:
        entries = audit.entries(s)
    with chain.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_payloads"))
        conn.execute(text("DELETE FROM audit_entries"))
        prev, seq = audit.GENESIS, 0
        forged = entries[:2] + [None] + entries[2:]
        for e in forged:
            seq += 1
            fields = (
                ("2020-01-01T00:00:00+00:00", "mallory", "member.add", "x", "0" * 64)
                if e is None
                else (e.at, e.actor, e.action, e.subject, e.payload_digest)
            )
            h = audit.entry_hash(seq, *fields, prev)
            conn.execute(
                text(
                    "INSERT INTO audit_entries VALUES (:seq, :at, :actor, :action, :subject, "
                    ":pd, :prev, :h)"
                ),
                dict(
                    seq=seq,
                    at=fields[0],
                    actor=fields[1],
                    action=fields[2],
                    subject=fields[3],
                    pd=fields[4],
                    prev=prev,
                    h=h,
                ),
            )
            prev = h
        conn.execute(text("UPDATE audit_head SET seq=:s, entry_hash=:h"), dict(s=seq, h=prev))
    v = verify_audit(chain)
    assert not v.ok and "witness" in (v.problem or "")


def test_truncated_chain(chain: Home) -> None:
    _sql(chain, "DELETE FROM audit_payloads WHERE seq >= 5")
    _sql(chain, "DELETE FROM audit_entries WHERE seq >= 5")
    v = verify_audit(chain)
    assert not v.ok and "truncated" in (v.problem or "")


def test_truncation_with_head_rewritten_is_caught_by_witness_then_anchor(chain: Home) -> None:
    with chain.sessions() as s:
        anchored = audit.head(s)[1]
        four = audit.entries(s)[3].entry_hash
    _sql(chain, "DELETE FROM audit_payloads WHERE seq >= 5")
    _sql(chain, "DELETE FROM audit_entries WHERE seq >= 5")
    _sql(chain, "UPDATE audit_head SET seq = 4, entry_hash = :h", h=four)
    v = verify_audit(chain)
    assert not v.ok and "witness" in (v.problem or "")
    (chain.settings.home / "audit.head").write_text(f"4 {four}\n")  # attacker fixes it too
    assert verify_audit(chain).ok
    v = verify_audit(chain, anchor=anchored)  # …but an anchor kept elsewhere remembers
    assert not v.ok and "anchored" in (v.problem or "")


def test_entries_name_members_by_pseudonym_only(chain: Home) -> None:
    with chain.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM audit_entries")).all())
        dump += repr(conn.execute(text("SELECT * FROM audit_payloads")).all())
    assert "ann" not in dump and "ben" not in dump
