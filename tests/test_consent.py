"""Consent per purpose with history, and one streaming account per member."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunetrust import (
    Home,
    InputError,
    Settings,
    add_member,
    decide_consent,
    import_export,
    init_home,
    show_member,
)
from tunetrust.coop.consent import history
from tunetrust.ingest.pipeline import ContributionRejected

from .factories import extended_row, json_bytes


def test_grant_withdraw_and_history(coop: Home) -> None:
    add_member(coop, "ann")
    assert show_member(coop, "ann").consents == {}
    assert decide_consent(coop, "ann", "research", granted=True)
    assert not decide_consent(coop, "ann", "research", granted=True)  # already so
    assert decide_consent(coop, "ann", "ai-training", granted=True)
    assert decide_consent(coop, "ann", "research", granted=False)
    assert show_member(coop, "ann").consents == {"research": False, "ai-training": True}
    rows = history(coop, "ann")
    assert [(r.purpose, r.granted) for r in rows] == [
        ("research", True),
        ("ai-training", True),
        ("research", False),
    ]
    assert rows[0].at <= rows[1].at <= rows[2].at


def test_withdrawing_what_was_never_given_records_nothing(coop: Home) -> None:
    add_member(coop, "ann")
    assert not decide_consent(coop, "ann", "research", granted=False)
    assert history(coop, "ann") == []


def test_unknown_purpose(coop: Home) -> None:
    add_member(coop, "ann")
    with pytest.raises(InputError, match="unknown purpose 'marketing'; choose from research"):
        decide_consent(coop, "ann", "marketing", granted=True)


def test_purposes_extend_in_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNETRUST_PURPOSES", "music-research, public-statistics")
    settings = Settings.from_env(home=tmp_path / "h")
    assert settings.purposes[-2:] == ("music-research", "public-statistics")
    home = init_home(settings)
    add_member(home, "ann")
    assert decide_consent(home, "ann", "public-statistics", granted=True)
    home.close()


def _export(tmp_path: Path, username: str, name: str = "endsong_0.json", **kw: object) -> Path:
    path = tmp_path / username / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(json_bytes([extended_row("b", username=username, **kw)]))
    return path


def test_one_account_per_member(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    add_member(coop, "ben")
    import_export(coop, "ann", _export(tmp_path, "acct-1"))
    assert show_member(coop, "ann").account_bound
    # ann's account again, later plays: fine
    import_export(
        coop, "ann", _export(tmp_path, "acct-1", "endsong_1.json", ts="2022-01-01T00:00:00Z")
    )
    # ben brings ann's account: held for the steward (the first is not always the owner)
    ben = _export(tmp_path, "acct-1", "endsong_2.json", ts="2023-01-01T00:00:00Z")
    held = import_export(coop, "ben", ben)
    (check,) = [c for c in held.checks if c.name == "account"]
    assert held.verdict == "disputed" and check.status == "hold" and held.listens_added == 0
    assert "already contributed by another member" in check.message
    assert not show_member(coop, "ben").account_bound
    # ann brings a second account: refused
    other = _export(tmp_path, "acct-2")
    assert "different streaming account" in _account_message(coop, "ann", other)


def _account_message(home: Home, member: str, path: Path) -> str:
    with pytest.raises(ContributionRejected, match=r"rejected by its checks \(account\)") as e:
        import_export(home, member, path)
    (check,) = [c for c in e.value.summary.checks if c.name == "account"]
    assert check.status == "fail" and e.value.summary.listens_added == 0
    return check.message


def test_export_mixing_accounts_is_refused(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    path = tmp_path / "endsong_0.json"
    path.write_bytes(
        json_bytes([extended_row("b", username="a"), extended_row("b", username="b", ms_played=3)])
    )
    assert "2 different streaming accounts" in _account_message(coop, "ann", path)
    assert not show_member(coop, "ann").account_bound
