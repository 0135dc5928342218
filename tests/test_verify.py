"""`tunetrust verify`: every state-bearing table answers to the audit chain.

Each edit below leaves `audit verify` and `ledger verify` passing (they check the chain
and that money balances, not what the tables say happened); `verify` must fail on it,
and must keep passing through what the cooperative does on purpose (an erasure).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.factories import consenting_members, passed_request
from tunetrust import Settings, init_home, open_home
from tunetrust.services import audit, governance, members
from tunetrust.services.models import Actor

STEWARD = Actor.steward()


@pytest.fixture(scope="module")
def sold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with members, consents, a cap, votes, a release and a paid sale."""
    root = tmp_path_factory.mktemp("verify")
    home = init_home(Settings(home=root / "home"))
    names = consenting_members(home, root, 6)
    members.lower_budget_cap(home, Actor.member("m0"), "m0", "ai-training", 1.0)
    governance.set_rules(home, STEWARD, reason="general meeting", quorum=0.6)
    rid = passed_request(home, names, price=60_000)
    assert governance.deliver(home, STEWARD, rid).state == "paid"
    home.close()
    return root / "home"


def _checks(home_dir: Path) -> tuple[bool, bool, list[str]]:
    home = open_home(Settings(home=home_dir))
    try:
        result = audit.verify_everything(home, STEWARD)
        return result.audit.ok, result.ledger.ok, result.state.problems
    finally:
        home.close()


def _move_money(db: sqlite3.Connection) -> None:
    (a, b) = [
        r[0]
        for r in db.execute(
            "select account from ledger_entries where account like 'member:%' limit 2"
        )
    ]
    for account, delta in ((a, -5000), (b, 5000)):  # 50.00 EUR from one member to another
        db.execute(
            "update ledger_entries set cents = cents + ? where account = ?", (delta, account)
        )
        db.execute(
            "update ledger_balances set cents = cents + ? where account = ?", (delta, account)
        )


def _relabel(db: sqlite3.Connection) -> None:
    (a,) = db.execute("select account from ledger_entries where account like 'member:%'").fetchone()
    for table in ("ledger_entries", "ledger_balances"):
        db.execute(f"update {table} set account = 'member:thief' where account = ?", (a,))


def _insert_consent(db: sqlite3.Connection) -> None:
    (member_id,) = db.execute("select id from members limit 1").fetchone()
    db.execute(
        "insert into consents (member_id, purpose, granted, at, actor) "
        "values (?, 'ai-training', 1, '2026-01-01 00:00:00', 'steward')",
        (member_id,),
    )


TAMPERING: dict[str, Callable[[sqlite3.Connection], None]] = {
    "audit payloads deleted": lambda db: db.execute(
        "delete from audit_payloads where seq in "
        "(select seq from audit_entries where action in ('request.pay', 'release.build'))"
    ),
    "50 EUR moved between two members": _move_money,
    "a payout account relabelled": _relabel,
    "every budget spend deleted": lambda db: db.execute("delete from budget_spends"),
    "a consent row inserted": _insert_consent,
    "a ballot changed": lambda db: db.execute("update votes set choice = 'no' where id = 1"),
    "a member's own cap raised": lambda db: db.execute(
        "update budget_caps set micro_epsilon = micro_epsilon * 3"
    ),
    "the rules edited": lambda db: db.execute("update coop_rules set fee_basis_points = 0"),
}


# what verify must say about each edit: the right check found it, not any check
FOUND_BY = {
    "audit payloads deleted": "has lost its payload",
    "50 EUR moved between two members": "its entries are not the ones recorded",
    "a payout account relabelled": "its entries are not the ones recorded",
    "every budget spend deleted": "0 budget spends stored",
    "a consent row inserted": "consent rows do not match",
    "a ballot changed": "a ballot of member",
    "a member's own cap raised": "own ε cap for ai-training",
    "the rules edited": "rules table",
}


def test_a_cooperative_that_did_its_work_verifies(sold: Path) -> None:
    assert _checks(sold) == (True, True, [])


@pytest.mark.parametrize("edit", sorted(TAMPERING))
def test_an_edit_behind_the_logs_back_is_found(sold: Path, tmp_path: Path, edit: str) -> None:
    home = tmp_path / "home"
    shutil.copytree(sold, home)
    with sqlite3.connect(home / "tunetrust.db") as db:
        TAMPERING[edit](db)
    chain_ok, ledger_ok, problems = _checks(home)
    assert chain_ok and ledger_ok  # what the older verifiers could not see
    assert problems, f"{edit}: verify found nothing"
    assert any(FOUND_BY[edit] in p for p in problems), problems


def test_an_erasure_is_not_tampering(sold: Path, tmp_path: Path) -> None:
    home_dir = tmp_path / "home"
    shutil.copytree(sold, home_dir)
    home = open_home(Settings(home=home_dir))
    try:
        members.erase(home, Actor.member("m1"), "m1")
    finally:
        home.close()
    assert _checks(home_dir) == (True, True, [])
