"""`doctor --rebuild-events`: stores written by the faulty dedup are repaired from the vault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from sqlalchemy import select

from tunetrust import (
    Home,
    Settings,
    add_member,
    get_member,
    import_export,
    init_home,
    open_home,
    verify_audit,
)
from tunetrust.coop import audit
from tunetrust.coop.contributions import member_weight
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.ingest.rebuild import rebuild_events
from tunetrust.store.models import Contribution, Member

from . import reference
from .test_import import FIELDS, _source_rows, _stored


def _export_with_repeats(tmp: Path, seed: int) -> Path:
    """An extended export whose first file repeats five rows in its middle."""
    files = render(synthesize("extended-b", 2_000, seed), "extended-b")
    name = "MyData/endsong_0.json"
    rows = orjson.loads(files[name])
    files[name] = orjson.dumps(rows[:900] + rows[400:405] + rows[900:])
    path = tmp / f"repeats-{seed}.zip"
    write_zip(files, path)
    return path


def _corrupt(home: Home, member: str) -> pa.Table:
    """Store what 0.1.0's dedup stored: the first k rows, repeats kept, the last plays lost."""
    m = get_member(home, member)
    good = home.events.read(m.pseudonym, m.events_file)
    bad = pa.concat_tables([good.slice(0, good.num_rows - 5), good.slice(100, 5)]).sort_by("ts")
    home.events.stage(m.pseudonym, "corrupt.parquet", bad)
    with home.transaction() as s:
        row = s.get(Member, m.id)
        assert row is not None
        row.events_file = "corrupt.parquet"
    home.events.publish(m.pseudonym, "corrupt.parquet")
    return good


def _rows(home: Home, member: str) -> list[dict[str, object]]:
    m = get_member(home, member)
    return _stored(home.events.read(m.pseudonym, m.events_file).to_pylist())


def test_rebuild_repairs_a_corrupted_store(home: Home, member: str, tmp_path: Path) -> None:
    path = _export_with_repeats(tmp_path, 5)
    import_export(home, member, path)
    weight = member_weight(home, get_member(home, member).id)
    good = _corrupt(home, member)
    assert _rows(home, member) != _stored(good.to_pylist())

    dry = rebuild_events(home, actor="steward", dry_run=True)
    assert dry.changed == 1
    assert get_member(home, member).events_file == "corrupt.parquet"  # nothing written

    report = rebuild_events(home, actor="steward")
    (result,) = report.members
    assert result.changed and result.listens_after == good.num_rows
    expected = reference.merge([], reference.listens_from_source(_source_rows(path)))
    stored = _rows(home, member)
    assert reference.multiset(stored, FIELDS) == reference.multiset(expected, FIELDS)
    assert reference.totals(stored) == reference.totals(expected)
    assert member_weight(home, get_member(home, member).id) == pytest.approx(weight, abs=1e-6)
    m = get_member(home, member)
    assert [p.name for p in home.events.partition(m.pseudonym).iterdir()] == [m.events_file]
    with home.sessions() as s:
        logged = [e for e in audit.entries(s, m.pseudonym) if e.action == "member.events.rebuild"]
    assert len(logged) == 1
    assert verify_audit(home).ok
    # a second run finds nothing to do
    assert rebuild_events(home, actor="steward").changed == 0


def test_rebuild_replays_every_contribution_in_order(
    home: Home, member: str, tmp_path: Path
) -> None:
    history = synthesize("extended-c", 3_000, 12)
    ext, acc = tmp_path / "ext.zip", tmp_path / "acc.zip"
    write_zip(render(history, "account"), acc)
    write_zip(render(history, "extended-c"), ext)
    import_export(home, member, acc)
    import_export(home, member, ext)  # replaces the account rows
    import_export(home, member, ext)  # the same files again: nothing new, no vault file
    before = _rows(home, member)
    with home.sessions() as s:
        scores = sorted(s.scalars(select(Contribution.quality_score)))
    assert rebuild_events(home, actor="steward").changed == 0
    assert _rows(home, member) == before
    with home.sessions() as s:
        assert sorted(s.scalars(select(Contribution.quality_score))) == scores


def test_a_loose_video_file_keeps_its_kind(home: Home, member: str, tmp_path: Path) -> None:
    files = render(synthesize("extended-b", 20_000, 13), "extended-b")
    video = tmp_path / "endvideo.json"
    video.write_bytes(files["MyData/endvideo.json"])
    assert orjson.loads(video.read_bytes())
    import_export(home, member, video)
    kinds = sorted(str(r["kind"]) for r in _rows(home, member))
    _corrupt(home, member)
    rebuild_events(home, actor="steward")
    assert sorted(str(r["kind"]) for r in _rows(home, member)) == kinds


@pytest.mark.parametrize("point", ["rebuild.staged", "rebuild.committed"])
def test_a_killed_rebuild_leaves_old_or_new(settings: Settings, tmp_path: Path, point: str) -> None:
    home = init_home(settings)
    add_member(home, "ann")
    import_export(home, "ann", _export_with_repeats(tmp_path, 7))
    good = _stored(
        home.events.read(
            get_member(home, "ann").pseudonym, get_member(home, "ann").events_file
        ).to_pylist()
    )
    _corrupt(home, "ann")
    bad = _rows(home, "ann")
    home.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    env["TUNETRUST_CRASH_AT"] = point
    done = subprocess.run(
        [sys.executable, "-m", "tunetrust", "--home", str(settings.home), "doctor"]
        + ["--rebuild-events"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9  # killed at the crash point
    home = open_home(settings)
    try:
        assert _rows(home, "ann") == (good if point == "rebuild.committed" else bad)
        home.recover()  # as the next writer, or tunetrust doctor, does
        m = get_member(home, "ann")
        assert [p.name for p in home.events.partition(m.pseudonym).iterdir()] == [m.events_file]
        assert _rows(home, "ann") == (good if point == "rebuild.committed" else bad)
        assert verify_audit(home).ok
    finally:
        home.close()


def test_doctor_cli_json(settings: Settings, tmp_path: Path) -> None:
    home = init_home(settings)
    add_member(home, "ann")
    import_export(home, "ann", _export_with_repeats(tmp_path, 9))
    _corrupt(home, "ann")
    home.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}

    def doctor(*extra: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "tunetrust", "--home", str(settings.home), "doctor", *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    assert doctor("--json") == {"schema_version": 1, "files_settled": 0, "deliveries_finished": []}
    assert doctor("--rebuild-events", "--dry-run", "--json")["changed"] == 1
    fixed = doctor("--rebuild-events", "--json")
    assert fixed["changed"] == 1 and fixed["dry_run"] is False
    assert doctor("--rebuild-events", "--json")["changed"] == 0


def test_a_loose_file_with_an_upper_case_suffix_is_left_alone(
    home: Home, member: str, tmp_path: Path
) -> None:
    files = render(synthesize("extended-b", 20_000, 14), "extended-b")
    video = tmp_path / "endvideo.JSON"
    video.write_bytes(files["MyData/endvideo.json"])
    import_export(home, member, video)
    kinds = sorted(str(r["kind"]) for r in _rows(home, member))
    assert "video" in kinds
    assert rebuild_events(home, actor="steward").changed == 0
    assert sorted(str(r["kind"]) for r in _rows(home, member)) == kinds


def test_a_missing_events_file_is_restored_from_the_vault(
    home: Home, member: str, tmp_path: Path
) -> None:
    path = _export_with_repeats(tmp_path, 15)
    import_export(home, member, path)
    before = _rows(home, member)
    m = get_member(home, member)
    (home.events.partition(m.pseudonym) / str(m.events_file)).unlink()
    report = rebuild_events(home, actor="steward")
    assert report.changed == 1
    assert _rows(home, member) == before


def test_rebuild_of_a_cooperative_touches_only_what_is_wrong(home: Home, tmp_path: Path) -> None:
    from tunetrust import erase_member

    for name in ("ann", "ben", "cy"):
        add_member(home, name)
    import_export(home, "ann", _export_with_repeats(tmp_path, 21))
    import_export(home, "ben", _export_with_repeats(tmp_path, 22))
    import_export(home, "cy", _export_with_repeats(tmp_path, 23))
    ben_before = _rows(home, "ben")
    good = _corrupt(home, "ann")
    erase_member(home, "cy")
    report = rebuild_events(home, actor="steward")
    assert report.changed == 1 and len(report.members) == 2  # the erased member is gone
    assert _rows(home, "ann") == _stored(good.to_pylist())
    assert _rows(home, "ben") == ben_before
    assert verify_audit(home).ok
