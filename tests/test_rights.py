"""Members' rights: export everything, erase everything — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from tunetrust import (
    ConflictError,
    Home,
    NotFoundError,
    SetupError,
    add_member,
    decide_consent,
    erase_member,
    export_member,
    get_member,
    import_export,
    verify_audit,
)
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.services import sale

from .factories import export_zip

SECRET_ARTIST = "Zq Private Artist Token"


def _zelda_export(tmp_path: Path) -> Path:
    """A variant-B export whose artists and username are unique to this member."""
    history = synthesize("extended-b", 1_500, 77)
    files = render(history, "extended-b")
    files = {
        n: d.replace(
            b'"master_metadata_album_artist_name":"',
            b'"master_metadata_album_artist_name":"' + SECRET_ARTIST.encode() + b" ",
        )
        for n, d in files.items()
    }
    path = tmp_path / "zelda.zip"
    write_zip(files, path)
    return path


def _home_blobs(home: Home) -> list[tuple[str, bytes]]:
    out = []
    for p in home.settings.home.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix == ".parquet":
                data = repr(pq.read_table(p).to_pylist()).encode()
            out.append((str(p), data))
    return out


def test_export_holds_everything(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "zelda")
    path = _zelda_export(tmp_path)
    summary = import_export(coop, "zelda", path)
    decide_consent(coop, "zelda", "research", granted=True)
    report = export_member(coop, "zelda", tmp_path / "out" / "zelda-data.zip")
    with zipfile.ZipFile(report.path) as zf:
        names = set(zf.namelist())
        assert {
            "README.txt",
            "member.json",
            "consents.json",
            "contributions.json",
            "listens.parquet",
            "listens.csv",
            "votes.json",
            "payouts.json",
            "audit.json",
        } <= names
        raw = [n for n in names if n.startswith("raw/")]
        assert len(raw) == 1 and zf.read(raw[0]) == path.read_bytes()  # decrypted, exact
        listens = pq.read_table(io.BytesIO(zf.read("listens.parquet")))
        assert listens.num_rows == summary.listens_added
        assert zf.read("listens.csv").count(b"\n") == summary.listens_added + 1
        member = orjson.loads(zf.read("member.json"))
        assert member["name"] == "zelda" and member["consents_in_force"] == {"research": True}
        actions = [e["action"] for e in orjson.loads(zf.read("audit.json"))]
        assert actions == ["member.add", "member.import", "consent.grant"]
        assert orjson.loads(zf.read("contributions.json"))[0]["listens_added"] > 0
    assert not list(report.path.parent.glob("*.partial"))
    assert verify_audit(coop).ok


def test_vault_file_is_encrypted(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "zelda")
    import_export(coop, "zelda", _zelda_export(tmp_path))
    (vault_file,) = coop.settings.home.joinpath("vault").rglob("*.bin")
    assert b"PK\x03\x04" not in vault_file.read_bytes()  # no zip header in the clear
    assert SECRET_ARTIST.encode() not in vault_file.read_bytes()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_vault_file_is_refused_clearly(coop: Home, tmp_path: Path, damage: str) -> None:
    add_member(coop, "zelda")
    import_export(coop, "zelda", _zelda_export(tmp_path))
    (vault_file,) = coop.settings.home.joinpath("vault").rglob("*.bin")
    data = bytearray(vault_file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 1
    else:
        del data[-1000:]
    vault_file.write_bytes(bytes(data))
    with pytest.raises(SetupError, match="altered or truncated"):
        export_member(coop, "zelda", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.partial").exists()


def test_erasure_leaves_nothing_of_the_member(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "Zelda Uniquename")
    add_member(coop, "keeper")
    import_export(coop, "keeper", export_zip(tmp_path, "extended-c", 500, seed=3))
    import_export(coop, "Zelda Uniquename", _zelda_export(tmp_path))
    decide_consent(coop, "Zelda Uniquename", "research", granted=True)
    member = get_member(coop, "Zelda Uniquename")
    username = synthesize("extended-b", 1, 77).username
    account_hash = member.account_hash
    assert account_hash
    report = erase_member(coop, "Zelda Uniquename")
    assert report.listens > 1_000 and report.contributions == 1 and report.consents == 1

    needles = [
        b"Zelda Uniquename",
        username.encode(),
        account_hash.encode(),
        SECRET_ARTIST.encode(),
    ]
    blobs = _home_blobs(coop)
    if coop.settings.database_url:  # PostgreSQL keeps its own files; ask it directly
        from sqlalchemy import text

        from tunetrust.store.models import Base

        with coop.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:  # every table the project has
                rows = conn.execute(text(f"SELECT * FROM {table.name}")).all()
                blobs.append((table.name, repr(rows).encode()))
    for needle in needles:
        found = [name for name, blob in blobs if needle in blob]
        assert not found, f"{needle!r} still in {found}"
    assert not (coop.settings.home / "vault" / member.pseudonym).exists()
    assert not coop.events.partition(member.pseudonym).exists()
    with pytest.raises(NotFoundError):
        get_member(coop, "Zelda Uniquename")
    # the other member is untouched, and the erasure itself is on record
    assert (
        coop.events.read(
            get_member(coop, "keeper").pseudonym, get_member(coop, "keeper").events_file
        ).num_rows
        > 400
    )
    with coop.sessions() as s:
        from tunetrust.coop import audit

        assert [e.action for e in audit.entries(s, member.pseudonym)][-1] == "member.erase"
    assert verify_audit(coop).ok


def test_erased_member_can_be_re_added_with_a_new_identity(coop: Home, tmp_path: Path) -> None:
    add_member(coop, "again")
    old = get_member(coop, "again").pseudonym
    erase_member(coop, "again")
    with pytest.raises(NotFoundError):
        get_member(coop, "again")
    add_member(coop, "again")
    assert get_member(coop, "again").pseudonym != old


def test_data_key_of_erased_member_is_gone(coop: Home) -> None:
    from tunetrust.coop.keyring import data_key
    from tunetrust.store.models import Member

    add_member(coop, "gone")
    m = get_member(coop, "gone")
    erase_member(coop, "gone")
    with coop.sessions() as s:
        row = s.get(Member, m.id)
        assert row is not None and row.data_key_wrapped is None and row.name is None
        with pytest.raises(ConflictError, match="erased"):
            data_key(coop, s, row)


# --- everything held: every table a member appears in reaches their export ------------

SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30, period: {from: 2015-01-01, to: 2030-12-31}}
group_by: [month]
metrics: [plays, minutes, listeners]
bounds: {max_partitions: 6, max_plays_per_partition: 20, max_minutes_per_play: 8}
privacy: {epsilon: 0.5, delta: 1.0e-6}
keys: public
"""


def fill_cooperative(home: Home, tmp_path: Path) -> str:
    """Two members with imports, consents, a budget cap, votes (one changed) and a payout.

    Returns the id of the delivered and paid request. Used by tests/test_backup.py too.
    """
    from tunetrust.coop import governance
    from tunetrust.coop.budget import set_member_cap

    add_member(home, "zelda")
    add_member(home, "keeper")
    import_export(home, "zelda", _zelda_export(tmp_path))
    import_export(home, "keeper", export_zip(tmp_path, "extended-c", 300, seed=3))
    for name in ("zelda", "keeper"):
        decide_consent(home, name, "research", granted=True)
    decide_consent(home, "zelda", "ai-training", granted=True)
    decide_consent(home, "zelda", "ai-training", granted=False)
    set_member_cap(home, "zelda", "research", 2.5)
    governance.add_buyer(home, "Acme Research", "data@acme.invalid", "SE")
    req = sale.create_request(
        home,
        buyer="Acme Research",
        spec_text=SPEC,
        price=100_001,
        currency="EUR",
        licence="research-only",
        voting_days=7,
    )
    sale.open_request(home, req.id)
    governance.cast_vote(home, "zelda", req.id, "no")
    governance.cast_vote(home, "zelda", req.id, "yes")  # a changed vote: both are held
    governance.cast_vote(home, "keeper", req.id, "yes")
    assert governance.close_request(home, req.id).passed
    sale.deliver(home, req.id)
    _sign_in_records(home, "zelda")
    return req.id


def _sign_in_records(home: Home, name: str) -> None:
    """What the web app keeps about a member: a passkey, codes, a session, an invitation, an
    upload's job (made through the same functions the app calls)."""
    from tunetrust.coop import accounts, jobs

    member = get_member(home, name)
    accounts.create_invitation(home, member=member)
    with home.transaction() as s:
        accounts.add_passkey(s, member.id, "Y3JlZGVudGlhbA", b"cose-key", 3)
        accounts.new_recovery_codes(s, member.id, accounts.make_recovery_codes(home))
        accounts.open_session(s, member.id)
    jobs.enqueue(home, kind="import", member_id=member.id, params={"filename": "export.zip"})


def _rows_about(home: Home, member_id: int, pseudonym: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every mapped table that is about one member, found by walking the schema.

    A row is about the member when a column named ``member_id`` (or any foreign key to
    ``members``) holds their id, or when any of its values mentions their pseudonym
    (``pseudonym``, ledger accounts, audit subjects, actors and payloads).
    """
    from sqlalchemy import select

    from tunetrust.store.models import Base

    found: dict[str, list[dict[str, Any]]] = {}
    with home.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            by_id = [
                c.name
                for c in table.columns
                if c.name == "member_id"
                or any(fk.column.table.name == "members" for fk in c.foreign_keys)
            ]
            for row in conn.execute(select(table)).mappings():
                if any(row[c] == member_id for c in by_id) or pseudonym in repr(dict(row)):
                    found.setdefault(table.name, []).append(dict(row))
    return found


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# table → does this row reach the export (the export's JSON files, by name)?
REACHES: dict[str, Any] = {
    # the name is stored sealed with the member's data key; the export holds it unsealed
    "members": lambda r, x: (
        x["member.json"]["pseudonym"] == r["pseudonym"]
        and x["member.json"]["name"] == "zelda"
        and r["name_sealed"] is not None
    ),
    "contributions": lambda r, x: any(c["id"] == r["id"] for c in x["contributions.json"]),
    "fingerprints": lambda r, x: (
        r["hash"] in x["fingerprints.json"]["hashes"][("sequence", "play", "track")[r["kind"]]]
    ),
    "consents": lambda r, x: any(
        (c["purpose"], c["granted"]) == (r["purpose"], r["granted"]) for c in x["consents.json"]
    ),
    "votes": lambda r, x: any(
        (v["request"], v["choice"]) == (r["request_id"], r["choice"]) for v in x["votes.json"]
    ),
    "budget_spends": lambda r, x: any(
        (b["release"], b["purpose"], b["year"], b["micro_epsilon"])
        == (r["release_id"], r["purpose"], r["year"], r["micro_epsilon"])
        for b in x["budget.json"]["spends"]
    ),
    "budget_caps": lambda r, x: any(
        (b["purpose"], b["micro_epsilon"]) == (r["purpose"], r["micro_epsilon"])
        for b in x["budget.json"]["caps"]
    ),
    "ledger_entries": lambda r, x: any(
        (p["transaction"], p["currency"], p["amount"])
        == (r["transaction_id"], r["currency"], r["cents"])
        for p in x["payouts.json"]["lines"]
    ),
    "ledger_balances": lambda r, x: any(
        (b["currency"], b["amount"]) == (r["currency"], r["cents"])
        for b in x["payouts.json"]["balances"]
    ),
    "passkeys": lambda r, x: any(
        (p["credential_id"], p["sign_count"]) == (r["credential_id"], r["sign_count"])
        for p in x["sign_in.json"]["passkeys"]
    ),
    "recovery_codes": lambda r, x: len(x["sign_in.json"]["recovery_codes"]) == 8,
    "web_sessions": lambda r, x: any(
        w["opened"][:19] == _iso(r["created_at"])[:19] for w in x["sign_in.json"]["sessions"]
    ),
    "invitations": lambda r, x: any(i["id"] == r["id"] for i in x["sign_in.json"]["invitations"]),
    "jobs": lambda r, x: any(
        (u["job"], u["state"]) == (r["id"], r["state"]) for u in x["uploads.json"]
    ),
    "audit_entries": lambda r, x: any(
        (e["seq"], e["entry_hash"]) == (r["seq"], r["entry_hash"]) for e in x["audit.json"]
    ),
    "audit_payloads": lambda r, x: any(
        e["seq"] == r["seq"] and e["payload"] == r["payload"] for e in x["audit.json"]
    ),
}


def test_every_table_about_a_member_reaches_their_export(coop: Home, tmp_path: Path) -> None:
    rid = fill_cooperative(coop, tmp_path)
    zelda = get_member(coop, "zelda")
    held = _rows_about(coop, zelda.id, zelda.pseudonym)  # before the export audits itself
    report = export_member(coop, "zelda", tmp_path / "zelda.zip")
    with zipfile.ZipFile(report.path) as zf:
        exported = {n: orjson.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")}
        readme = zf.read("README.txt").decode()
    new = sorted(set(held) - set(REACHES))
    assert not new, f"tables {new} hold rows about a member: put them in the export, check here"
    unfilled = sorted(set(REACHES) - set(held))
    assert not unfilled, f"fill_cooperative() left {unfilled} empty for the member"
    for table, rows in held.items():
        for row in rows:
            assert REACHES[table](row, exported), f"a row of {table} is missing from the export"
    # the specifics a member asks about: what they voted (and changed), what they were paid
    (vote,) = exported["votes.json"]
    assert vote["request"] == rid and vote["eligible"] and vote["purpose"] == "research"
    assert [c["choice"] for c in vote["changes"]] == ["no", "yes"]
    payouts = exported["payouts.json"]
    assert payouts["account"] == f"member:{zelda.pseudonym}"
    assert [line["request"] for line in payouts["lines"]] == [rid]
    assert payouts["lines"][0]["amount"] > 0
    assert exported["budget.json"]["spends"][0]["epsilon"] == "0.5"
    assert "vote.cast" in {e["action"] for e in exported["audit.json"]}
    assert "none are recorded" not in readme
    for name in ("votes.json", "payouts.json", "budget.json"):
        assert name in readme
    assert verify_audit(coop).ok


def test_audit_show_member_finds_entries_that_name_them_outside_the_subject(
    coop: Home, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from tunetrust.cli import app

    fill_cooperative(coop, tmp_path)
    args = ["--home", str(coop.settings.home)]
    if coop.settings.database_url:
        args += ["--database-url", coop.settings.database_url]
    result = CliRunner().invoke(app, [*args, "audit", "show", "--member", "zelda", "--json"])
    assert result.exit_code == 0, result.output
    actions = [e["action"] for e in orjson.loads(result.stdout)["items"]]
    assert actions.count("vote.cast") == 2  # the member is in the payload, not the subject
    assert {"member.add", "member.import", "consent.grant", "budget.cap"} <= set(actions)
    keeper = get_member(coop, "keeper").pseudonym
    with coop.sessions() as s:
        from tunetrust.coop import audit

        theirs = audit.about(s, keeper)
    assert [e.action for e in theirs].count("vote.cast") == 1


# --- the export's data dictionary --------------------------------------------------------


def _events_doc_columns() -> list[str]:
    """The columns docs/events.md's schema table describes, in order."""
    text = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    table = text.split("## Schema", 1)[1].split("\n## ", 1)[0]
    columns: list[str] = []
    for line in table.splitlines():
        if line.startswith("| `"):
            columns += [c.strip().strip("`") for c in line.split("|")[1].split(",")]
    return columns


def test_export_readme_describes_every_listens_column(home: Home, tmp_path: Path) -> None:
    import re

    from tunetrust.store.events import EVENTS_SCHEMA

    assert sorted(_events_doc_columns()) == sorted(EVENTS_SCHEMA.names)  # docs ⇄ schema
    add_member(home, "zelda")
    import_export(home, "zelda", _zelda_export(tmp_path))
    report = export_member(home, "zelda", tmp_path / "zelda.zip")
    with zipfile.ZipFile(report.path) as zf:
        readme = zf.read("README.txt").decode()
        header = zf.read("listens.csv").split(b"\n", 1)[0].decode()
    columns = [c.strip('"') for c in header.split(",")]
    assert columns == EVENTS_SCHEMA.names
    entries = dict(re.findall(r"^  (\w+) +(\S.*(?:\n {10,}\S.*)*)", readme, re.M))
    for column in columns:  # an entry per column: name, type, meaning
        assert column in entries and len(entries[column].split()) >= 3, column
    assert "ended" in entries["ts"] and "UTC" in entries["ts"]
