"""Release manifests: file digests, and a Merkle root over the included pseudonyms.

Leaves are sha256(0x00 ‖ pseudonym), sorted; inner nodes sha256(0x01 ‖ left ‖ right),
an odd node carried up unchanged. A member gets a proof of inclusion (their leaf's
path to the root) or of non-inclusion (the two neighbouring leaves around where their
leaf would sit, each with its path) — both checkable against the root and the leaf
count alone, which the manifest publishes. Pseudonyms never appear in the manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tunetrust.errors import NotFoundError


def leaf(pseudonym: str) -> bytes:
    """The leaf of one pseudonym."""
    return hashlib.sha256(b"\x00" + pseudonym.encode()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        row = levels[-1]
        levels.append(
            [
                _node(row[i], row[i + 1]) if i + 1 < len(row) else row[i]
                for i in range(0, len(row), 2)
            ]
        )
    return levels


def merkle_root(pseudonyms: list[str]) -> str:
    """The root over the sorted leaves (sha256 of nothing for an empty set)."""
    leaves = sorted(leaf(p) for p in pseudonyms)
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _levels(leaves)[-1][0].hex()


def _path(levels: list[list[bytes]], index: int) -> list[str]:
    """Sibling hashes from leaf to root ('' where a node was carried up alone)."""
    out = []
    for row in levels[:-1]:
        sibling = index ^ 1
        out.append(row[sibling].hex() if sibling < len(row) else "")
        index //= 2
    return out


def _climb(leaf_hash: bytes, index: int, path: list[str]) -> bytes:
    h = leaf_hash
    for sibling in path:
        if sibling:
            h = _node(bytes.fromhex(sibling), h) if index % 2 else _node(h, bytes.fromhex(sibling))
        index //= 2
    return h


@dataclass(frozen=True)
class Proof:
    """A proof that a pseudonym was, or was not, among a release's included members."""

    included: bool
    leaf: str
    count: int
    positions: list[int]  # the leaf's position, or the neighbours' positions
    leaves: list[str]  # the neighbours' leaf hashes (non-inclusion)
    paths: list[list[str]]


def prove(pseudonyms: list[str], pseudonym: str) -> Proof:
    """Inclusion or non-inclusion proof for ``pseudonym``."""
    leaves = sorted(leaf(p) for p in pseudonyms)
    target = leaf(pseudonym)
    levels = _levels(leaves) if leaves else [[]]
    if target in leaves:
        i = leaves.index(target)
        return Proof(True, target.hex(), len(leaves), [i], [], [_path(levels, i)])
    after = next((i for i, x in enumerate(leaves) if x > target), len(leaves))
    neighbours = [i for i in (after - 1, after) if 0 <= i < len(leaves)]
    return Proof(
        False,
        target.hex(),
        len(leaves),
        neighbours,
        [leaves[i].hex() for i in neighbours],
        [_path(levels, i) for i in neighbours],
    )


def check_proof(root: str, proof: Proof) -> bool:
    """Check a proof against the root and leaf count alone."""
    target = bytes.fromhex(proof.leaf)
    if proof.included:
        return _climb(target, proof.positions[0], proof.paths[0]).hex() == root
    for pos, lf, path in zip(proof.positions, proof.leaves, proof.paths, strict=True):
        if _climb(bytes.fromhex(lf), pos, path).hex() != root:
            return False
    pairs = list(zip(proof.positions, proof.leaves, strict=True))
    if len(pairs) == 2:  # adjacent, and the target sorts strictly between them
        (p1, l1), (p2, l2) = pairs
        return p2 == p1 + 1 and bytes.fromhex(l1) < target < bytes.fromhex(l2)
    if len(pairs) == 1:  # before the first leaf, or after the last
        ((p, lf),) = pairs
        return (p == 0 and target < bytes.fromhex(lf)) or (
            p == proof.count - 1 and target > bytes.fromhex(lf)
        )
    return proof.count == 0


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any]:
    """A release's manifest."""
    try:
        manifest: dict[str, Any] = orjson.loads((folder / "manifest.json").read_bytes())
    except FileNotFoundError:
        raise NotFoundError(f"no release in {folder}") from None
    return manifest


def verify_files(folder: Path) -> list[str]:
    """Problems found comparing the release's files with its manifest (empty: all match)."""
    manifest = read_manifest(folder)
    problems = []
    listed = manifest.get("files", {})
    for name, digest in listed.items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif file_digest(path) != digest:
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    extra = {p.name for p in folder.iterdir()} - set(listed) - {"manifest.json"}
    problems += [f"{name} is not listed in the manifest" for name in sorted(extra)]
    return problems
