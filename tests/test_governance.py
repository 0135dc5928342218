"""Data requests, votes, the state machine, exact payouts and the ledger."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tunetrust import (
    ConflictError,
    Home,
    Settings,
    add_member,
    decide_consent,
    get_member,
    import_export,
    init_home,
    open_home,
    verify_audit,
)
from tunetrust.coop import governance, ledger
from tunetrust.formats.synth import render, synthesize, write_zip
from tunetrust.store.models import BudgetSpend, Vote

SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30, period: {from: 2024-01-01, to: 2024-06-30}}
group_by: [month]
metrics: [plays, minutes, listeners]
bounds: {max_partitions: 6, max_plays_per_partition: 20, max_minutes_per_play: 8}
privacy: {epsilon: 0.5, delta: 1.0e-6}
keys: public
"""


@given(
    st.integers(0, 10**9),
    st.dictionaries(st.text(min_size=1, max_size=8), st.floats(0, 1e6), max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_splits_sum_exactly_and_pay_no_one_else(total: int, weights: dict[str, float]) -> None:
    if not weights and total:
        with pytest.raises(Exception, match="no one to pay"):
            ledger.split_cents(total, weights)
        return
    shares = ledger.split_cents(total, weights)
    assert sum(shares.values()) == total
    assert set(shares) == set(weights) and all(v >= 0 for v in shares.values())
    whole = sum(max(0.0, w) for w in weights.values())
    if whole > 0:
        for k, w in weights.items():  # largest remainder: never more than 1 cent off exact
            assert abs(shares[k] - total * w / whole) < 1 + 1e-6 * total


def _coop(
    tmp_path: Path, n: int, *, listens: int = 0, db_url: str | None = None, **options: Any
) -> Home:
    home = init_home(Settings(home=tmp_path / "home", database_url=db_url, **options))
    for i in range(n):
        name = f"v{i:03d}"
        add_member(home, name)
        if listens:
            path = tmp_path / f"{name}.zip"
            write_zip(
                render(synthesize("extended-c", listens, 4_000 + i, years=1), "extended-c"), path
            )
            import_export(home, name, path)
    return home


def _request(home: Home, price: int = 100_001) -> str:
    governance.add_buyer(home, "Acme Research", "data@acme.invalid", "SE")
    req = governance.create_request(
        home,
        buyer="Acme Research",
        spec_text=SPEC,
        price_cents=price,
        currency="EUR",
        licence="research-only",
        voting_days=7,
    )
    return req.id


def test_whole_lifecycle_with_thirty_members(tmp_path: Path) -> None:
    home = _coop(tmp_path, 30, listens=400)
    for i in range(25):  # 25 consent; 5 do not
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    rid = _request(home)
    opened = governance.open_request(home, rid)
    assert len(opened.eligible) == 25
    for i in range(25):
        choice = "no" if i < 4 else "abstain" if i < 6 else "yes"
        governance.cast_vote(home, f"v{i:03d}", rid, choice)
    governance.cast_vote(home, "v020", rid, "no")  # a member changes their vote
    governance.cast_vote(home, "v020", rid, "yes")
    decide_consent(home, "v024", "research", granted=False)  # withdraws after voting
    result = governance.close_request(home, rid)
    assert (result.yes, result.no, result.abstain, result.voters) == (19, 4, 2, 25)
    assert result.passed and result.quorum_met
    paid = governance.deliver(home, rid)
    # included: consented at opening, still consenting, did not vote no → 25 − 4 − 1 = 20
    with home.sessions() as s:
        included = set(
            s.scalars(
                select(BudgetSpend.member_id).where(BudgetSpend.release_id == paid["release"])
            )
        )
    expected = {get_member(home, f"v{i:03d}").id for i in range(4, 24)}
    assert included == expected
    assert paid["members_paid"] == 20
    assert paid["fee_cents"] == 10_000  # 10 % of 1,000.01 EUR, rounded down
    assert paid["payouts_cents"] == 100_001 - 10_000
    balances = {(b.account, b.currency): b.cents for b in ledger.balances(home)}
    assert sum(balances.values()) == 0
    assert balances[("treasury", "EUR")] == 10_000
    no_voter = get_member(home, "v000").pseudonym
    assert ("member:" + no_voter, "EUR") not in balances  # excluded members are not paid
    assert ledger.verify(home).ok and verify_audit(home).ok
    statement = ledger.statement(home, "member:" + get_member(home, "v010").pseudonym)
    assert len(statement) == 1 and statement[0][3] > 0
    assert governance.show_request(home, rid)["state"] == "paid"
    home.close()


@pytest.mark.parametrize(
    ("steps", "bad", "message"),
    [
        ([], "close", "cannot close a request that is draft"),
        ([], "deliver", "cannot deliver a request that is draft"),
        (["open"], "open", "cannot open a request that is open"),
        (["open"], "deliver", "cannot deliver a request that is open"),
        (["open", "close"], "close", "cannot close a request that is failed"),
        (["open", "close"], "vote", "voting is closed: the request is failed"),
        ([], "vote", "voting is closed: the request is draft"),
    ],
)
def test_illegal_moves_are_refused(
    tmp_path: Path, steps: list[str], bad: str, message: str
) -> None:
    home = _coop(tmp_path, 2)
    decide_consent(home, "v000", "research", granted=True)
    rid = _request(home)
    actions = {
        "open": lambda: governance.open_request(home, rid),
        "close": lambda: governance.close_request(home, rid),
        "deliver": lambda: governance.deliver(home, rid),
        "vote": lambda: governance.cast_vote(home, "v000", rid, "yes"),
    }
    for step in steps:
        actions[step]()
    with pytest.raises(ConflictError, match=message):
        actions[bad]()
    home.close()


def test_a_failed_build_releases_the_claim_and_a_second_delivery_is_refused(
    tmp_path: Path,
) -> None:
    home = _coop(tmp_path, 3, listens=300, epsilon_cap=0.4)  # below the spec's ε 0.5
    for i in range(3):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    rid = _request(home)
    governance.open_request(home, rid)
    for i in range(3):
        governance.cast_vote(home, f"v{i:03d}", rid, "yes")
    assert governance.close_request(home, rid).passed
    with pytest.raises(ConflictError, match="privacy budget"):
        governance.deliver(home, rid)
    assert governance.show_request(home, rid)["state"] == "passed"  # claim released
    with home.transaction() as s:
        governance._request(s, rid).state = "building"  # as if a delivery were under way
    with pytest.raises(ConflictError, match="cannot deliver a request that is building"):
        governance.deliver(home, rid)
    home.close()


def test_only_members_eligible_at_opening_may_vote(tmp_path: Path) -> None:
    home = _coop(tmp_path, 2)
    decide_consent(home, "v000", "research", granted=True)
    rid = _request(home)
    governance.open_request(home, rid)
    decide_consent(home, "v001", "research", granted=True)  # too late for this vote
    with pytest.raises(ConflictError, match="when the vote opened"):
        governance.cast_vote(home, "v001", rid, "yes")
    home.close()


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(governance.CHOICES)), max_size=25))
@settings(max_examples=12, deadline=None)
def test_any_sequence_of_votes_tallies_like_a_recount(
    tmp_path_factory: pytest.TempPathFactory, votes: list[tuple[int, str]]
) -> None:
    home = _coop(tmp_path_factory.mktemp("recount"), 6)
    for i in range(6):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    rid = _request(home)
    governance.open_request(home, rid)
    final: dict[int, str] = {}
    for who, choice in votes:
        governance.cast_vote(home, f"v{who:03d}", rid, choice)
        final[who] = choice
    t = governance.tally(home, rid)
    recount = {c: sum(1 for v in final.values() if v == c) for c in governance.CHOICES}
    assert (t.yes, t.no, t.abstain, t.voters) == (
        recount["yes"],
        recount["no"],
        recount["abstain"],
        len(final),
    )
    home.close()


def _vote_in_child(settings_: Settings, name: str, rid: str, choice: str) -> None:
    home = open_home(settings_)
    try:
        governance.cast_vote(home, name, rid, choice)
    finally:
        home.close()


@pytest.mark.slow
def test_two_hundred_concurrent_votes_count_once(tmp_path: Path, db_url: str | None) -> None:
    home = _coop(tmp_path, 100, db_url=db_url)
    for i in range(100):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    rid = _request(home)
    governance.open_request(home, rid)
    settings_ = home.settings
    home.close()
    ctx = multiprocessing.get_context("fork")
    # every member votes twice at once: first "no", then "yes" — 200 processes in flight
    procs = [
        ctx.Process(
            target=_vote_in_child,
            args=(settings_, f"v{i % 100:03d}", rid, "no" if i < 100 else "yes"),
        )
        for i in range(200)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 200
    home = open_home(settings_)
    with home.sessions() as s:
        rows = s.scalar(select(func.count()).select_from(Vote).where(Vote.request_id == rid))
    t = governance.tally(home, rid)
    assert rows == 100 and t.voters == 100 and t.yes + t.no == 100
    assert verify_audit(home).ok
    home.close()


def test_ledger_verify_catches_tampering(tmp_path: Path) -> None:
    home = _coop(tmp_path, 1)
    with home.transaction() as s:
        ledger.post(s, memo="test", currency="EUR", entries={"buyer:1": -500, "treasury": 500})
    assert ledger.verify(home).ok
    with home.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ledger_entries SET cents = 400 WHERE account = 'treasury'")
    problems = ledger.verify(home).problems
    assert any("does not balance" in p for p in problems)
    assert any("balance of treasury" in p for p in problems)
    with pytest.raises(Exception, match="must balance"), home.transaction() as s:
        ledger.post(s, memo="bad", currency="EUR", entries={"a": -1, "b": 2})
    home.close()


def test_governance_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETRUST_QUORUM", "0.3")
    monkeypatch.setenv("TUNETRUST_WEIGHTED_VOTES", "yes")
    monkeypatch.setenv("TUNETRUST_FEE_BASIS_POINTS", "250")
    s = Settings.from_env(home=Path("/nonexistent"))
    assert (s.quorum, s.weighted_votes, s.fee_basis_points, s.majority) == (0.3, True, 250, 0.5)
    monkeypatch.setenv("TUNETRUST_MAJORITY", "1.5")
    with pytest.raises(Exception, match="TUNETRUST_MAJORITY must be a number from 0 to 1"):
        Settings.from_env()
