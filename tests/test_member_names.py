"""Member names: one person, one name; look-alikes of a member's name are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from tunetrust import (
    ConflictError,
    Home,
    NotFoundError,
    add_member,
    erase_member,
    get_member,
    list_members,
    open_home,
    show_member,
)
from tunetrust.coop.budget import set_member_cap
from tunetrust.coop.keyring import account_marker, derived_key
from tunetrust.errors import SetupError
from tunetrust.names import lookup_key, name_key
from tunetrust.store import db, keys

CYRILLIC_A = "\u0430"
LOOK_ALIKES = ["ａｌｉｃｅ", "ALICE", f"{CYRILLIC_A}lice"]  # full width, case, Cyrillic а


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice", "ALICE"),
        ("alice", "ａｌｉｃｅ"),
        ("alice", f"{CYRILLIC_A}lice"),
        ("alice", "a1ice"),  # digit one for l
        ("bob", "b0b"),  # digit zero for o
        ("paypal", "\u0440\u0430ypal"),  # Cyrillic р and а
        ("Mary Ann", "mary  ann"),
        ("Straße", "STRASSE"),
    ],
)
def test_look_alike_names_share_a_key(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice", "alicia"),
        ("Zoe", "Zoë"),
        ("Jose", "José"),
        ("Lia", "Ila"),  # i and l are kept apart once case is folded
        ("Ivan", "Иван"),
        ("member-01", "member-10"),
    ],
)
def test_distinct_names_have_distinct_keys(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


def test_look_alikes_of_a_members_name_are_refused(coop: Home) -> None:
    add_member(coop, "alice")
    for typed in LOOK_ALIKES:
        with pytest.raises(ConflictError, match="looks like an existing member's name") as err:
            add_member(coop, typed)
        # the message quotes what was typed, never the other member's name
        assert "'alice'" not in str(err.value) and repr(typed) in str(err.value)
    with pytest.raises(ConflictError, match="a member named 'alice' exists already"):
        add_member(coop, " alice ")
    assert [m.name for m in list_members(coop)] == ["alice"]


def test_distinct_names_are_still_accepted(coop: Home) -> None:
    names = ["alice", "alicia", "Alice Smith", "Zoe", "Zoë", "Lia", "Ila", "Ivan", "Иван"]
    for name in names:
        add_member(coop, name)
    assert [m.name for m in list_members(coop)] == names


def test_names_are_kept_as_typed_after_nfkc(coop: Home) -> None:
    assert add_member(coop, "  Ｂｅａｔｒｉｚ  ").name == "Beatriz"
    assert add_member(coop, "Ngozi Okonjo").name == "Ngozi Okonjo"


def test_lookups_fold_case_and_width_but_not_look_alikes(coop: Home) -> None:
    alice = add_member(coop, "Alice")
    assert get_member(coop, "ALICE").id == alice.id
    assert get_member(coop, "ａｌｉｃｅ").id == alice.id
    assert show_member(coop, "alice").name == "Alice"  # the name as the member gave it
    for other in (f"{CYRILLIC_A}lice", "A1ice"):
        with pytest.raises(NotFoundError):
            get_member(coop, other)


def test_erasure_frees_the_name_and_its_look_alikes(coop: Home) -> None:
    first = add_member(coop, "alice")
    erase_member(coop, "alice")
    with coop.sessions() as s:
        row = s.execute(
            sa.text(f"select name_key, name_sealed from members where id = {first.id}")
        ).one()
        assert row == (None, None)
    again = add_member(coop, "ALICE")
    assert get_member(coop, "alice").id == again.id != first.id
    with pytest.raises(ConflictError):
        add_member(coop, "alice")


def _upgrade(home: Home) -> None:
    """Migrate to the newest revision as opening a home does, the master key at hand."""
    cfg = db._alembic_config(home.engine)
    cfg.attributes["master_key"] = lambda: home.master_key
    command.upgrade(cfg, "head")


def test_the_migration_keys_existing_members_and_keeps_older_look_alikes(coop: Home) -> None:
    """A database of an older revision, with look-alike names an older version let in."""
    cfg = db._alembic_config(coop.engine)
    command.downgrade(cfg, "0005")
    members = sa.table(
        "members",
        sa.column("name", sa.String()),
        sa.column("pseudonym", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("keep_incognito", sa.Boolean()),
        sa.column("account_hash", sa.String()),
    )
    now = datetime.now(UTC)
    with coop.engine.begin() as conn:
        conn.execute(
            sa.insert(members),
            [
                {
                    "name": n,
                    "pseudonym": f"{i:032x}",
                    "created_at": now,
                    "keep_incognito": False,
                    "account_hash": "ab" * 32 if n == "carol" else None,
                }
                for i, n in enumerate(["alice", "Alice", "ＢＯＢ", "carol"], start=1)
            ],
        )
    _upgrade(coop)  # 0006 keys the names, 0009 seals them and keys the keys
    coop.close()

    home = open_home(coop.settings)
    try:
        secret = derived_key(home, keys.NAME_KEY)
        with home.sessions() as s:
            rows = s.execute(
                sa.text(
                    "select pseudonym, name, name_key, name_sealed, account_marker from members"
                )
            ).all()
        by = {p: (name, key, sealed, marker) for p, name, key, sealed, marker in rows}
        assert all(name is None and sealed for name, _, sealed, _ in by.values())  # no plain name
        assert by[f"{1:032x}"][1] == lookup_key(secret, "alice") != name_key("alice")
        assert by[f"{2:032x}"][1] is None  # "Alice": the older "alice" holds the key
        assert by[f"{3:032x}"][1] == lookup_key(secret, "bob")
        assert by[f"{4:032x}"][3] == account_marker(home, "ab" * 32)
        assert get_member(home, "Alice").name == "Alice"  # found by its exact name
        assert get_member(home, "ALICE").name == "alice"  # the older member holds the key
        assert get_member(home, "bob").name == "ＢＯＢ"
        assert [m.name for m in list_members(home)] == ["alice", "Alice", "ＢＯＢ", "carol"]
        for typed in ("aLiCe", "B0B", "Carol"):
            with pytest.raises(ConflictError):
                add_member(home, typed)
    finally:
        home.close()


def test_the_migration_needs_the_master_key_and_goes_back(coop: Home) -> None:
    """0009 seals with the master key; without it, it refuses; down again unseals."""
    add_member(coop, "dora")
    set_member_cap(coop, "dora", "research", 1)  # a row that points at the member
    cfg = db._alembic_config(coop.engine)
    with pytest.raises(SetupError, match="master key"):
        command.downgrade(cfg, "0008")
    cfg.attributes["master_key"] = lambda: coop.master_key
    command.downgrade(cfg, "0008")
    with coop.sessions() as s:
        assert s.execute(sa.text("select name, name_key from members")).one() == (
            "dora",
            name_key("dora"),
        )
    _upgrade(coop)
    assert get_member(coop, "DORA").name == "dora"
