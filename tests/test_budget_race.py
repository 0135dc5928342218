"""Two processes spend the last of one member's ε budget at the same moment: one wins.

Each child opens the home, waits at a barrier with the other, then charges the
budget with ``coop.budget.spend`` inside ``home.transaction()`` and keeps the
transaction open a moment before committing (as the release build does while it
records the release and its audit entry), so the two transactions overlap for real.
``as_built`` holds the home's write lock around it, as ``releases/build.py`` does;
``spend_alone`` relies on the accountant and the database alone.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tunetrust import ConflictError, Home, Settings, add_member, get_member, init_home, open_home
from tunetrust.coop import budget
from tunetrust.coop.budget import Epsilon
from tunetrust.store.models import BudgetSpend

CAP = "3"
ALREADY_SPENT = "2"  # one unit is left: either charge fits alone, the two together do not
CHARGE = "1"
PURPOSE = "research"
YEAR = 2026
HOLD_S = 0.5  # how long the winner keeps its transaction open before committing


def _spend_in_child(
    settings: Settings, release_id: str, with_lock: bool, barrier: Barrier, results: Queue[str]
) -> None:
    home = open_home(settings)
    try:
        member_id = _member_id(home)
        barrier.wait(timeout=60)
        try:
            if with_lock:
                with home.lock(), home.transaction() as s:
                    _charge(s, member_id, release_id)
            else:
                with home.transaction() as s:
                    _charge(s, member_id, release_id)
        except ConflictError as exc:
            results.put(f"refused: {exc}")
        else:
            results.put("won")
    finally:
        home.close()


def _charge(s: Session, member_id: int, release_id: str) -> None:
    budget.spend(
        s,
        release_id=release_id,
        member_ids=[member_id],
        purpose=PURPOSE,
        year=YEAR,
        amount=Epsilon.of(CHARGE),
        delta=1e-6,
    )
    s.flush()
    time.sleep(HOLD_S)  # the other process reads and charges while this one is uncommitted


def _member_id(home: Home) -> int:
    return get_member(home, "alice").id


@pytest.mark.parametrize("with_lock", [True, False], ids=["as_built", "spend_alone"])
def test_two_processes_spend_the_last_of_a_budget_one_wins(
    tmp_path: Path, db_url: str | None, with_lock: bool
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=db_url, epsilon_cap=float(CAP))
    home = init_home(settings)
    try:
        add_member(home, "alice")
        member_id = _member_id(home)
        with home.transaction() as s:
            budget.spend(
                s,
                release_id="earlier",
                member_ids=[member_id],
                purpose=PURPOSE,
                year=YEAR,
                amount=Epsilon.of(ALREADY_SPENT),
                delta=1e-6,
            )

        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        results: Queue[str] = ctx.Queue()
        procs = [
            ctx.Process(
                target=_spend_in_child, args=(settings, f"r{i}", with_lock, barrier, results)
            )
            for i in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        assert [p.exitcode for p in procs] == [0, 0]
        outcomes = sorted(results.get(timeout=5) for _ in procs)

        with home.sessions() as s:
            total = s.scalar(
                select(func.sum(BudgetSpend.micro_epsilon)).where(
                    BudgetSpend.member_id == member_id,
                    BudgetSpend.purpose == PURPOSE,
                    BudgetSpend.year == YEAR,
                )
            )
            releases = s.scalars(
                select(BudgetSpend.release_id).where(BudgetSpend.release_id != "earlier")
            ).all()
    finally:
        home.close()

    assert total is not None and total <= Epsilon.of(CAP).micro, "the budget was overdrawn"
    assert outcomes[0] == "refused: privacy budget: requested ε 1, remaining ε 0, difference ε 1"
    assert outcomes[1] == "won"
    assert len(releases) == 1 and total == Epsilon.of(CAP).micro
