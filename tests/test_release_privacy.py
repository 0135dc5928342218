"""Releases under attack (issue 14): the real δ of key selection, salted Merkle leaves,
coarse member counts for buyers, and verification against the database's record."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from tunetrust import (
    Home,
    Settings,
    erase_member,
    get_member,
    init_home,
)
from tunetrust.releases.build import build_release, inclusion, verify_release
from tunetrust.releases.manifest import (
    Proof,
    check_proof,
    coarse_count,
    file_digest,
    leaf,
    member_salt,
    merkle_root,
    prove,
    sha256sums,
    tree_leaves,
    verify_files,
)
from tunetrust.releases.noise import (
    OPENDP_CHECKED,
    _threshold,
    noise_at_least,
    opendp_version,
    plan_noise,
    selection_delta,
)
from tunetrust.releases.spec import parse_spec
from tunetrust.store.models import AuditEntry, AuditPayload, Release

from .test_cli import run
from .test_releases import _join

MEMBERS = [f"q{i}" for i in range(3)]
SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [weekday]
metrics: [plays]
bounds: {max_partitions: 2, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 0.5, delta: 1.0e-6, noise: laplace}
keys: public
"""

# --- item 1: key selection's δ is what OpenDP's sampler does, not what its map says ----

ONE_KEY = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [month]
metrics: [plays]
bounds: {max_partitions: 1, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: EPS, delta: 9.0e-4, noise: NOISE}
keys: private
"""


def _released_share(noise: str, scale: float, threshold: int, trials: int) -> float:
    """How often OpenDP's threshold measurement releases a key one member holds."""
    m = _threshold(noise, scale, threshold)
    return len(m({str(i): 1 for i in range(trials)})) / trials


def _bound(p: float, trials: int) -> float:
    """``p`` plus 5 standard errors of a share measured in ``trials`` (false alarm ~3e-7)."""
    return p + 5 * math.sqrt(p * (1 - p) / trials)


@pytest.mark.parametrize(("noise", "epsilon"), [("laplace", "2.0"), ("gaussian", "3.5")])
def test_a_one_member_key_is_released_at_most_as_often_as_the_recorded_delta(
    noise: str, epsilon: str
) -> None:
    """100,000 one-member keys (max_partitions 1, so the per-key δ is the selection's δ):
    the share released stays within the δ the plan records. Before the workaround the
    threshold was one step too low and these keys were released 2.7× and 2.6× (Gaussian)
    more often than recorded (measured: 1.8e-3 against 6.7e-4, 1.2e-3 against 4.5e-4)."""
    spec = parse_spec(ONE_KEY.replace("EPS", epsilon).replace("NOISE", noise))
    plan = plan_noise(spec)
    assert plan.threshold is not None
    recorded = plan.accounting["delta_selection"]
    assert plan.accounting["delta_selection_per_key"] == recorded  # one key per member
    assert recorded <= plan.accounting["delta_spent"] <= spec.privacy.delta * (1 + 1e-9)
    trials = 100_000
    seen = _released_share(noise, plan.parts["selection"].scale, plan.threshold, trials)
    assert seen <= _bound(recorded, trials)


@pytest.mark.parametrize(
    ("noise", "scale", "threshold"), [("laplace", 1.0, 5), ("gaussian", 1.0, 3)]
)
def test_the_exact_tail_matches_opendps_sampler_and_its_map_understates_it(
    noise: str, scale: float, threshold: int
) -> None:
    """At δ ~ 1e-2, measurable in 20,000 keys: the release share of a one-member key is
    P(Z ≥ threshold − 1), as ``selection_delta`` computes, while OpenDP 0.16's map
    charges less (opendp/opendp#2922). When this fails on the second assertion, OpenDP
    has fixed its map: re-check, and drop the workaround in noise.py if it is no longer
    needed."""
    trials = 20_000
    exact = selection_delta(noise, scale, threshold, 1)
    assert exact == pytest.approx(noise_at_least(noise, scale, threshold - 1))
    assert 0.005 < exact < 0.1
    seen = _released_share(noise, scale, threshold, trials)
    assert abs(seen - exact) <= 5 * math.sqrt(exact * (1 - exact) / trials)
    claimed = _threshold(noise, scale, threshold).map((1, 1, 1))[1]
    assert _bound(claimed, trials) < seen  # the upstream bug is still there


def test_selection_delta_composes_over_keys_as_opendp_does() -> None:
    for noise, scale, threshold in [("laplace", 1.0, 5), ("gaussian", 2.0, 6)]:
        q = noise_at_least(noise, scale, threshold - 1)
        assert selection_delta(noise, scale, threshold, 7) == pytest.approx(1 - (1 - q) ** 7)


def test_the_threshold_workaround_was_checked_on_this_opendp_version() -> None:
    """The δ workaround is pinned to OpenDP 0.16 (docs/releases.md). Upgrading OpenDP
    makes this fail on purpose: re-run the measurements above, see whether
    opendp/opendp#2922 is fixed, and then move OPENDP_CHECKED in noise.py."""
    version = opendp_version()
    assert version.split(".")[:2] == OPENDP_CHECKED.split("."), (
        f"OpenDP {version} is installed; the key-selection δ workaround in "
        f"releases/noise.py was checked on {OPENDP_CHECKED} only: re-check it"
    )


# --- item 2: Merkle leaves salted per release; RFC 9162 tree hashing ------------------


@pytest.fixture(scope="module")
def small_coop(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("privacy")
    home = init_home(Settings(home=root / "home", epsilon_cap=10.0))
    _join(home, root, MEMBERS, 200, 900, years=1)
    return home


def _rfc9162_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, written from the RFC: split at the largest power of 2 < n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc9162_root(leaves[:k]) + _rfc9162_root(leaves[k:])).digest()


@pytest.mark.parametrize(("n", "size"), [(1, 10), (2, 10), (9, 10), (13, 20), (123, 200)])
def test_roots_and_paths_follow_rfc9162(n: int, size: int) -> None:
    secret = bytes(range(32))
    pseudonyms = [f"p{i:03d}" for i in range(n)]
    leaves = tree_leaves(pseudonyms, secret)
    assert len(leaves) == size and leaves == sorted(leaves)  # padded to the coarse range
    assert {leaf(p, member_salt(secret, p)) for p in pseudonyms} <= set(leaves)
    root = merkle_root(pseudonyms, secret)
    assert root == _rfc9162_root(leaves).hex()
    # exact for sizes that are not powers of two, from the unpadded tree of old releases
    for m in (1, 3, 5, 6, 7, 11):
        assert merkle_root(pseudonyms[:m]) == _rfc9162_root(tree_leaves(pseudonyms[:m], b"")).hex()
    for p in pseudonyms:
        proof = prove(pseudonyms, p, secret)
        assert proof.included and check_proof(root, proof, p)
        assert len(proof.path) == len(set(proof.path))  # no placeholders for lone nodes
        assert not check_proof(root, replace(proof, index=(proof.index + 1) % size), p)
    assert prove(pseudonyms, "nobody", secret) == Proof(False, "", "", -1, size, [])


def test_unsalted_roots_of_older_releases_are_unchanged() -> None:
    """Releases without a secret: leaves sha256(0x00 ‖ pseudonym), as before."""
    pseudonyms = ["a", "b", "c"]
    assert leaf("a") == hashlib.sha256(b"\x00a").digest()
    proof = prove(pseudonyms, "b")
    assert proof.salt == "" and check_proof(merkle_root(pseudonyms), proof, "b")


def test_leaves_and_roots_differ_between_releases_of_the_same_members(small_coop: Home) -> None:
    spec = parse_spec(SPEC)
    first = build_release(small_coop, spec, allow_empty=True)
    second = build_release(small_coop, spec, allow_empty=True)
    assert first.manifest["merkle_leaves"] == second.manifest["merkle_leaves"] == 10
    assert first.manifest["merkle_root"] != second.manifest["merkle_root"]
    unsalted = {leaf(get_member(small_coop, n).pseudonym).hex() for n in MEMBERS}
    assert merkle_root([get_member(small_coop, n).pseudonym for n in MEMBERS]) not in {
        first.manifest["merkle_root"],
        second.manifest["merkle_root"],
    }
    for name in MEMBERS:
        pseudonym = get_member(small_coop, name).pseudonym
        a, root_a = inclusion(small_coop, first.id, name)
        b, root_b = inclusion(small_coop, second.id, name)
        assert check_proof(root_a, a, pseudonym) and check_proof(root_b, b, pseudonym)
        assert a.leaf != b.leaf and a.salt != b.salt
        assert a.leaf not in unsalted and root_a not in unsalted
        assert not check_proof(root_b, a, pseudonym)
    text = (first.path / "manifest.json").read_text()
    with small_coop.sessions() as s:
        secret = s.get(Release, first.id).merkle_secret  # type: ignore[union-attr]
    assert secret and secret not in text and a.salt not in text


# --- item 8 of the issue: verify against the database's record, not the folder alone ----


def _forge(folder: Path) -> None:
    """Change data.csv and, consistently, its digest in the manifest and SHA256SUMS."""
    (folder / "data.csv").write_text("weekday,plays\n1,999999\n")
    doc = json.loads((folder / "manifest.json").read_text())
    doc["files"]["data.csv"] = file_digest(folder / "data.csv")
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    (folder / "SHA256SUMS").write_text(
        sha256sums(folder, ["data.csv", "data.parquet", "manifest.json", "schema.json"])
    )


def test_a_consistent_forgery_of_the_files_is_caught_by_the_database(
    small_coop: Home, tmp_path: Path
) -> None:
    built = build_release(small_coop, parse_spec(SPEC), allow_empty=True)
    assert verify_release(small_coop, built.id) == []
    _forge(built.path)
    assert verify_files(built.path) == []  # the folder alone cannot tell
    assert verify_release(small_coop, built.id) == [
        "manifest.json does not match its SHA-256 in the database",
        "manifest.json does not match its SHA-256 in the audit log",
    ]
    bad = run("--home", str(small_coop.settings.home), "release", "verify", built.id)
    assert bad.returncode == 1 and "in the database" in " ".join(bad.stderr.split())
    # and the database's digest edited to match: the audit entry still holds the original
    with small_coop.transaction() as s:
        row = s.get(Release, built.id)
        assert row is not None
        row.manifest_sha256 = file_digest(built.path / "manifest.json")
    assert verify_release(small_coop, built.id) == [
        "manifest.json does not match its SHA-256 in the audit log"
    ]


# --- item 2 of the issue: buyers see coarse member counts; no release of one member ----


@pytest.mark.parametrize(
    ("n", "low", "high"),
    [(0, 0, 10), (1, 0, 10), (9, 0, 10), (10, 10, 20), (19, 10, 20), (99, 90, 100),
     (100, 100, 200), (54_321, 50_000, 60_000)],
)  # fmt: skip
def test_coarse_counts_hold_the_count(n: int, low: int, high: int) -> None:
    assert coarse_count(n) == {"at_least": low, "below": high}


def test_the_manifest_shows_coarse_counts_and_the_audit_entry_exact_ones(
    small_coop: Home, tmp_path: Path
) -> None:
    erased = tmp_path / "erased"
    erased.mkdir()
    _join(small_coop, erased, ["gone"], 100, 990, years=1)
    erase_member(small_coop, "gone")
    built = build_release(small_coop, parse_spec(SPEC), allow_empty=True)
    doc = built.manifest
    assert doc["members_included"] == {"at_least": 0, "below": 10}
    assert "members_left_out" not in doc and "erased" not in json.dumps(doc)
    assert built.members_included == len(MEMBERS) and built.members_left_out == {"erased": 1}
    with small_coop.sessions() as s:
        payload = s.scalar(
            select(AuditPayload.payload)
            .join(AuditEntry, AuditEntry.seq == AuditPayload.seq)
            .where(AuditEntry.subject == built.id, AuditEntry.action == "release.build")
        )
        row = s.get(Release, built.id)
    assert payload is not None and payload["members_left_out"] == {"erased": 1}
    assert payload["members_included"] == len(MEMBERS) and row is not None
    assert row.members_included == len(MEMBERS)
