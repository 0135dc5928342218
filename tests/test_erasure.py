"""Erasure against a determined reader: the name is never on disk in the clear, the
person's spent ε outlives the member row, and an erased member's ballot stops counting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tunetrust import (
    Home,
    NotFoundError,
    add_member,
    erase_member,
    get_member,
    import_export,
    list_members,
    verify_audit,
)
from tunetrust.coop import budget, governance
from tunetrust.coop.budget import Epsilon
from tunetrust.coop.keyring import account_marker
from tunetrust.errors import SetupError
from tunetrust.names import name_key
from tunetrust.services import sale
from tunetrust.store import keys
from tunetrust.store.models import AuditEntry, BudgetCarryover, DataRequest, Member, Vote

from .factories import extended_row, json_bytes

NAME = "Quillon Vexmoor"  # a name no other byte of the home could contain by chance
YEAR = datetime.now(UTC).year


def _export(tmp_path: Path, username: str, name: str, ts: str) -> Path:
    path = tmp_path / f"{username}-{name}" / "endsong_0.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(json_bytes([extended_row("b", username=username, ts=ts)]))
    return path


def _members_table(home: Home) -> list[dict[str, object]]:
    with home.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("select * from members")).mappings()]


def _holds(value: object, text: str) -> bool:
    if isinstance(value, bytes | memoryview):
        return text.encode() in bytes(value)
    return text.casefold() in str(value).casefold()


# --- names: sealed with the member's data key ------------------------------------------


def test_the_name_is_stored_sealed_and_unreadable_after_erasure(coop: Home) -> None:
    add_member(coop, NAME)
    assert get_member(coop, NAME.upper()).name == NAME  # lookups and display unchanged
    assert [m.name for m in list_members(coop)] == [NAME]
    (row,) = _members_table(coop)
    assert not any(_holds(v, NAME) for v in row.values()), "a column holds the name in the clear"
    assert row["name_key"] != name_key(NAME)  # keyed: a dictionary of names cannot test it
    sealed = row["name_sealed"]
    assert isinstance(sealed, bytes)
    pseudonym = str(row["pseudonym"])
    other = add_member(coop, "someone else")

    erase_member(coop, NAME)
    with pytest.raises(NotFoundError):
        get_member(coop, NAME)
    rows = {r["pseudonym"]: r for r in _members_table(coop)}
    erased = rows[pseudonym]
    assert erased["name_sealed"] is None and erased["data_key_wrapped"] is None
    assert erased["name_key"] is None and erased["name"] is None
    # whatever copy of the sealed name the database keeps on disk (PostgreSQL: dead rows,
    # WAL) cannot be opened: its key is gone, and no key the home still holds opens it
    master = coop.master_key
    with coop.sessions() as s:
        wrapped = [
            (m.pseudonym, m.data_key_wrapped)
            for m in s.scalars(sa.select(Member).where(Member.data_key_wrapped.is_not(None)))
        ]
    assert [p for p, _ in wrapped] == [other.pseudonym]
    for p, w in wrapped:
        assert w is not None
        data_key = keys.unseal(master, w, keys.member_key_context(p), "key")
        with pytest.raises(SetupError):
            keys.unseal(data_key, sealed, keys.member_name_context(pseudonym), "name")
    with pytest.raises(SetupError):
        keys.unseal(master, sealed, keys.member_name_context(pseudonym), "name")
    assert verify_audit(coop).ok


def test_the_name_never_reaches_the_sqlite_files(home: Home) -> None:
    """SQLite: the database file and its write-ahead log, byte by byte, before and after."""
    add_member(home, NAME)
    files = [home.settings.home / "tunetrust.db", home.settings.home / "tunetrust.db-wal"]

    def on_disk() -> bool:
        return any(f.exists() and NAME.encode() in f.read_bytes() for f in files)

    assert not on_disk()
    assert get_member(home, NAME).name == NAME
    erase_member(home, NAME)
    assert not on_disk()


# --- the privacy budget outlives the member row -----------------------------------------


def _spend(home: Home, member: str, amount: str, year: int = YEAR) -> None:
    m = get_member(home, member)
    with home.transaction() as s:
        budget.spend(
            s,
            release_id=f"r{year}{amount}",
            member_ids=[m.id],
            purpose="research",
            year=year,
            amount=Epsilon.of(amount),
            delta=1e-6,
        )


def _remaining(home: Home, member: str) -> str:
    (line,) = [r for r in budget.budget_report(home, member) if r["purpose"] == "research"]
    return line["remaining"]


def test_erasing_and_joining_again_does_not_reset_the_budget(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "ann")
    import_export(coop, "ann", _export(tmp_path, "acct-ann", "1", "2023-05-01T10:00:00Z"))
    _spend(coop, "ann", "1.25")
    _spend(coop, "ann", "0.5", year=YEAR - 1)
    before = _remaining(coop, "ann")
    assert Epsilon.of(before) < Epsilon.of(coop.settings.epsilon_cap)

    erase_member(coop, "ann")
    with coop.sessions() as s:
        carried = {
            (c.purpose, c.year): c.micro_epsilon for c in s.scalars(sa.select(BudgetCarryover))
        }
    assert carried == {("research", YEAR): 1_250_000, ("research", YEAR - 1): 500_000}

    # the same person joins again with the same streaming account
    again = add_member(coop, "ann")
    assert _remaining(coop, "ann") == str(Epsilon.of(coop.settings.epsilon_cap))  # not bound yet
    import_export(coop, "ann", _export(tmp_path, "acct-ann", "2", "2023-06-01T10:00:00Z"))
    assert _remaining(coop, "ann") == before
    with coop.sessions() as s:  # the release path reads the same
        left = budget.remaining_for(
            s, [again.id], "research", YEAR, Epsilon.of(coop.settings.epsilon_cap)
        )
        carried_delta = budget.delta_spent(s, [again.id], "research", YEAR)
    assert str(left[again.id]) == before
    assert carried_delta == {again.id: 1e-6}  # δ is carried with ε (this year's spend)
    # someone else's account starts with the whole budget
    add_member(coop, "bea")
    import_export(coop, "bea", _export(tmp_path, "acct-bea", "1", "2023-05-01T10:00:00Z"))
    assert _remaining(coop, "bea") == str(Epsilon.of(coop.settings.epsilon_cap))

    # erased a second time: both memberships' spends are carried, still no member id
    _spend(coop, "ann", "0.25")
    erase_member(coop, "ann")
    with coop.sessions() as s:
        rows = list(s.scalars(sa.select(BudgetCarryover).where(BudgetCarryover.year == YEAR)))
        assert [r.micro_epsilon for r in rows] == [1_500_000]
        # the marker is neither the account hash nor anything the member row kept
        hashes = set(s.scalars(sa.select(Member.account_hash)))
        assert rows[0].account_marker not in hashes
        assert set(s.scalars(sa.select(Member.account_marker))) - {None} == {
            account_marker(coop, next(h for h in hashes if h))
        }  # only bea's row has a marker; ann's erased rows have none


def test_carried_over_budget_expires_after_the_next_year(coop: Home) -> None:
    with coop.transaction() as s:
        for year in (YEAR - 3, YEAR - 2, YEAR - 1, YEAR):
            s.add(
                BudgetCarryover(
                    account_marker="m" * 64, purpose="research", year=year, micro_epsilon=1
                )
            )
    add_member(coop, "cy")
    _spend(coop, "cy", "0.1")  # every spend (and erasure) deletes what no budget reads
    with coop.sessions() as s:
        years = sorted(s.scalars(sa.select(BudgetCarryover.year)))
    assert years == [YEAR - 1, YEAR]


# --- ballots ---------------------------------------------------------------------------

SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30, period: {from: 2024-01-01, to: 2024-06-30}}
group_by: [month]
metrics: [plays, minutes, listeners]
bounds: {max_partitions: 6, max_plays_per_partition: 20, max_minutes_per_play: 8}
privacy: {epsilon: 0.5, delta: 1.0e-6}
keys: public
"""


def _open_request(home: Home, voters: list[str]) -> str:
    """A request open for voting by ``voters`` (set directly: no data needed to vote)."""
    req = sale.create_request(
        home,
        buyer="Acme Research",
        spec_text=SPEC,
        price=10_000,
        currency="EUR",
        licence="research-only",
        voting_days=7,
    )
    with home.transaction() as s:
        row = governance.find_request(s, req.id, lock=True)
        governance.move(s, row, "open")
        row.eligible = sorted(get_member(home, v).id for v in voters)
        row.rules = governance.rules_of(governance.newest_rules(s)).to_dict()
        row.opens_at = datetime.now(UTC)
        row.closes_at = row.opens_at + timedelta(days=7)
    return req.id


def test_an_erased_members_vote_on_an_open_request_no_longer_counts(coop: Home) -> None:
    for name in ("ann", "ben", "cy"):
        add_member(coop, name)
    governance.add_buyer(coop, "Acme Research", "data@acme.invalid", "SE")
    closed = _open_request(coop, ["ann", "ben", "cy"])
    for name, choice in (("ann", "yes"), ("ben", "no"), ("cy", "no")):
        governance.cast_vote(coop, name, closed, choice)
    governance.close_request(coop, closed)
    with coop.sessions() as s:
        frozen = s.get(DataRequest, closed).tally  # type: ignore[union-attr]
    rid = _open_request(coop, ["ann", "ben", "cy"])
    for name, choice in (("ann", "yes"), ("ben", "yes"), ("cy", "no")):
        governance.cast_vote(coop, name, rid, choice)
    t = governance.tally(coop, rid)
    assert (t.yes, t.no, t.voters, t.eligible) == (2, 1, 3, 3)
    ann = get_member(coop, "ann")

    erase_member(coop, "ann")
    t = governance.tally(coop, rid)
    assert (t.yes, t.no, t.voters, t.eligible) == (1, 1, 2, 2)
    with coop.sessions() as s:
        assert (
            s.scalar(sa.select(Vote).where(Vote.request_id == rid, Vote.member_id == ann.id))
            is None
        )
        # a closed request keeps its ballots and its frozen tally
        kept = s.scalar(sa.select(Vote).where(Vote.request_id == closed, Vote.member_id == ann.id))
        assert kept is not None and kept.choice == "yes"
        entry = s.scalar(
            sa.select(AuditEntry).where(
                AuditEntry.action == "vote.erased", AuditEntry.subject == rid
            )
        )
        assert entry is not None
        assert (
            s.scalar(
                sa.select(AuditEntry).where(
                    AuditEntry.subject == closed, AuditEntry.action == "vote.erased"
                )
            )
            is None
        )
        assert s.get(DataRequest, closed).tally == frozen  # type: ignore[union-attr]
    assert verify_audit(coop).ok
