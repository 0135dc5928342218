"""Disputes: a stolen export imported first does not lock its owner out.

The thief comes first (unprovably); the owner's own export is held, the steward sees
both sides and decides. Stored rows are compared with an independent reference: the
owner's listens after the decision equal what a fresh cooperative stores for the same
export, and the thief keeps nothing of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from sqlalchemy import select

from tunetrust import Home, Settings, add_member, get_member, import_export, init_home
from tunetrust.coop import audit
from tunetrust.coop.contributions import get_contribution, member_weight
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.ingest.disputes import CLAIMANT, HOLDER, decide, list_disputes
from tunetrust.ingest.pipeline import ImportSummary
from tunetrust.services.audit import verify_everything
from tunetrust.services.models import Actor
from tunetrust.store.models import Fingerprint

from .factories import json_bytes


def _zip(tmp: Path, name: str, files: dict[str, bytes]) -> Path:
    path = tmp / name
    write_zip(files, path)
    return path


def _own(seed: int = 3101) -> dict[str, bytes]:
    return render(synthesize("extended-b", 2_000, seed), "extended-b")


def _renamed(files: dict[str, bytes]) -> dict[str, bytes]:
    """The export with its username field edited (binding bypassed, plays unaltered)."""
    out = {}
    for name, data in files.items():
        if name.endswith(".json") and ("endsong" in name or "endvideo" in name):
            rows: list[dict[str, Any]] = orjson.loads(data)
            for r in rows:
                r["username"] = "not-the-owner"
            data = json_bytes(rows)
        out[name] = data
    return out


def _listens(home: Home, member: str) -> pa.Table:
    m = get_member(home, member)
    return home.events.read(m.pseudonym, m.events_file)


def _content(t: pa.Table) -> list[tuple[Any, ...]]:
    """Rows without the contribution id (which differs between cooperatives), sorted."""
    cols = [c for c in t.column_names if c != "contribution"]
    return sorted(zip(*(t[c].to_pylist() for c in cols), strict=True), key=repr)


@pytest.mark.parametrize("how", ["stolen", "renamed"])
def test_the_owner_who_comes_second_wins_the_dispute(
    home: Home, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, how: str
) -> None:
    own = _own()
    add_member(home, "thief")
    add_member(home, "owner")
    stolen = own if how == "stolen" else _renamed(own)
    first = import_export(home, "thief", _zip(tmp_path, "stolen.zip", stolen))
    assert first.verdict == "accepted"  # the thief came first: nothing can tell yet
    held = import_export(home, "owner", _zip(tmp_path, "own.zip", own))
    thief = get_member(home, "thief")
    assert held.verdict == "disputed" and held.held and held.listens_added == 0
    assert held.dispute is not None
    assert held.dispute["reason"] == ("account" if how == "stolen" else "copy")
    assert thief.pseudonym not in repr(held)  # who holds it is for the steward only
    assert get_member(home, "owner").events_file is None
    assert member_weight(home, get_member(home, "owner").id) == 0

    (open_,) = list_disputes(home)
    assert open_.contribution == held.contribution and open_.holder is not None
    assert open_.holder.pseudonym == thief.pseudonym
    assert open_.holder.listens == first.listens_total
    assert open_.claimant.first_play == open_.holder.first_play  # the same history
    assert open_.listens_in_export == 2_000

    done = decide(home, held.contribution[:8], decided_for=CLAIMANT, actor="steward:test")
    assert done.revoked == [first.contribution]
    assert done.listens_removed == first.listens_total
    assert done.imported is not None and done.imported.verdict == "accepted"
    assert list_disputes(home) == []
    assert get_contribution(home, first.contribution).verdict == "revoked"
    assert get_contribution(home, held.contribution).verdict == "resolved"
    thief, owner = get_member(home, "thief"), get_member(home, "owner")
    assert _listens(home, "thief").num_rows == 0
    assert member_weight(home, thief.id) == 0 and member_weight(home, owner.id) > 0
    if how == "stolen":
        assert thief.account_hash is None and owner.account_hash is not None
    # the owner's stored listens are what a fresh cooperative stores for the same export
    fresh = init_home(Settings(home=tmp_path_factory.mktemp("reference") / "home"))
    add_member(fresh, "owner")
    import_export(fresh, "owner", _zip(tmp_path, "again.zip", own))
    assert _content(_listens(home, "owner")) == _content(_listens(fresh, "owner"))
    fresh.close()
    with home.sessions() as s:
        prints = {
            m for (m,) in s.execute(select(Fingerprint.member_id).distinct())
        }  # the thief's fingerprints went with their listens
        actions = [e.action for e in audit.entries(s)]
    assert thief.id not in prints and owner.id in prints
    assert actions[-3:] == [
        "contribution.dispute.decide",
        "member.import",
        "contribution.dispute.resolved",
    ]
    assert verify_everything(home, Actor.steward()).ok


def test_a_dispute_decided_for_the_holder_rejects_the_held_import(
    home: Home, tmp_path: Path
) -> None:
    own = _own(3102)
    add_member(home, "first")
    add_member(home, "second")
    kept = import_export(home, "first", _zip(tmp_path, "a.zip", own)).listens_total
    held = import_export(home, "second", _zip(tmp_path, "b.zip", own))
    assert held.verdict == "disputed"
    row = get_contribution(home, held.contribution)
    pseudonym = get_member(home, "second").pseudonym
    assert row.vault_file is not None
    assert (home.settings.home / "vault" / pseudonym / row.vault_file).exists()
    done = decide(home, held.contribution, decided_for=HOLDER, actor="steward:test")
    assert done.revoked == [] and done.imported is None
    row = get_contribution(home, held.contribution)
    assert row.verdict == "rejected" and row.vault_file is None
    assert not list((home.settings.home / "vault" / pseudonym).glob("*.bin"))
    assert _listens(home, "first").num_rows == kept  # the holder keeps everything
    with pytest.raises(Exception, match="no open dispute"):
        decide(home, held.contribution, decided_for=HOLDER, actor="steward:test")


def test_held_import_again_is_recognised_and_stays_held(home: Home, tmp_path: Path) -> None:
    own = _own(3103)
    add_member(home, "first")
    add_member(home, "second")
    import_export(home, "first", _zip(tmp_path, "a.zip", own))
    path = _zip(tmp_path, "b.zip", own)
    held = import_export(home, "second", path)
    again: ImportSummary = import_export(home, "second", path)
    assert again.same_export_as == held.contribution and again.verdict == "disputed"
    assert len(list_disputes(home)) == 1


def test_cli_lists_and_decides_disputes(home: Home, tmp_path: Path) -> None:
    from .test_cli import run

    own = _own(3104)
    add_member(home, "first")
    add_member(home, "second")
    import_export(home, "first", _zip(tmp_path, "a.zip", own))
    held = import_export(home, "second", _zip(tmp_path, "b.zip", own))
    h = str(home.settings.home)
    listed = run("--home", h, "contribution", "disputes")
    assert listed.returncode == 0 and held.contribution[:12] in listed.stdout
    assert "same account" in listed.stdout and "newer export" in listed.stdout
    data = json.loads(run("--home", h, "contribution", "disputes", "--json").stdout)
    assert [d["contribution"] for d in data["items"]] == [held.contribution]
    bad = run("--home", h, "contribution", "decide", held.contribution, "--for", "nobody")
    assert bad.returncode != 0 and "decide for 'claimant' or 'holder'" in bad.stderr
    done = run("--home", h, "contribution", "decide", held.contribution, "--for", "claimant")
    assert done.returncode == 0 and "1 of the holder's contribution(s) revoked" in done.stdout
    assert "No open disputes" in run("--home", h, "contribution", "disputes").stdout


def test_neither_side_of_a_dispute_learns_the_other_from_their_data(
    home: Home, tmp_path: Path
) -> None:
    """Each member's export lists the dispute in their role; neither names the other."""
    import zipfile

    from tunetrust.coop.rights import export_member

    own = _own(3105)
    add_member(home, "first")
    add_member(home, "second")
    import_export(home, "first", _zip(tmp_path, "a.zip", own))
    held = import_export(home, "second", _zip(tmp_path, "b.zip", own))
    decide(home, held.contribution, decided_for=HOLDER, actor="steward:test")
    first, second = get_member(home, "first"), get_member(home, "second")
    seen = {}
    for member, other in ((first, second), (second, first)):
        report = export_member(home, member.name or "", tmp_path / f"{member.name}.zip")
        with zipfile.ZipFile(report.path) as zf:
            text = b"".join(zf.read(n) for n in zf.namelist() if n.endswith(".json"))
            seen[member.name] = orjson.loads(zf.read("disputes.json"))
        assert other.pseudonym.encode() not in text, f"{member.name}'s export names the other"
    assert [(d["role"], d["decided_for"]) for d in seen["first"]] == [("holder", "holder")]
    assert seen["first"][0]["contribution"] is None  # not told whose import it was
    assert [(d["role"], d["contribution"]) for d in seen["second"]] == [
        ("claimant", held.contribution)
    ]
