"""Verify state against the audit chain: what the tables hold must be what was recorded.

``audit verify`` proves the chain itself; ``ledger verify`` that money balances. Neither
sees a table edited behind their back: a consent row inserted, a payout moved between
two members, every budget spend deleted, a payload removed. This module recomputes
each state-bearing table from the chained entries and compares:

- **payloads**: an entry may lack its payload only if it is about a member whose
  erasure is itself in the chain (erasure deletes those payloads on purpose);
- **consents**: each member's consent rows are the grant/withdraw entries about them,
  in order;
- **votes**: each member's ballot on each request is their last ``vote.cast``;
- **budget caps**: each member's own cap is their last ``budget.cap``;
- **budget spends**: each release charged exactly the members its ``release.build``
  entry counted, each the ε it recorded, and they hash to its Merkle root;
- **ledger**: each sale's transaction has exactly the entries its ``request.pay``
  entry digested (older entries: the amounts it recorded), and every transaction
  belongs to a recorded sale;
- **rules**: each change of the rules is a ``rules.set`` entry with the same values.

The chain's payloads are hashed into it (``payload_digest``), so they cannot be edited
without ``audit verify`` failing; this module makes the tables answer to them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust.coop.budget import Epsilon
from tunetrust.coop.ledger import TREASURY, entries_digest
from tunetrust.releases.manifest import merkle_root
from tunetrust.store.home import Home
from tunetrust.store.models import (
    AuditEntry,
    AuditPayload,
    BudgetCap,
    BudgetSpend,
    Consent,
    CoopRules,
    LedgerEntry,
    LedgerTransaction,
    Member,
    Release,
    Vote,
)


@dataclass(frozen=True)
class StateCheck:
    """What :func:`verify_state` compared, and every difference it found."""

    ok: bool
    checked: dict[str, int]
    problems: list[str] = field(default_factory=list)


@dataclass
class _Chain:
    entries: list[AuditEntry]
    payloads: dict[int, dict[str, Any]]
    erased: set[str]  # pseudonyms whose erasure is in the chain

    def of(self, action: str) -> list[tuple[AuditEntry, dict[str, Any]]]:
        return [(e, self.payloads.get(e.seq, {})) for e in self.entries if e.action == action]


def verify_state(home: Home) -> StateCheck:
    """Recompute consents, votes, caps, spends, the ledger and the rules from the chain."""
    problems: list[str] = []
    checked: dict[str, int] = {}
    with home.sessions() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        payloads = {p.seq: p.payload for p in s.scalars(select(AuditPayload))}
        erased = {e.subject for e in entries if e.action == "member.erase"}
        chain = _Chain(entries, payloads, erased)
        members = {m.id: m for m in s.scalars(select(Member))}
        for check in (_payloads, _consents, _votes, _caps, _spends, _ledger, _rules):
            name, n, found = check(s, chain, members)
            checked[name] = n
            problems += found
    return StateCheck(not problems, checked, problems)


def _about(entry: AuditEntry) -> set[str]:
    actor = entry.actor.removeprefix("member:") if entry.actor.startswith("member:") else ""
    return {entry.subject, actor} - {""}


def _payloads(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    problems = [
        f"audit entry {e.seq} ({e.action}) has lost its payload, and it is about no erased member"
        for e in chain.entries
        if e.seq not in chain.payloads and not _about(e) & chain.erased
    ]
    return "payloads", len(chain.entries), problems


def _live(members: dict[int, Member], chain: _Chain) -> dict[int, str]:
    """Members whose records should all be there: not erased (by the chain or the row)."""
    return {
        i: m.pseudonym
        for i, m in members.items()
        if m.erased_at is None and m.pseudonym not in chain.erased
    }


def _consents(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    recorded: dict[str, list[tuple[int, str, bool]]] = defaultdict(list)
    for action in ("consent.grant", "consent.withdraw"):
        for e, p in chain.of(action):
            recorded[e.subject].append((e.seq, str(p.get("purpose")), action == "consent.grant"))
    stored: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    rows = list(s.scalars(select(Consent).order_by(Consent.id)))
    for c in rows:
        stored[c.member_id].append((c.purpose, c.granted))
    problems = []
    for member_id, pseudonym in _live(members, chain).items():
        expected = [(purpose, granted) for _, purpose, granted in sorted(recorded[pseudonym])]
        if stored.get(member_id, []) != expected:
            problems.append(
                f"member {pseudonym[:12]}: consent rows do not match the consent decisions "
                f"in the audit log ({len(stored.get(member_id, []))} rows, "
                f"{len(expected)} decisions)"
            )
    return "consents", len(rows), problems


def _votes(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    last: dict[tuple[str, str], str] = {}
    for e, p in chain.of("vote.cast"):
        last[(e.subject, str(p.get("member", e.actor.removeprefix("member:"))))] = str(
            p.get("choice")
        )
    live = _live(members, chain)
    rows = list(s.scalars(select(Vote)))
    stored = {(v.request_id, live[v.member_id]): v.choice for v in rows if v.member_id in live}
    expected = {k: v for k, v in last.items() if k[1] in live.values()}
    problems = [
        f"request {k[0][:12]}: a ballot of member {k[1][:12]} is not the one recorded"
        for k in sorted(set(stored) | set(expected))
        if stored.get(k) != expected.get(k)
    ]
    return "votes", len(rows), problems


def _caps(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    last: dict[tuple[str, str], int] = {}
    for e, p in chain.of("budget.cap"):
        last[(e.subject, str(p.get("purpose")))] = Epsilon.of(str(p.get("cap"))).micro
    live = _live(members, chain)
    rows = list(s.scalars(select(BudgetCap)))
    stored = {(live[c.member_id], c.purpose): c.micro_epsilon for c in rows if c.member_id in live}
    expected = {k: v for k, v in last.items() if k[0] in live.values()}
    problems = [
        f"member {k[0][:12]}: their own ε cap for {k[1]} is not the one recorded"
        for k in sorted(set(stored) | set(expected))
        if stored.get(k) != expected.get(k)
    ]
    return "budget caps", len(rows), problems


def _spends(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    spends: dict[str, list[BudgetSpend]] = defaultdict(list)
    rows = list(s.scalars(select(BudgetSpend)))
    for b in rows:
        spends[b.release_id].append(b)
    releases = {r.id: r for r in s.scalars(select(Release))}
    problems = []
    built = {e.subject: p for e, p in chain.of("release.build")}
    for release_id in sorted(set(built) | set(spends) | set(releases)):
        recorded = built.get(release_id)
        charged = spends.get(release_id, [])
        if recorded is None:
            problems.append(f"release {release_id[:12]} was built outside the audit log")
            continue
        n = int(recorded.get("members_included", -1))
        each = Epsilon.of(str(recorded.get("epsilon_per_member", "0"))).micro
        if len(charged) != n or any(b.micro_epsilon != each for b in charged):
            problems.append(
                f"release {release_id[:12]}: {len(charged)} budget spends stored, the audit "
                f"log recorded {n} of ε {recorded.get('epsilon_per_member')} each"
            )
            continue
        row = releases.get(release_id)
        if row is not None and row.merkle_secret:
            pseudonyms = [members[b.member_id].pseudonym for b in charged]
            if merkle_root(pseudonyms, bytes.fromhex(row.merkle_secret)) != recorded.get(
                "merkle_root"
            ):
                problems.append(
                    f"release {release_id[:12]}: the members charged are not the members "
                    "its Merkle root commits to"
                )
    return "budget spends", len(rows), problems


def _ledger(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    by_tx: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for e in s.scalars(select(LedgerEntry)):
        by_tx[e.transaction_id].append((e.account, e.currency, e.cents))
    txs = list(s.scalars(select(LedgerTransaction).order_by(LedgerTransaction.id)))
    sales = {e.subject: p for e, p in chain.of("request.pay")}
    problems = []
    seen: set[str] = set()
    for tx in txs:
        paid = sales.get(tx.request_id or "")
        if paid is None:
            problems.append(f"ledger transaction {tx.id} belongs to no sale in the audit log")
            continue
        seen.add(str(tx.request_id))
        lines = by_tx.get(tx.id, [])
        if "entries_sha256" in paid:
            if entries_digest(lines) != paid["entries_sha256"]:
                problems.append(
                    f"ledger transaction {tx.id}: its entries are not the ones recorded "
                    f"when request {str(tx.request_id)[:12]} was paid"
                )
            continue
        # recorded before entries were digested: the amounts the payment recorded
        members_paid = [v for a, _, v in lines if a.startswith("member:")]
        fee = sum(v for a, _, v in lines if a == TREASURY)
        buyer = sum(v for a, _, v in lines if a.startswith("buyer:"))
        if (buyer, fee, sum(members_paid), len(members_paid)) != (
            -int(paid.get("price", 0)),
            int(paid.get("fee", 0)),
            int(paid.get("payouts", 0)),
            int(paid.get("members_paid", 0)),
        ):
            problems.append(
                f"ledger transaction {tx.id}: its amounts are not the ones recorded "
                f"when request {str(tx.request_id)[:12]} was paid"
            )
    for request_id in sorted(set(sales) - seen):
        problems.append(f"request {request_id[:12]} was paid, but its transaction is missing")
    return "ledger transactions", len(txs), problems


def _rules(s: Session, chain: _Chain, members: dict[int, Member]) -> tuple[str, int, list[str]]:
    rows = list(s.scalars(select(CoopRules).order_by(CoopRules.id)))
    recorded = [p.get("rules") for _, p in chain.of("rules.set")]
    stored = [
        {
            "quorum": r.quorum,
            "majority": r.majority,
            "weighted_votes": r.weighted_votes,
            "fee_basis_points": r.fee_basis_points,
            "no_votes_opt_out": r.no_votes_opt_out,
            "epsilon_cap": r.epsilon_cap,
            "delta_cap": r.delta_cap,
            "min_members": r.min_members,
        }
        for r in rows[1:]  # the first rules are the home's defaults, written at creation
    ]
    # changes recorded before 0.3 name the governance rules only: compared on those
    stored = [
        {k: v for k, v in row.items() if k in (rec or {})}
        for row, rec in zip(stored, recorded, strict=False)
    ] + stored[len(recorded) :]
    problems = []
    if stored != recorded:
        problems.append(
            f"the cooperative's rules table ({len(rows)} rows) does not match the "
            f"{len(recorded)} rule changes in the audit log"
        )
    return "rules", len(rows), problems


__all__ = ["StateCheck", "verify_state"]
