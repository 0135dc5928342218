"""The engine seam: what every release engine computes, whatever runs it.

An engine turns a spec and the included members' events into *bounded true
aggregates*, one row per partition, before any noise; ``duckdb.py`` is the embedded
one and its docstring writes out the bounding argument every engine must keep.

Input: a list of :class:`Source` — a member id (the pseudonym) and the URI of one of
their events files, as the store hands it out (``EventsStore.uri``: a local absolute
path today, ``s3://…`` later). The member comes from this list, never from a path.

**The portable hash.** Which ``max_partitions`` partitions a member keeps is decided by
the lowest :func:`portable_digest` of (member id, the partition's canonical key values
in ``group_by`` order, the release's salt), so any engine keeps exactly the same
partitions and computes the same pre-noise aggregates. The canonical string is each
part's UTF-8 byte length in decimal, ``:``, then the part — ``["ab", "SE", "s"]`` →
``2:ab2:SE1:s`` — so no choice of values makes two part lists collide. The digest is
SHA-256 of it in lowercase hex; ordering by that text is ordering by its first 64 bits
as an unsigned integer (:func:`portable_hash`), with the other 192 bits breaking a tie
no one will see. Every engine computes it alike:

* Python (the reference): ``hashlib.sha256(canonical(parts)).hexdigest()``;
* DuckDB: ``sha256(strlen(p1) || ':' || p1 || …)`` (:func:`digest_sql`; ``strlen``
  counts bytes), and ``('0x' || left(digest, 16))::UBIGINT`` for the 64-bit value;
* Spark SQL: ``sha2(concat(octet_length(p1), ':', p1, …), 256)``, and
  ``CAST(conv(substr(digest, 1, 16), 16, 10) AS DECIMAL(20, 0))`` for the 64-bit value
  (Spark has no unsigned 64-bit type: order by the hex digest, as DuckDB does).

``tests/vectors/portable_hash.json`` holds vectors checked against the Python reference
and DuckDB's SQL; a Spark engine's tests check against the same file.

A key's canonical value (what goes in the string) is engine-independent too: time keys
(UTC) as the decimal integer ``year`` 2024, ``quarter`` 20241 (year × 10 + quarter),
``month`` 202401 (year × 100 + month), ``week`` 202401 (ISO year × 100 + ISO week),
``weekday`` 1–7 (ISO, Monday = 1), ``hour`` 0–23; ``country`` and ``platform`` as
stored; ``artist`` the artist's name, ``track`` and ``album`` "artist — track" /
"artist — album" (an em dash between spaces), ``show`` the show's name — the labels a
release shows for names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import pyarrow as pa

from tunetrust.releases.spec import ReleaseSpec

AGGREGATE_COLUMNS = ("listeners", "plays", "minutes", "skips")
# Columns named "_…" are the engine's own: carried through noise untouched, never released.
WITNESS = "_witness"  # one member who contributed to the partition: portable_hash([member id])


class Source(NamedTuple):
    """One events file of one member, as an engine receives it."""

    member: str  # the member's id (pseudonym)
    uri: str  # where the engine reads the file (ObjectStore.uri)


def canonical(parts: Sequence[str]) -> bytes:
    """The canonical UTF-8 string of parts: ``<byte length>:<part>`` for each, joined."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += b"%d:" % len(raw) + raw
    return bytes(out)


def portable_digest(parts: Sequence[str]) -> str:
    """SHA-256 of the canonical string, lowercase hex: the sampling order of every engine."""
    return hashlib.sha256(canonical(parts)).hexdigest()


def portable_hash(parts: Sequence[str]) -> int:
    """The first 64 bits of :func:`portable_digest`, as an unsigned integer."""
    return int(portable_digest(parts)[:16], 16)


def digest_sql(parts: Sequence[str]) -> str:
    """DuckDB SQL for :func:`portable_digest` of SQL expressions of type VARCHAR (not NULL)."""
    joined = " || ".join(f"strlen({p}) || ':' || {p}" for p in parts)
    return f"sha256({joined or repr('')})"


def hash_sql(parts: Sequence[str]) -> str:
    """DuckDB SQL for :func:`portable_hash` (a UBIGINT)."""
    return f"('0x' || left({digest_sql(parts)}, 16))::UBIGINT"


class Engine(Protocol):
    """Computes bounded true aggregates for a spec over the given members' files."""

    name: str

    def aggregate(self, spec: ReleaseSpec, sources: Sequence[Source], salt: str) -> pa.Table:
        """Rows: the spec's group keys (engine-encoded, ``k_<key>``), then listeners, plays,
        minutes, skips, and any engine-private ``_…`` columns."""
        ...

    def label(self, spec: ReleaseSpec, sources: Sequence[Source], table: pa.Table) -> pa.Table:
        """``table`` (rows of ``aggregate``, or fewer) with string labels for its keys."""
        ...
