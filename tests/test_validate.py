"""Proof of contribution: one test per attack, honest exports of every variant accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tunetrust import ExportError, Home, add_member, get_member, import_export, verify_audit
from tunetrust.coop import audit
from tunetrust.coop.contributions import get_contribution, member_weight
from tunetrust.formats.spotify import FACTS
from tunetrust.formats.spotify.synth import VARIANTS, render, synthesize, write_zip
from tunetrust.ingest.pipeline import ContributionRejected, ImportSummary
from tunetrust.ingest.quality import quality
from tunetrust.ingest.validate import (
    FAIL,
    PASS,
    WARN,
    FileInfo,
    _unique_plays,
    check_daily,
    check_sort_order,
    check_uri_metadata,
    check_video_audio,
)
from tunetrust.settings import Checks

from .factories import extended_row, fabricated_rows, json_bytes


def _files(variant: str, listens: int, seed: int) -> dict[str, bytes]:
    return render(synthesize(variant, listens, seed), variant)


def _import(
    home: Home, member: str, files: dict[str, bytes], tmp: Path, name: str = "export.zip"
) -> ImportSummary:
    path = tmp / name
    write_zip(files, path)
    try:
        return import_export(home, member, path)
    except ContributionRejected as rejected:
        return rejected.summary


def _status(summary: ImportSummary) -> dict[str, str]:
    return {c.name: c.status for c in summary.checks}


def _rows(files: dict[str, bytes]) -> tuple[str, list[dict[str, Any]]]:
    name = next(n for n in files if "Audio" in n)
    return name, orjson.loads(files[name])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", [101, 202])
def test_honest_exports_are_accepted(home: Home, tmp_path: Path, variant: str, seed: int) -> None:
    add_member(home, "honest")
    summary = _import(home, "honest", _files(variant, 4_000, seed), tmp_path)
    assert summary.verdict == "accepted", [c for c in summary.checks if c.status != PASS]
    assert summary.listens_added > 3_500 and summary.quality_score > 0


def test_random_fabrication_is_rejected(home: Home, tmp_path: Path) -> None:
    add_member(home, "forger")
    files = {
        "Spotify Extended Streaming History/Streaming_History_Audio_2022-2023_0.json": json_bytes(
            fabricated_rows(3_000)
        )
    }
    summary = _import(home, "forger", files, tmp_path)
    status = _status(summary)
    assert summary.verdict == "rejected" and summary.listens_added == 0
    assert status["rounded_lengths"] == FAIL and status["time_of_day"] == FAIL
    assert status["skip_pattern"] == WARN  # skips and reasons drawn uniformly
    assert get_member(home, "forger").events_file is None


@pytest.fixture
def victim(home: Home, tmp_path: Path) -> dict[str, bytes]:
    """An honest member's variant-C export, already contributed."""
    add_member(home, "victim")
    files = _files("extended-c", 3_000, 303)
    assert _import(home, "victim", files, tmp_path, "victim.zip").verdict == "accepted"
    add_member(home, "copier")
    return files


def test_copy_of_another_members_export(
    home: Home, tmp_path: Path, victim: dict[str, bytes]
) -> None:
    # the very same plays again: perhaps the owner, who came second; held for the steward
    summary = _import(home, "copier", victim, tmp_path)
    copied = next(c for c in summary.checks if c.name == "copied_data")
    assert summary.verdict == "disputed" and copied.status == "hold" and copied.value == 1.0
    assert "plays unaltered: 100.0 %" in copied.message
    assert summary.dispute is not None and summary.dispute["reason"] == "copy"
    assert get_member(home, "victim").pseudonym not in repr(summary)  # the steward's to see
    assert summary.listens_added == 0 and get_member(home, "copier").events_file is None
    row = get_contribution(home, summary.contribution)
    assert row.vault_file is not None and row.quality_score == 0  # kept for the decision
    assert member_weight(home, get_member(home, "copier").id) == 0


@pytest.mark.parametrize("minutes", [3, -7])
def test_time_shifted_copy(
    home: Home, tmp_path: Path, victim: dict[str, bytes], minutes: int
) -> None:
    shifted = {}
    for name, data in victim.items():
        if name.endswith(".json"):
            rows = orjson.loads(data)
            for r in rows:
                t = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=minutes)
                r["ts"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            data = orjson.dumps(rows, option=orjson.OPT_INDENT_2)
        shifted[name] = data
    summary = _import(home, "copier", shifted, tmp_path)
    copied = next(c for c in summary.checks if c.name == "copied_data")
    assert summary.verdict == "rejected" and copied.status == FAIL
    assert copied.value is not None and copied.value > 0.99
    assert "with times or lengths changed" in copied.message  # not held: not the owner's


def test_merge_of_two_members_exports(home: Home, tmp_path: Path, victim: dict[str, bytes]) -> None:
    own_name, own = _rows(_files("extended-c", 3_000, 404))
    _, theirs = _rows(victim)
    merged = sorted(own + theirs, key=lambda r: r["ts"])
    summary = _import(home, "copier", {own_name: json_bytes(merged)}, tmp_path)
    copied = next(c for c in summary.checks if c.name == "copied_data")
    assert summary.verdict == "rejected" and copied.value is not None
    assert 0.3 < copied.value < 0.7


def test_doubled_rows(home: Home, tmp_path: Path) -> None:
    add_member(home, "doubler")
    name, rows = _rows(_files("extended-c", 3_000, 505))
    doubled = sorted(rows + rows, key=lambda r: r["ts"])
    summary = _import(home, "doubler", {name: json_bytes(doubled)}, tmp_path)
    assert summary.verdict == "rejected" and _status(summary)["repeated_rows"] == FAIL


def test_impossible_days(home: Home, tmp_path: Path) -> None:
    add_member(home, "insomniac")
    name, rows = _rows(_files("extended-c", 3_000, 606))
    # 40 hours of distinct 4-minute plays squeezed into one day (600 × 4 min)
    extra = [
        extended_row(
            "c",
            ts=f"2022-06-01T{h:02d}:{m:02d}:00Z",
            ms_played=240_000 + m,
            master_metadata_track_name=f"Loop {h}-{m}",
        )
        for h in range(24)
        for m in range(0, 60, 2)
    ][:600]
    summary = _import(
        home, "insomniac", {name: json_bytes(sorted(rows + extra, key=lambda r: r["ts"]))}, tmp_path
    )
    daily = next(c for c in summary.checks if c.name == "daily_listening")
    assert summary.verdict == "rejected" and daily.status == FAIL
    assert daily.value is not None and daily.value > 36


def test_truncated_json_is_refused(home: Home, tmp_path: Path) -> None:
    add_member(home, "trunc")
    name, rows = _rows(_files("extended-c", 2_000, 707))
    with pytest.raises(ExportError, match="is not valid JSON"):
        _import(home, "trunc", {name: json_bytes(rows)[:-500]}, tmp_path)


def test_export_missing_a_file_warns(home: Home, tmp_path: Path) -> None:
    add_member(home, "partial")
    files = _files("extended-b", 40_000, 808)
    del files["MyData/endsong_1.json"]
    summary = _import(home, "partial", files, tmp_path)
    assert summary.verdict == "accepted_with_warnings"
    assert _status(summary)["file_sequence"] == WARN


def test_account_of_another_member_is_held(home: Home, tmp_path: Path) -> None:
    add_member(home, "owner")
    add_member(home, "thief")
    history = synthesize("extended-b", 2_000, 909)
    assert _import(home, "owner", render(history, "extended-b"), tmp_path).verdict == "accepted"
    account_data = render(history, "account")  # Userdata.json: the same username
    summary = _import(home, "thief", account_data, tmp_path, "acc.zip")
    # the first to import an account is not always its owner: the steward decides
    assert _status(summary)["account"] == "hold" and summary.verdict == "disputed"
    assert summary.dispute is not None and summary.dispute["reason"] == "account"
    assert get_member(home, "thief").account_hash is None  # a held import binds nothing


def test_rejected_import_is_recorded_and_adds_nothing(home: Home, tmp_path: Path) -> None:
    add_member(home, "forger")
    path = tmp_path / "Streaming_History_Audio_2022-2023_0.json"
    path.write_bytes(json_bytes(fabricated_rows(1_000)))
    with pytest.raises(ContributionRejected, match="rejected by its checks") as info:
        import_export(home, "forger", path)
    row = get_contribution(home, info.value.summary.contribution)
    assert row.verdict == "rejected" and row.listens_added == 0 and row.vault_file is None
    assert row.summary["checks"] and row.summary["verdict"] == "rejected"
    assert not list((home.settings.home / "vault").rglob("*.bin"))
    with home.sessions() as s:
        assert audit.entries(s)[-1].action == "member.import.rejected"
    assert verify_audit(home).ok


def test_quality_increments_sum_to_the_member_score(home: Home, tmp_path: Path) -> None:
    add_member(home, "q")
    history = synthesize("extended-c", 6_000, 111)
    acc = _import(home, "q", render(history, "account"), tmp_path, "acc.zip")
    ext = _import(home, "q", render(history, "extended-c"), tmp_path, "ext.zip")
    again = _import(home, "q", render(history, "extended-c"), tmp_path, "ext.zip")
    assert acc.quality_score > 0 and ext.quality_score > 0
    assert again.quality_score == 0 and again.listens_added == 0
    m = get_member(home, "q")
    now = datetime.now(UTC)
    total = quality(home.events.read(m.pseudonym, m.events_file), now)["score"]
    assert member_weight(home, m.id) == pytest.approx(total, abs=1e-4)
    # account data alone is less rich than extended history
    assert acc.quality["member_after"]["richness"] == 0.5
    assert ext.quality["member_after"]["richness"] == 1.0


# --- checks as pure functions ------------------------------------------------------


def _parsed(
    rows: list[dict[str, Any]],
    name: str = "Streaming_History_Audio_2024_0.json",
    video: bool = False,
) -> FileInfo:
    from tunetrust.formats.package import ExportFile
    from tunetrust.formats.spotify import SpotifyParser

    data = json_bytes(rows)
    f = ExportFile(name=name, size=len(data), _read=lambda limit: data)
    parsed = SpotifyParser().parse(f, data, "extended-video" if video else "extended-audio")
    return FileInfo(name, parsed.variant, False, parsed.table)


@pytest.mark.parametrize(("hours", "status"), [(20, PASS), (30, WARN), (40, FAIL)])
def test_daily_listening_thresholds(hours: int, status: str) -> None:
    rows = [
        extended_row(
            "c",
            ts=f"2024-01-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            ms_played=hours * 3_600_000 // 200 + i,
        )
        for i in range(200)
    ]
    plays, _ = _unique_plays(_parsed(rows).table, FACTS)
    assert check_daily(plays, Checks()).status == status


def test_sort_order_of_a_sorted_variant() -> None:
    rows = [
        extended_row("c", ts="2024-01-02T00:00:00Z"),
        extended_row("c", ts="2024-01-01T00:00:00Z"),
    ]
    assert check_sort_order([_parsed(rows)], FACTS).status == WARN
    assert check_sort_order([_parsed(rows[::-1])], FACTS).status == PASS


def test_uri_with_two_names() -> None:
    rows = [
        extended_row("c", ts=f"2024-01-0{i + 1}T00:00:00Z", master_metadata_track_name=name)
        for i, name in enumerate("AAB")
    ]
    check = check_uri_metadata(_parsed(rows).table)
    assert check.status == FAIL and check.value == 1.0


def test_video_and_audio_disagree() -> None:
    audio = _parsed([extended_row("c")])
    video = _parsed(
        [
            extended_row(
                "c", master_metadata_track_name="Other", spotify_track_uri="spotify:track:x"
            )
        ],
        "Streaming_History_Video_2024.json",
        video=True,
    )
    assert check_video_audio([audio, video]).status == WARN
    same = _parsed([extended_row("c")], "Streaming_History_Video_2024.json", video=True)
    assert check_video_audio([audio, same]).status == PASS


def test_quality_of_nothing_is_zero() -> None:
    from tunetrust.store.events import EVENTS_SCHEMA

    assert quality(EVENTS_SCHEMA.empty_table(), datetime.now(UTC))["score"] == 0.0


def test_import_json_reports_verdict_and_checks(tmp_path: Path) -> None:
    from .test_cli import run

    h = str(tmp_path / "h")
    run("--home", h, "init")
    run("--home", h, "member", "add", "ann")
    run("--home", h, "member", "add", "bob")
    z = str(tmp_path / "c.zip")
    run("--home", h, "synth", "--variant", "extended-c", "--listens", "2000", "--out", z)
    ok = run("--home", h, "import", z, "--member", "ann", "--json")
    data = json.loads(ok.stdout)
    assert ok.returncode == 0 and data["verdict"] == "accepted"
    assert isinstance(data["quality_score"], float) and data["quality_score"] > 0
    assert all(
        {"name", "status", "value", "threshold", "message"} <= c.keys() for c in data["checks"]
    )
    copy = run("--home", h, "import", z, "--member", "bob", "--json")
    held = json.loads(copy.stdout)  # the same plays: the steward decides whose they are
    assert copy.returncode == 0 and held["verdict"] == "disputed"
    assert held["listens_added"] == 0 and held["dispute"]["reason"] == "copy"
    forged = tmp_path / "Streaming_History_Audio_2022-2023_0.json"
    forged.write_bytes(json_bytes(fabricated_rows(1_000)))
    fail = run("--home", h, "import", str(forged), "--member", "bob", "--json")
    assert fail.returncode == 1
    rejected = json.loads(fail.stdout)
    assert rejected["verdict"] == "rejected" and rejected["listens_added"] == 0
    assert "rejected by its checks (rounded_lengths" in fail.stderr
    shown = run("--home", h, "contribution", "show", rejected["contribution"], "--json")
    assert json.loads(shown.stdout)["verdict"] == "rejected"
    listed = run("--home", h, "contribution", "list")
    assert "rejected" in listed.stdout and "accepted" in listed.stdout
    assert "disputed" in listed.stdout
