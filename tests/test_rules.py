"""The cooperative's rules: in the database, changed only by a recorded decision, frozen
into each request when its vote opens, and never read from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from tunetrust import ConflictError, Home, InputError, Settings, decide_consent, open_home
from tunetrust.cli import app
from tunetrust.coop import audit, governance
from tunetrust.services import sale
from tunetrust.settings import Rules
from tunetrust.store import db
from tunetrust.store.models import AuditEntry, AuditPayload

from .test_governance import SPEC, _coop, _request

GOVERNANCE_VARIABLES = {
    "TUNETRUST_QUORUM": "0",
    "TUNETRUST_MAJORITY": "0",
    "TUNETRUST_WEIGHTED_VOTES": "true",
    "TUNETRUST_FEE_BASIS_POINTS": "0",
    "TUNETRUST_NO_VOTES_OPT_OUT": "false",
}


def cli(home: Home, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command in-process; returns its standard output (exit 0 required)."""
    result = CliRunner().invoke(app, ["--home", str(home.settings.home), *args], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _another_request(home: Home) -> str:
    """A second request from the buyer ``_request`` added."""
    return sale.create_request(
        home,
        buyer="Acme Research",
        spec_text=SPEC,
        price=100_000,
        currency="EUR",
        licence="research-only",
    ).id


def _audit(home: Home, action: str) -> list[dict[str, object]]:
    with home.sessions() as s:
        rows = s.execute(
            select(AuditPayload.payload)
            .join(AuditEntry, AuditEntry.seq == AuditPayload.seq)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.seq)
        )
        return [p for (p,) in rows]


def test_the_environment_cannot_pass_a_vote(tmp_path: Path) -> None:
    # issue 13: `TUNETRUST_MAJORITY=0 tunetrust request close R` passed a 1 yes / 12 no vote
    home = _coop(tmp_path, 13)
    for i in range(13):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    cli(home, "buyer", "add", "Acme Research", "--contact", "d@acme.invalid", "--country", "SE")
    created = cli(
        home,
        *("request", "create", "--buyer", "Acme Research", "--spec", str(spec)),
        *("--price", "100000", "--json"),
    )
    rid = json.loads(created)["id"]
    cli(home, "request", "open", rid, env=GOVERNANCE_VARIABLES)
    for i in range(13):
        cli(home, "vote", f"v{i:03d}", rid, "yes" if i == 0 else "no")
    cli(home, "request", "close", rid, env={"TUNETRUST_MAJORITY": "0"})  # the attack
    assert governance.show_request(home, rid).state == "failed"
    assert governance.tally(home, rid).passed is False
    home.close()


def test_rules_are_frozen_into_a_request_when_its_vote_opens(tmp_path: Path) -> None:
    home = _coop(tmp_path, 13)
    for i in range(13):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    before = _request(home)
    sale.open_request(home, before)
    governance.set_rules(home, majority=0.6, quorum=1.0, reason="general meeting, 2026-05-01")
    after = _another_request(home)
    sale.open_request(home, after)
    for rid in (before, after):
        for i in range(13):  # 7 yes, 6 no: above one half, below 0.6
            governance.cast_vote(home, f"v{i:03d}", rid, "yes" if i < 7 else "no")
    assert governance.close_request(home, before).passed  # the rules it was opened under
    assert not governance.close_request(home, after).passed  # the rules since the change
    assert governance.show_request(home, before).rules == Rules()
    assert governance.show_request(home, after).rules == Rules(quorum=1.0, majority=0.6)
    opened = _audit(home, "request.open")
    assert [p["rules"] for p in opened] == [Rules().to_dict(), Rules(1.0, 0.6).to_dict()]
    shown = json.loads(cli(home, "request", "show", before, "--json"))
    assert shown["rules"] == Rules().to_dict()
    home.close()


def test_fee_and_no_voters_are_the_rules_frozen_at_open(tmp_path: Path) -> None:
    home = _coop(tmp_path, 3, listens=300)
    for i in range(3):
        decide_consent(home, f"v{i:03d}", "research", granted=True)
    rid = _request(home, price=100_000)
    sale.open_request(home, rid)
    governance.set_rules(
        home, fee_basis_points=5000, no_votes_opt_out=False, reason="a later decision"
    )
    for i, choice in enumerate(("yes", "yes", "no")):
        governance.cast_vote(home, f"v{i:03d}", rid, choice)
    assert governance.close_request(home, rid).passed
    paid = sale.deliver(home, rid)
    assert paid.fee == 10_000  # 10 %, the fee when the vote opened, not 50 %
    assert paid.members_paid == 2  # the no-voter is left out, as the rules said at open
    home.close()


def test_a_new_home_starts_with_the_default_rules_and_changes_are_recorded(
    coop: Home,
) -> None:
    history = governance.rules_history(coop)
    assert len(history) == 1 and history[0].rules == Rules() == governance.rules_in_force(coop)
    assert history[0].actor == "tunetrust" and history[0].reason
    change = governance.set_rules(coop, quorum=0.6, reason="  general meeting 2026  ")
    assert governance.rules_in_force(coop) == Rules(quorum=0.6)
    history = governance.rules_history(coop)
    assert [h.rules.quorum for h in history] == [0.5, 0.6]
    assert history[-1].reason == "general meeting 2026" and history[-1].actor == "steward"
    assert history[-1].changed == {"quorum": {"from": 0.5, "to": 0.6}} == change.changed
    assert history[-1].at.tzinfo is not None
    (entry,) = _audit(coop, "rules.set")
    assert entry == {
        "rules": Rules(quorum=0.6).to_dict(),
        "changed": {"quorum": {"from": 0.5, "to": 0.6}},
        "reason": "general meeting 2026",
    }
    assert audit.verify_home(coop).ok


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quorum": 0.6, "reason": "   "}, "give a reason"),
        ({"quorum": 0.6, "reason": "x\x1b[2J"}, "control or formatting"),
        ({"quorum": 0.0, "reason": "r"}, "rule quorum"),
        ({"quorum": 1.5, "reason": "r"}, "rule quorum"),
        ({"majority": 0.0, "reason": "r"}, "rule majority"),  # a minority would decide
        ({"majority": 1.0, "reason": "r"}, "rule majority"),  # nothing could ever pass
        ({"fee_basis_points": 10_001, "reason": "r"}, "rule fee_basis_points"),
        ({"quorum": 0.5, "reason": "r"}, "nothing to change"),
        ({"reason": "r"}, "nothing to change"),
    ],
)
def test_bad_rule_changes_are_refused(home: Home, changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        governance.set_rules(home, **changes)  # type: ignore[arg-type]
    assert len(governance.rules_history(home)) == 1 and not _audit(home, "rules.set")


def test_rules_commands(home: Home) -> None:
    shown = json.loads(cli(home, "rules", "show", "--json"))
    assert shown["rules"] == Rules().to_dict() and len(shown["history"]) == 1
    cli(home, "rules", "set", "--quorum", "0.6", "--one-member-one-vote", "--reason", "AGM")
    cli(home, "rules", "set", "--weighted-votes", "--no-voters-included", "--reason", "vote 7")
    shown = json.loads(cli(home, "rules", "show", "--json"))
    assert (
        shown["rules"] == Rules(quorum=0.6, weighted_votes=True, no_votes_opt_out=False).to_dict()
    )
    assert [h["reason"] for h in shown["history"][1:]] == ["AGM", "vote 7"]
    assert shown["history"][-1]["at"].endswith("+00:00")
    human = cli(home, "rules", "show")
    assert "60 %" in human and "vote 7" in human and "{" not in human
    missing = CliRunner().invoke(app, ["--home", str(home.settings.home), "rules", "set"])
    assert missing.exit_code == 2  # --reason is required


def test_the_environment_no_longer_sets_governance(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (GOVERNANCE_VARIABLES | {"TUNETRUST_MAJORITY": "1.5"}).items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(home=Path("/nonexistent"))  # no error: not read at all
    # epsilon_cap in the settings is only the cap a new home starts with (migration 0010)
    assert not any(hasattr(settings, f) for f in Rules().to_dict() if f != "epsilon_cap")


def test_upgrade_from_0006_seeds_the_rules_and_freezes_open_requests(
    tmp_path: Path, db_url: str | None
) -> None:
    home = _coop(tmp_path, 2, db_url=db_url)
    decide_consent(home, "v000", "research", granted=True)
    draft, opened = _request(home), _another_request(home)
    sale.open_request(home, opened)
    cfg = db._alembic_config(home.engine)
    cfg.attributes["master_key"] = lambda: home.master_key  # 0009 unseals names going down
    command.downgrade(cfg, "0006")  # as the last version left it
    tables = inspect(home.engine)
    assert "coop_rules" not in tables.get_table_names()
    assert "rules" not in {c["name"] for c in tables.get_columns("data_requests")}
    settings = home.settings
    home.close()
    home = open_home(settings)  # migrates to the newest revision on open
    assert [h.rules for h in governance.rules_history(home)] == [Rules()]
    assert governance.show_request(home, draft).rules is None
    assert governance.show_request(home, opened).rules == Rules()
    governance.cast_vote(home, "v000", opened, "yes")
    assert governance.close_request(home, opened).passed  # every eligible member voted
    home.close()


def test_a_request_without_frozen_rules_is_not_decided_by_anything_else(home: Home) -> None:
    rid = _request(home)
    sale.open_request(home, rid)
    with home.transaction() as s:
        governance.find_request(s, rid).rules = None  # damaged: no rules to decide by
    with pytest.raises(ConflictError, match="no rules frozen"):
        governance.close_request(home, rid, early_reason="test")


def test_the_head_revision_opening_compares_with_is_alembics(home: Home) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db._alembic_config(home.engine))
    assert script.get_current_head() == db.HEAD
    assert db.is_current(home.engine)
