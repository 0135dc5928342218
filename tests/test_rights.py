"""Members' rights: export everything, erase everything — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

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
from tunetrust.formats.synth import render, synthesize, write_zip

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
