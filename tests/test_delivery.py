"""Delivery is a resumable sequence of recorded steps: claim → build → deliver → pay.

A real ``tunetrust request deliver`` process is killed (SIGKILL) at each step; running
``request deliver`` again, or ``tunetrust doctor``, finishes the sale from the step
recorded, with one release, one budget spend per member, one payment, and every
verifier passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.factories import consenting_members, passed_request
from tunetrust import Settings, init_home, open_home
from tunetrust.coop import ledger
from tunetrust.services import audit, governance, releases
from tunetrust.services.models import Actor
from tunetrust.store.models import BudgetSpend, DataRequest, LedgerTransaction, Release

STEWARD = Actor.steward()
MEMBERS = 8
POINTS = [
    "deliver.claimed",
    "release.staged",
    "release.committed",
    "deliver.built",
    "deliver.delivered",
]


@pytest.fixture(scope="module")
def a_passed_request(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home whose one request passed its vote and awaits delivery."""
    root = tmp_path_factory.mktemp("delivery")
    home = init_home(Settings(home=root / "home"))
    rid = passed_request(home, consenting_members(home, root, MEMBERS), price=80_000)
    home.close()
    return root / "home", rid


def _cli(home: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TUNETRUST_CRASH_AT"}
    if crash_at:
        env["TUNETRUST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "tunetrust", "--home", str(home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _sold_once(home_dir: Path, request_id: str) -> None:
    home = open_home(Settings(home=home_dir))
    try:
        with home.sessions() as s:
            req = s.get(DataRequest, request_id)
            assert req is not None and req.state == "paid", req and req.state
            assert s.scalar(select(func.count()).select_from(Release)) == 1
            assert req.release_id == s.scalar(select(Release.id))
            spends = s.scalar(select(func.count()).select_from(BudgetSpend)) or 0
            assert spends == MEMBERS  # each member's ε spent once, for the one release
            paid = s.scalar(
                select(func.count())
                .select_from(LedgerTransaction)
                .where(LedgerTransaction.request_id == request_id)
            )
            assert paid == 1  # one payment
        assert ledger.verify(home).ok
        assert audit.verify_chain(home, STEWARD).ok
        assert releases.verify(home, STEWARD, str(req.release_id)).ok
        shown = governance.show_request(home, STEWARD, request_id)
        assert shown.state == "paid"
        # nothing a killed build staged is left beside the one published release
        assert [p.name for p in (home_dir / "releases").iterdir()] == [str(req.release_id)]
    finally:
        home.close()


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("resume", ["request deliver", "doctor"])
def test_a_delivery_killed_at_any_step_is_finished_once(
    a_passed_request: tuple[Path, str], tmp_path: Path, point: str, resume: str
) -> None:
    source, request_id = a_passed_request
    home = tmp_path / "home"
    shutil.copytree(source, home)
    killed = _cli(home, "request", "deliver", request_id, crash_at=point)
    assert killed.returncode == -9, killed.stderr  # SIGKILL at the point, nothing after
    again = _cli(home, *resume.split(), *([request_id] if resume != "doctor" else []))
    assert again.returncode == 0, again.stderr
    _sold_once(home, request_id)
    # and once more: nothing is built, spent or paid twice
    repeat = _cli(home, "doctor")
    assert repeat.returncode == 0, repeat.stderr
    _sold_once(home, request_id)


def test_a_paid_request_is_not_delivered_again(
    a_passed_request: tuple[Path, str], tmp_path: Path
) -> None:
    source, request_id = a_passed_request
    home = tmp_path / "home"
    shutil.copytree(source, home)
    assert _cli(home, "request", "deliver", request_id).returncode == 0
    second = _cli(home, "request", "deliver", request_id)
    assert second.returncode == 1 and "paid" in second.stderr
    _sold_once(home, request_id)
