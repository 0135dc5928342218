"""Release manifests: file digests, and a Merkle root over the included pseudonyms.

Beside the data, a release folder holds ``schema.json`` (each column: name, type, unit,
whether noisy and how much, what a key means) and ``SHA256SUMS`` in coreutils' format,
so ``sha256sum -c SHA256SUMS`` checks the data, the schema and the manifest without
TuneTrust.

The included members are committed to by a Merkle tree hashed as RFC 9162 (§2.1) does:
leaf hash SHA-256(0x00 ‖ entry), interior SHA-256(0x01 ‖ left ‖ right), the tree split
at the largest power of two below its size (built here level by level, an odd node
carried up, which gives the same root). A member's entry is salt ‖ pseudonym, the salt
HMAC-SHA256(release secret, pseudonym), the secret random per release and kept in the
metadata database only. So the same member's leaf differs from release to release,
equal member sets give different roots, and no one without the secret can test a
pseudonym against a leaf or a root. Leaves are sorted, so their order says nothing, and
padded with leaves of secret random entries up to the top of the member count's coarse
range (``coarse_count``), so the published leaf count says no more than the manifest.

A member's proof of inclusion hands them their own salt and leaf, the leaf's index and
the audit path; they check leaf = SHA-256(0x00 ‖ salt ‖ their pseudonym) and the path
against the published root and leaf count (RFC 9162 §2.1.3.2). There is no proof of
non-inclusion: the steward chooses the salt of a member who is not in the tree, so a
"neighbouring leaves" proof would bind to nothing, and it would hand out other members'
leaves. A member left out sees it in their budget, which the release did not charge.
Releases built before the salt (no secret recorded) use the empty salt, so their
leaves, sha256(0x00 ‖ pseudonym), and roots are unchanged. Pseudonyms never appear in
the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa

from tunetrust.errors import NotFoundError
from tunetrust.releases.noise import Outcome
from tunetrust.releases.spec import ReleaseSpec
from tunetrust.store.objects import LocalObjectStore, ObjectStore

SCHEMA = "schema.json"
CHECKSUMS = "SHA256SUMS"
FILES = ("data.parquet", "data.csv", SCHEMA)  # listed with their digests in the manifest
MANIFEST = "manifest.json"


def member_salt(secret: bytes, pseudonym: str) -> bytes:
    """A member's salt in one release (empty for releases built without a secret)."""
    if not secret:
        return b""
    return hmac.new(secret, pseudonym.encode(), hashlib.sha256).digest()


def leaf(pseudonym: str, salt: bytes = b"") -> bytes:
    """The leaf hash of one member: SHA-256(0x00 ‖ salt ‖ pseudonym), RFC 9162's leaf."""
    return hashlib.sha256(b"\x00" + salt + pseudonym.encode()).digest()


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


def coarse_count(n: int) -> dict[str, int]:
    """What a manifest says of a member count: n rounded down to its leading digit,
    ``at_least`` ≤ n < ``below`` (0 to 10 below ten, 10 to 20, …, 100 to 200, …)."""
    if n < 10:
        return {"at_least": 0, "below": 10}
    width = 10 ** (len(str(n)) - 1)
    low = n // width * width
    return {"at_least": low, "below": low + width}


def tree_leaves(pseudonyms: list[str], secret: bytes) -> list[bytes]:
    """The sorted leaves of a release's tree: one per member, padded with leaves of
    secret random entries up to the top of the count's coarse range, so the published
    leaf count says no more than the manifest's coarse member count. No padding without
    a secret (releases built before it)."""
    leaves = [leaf(p, member_salt(secret, p)) for p in pseudonyms]
    if secret:
        size = coarse_count(len(leaves))["below"]
        leaves += [
            leaf("", hmac.new(secret, b"padding %d" % i, hashlib.sha256).digest())
            for i in range(size - len(leaves))
        ]
    return sorted(leaves)


def merkle_root(pseudonyms: list[str], secret: bytes = b"") -> str:
    """The root over the sorted salted leaves (SHA-256 of nothing for an empty set)."""
    return root_of(tree_leaves(pseudonyms, secret))


def root_of(leaves: list[bytes]) -> str:
    """The RFC 9162 root of sorted leaves (SHA-256 of nothing for an empty set)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _levels(leaves)[-1][0].hex()


def _path(levels: list[list[bytes]], index: int) -> list[str]:
    """The RFC 9162 audit path: sibling hashes from leaf to root, none where a node was
    carried up alone."""
    out = []
    for row in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(row):
            out.append(row[sibling].hex())
        index //= 2
    return out


def _climb(leaf_hash: bytes, index: int, size: int, path: list[str]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or None if it cannot fit."""
    if not 0 <= index < size:
        return None
    fn, sn, h = index, size - 1, leaf_hash
    for sibling in path:
        if sn == 0:
            return None
        p = bytes.fromhex(sibling)
        if fn % 2 or fn == sn:
            h = _node(p, h)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            h = _node(h, p)
        fn, sn = fn >> 1, sn >> 1
    return h if sn == 0 else None


@dataclass(frozen=True)
class Proof:
    """A member's proof of inclusion in a release; all empty when not included."""

    included: bool
    salt: str  # the member's own salt in this release (hex), '' for unsalted releases
    leaf: str  # SHA-256(0x00 ‖ salt ‖ pseudonym), hex
    index: int  # the leaf's position among the sorted leaves
    count: int  # leaves in the tree, as the manifest publishes
    path: list[str]  # the RFC 9162 audit path


def prove(pseudonyms: list[str], pseudonym: str, secret: bytes = b"") -> Proof:
    """The inclusion proof of ``pseudonym``; nothing about anyone else if not included."""
    leaves = tree_leaves(pseudonyms, secret)
    salt = member_salt(secret, pseudonym)
    target = leaf(pseudonym, salt)
    if target not in leaves:
        return Proof(False, "", "", -1, len(leaves), [])
    i = leaves.index(target)
    return Proof(True, salt.hex(), target.hex(), i, len(leaves), _path(_levels(leaves), i))


def check_proof(root: str, proof: Proof, pseudonym: str | None = None) -> bool:
    """Check an inclusion proof against the root and leaf count alone and, given the
    member's pseudonym, that the leaf is theirs."""
    if not proof.included:
        return False
    try:
        target = bytes.fromhex(proof.leaf)
        if pseudonym is not None and leaf(pseudonym, bytes.fromhex(proof.salt)) != target:
            return False
        reached = _climb(target, proof.index, proof.count, proof.path)
    except ValueError:
        return False
    return reached is not None and reached.hex() == root


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    return _digest(path.open("rb"))


def object_digest(files: ObjectStore, key: str) -> str:
    """SHA-256 of a stored object, read in chunks."""
    return _digest(files.open(key))


def _digest(source: BinaryIO) -> str:
    h = hashlib.sha256()
    with source as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _store(folder: Path | ObjectStore) -> ObjectStore:
    """A release's files as a store: a local folder is read through one."""
    return LocalObjectStore(folder) if isinstance(folder, Path) else folder


def read_manifest(folder: Path | ObjectStore) -> dict[str, Any]:
    """A release's manifest (``folder``: its local folder, or the store of its files)."""
    files = _store(folder)
    try:
        manifest: dict[str, Any] = orjson.loads(files.get(MANIFEST))
    except FileNotFoundError:
        raise NotFoundError(f"no release in {files.uri('')}") from None
    return manifest


def verify_files(folder: Path | ObjectStore) -> list[str]:
    """Problems found comparing the release's files with its manifest and its SHA256SUMS
    (empty: all match). Releases built before SHA256SUMS existed are checked without it."""
    files = _store(folder)
    manifest = read_manifest(files)
    problems = []
    listed = manifest.get("files", {})
    for name, digest in listed.items():
        if not files.exists(name):
            problems.append(f"{name} is missing")
        elif object_digest(files, name) != digest:
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    sums = manifest.get("checksums")
    if sums:
        problems += _check_sums(files, str(sums), [*listed, MANIFEST])
    extra = {key.split("/")[0] for key in files.list()} - set(listed) - {MANIFEST, sums}
    problems += [f"{name} is not listed in the manifest" for name in sorted(extra)]
    return list(dict.fromkeys(problems))  # a missing file is named once


def sha256sums(folder: Path | ObjectStore, names: list[str]) -> str:
    """The text of a SHA256SUMS file for ``names`` in ``folder``, as ``sha256sum`` writes it."""
    files = _store(folder)
    return "".join(f"{object_digest(files, name)}  {name}\n" for name in sorted(names))


# "<64 hex digits><space><space or * for binary mode><name>", one file a line
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\]+)")


def _check_sums(files: ObjectStore, sums: str, expected: list[str]) -> list[str]:
    """What ``sha256sum -c`` would find wrong, and any expected file it leaves out."""
    if not files.exists(sums):
        return [f"{sums} is missing"]
    problems, covered = [], set()
    text = files.get(sums).decode(errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.fullmatch(line)
        if not match or match[2] in (".", ".."):
            problems.append(f"{sums}, line {n}: not a line of SHA-256 and a file in the release")
            continue
        digest, name = match[1], match[2]
        covered.add(name)
        if not files.exists(name):
            problems.append(f"{name} is missing")
        elif object_digest(files, name) != digest:
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
    "member_hours": "the member's listening hours over the listens the release counts, "
    "as the lower bound of a fixed bucket (0, 1, 2, 5, 10, 20, 40, 80, 160: each runs "
    "up to the next); each member is in one bucket",
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
