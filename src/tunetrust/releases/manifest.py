"""Release manifests: file digests, and a Merkle root over the included pseudonyms.

Beside the data, a release folder holds ``schema.json`` (each column: name, type, unit,
whether noisy and how much, what a key means) and ``SHA256SUMS`` in coreutils' format,
so ``sha256sum -c SHA256SUMS`` checks the data, the schema and the manifest without
TuneTrust.

Leaves are sha256(0x00 ‖ pseudonym), sorted; inner nodes sha256(0x01 ‖ left ‖ right),
an odd node carried up unchanged. A member gets a proof of inclusion (their leaf's
path to the root) or of non-inclusion (the two neighbouring leaves around where their
leaf would sit, each with its path) — both checkable against the root and the leaf
count alone, which the manifest publishes. Pseudonyms never appear in the manifest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from tunetrust.errors import NotFoundError
from tunetrust.releases.noise import Outcome
from tunetrust.releases.spec import ReleaseSpec

SCHEMA = "schema.json"
CHECKSUMS = "SHA256SUMS"
FILES = ("data.parquet", "data.csv", SCHEMA)  # listed with their digests in the manifest
MANIFEST = "manifest.json"


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
    """Problems found comparing the release's files with its manifest and its SHA256SUMS
    (empty: all match). Releases built before SHA256SUMS existed are checked without it."""
    manifest = read_manifest(folder)
    problems = []
    listed = manifest.get("files", {})
    for name, digest in listed.items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif file_digest(path) != digest:
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    sums = manifest.get("checksums")
    if sums:
        problems += _check_sums(folder, str(sums), [*listed, MANIFEST])
    extra = {p.name for p in folder.iterdir()} - set(listed) - {MANIFEST, sums}
    problems += [f"{name} is not listed in the manifest" for name in sorted(extra)]
    return list(dict.fromkeys(problems))  # a missing file is named once


def sha256sums(folder: Path, names: list[str]) -> str:
    """The text of a SHA256SUMS file for ``names`` in ``folder``, as ``sha256sum`` writes it."""
    return "".join(f"{file_digest(folder / name)}  {name}\n" for name in sorted(names))


# "<64 hex digits><space><space or * for binary mode><name>", one file a line
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\]+)")


def _check_sums(folder: Path, sums: str, expected: list[str]) -> list[str]:
    """What ``sha256sum -c`` would find wrong, and any expected file it leaves out."""
    path = folder / sums
    if not path.is_file():
        return [f"{sums} is missing"]
    problems, covered = [], set()
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = _SUM_LINE.fullmatch(line)
        if not match or match[2] in (".", ".."):
            problems.append(f"{sums}, line {n}: not a line of SHA-256 and a file in the release")
            continue
        digest, name = match[1], match[2]
        covered.add(name)
        if not (folder / name).is_file():
            problems.append(f"{name} is missing")
        elif file_digest(folder / name) != digest:
            problems.append(f"{name} does not match its SHA-256 in {sums}")
    problems += [f"{sums} does not cover {name}" for name in expected if name not in covered]
    return problems


# --- schema.json: what each released column means -------------------------------------

_KEY_MEANINGS = {
    "country": "the listen's country as the service recorded it (ISO 3166-1 alpha-2)",
    "year": "year of the listen, UTC (2024)",
    "quarter": "quarter of the listen, UTC (2024-Q1)",
    "month": "month of the listen, UTC (2024-01)",
    "week": "ISO week of the listen, UTC (2024-W01)",
    "weekday": "ISO weekday of the listen, UTC (1 = Monday … 7 = Sunday)",
    "hour": "hour of the listen, UTC (00 to 23)",
    "platform": "the platform the service recorded for the listen",
    "artist": "the artist's name",
    "track": "artist — track",
    "album": "artist — album",
    "show": "the podcast show's name",
}


def _type(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return str(t)  # pragma: no cover - releases hold only the three above


def column_schema(spec: ReleaseSpec, schema: pa.Schema, outcome: Outcome) -> dict[str, Any]:
    """``schema.json``: each released column's name, type, unit, noise and meaning."""
    c, m = spec.bounds.max_plays_per_partition, spec.bounds.max_minutes_per_play
    metrics = {
        "listeners": ("members", "distinct members who listened to the key"),
        "plays": (
            "plays",
            f"plays of at least {spec.min_seconds} s, at most {c} per member and key",
        ),
        "minutes": (
            "minutes",
            f"minutes played, each play clamped to {m:g} min, at most {c} plays per member and key",
        ),
        "skip_share": (
            "share 0–1",
            "noisy skipped plays ÷ noisy plays; empty where the noisy plays are below 1",
        ),
    }
    columns: list[dict[str, Any]] = []
    for field in schema:
        column: dict[str, Any] = {"name": field.name, "type": _type(field.type)}
        if field.name in spec.group_by:
            column |= {"role": "key", "unit": None, "noisy": False}
            column["meaning"] = _KEY_MEANINGS[field.name]
        else:
            unit, meaning = metrics[field.name]
            column |= {"role": "metric", "unit": unit, "noisy": True, "meaning": meaning}
            noisy = ("skips", "plays") if field.name == "skip_share" else (field.name,)
            column["noise"] = {
                q: {
                    "distribution": a.distribution,
                    "scale": a.scale,
                    "half_width_95": a.half_width,
                    "unit": a.unit,
                }
                for q in noisy
                if (a := outcome.accuracy.get(q)) is not None
            }
        columns.append(column)
    if spec.keys == "public":
        keys = "public: every declared key has a row, noisy zeros where nothing was seen"
    else:
        keys = (
            f"private: a key has a row only if its noisy count of members reached "
            f"{outcome.release_threshold} and at least {outcome.min_listeners} members "
            "listened to it; released listeners near that threshold lean high"
        )
    return {
        "rows": "one per released key; data.parquet and data.csv hold the same rows",
        "keys": keys,
        "noise": "each noisy value is within ± half_width_95 (in its unit) of its bounded "
        "true value with probability at least 0.95; rounded, and clipped at 0",
        "columns": columns,
    }
