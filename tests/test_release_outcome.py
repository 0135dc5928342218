"""A release's expected outcome before anything is spent, its checksums and column schema,
and members' caps (issue 13: items 8, 9 and 12)."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tunetrust import Home, InputError, Settings, init_home, verify_audit
from tunetrust.coop import governance
from tunetrust.coop.budget import budget_report, set_member_cap
from tunetrust.releases import noise
from tunetrust.releases.build import build_release, plan_release
from tunetrust.releases.manifest import verify_files
from tunetrust.releases.noise import (
    _threshold,
    _vector,
    half_width,
    noise_at_least,
    noise_within,
    plan_noise,
)
from tunetrust.releases.spec import parse_spec
from tunetrust.services import sale

from .test_cli import run
from .test_releases import INTERFACE_SPEC, _join

MEMBERS = [f"o{i}" for i in range(3)]
# ε 10, P = 1, Laplace, τ = 2: a key needs 3 noisy members, so three members can fill it
LOOSE = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [month]
metrics: [plays, listeners]
bounds: {max_partitions: 1, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 10.0, delta: 1.0e-4, noise: laplace, split: {selection: 0.95, plays: 0.05}}
keys: private
min_listeners: 2
"""
CALENDAR = """\
purpose: research
filters: {kind: music, min_seconds: 30, period: {from: 2023-01-01, to: 2023-12-31}}
group_by: [month]
metrics: [plays, minutes, listeners, skip_share]
bounds: {max_partitions: 6, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: public
"""


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("outcome")
    home = init_home(Settings(home=root / "home", epsilon_cap=100.0))
    _join(home, root, MEMBERS, 400, 300, years=2)
    # LOOSE asks δ 1e-4 a release: above the default yearly δ cap, so the test raises it
    governance.set_rules(home, reason="tests of key selection at high ε and δ", delta_cap=1e-3)
    return home


def _releases(home: Home) -> list[str]:
    folder = home.settings.home / "releases"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _spent(home: Home) -> list[str]:
    return [budget_report(home, name)[0]["spent"] for name in MEMBERS]


# --- the 95 % half-widths: the formulas, then OpenDP's own samples ---------------------


def _pmf(kind: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The discrete noise's probabilities on a wide range, by brute force."""
    x = np.arange(-int(60 * scale) - 60, int(60 * scale) + 61)
    logw = -(x.astype(float) ** 2) / (2 * scale**2) if kind == "gaussian" else -np.abs(x) / scale
    w = np.exp(logw - logw.max())
    return x, w / w.sum()


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5, 7.5, 40.0, 300.0])
def test_half_width_is_the_smallest_covering_95_percent(kind: str, scale: float) -> None:
    x, p = _pmf(kind, scale)
    h = half_width(kind, scale)
    assert p[np.abs(x) <= h].sum() >= 0.95
    assert h == 0 or p[np.abs(x) <= h - 1].sum() < 0.95
    for k in (h - 1, h, h + 3):
        assert noise_within(kind, scale, k) == pytest.approx(p[np.abs(x) <= k].sum(), abs=1e-12)
    for k in (-h, 0, 1, h // 2, h, 2 * h + 1):
        assert noise_at_least(kind, scale, k) == pytest.approx(p[x >= k].sum(), abs=1e-12)


def test_large_gaussian_scales_use_the_continuity_corrected_normal() -> None:
    """At σ = 5,000 the exact sums and the normal formula agree to 10⁻⁹; above it the
    formula is used, h = ⌈1.95996·σ − ½⌉."""
    scale = noise._EXACT_GAUSSIAN_UP_TO
    for h in (0, 3_000, 9_799, 9_800, 15_000):
        normal = math.erf((h + 0.5) / (scale * math.sqrt(2)))
        assert abs(noise_within("gaussian", scale, h) - normal) < 1e-9
        tail = 0.5 * math.erfc((h - 0.5) / (scale * math.sqrt(2)))
        assert abs(noise_at_least("gaussian", scale, h) - tail) < 1e-9
    assert half_width("gaussian", scale) == math.ceil(1.959963984540054 * scale - 0.5)
    big = scale * 1_000
    assert half_width("gaussian", big) == math.ceil(1.959963984540054 * big - 0.5)
    assert noise_within("gaussian", big, half_width("gaussian", big)) >= 0.95


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
@pytest.mark.parametrize("scale", [0.8, 3.7, 25.0])
def test_half_width_covers_95_percent_of_opendps_own_noise(kind: str, scale: float) -> None:
    """20,000 draws from the measurement a release uses; each empirical share must be
    within 5 standard errors of the computed one (the coverage, at least 0.95: ±0.008;
    a tail near 0.17: ±0.013 — a fixed ±0.008 was 3 standard errors there, and failed
    about once in a hundred runs by chance)."""
    n = 20_000
    draws = np.array(_vector(kind, scale)([0] * n))

    def within_5_se(seen: float, p: float) -> bool:
        return abs(seen - p) <= 5 * math.sqrt(p * (1 - p) / n)

    h = half_width(kind, scale)
    covered, expected = float(np.mean(np.abs(draws) <= h)), noise_within(kind, scale, h)
    assert within_5_se(covered, expected), (covered, expected)
    assert expected >= 0.95 and covered >= 0.95 - 0.008
    k = max(1, h // 2)
    tail, expected_tail = float(np.mean(draws >= k)), noise_at_least(kind, scale, k)
    assert within_5_se(tail, expected_tail), (tail, expected_tail)


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_chance_of_a_key_all_members_share_matches_the_threshold_measurement(kind: str) -> None:
    """The outcome's probability for a key shared by all M members, against 4,000 runs
    of OpenDP's threshold measurement on that key's shifted count."""
    spec = parse_spec(INTERFACE_SPEC.replace("delta: 1.0e-6", f"delta: 1.0e-6, noise: {kind}"))
    plan = plan_noise(spec)
    assert plan.release_threshold is not None and plan.threshold is not None
    members = plan.release_threshold - 3
    outcome = noise.expected_outcome(plan, spec, members)
    assert outcome.expected_empty  # M below the threshold
    chance = outcome.chance_all_members_key
    assert chance is not None and 0.2 < chance < 0.5
    m = _threshold(kind, plan.parts["selection"].scale, plan.threshold)
    shifted = members - (plan.min_listeners - 1)
    seen = sum("k" in m({"k": shifted}) for _ in range(4_000)) / 4_000
    assert seen == pytest.approx(chance, abs=0.04)  # 5 standard errors


# --- item 8: expected-empty releases are shown, and refused unless allowed -------------


def test_plan_states_the_expected_outcome_without_spending(coop: Home) -> None:
    spec = parse_spec(INTERFACE_SPEC)  # the README's spec: ~332 members per key
    before, spent = _releases(coop), _spent(coop)
    with pytest.raises(InputError, match=r"at least 332 members .* would include 3 members"):
        plan_release(coop, spec)
    plan = plan_release(coop, spec, allow_empty=True)
    out = plan.outcome
    assert out.expected_empty and out.members == 3 and out.release_threshold == 332
    assert out.keys_at_most == 0  # three members cannot reach min_listeners 10
    assert out.chance_all_members_key == 0.0
    assert set(out.accuracy) == {"plays", "minutes"}
    plays = out.accuracy["plays"]
    assert plays.scale == plan.noise.parts["plays"].scale
    assert plays.half_width == half_width("gaussian", plays.scale) and plays.coverage >= 0.95
    shown = plan.to_dict()["outcome"]
    assert shown["expected_empty"] is True and "332 members" in shown["statement"]
    assert _releases(coop) == before and _spent(coop) == spent


def test_an_expected_empty_build_is_refused_and_writes_nothing(coop: Home) -> None:
    before, spent = _releases(coop), _spent(coop)
    with pytest.raises(InputError, match="expected to be empty") as info:
        build_release(coop, parse_spec(INTERFACE_SPEC))
    assert "\n" not in str(info.value) and "--allow-empty" in str(info.value)
    assert _releases(coop) == before and _spent(coop) == spent


def test_allow_empty_builds_and_says_so_in_the_manifest(tmp_path: Path) -> None:
    home = init_home(Settings(home=tmp_path / "h"))
    _join(home, tmp_path, ["a0", "a1"], 300, 400, years=1)
    built = build_release(home, parse_spec(INTERFACE_SPEC), allow_empty=True)
    privacy = built.manifest["privacy"]
    assert privacy["built_although_expected_empty"] is True
    assert privacy["expected_outcome"]["release_threshold"] == 332
    assert built.manifest["rows"] == 0 and verify_files(built.path) == []
    assert budget_report(home, "a0")[0]["spent"] == "1"
    home.close()


def test_a_private_release_that_can_fill_keys_is_not_refused(coop: Home) -> None:
    spec = parse_spec(LOOSE)
    plan = plan_release(coop, spec)
    out = plan.outcome
    assert not out.expected_empty and out.release_threshold == 3 and out.members == 3
    assert out.keys_at_most == 3 * 1 // 2
    assert set(out.accuracy) == {"plays", "listeners"}
    assert out.accuracy["listeners"].scale == plan.noise.parts["selection"].scale
    built = build_release(coop, spec)
    assert built.manifest["privacy"]["built_although_expected_empty"] is False


def test_public_keys_are_never_expected_empty(coop: Home) -> None:
    out = plan_release(coop, parse_spec(CALENDAR)).outcome
    assert not out.expected_empty and out.keys_declared == out.keys_at_most == 12
    assert out.release_threshold is None and out.chance_all_members_key is None
    assert set(out.accuracy) == {"listeners", "plays", "minutes", "skips"}
    assert "12 declared keys" in out.describe()


def test_a_request_cannot_be_opened_for_an_expected_empty_spec(tmp_path: Path) -> None:
    """Two members and the README's spec: refused when the vote would open (or earlier),
    since ``open_request`` plans with ``plan_release``'s default, which refuses."""
    home = init_home(Settings(home=tmp_path / "g"))
    _join(home, tmp_path, ["g0", "g1"], 300, 500, years=1)
    governance.add_buyer(home, "Acme Research", "data@acme.invalid", "SE")
    with pytest.raises(InputError, match="expected to be empty"):
        req = sale.create_request(
            home,
            buyer="Acme Research",
            spec_text=INTERFACE_SPEC,
            price=250_000,
            currency="EUR",
            licence="research-only",
            voting_days=7,
        )
        sale.open_request(home, req.id)
    home.close()


def test_cli_plan_shows_the_outcome_and_build_needs_allow_empty(coop: Home, tmp_path: Path) -> None:
    h = str(coop.settings.home)
    cap = {"TUNETRUST_EPSILON_CAP": str(coop.settings.epsilon_cap)}  # as the fixture's
    spec = tmp_path / "spec.yaml"
    spec.write_text(INTERFACE_SPEC)
    shown = run("--home", h, "release", "plan", str(spec), env=cap)
    assert shown.returncode == 0, shown.stderr
    words = " ".join(shown.stdout.split())
    assert "A key is released only if at least 332 members contributed to it" in words
    assert "this release would include 3 members" in words
    assert "none expected" in words and "--allow-empty" in words
    assert re.search(r"accuracy of plays\s+│\s+± [\d,]+ plays, 95 % of the time", shown.stdout)
    doc = json.loads(run("--home", h, "release", "plan", str(spec), "--json", env=cap).stdout)
    assert doc["outcome"]["expected_empty"] is True
    assert doc["outcome"]["accuracy"]["plays"]["half_width"] > 0
    before = _releases(coop)
    refused = run("--home", h, "release", "build", str(spec), env=cap)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "expected to be empty" in refused.stderr
    assert _releases(coop) == before


# --- item 9: SHA256SUMS and schema.json beside the data --------------------------------


def test_sha256sums_checks_with_coreutils_and_fails_on_one_changed_byte(coop: Home) -> None:
    built = build_release(coop, parse_spec(CALENDAR))
    lines = (built.path / "SHA256SUMS").read_text().splitlines()
    names = ["data.csv", "data.parquet", "manifest.json", "schema.json"]
    assert [line[66:] for line in lines] == names
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in lines)
    ok = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=built.path, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines() == [f"{name}: OK" for name in names]
    parquet = built.path / "data.parquet"
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0x01
    parquet.write_bytes(bytes(data))
    bad = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=built.path, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "data.parquet: FAILED" in bad.stdout
    assert "data.parquet does not match its SHA-256 in SHA256SUMS" in verify_files(built.path)


def test_verify_names_a_sums_file_that_is_changed_or_missing(coop: Home) -> None:
    built = build_release(coop, parse_spec(CALENDAR))
    sums = built.path / "SHA256SUMS"
    text = sums.read_text()
    sums.write_text("".join(line for line in text.splitlines(True) if "schema" not in line))
    assert verify_files(built.path) == ["SHA256SUMS does not cover schema.json"]
    sums.write_text(text + "not a checksum line\n")
    assert verify_files(built.path) == [
        "SHA256SUMS, line 5: not a line of SHA-256 and a file in the release"
    ]
    sums.unlink()
    assert verify_files(built.path) == ["SHA256SUMS is missing"]


def test_schema_describes_every_column_with_its_unit_and_noise(coop: Home) -> None:
    built = build_release(coop, parse_spec(CALENDAR))
    schema = json.loads((built.path / "schema.json").read_text())
    table = pq.read_table(built.path / "data.parquet")
    columns = {c["name"]: c for c in schema["columns"]}
    assert list(columns) == table.column_names
    assert table.column_names == ["month", "listeners", "plays", "minutes", "skip_share"]
    month = columns["month"]
    assert (month["role"], month["type"], month["noisy"]) == ("key", "string", False)
    assert "UTC" in month["meaning"]
    units = {name: (c["type"], c["unit"], c["noisy"]) for name, c in columns.items()}
    assert units == {
        "month": ("string", None, False),
        "listeners": ("integer", "members", True),
        "plays": ("integer", "plays", True),
        "minutes": ("integer", "minutes", True),
        "skip_share": ("number", "share 0–1", True),
    }
    outcome = built.manifest["privacy"]["expected_outcome"]["accuracy"]
    for name in ("listeners", "plays", "minutes"):
        assert columns[name]["noise"][name]["half_width_95"] == outcome[name]["half_width"]
    assert set(columns["skip_share"]["noise"]) == {"skips", "plays"}
    assert "at most 3 per member and key" in columns["plays"]["meaning"]
    assert schema["keys"].startswith("public")
    assert built.manifest["files"]["schema.json"]


def test_schema_of_a_private_release_states_its_threshold(coop: Home) -> None:
    built = build_release(coop, parse_spec(LOOSE))
    schema = json.loads((built.path / "schema.json").read_text())
    assert "reached 3 and at least 2 members" in schema["keys"]


# --- item 12: a member's cap above the cooperative's is refused ------------------------


def test_a_member_cap_above_the_cooperatives_is_refused(home: Home, member: str) -> None:
    with pytest.raises(InputError, match=r"5 is above the cooperative's cap of 3"):
        set_member_cap(home, member, "research", 5)
    assert budget_report(home, member)[0]["cap"] == "3"
    assert set_member_cap(home, member, "research", 2).micro == 2_000_000
    assert set_member_cap(home, member, "research", 3).micro == 3_000_000  # restored
    assert verify_audit(home).ok


def test_cli_budget_set_above_the_cooperative_cap_exits_1(home: Home, member: str) -> None:
    h = str(home.settings.home)
    refused = run("--home", h, "budget", "set", member, "research", "--cap", "5")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "5 is above the cooperative's cap of 3" in refused.stderr
    assert budget_report(home, member)[0]["cap"] == "3"
