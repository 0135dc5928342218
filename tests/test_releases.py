"""Differentially private releases: correctness, bounding, noise, selection, budgets, manifests."""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunetrust import (
    ConflictError,
    Home,
    InputError,
    Settings,
    add_member,
    decide_consent,
    erase_member,
    get_member,
    import_export,
    init_home,
    verify_audit,
)
from tunetrust.formats.synth import render, synthesize, write_zip
from tunetrust.releases import budget
from tunetrust.releases.budget import Epsilon
from tunetrust.releases.build import build_release, inclusion, plan_release
from tunetrust.releases.engine import DuckDBEngine
from tunetrust.releases.manifest import Proof, check_proof, verify_files
from tunetrust.releases.noise import _threshold, _vector, plan_noise
from tunetrust.releases.spec import ReleaseSpec, parse_spec

INTERFACE_SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [country, month, track]
metrics: [plays, minutes]
bounds: {max_partitions: 50, max_plays_per_partition: 5, max_minutes_per_play: 10}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: private
"""

SMALL = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [country, month]
metrics: [plays, minutes, listeners, skip_share]
bounds: {max_partitions: 6, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: private
"""


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("coop")
    home = init_home(Settings(home=root / "home", epsilon_cap=3.0))
    for i in range(12):
        name = f"m{i:02d}"
        add_member(home, name)
        path = root / f"{name}.zip"
        write_zip(render(synthesize("extended-c", 1_500, 500 + i, years=2), "extended-c"), path)
        import_export(home, name, path)
        if i >= 2:
            decide_consent(home, name, "research", granted=True)
    return home


def _reference(
    home: Home, spec: ReleaseSpec, salt: str, members: list[str]
) -> dict[tuple[str, ...], dict[str, int]]:
    """Bounded aggregates computed the plain way, row by row, with the same sampling rule."""
    per: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for name in members:
        m = get_member(home, name)
        for r in home.events.read(m.pseudonym, m.events_file).to_pylist():
            if r["kind"] not in spec.kinds or r["ms_played"] < spec.min_seconds * 1000:
                continue
            key = (r["country"], r["ts"].strftime("%Y-%m"))
            if None in key:
                continue
            per[(m.pseudonym, key)].append(r)
    kept: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for pseudonym, key in per:
        kept[pseudonym].append(key)
    out: dict[tuple[str, ...], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("listeners", "plays", "minutes", "skips"), 0)
    )
    c, clamp = spec.bounds.max_plays_per_partition, spec.bounds.max_minutes_per_play
    for pseudonym, keys in kept.items():
        ranked = sorted(
            keys, key=lambda k: hashlib.md5("|".join([pseudonym, *k, salt]).encode()).hexdigest()
        )
        for key in ranked[: spec.bounds.max_partitions]:
            rows = per[(pseudonym, key)]
            n = len(rows)
            mins = sum(min(r["ms_played"] / 60000, clamp) for r in rows)
            skips = sum(
                1
                for r in rows
                if (
                    r["skipped"]
                    if r["skipped"] is not None
                    else r["reason_end"] in ("fwdbtn", "backbtn")
                )
            )
            agg = out[key]
            agg["listeners"] += 1
            agg["plays"] += min(n, c)
            agg["minutes"] += math.floor(min(n, c) * mins / n)
            agg["skips"] += math.floor(min(n, c) * skips / n)
    return dict(out)


def test_interface_spec_parses_and_plans(coop: Home) -> None:
    spec = parse_spec(INTERFACE_SPEC)
    plan = plan_release(coop, spec)
    assert plan.left_out == {"no_consent": 2} and len(plan.included) == 10
    assert plan.noise.accounting["epsilon_spent"] <= 1.0
    assert plan.noise.accounting["delta_spent"] <= 1e-6 * (1 + 1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("group_by: [country, month, track]", "group_by: [country, mood]"), "unknown key 'mood'"),
        (("metrics: [plays, minutes]", "metrics: [likes]"), "unknown metric 'likes'"),
        (("epsilon: 1.0", "epsilon: -1"), "privacy.epsilon"),
        (("delta: 1.0e-6", "delta: 0"), "needs a delta above 0"),
        (("max_partitions: 50", "max_partitions: 0"), "bounds.max_partitions"),
        (("keys: private", "keys: public"), "public keys need a list"),
        (("kind: music", "kind: vinyl"), "unknown kind 'vinyl'"),
        (("purpose: research", "purpose: research\nbuyer: x"), "unknown field"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: tuple[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_spec(INTERFACE_SPEC.replace(*change))


def test_without_noise_aggregates_equal_the_reference(coop: Home) -> None:
    spec = parse_spec(SMALL)
    built = build_release(coop, spec, _noise=False)
    salt = built.manifest["privacy"]["bounding_salt"]
    want = _reference(coop, spec, salt, [f"m{i:02d}" for i in range(2, 12)])
    got = {
        (r["country"], r["month"]): r
        for r in pq.read_table(built.path / "data.parquet").to_pylist()
    }
    assert set(got) == set(want) and len(got) > 20
    for key, agg in want.items():
        row = got[key]
        assert (row["listeners"], row["plays"], row["minutes"]) == (
            agg["listeners"],
            agg["plays"],
            agg["minutes"],
        ), key
        assert row["skip_share"] == pytest.approx(round(agg["skips"] / agg["plays"], 4))


def test_one_enormous_member_moves_each_partition_at_most_the_sensitivity(
    coop: Home, tmp_path: Path
) -> None:
    spec = parse_spec(SMALL)
    files = [
        coop.events.partition(m.pseudonym) / str(m.events_file)
        for m in (get_member(coop, f"m{i:02d}") for i in range(2, 12))
    ]
    whale_home = init_home(Settings(home=tmp_path / "w"))
    add_member(whale_home, "whale")
    path = tmp_path / "whale.zip"
    write_zip(render(synthesize("extended-c", 60_000, 999, years=2), "extended-c"), path)
    import_export(whale_home, "whale", path)
    w = get_member(whale_home, "whale")
    whale_file = whale_home.events.partition(w.pseudonym) / str(w.events_file)
    engine = DuckDBEngine()
    before = {
        tuple(r[k] for k in spec.group_by): r
        for r in engine.aggregate(spec, files, "salt").to_pylist()
    }
    after = {
        tuple(r[k] for k in spec.group_by): r
        for r in engine.aggregate(spec, [*files, whale_file], "salt").to_pylist()
    }
    zero = {"listeners": 0, "plays": 0, "minutes": 0, "skips": 0}
    changed = [k for k in after if after[k] != before.get(k, zero)]
    assert 0 < len(changed) <= spec.bounds.max_partitions
    c, m = spec.bounds.max_plays_per_partition, spec.bounds.max_minutes_per_play
    for k in changed:
        b = before.get(k, zero)
        assert 0 <= after[k]["listeners"] - b["listeners"] <= 1
        assert 0 <= after[k]["plays"] - b["plays"] <= c
        assert 0 <= after[k]["minutes"] - b["minutes"] <= math.floor(c * m)
        assert 0 <= after[k]["skips"] - b["skips"] <= c
    whale_home.close()


@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_noise_spread_matches_the_declared_scale(noise: str) -> None:
    scale = 7.5
    samples = np.array(_vector(noise, scale)([0] * 20_000))
    expected = scale if noise == "gaussian" else scale * math.sqrt(2)
    assert abs(samples.mean()) < 0.05 * expected * 3
    assert samples.std() == pytest.approx(expected, rel=0.03)


def test_private_selection_never_releases_a_single_members_key() -> None:
    plan = plan_noise(parse_spec(INTERFACE_SPEC))
    part = plan.parts["selection"]
    assert plan.threshold is not None
    m = _threshold(plan.noise, part.scale, plan.threshold)
    big = plan.threshold * 3
    released_solo = released_big = 0
    for _ in range(3_000):
        out = m({"solo": 1, "big": big})
        released_solo += "solo" in out
        released_big += "big" in out
    assert released_solo == 0  # P ≤ δ = 1e-6 per trial
    assert released_big == 3_000


@given(
    st.lists(st.tuples(st.booleans(), st.decimals(min_value=0, max_value=5, places=6)), max_size=40)
)
@settings(max_examples=200, deadline=None)
def test_budget_arithmetic_is_exact_and_never_negative(steps: list[tuple[bool, Any]]) -> None:
    balance = Epsilon.of(3)
    exact = Epsilon.of(3).micro
    for add, amount in steps:
        e = Epsilon.of(amount)
        if add:
            balance, exact = balance + e, exact + e.micro
        elif e <= balance:
            balance, exact = balance - e, exact - e.micro
        else:
            with pytest.raises(ConflictError, match="below zero"):
                balance - e
        assert balance.micro == exact >= 0
    assert sum([Epsilon.of("0.1")] * 10, Epsilon(0)) == Epsilon.of(1)


def test_differencing_attack_costs_budget_as_declared(tmp_path: Path) -> None:
    """Two releases that differ by one member: each spends ε from everyone it includes,
    so repeating them runs members out of budget and the releases are then refused."""
    home = init_home(Settings(home=tmp_path / "h", epsilon_cap=2.0))
    for i in range(4):
        name = f"d{i}"
        add_member(home, name)
        path = tmp_path / f"{name}.zip"
        write_zip(render(synthesize("extended-c", 800, 700 + i, years=1), "extended-c"), path)
        import_export(home, name, path)
        decide_consent(home, name, "research", granted=True)
    spec = parse_spec(SMALL)
    first = build_release(home, spec)
    decide_consent(home, "d3", "research", granted=False)  # the one-member difference
    second = build_release(home, spec)
    assert (first.manifest["members_included"], second.manifest["members_included"]) == (4, 3)
    ids = {f"d{i}": get_member(home, f"d{i}").id for i in range(4)}
    with home.sessions() as s:
        spent = {
            name: budget.spent(s, member_id, "research", int(first.manifest["accounting"]["year"]))
            for name, member_id in ids.items()
        }
    assert spent == {
        "d0": Epsilon.of(2),
        "d1": Epsilon.of(2),
        "d2": Epsilon.of(2),
        "d3": Epsilon.of(1),
    }
    decide_consent(home, "d3", "research", granted=True)
    before = sorted(p.name for p in (home.settings.home / "releases").iterdir())
    with pytest.raises(ConflictError, match=r"requested ε 1, remaining ε 0 at most") as info:
        build_release(home, parse_spec(SMALL + "min_members: 2\n"))
    assert "privacy budget" in str(info.value)
    assert sorted(p.name for p in (home.settings.home / "releases").iterdir()) == before
    assert verify_audit(home).ok
    home.close()


def test_manifest_files_and_proofs(coop: Home) -> None:
    built = build_release(coop, parse_spec(SMALL))
    doc = built.manifest
    assert set(doc["files"]) == {"data.parquet", "data.csv"}
    assert doc["members_included"] == 10 and doc["members_left_out"] == {"no_consent": 2}
    assert doc["spec"] == SMALL and doc["versions"]["opendp"].startswith("0.16")
    assert verify_files(built.path) == []
    for name, included in (("m05", True), ("m00", False)):
        proof, root = inclusion(coop, built.id, name)
        assert proof.included is included and check_proof(root, proof)
        assert not check_proof("0" * 64, proof)
    forged = Proof(True, proof.leaf, proof.count, [0], [], [[]])
    assert not check_proof(root, forged)
    (built.path / "data.csv").write_text("country,month,plays\nXX,2020-01,1\n")
    assert verify_files(built.path) == ["data.csv does not match its SHA-256 in the manifest"]


def test_public_calendar_keys_release_every_key(coop: Home) -> None:
    spec = parse_spec(
        SMALL.replace("group_by: [country, month]", "group_by: [month]")
        .replace("keys: private", "keys: public")
        .replace("kind: music,", "kind: music, period: {from: 2023-01-01, to: 2023-12-31},")
        .replace("delta: 1.0e-6", "delta: 1.0e-6, noise: gaussian")
    )
    built = build_release(coop, spec)
    months = [r["month"] for r in pq.read_table(built.path / "data.parquet").to_pylist()]
    assert months == [f"2023-{m:02d}" for m in range(1, 13)]


def test_erased_and_unconsenting_members_are_left_out(coop: Home, tmp_path: Path) -> None:
    home = init_home(Settings(home=tmp_path / "e"))
    for i in range(3):
        add_member(home, f"e{i}")
        path = tmp_path / f"e{i}.zip"
        write_zip(render(synthesize("extended-c", 500, 800 + i, years=1), "extended-c"), path)
        import_export(home, f"e{i}", path)
        decide_consent(home, f"e{i}", "research", granted=True)
    erase_member(home, "e0")
    decide_consent(home, "e1", "research", granted=False)
    plan = plan_release(home, parse_spec(SMALL))
    assert plan.left_out == {"erased": 1, "no_consent": 1} and len(plan.included) == 1
    home.close()


def test_cli_release_interface(tmp_path: Path) -> None:
    from .test_cli import run

    h = str(tmp_path / "h")
    run("--home", h, "init")
    for i in range(3):
        z = str(tmp_path / f"{i}.zip")
        run("--home", h, "member", "add", f"c{i}")
        run(
            "--home",
            h,
            "synth",
            "--variant",
            "extended-c",
            "--listens",
            "600",
            "--seed",
            str(900 + i),
            "--out",
            z,
        )
        assert run("--home", h, "import", z, "--member", f"c{i}").returncode == 0
        run("--home", h, "consent", "grant", f"c{i}", "research")
    spec = tmp_path / "spec.yaml"
    spec.write_text(INTERFACE_SPEC)
    planned = run("--home", h, "release", "plan", str(spec))
    assert planned.returncode == 0 and "members included" in planned.stdout
    built = run("--home", h, "release", "build", str(spec), "--json")
    assert built.returncode == 0, built.stderr
    data = json.loads(built.stdout)
    assert {"id", "path"} <= data.keys() and Path(data["path"]).is_dir()
    manifest = json.loads(Path(data["path"], "manifest.json").read_text())
    assert {"files", "members_included", "members_left_out", "merkle_root"} <= manifest.keys()
    assert run("--home", h, "release", "verify", data["id"]).returncode == 0
    proof = json.loads(
        run("--home", h, "release", "inclusion", data["id"], "--member", "c1").stdout
    )
    assert proof["included"] and proof["checks"]
    Path(data["path"], "data.csv").write_text("tampered")
    bad = run("--home", h, "release", "verify", data["id"])
    assert bad.returncode == 1 and "data.csv" in bad.stderr
    # three ε=1 releases spend the default cap of 3; the next is refused and writes nothing
    for _ in range(2):
        assert run("--home", h, "release", "build", str(spec)).returncode == 0
    before = sorted(p.name for p in Path(h, "releases").iterdir())
    refused = run("--home", h, "release", "build", str(spec), "--json")
    assert refused.returncode == 1 and "privacy budget: requested ε 1" in refused.stderr
    assert sorted(p.name for p in Path(h, "releases").iterdir()) == before
    shown = run("--home", h, "budget", "show", "c0")
    assert "research" in shown.stdout and shown.returncode == 0
