"""Listening fingerprints: what copy, split and corroboration checks compare, by index.

Three kinds of keyed 64-bit hashes are taken from a member's listens (plays of 30 s or
more, in time order):

``SEQUENCE``  three consecutive plays' normalised names, and apart their URIs (immediate
              repeats collapsed): the same under any time shift and any edit of lengths
              or names, and specific to a person — two people rarely play the same three
              things in the same order
``PLAY``      one play exactly: item as written, end minute and length in ms (an
              unaltered copy; the minute is account data's resolution, so the owner's
              account data matches their extended history)
``TRACK``     one item, whoever played it (is this music known to other members?)

Items are normalised before hashing: Unicode NFKC, case folded, everything but letters
and digits removed (``Song`` = ``song `` = ``SONG.``). Hashes are keyed with a key
derived from the cooperative secret, so the index cannot be tested against a list of
songs without the master key.

Only a consistent sample is kept: a hash whose value is 0 modulo ``SAMPLE[kind]``
(Broder's mod-m sampling). The same play or sequence is sampled in every member's
history or in none, so the share of an export's sampled hashes found in another
member's sample estimates the share of its whole listening found there, without bias;
the index holds one row in sixteen (sequences, plays) or four (tracks). (Until 0.7 it
held one in eight: those rows are a superset, and a member's next store drops the rest.)

The sampled hashes live in the metadata database (``fingerprints``: kind, hash, member),
one row per distinct hash per member; a check looks its hashes up by value through the
table's key, so it never reads another member's file: its cost grows with the export and,
for tracks, with how many members share them (counted in the database), not with a scan
of the cooperative (docs/contributions.md, "Copies").
A member's rows are replaced whenever their listens change, and deleted when they are
erased (they are derived from the member's listening).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import BigInteger, Table, case, column, delete, func, insert, select, values
from sqlalchemy.orm import Session

from tunetrust.coop.keyring import derived_key
from tunetrust.store import keys
from tunetrust.store.home import Home
from tunetrust.store.models import Fingerprint, Member

SEQUENCE, PLAY, TRACK = 0, 1, 2  # the keys of FINGERPRINT_KINDS (store/models.py)
SAMPLE = {SEQUENCE: 16, PLAY: 16, TRACK: 4}
SHINGLE = 3  # plays per sequence
MIN_SAMPLE = 20  # fewest sampled sequences for a share to be judged at all
HOLDERS_COUNTED = 2  # a track's other holders are counted up to this (corroboration's need)
RANKED_TRACKS = 2000  # at most this many of an export's tracks rank members by tracks shared
_BATCH = 2000  # hashes per lookup (well under SQLite's and PostgreSQL's parameter limits)
_TABLE = cast(Table, Fingerprint.__table__)  # bulk inserts go through the core table
_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a 64-bit bijection that spreads every input bit."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x & _M


def _combine(*parts: np.ndarray) -> np.ndarray:
    """One hash of several 64-bit columns (order matters)."""
    h = np.zeros(len(parts[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, p in enumerate(parts):
            h = _mix(h ^ (p.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(i + 1)))
    return h


_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalised(text: str) -> str:
    """A name as compared: NFKC, case folded, letters and digits only."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def items(listens: pa.Table) -> pa.Array:
    """Each listen's item as written: its names (artist and track, show and episode, or book
    and chapter) and its URI, as ``names\x1euri``; :func:`_item_text` says which counts."""
    sep = pa.scalar("\x1f")
    names = pc.coalesce(
        pc.binary_join_element_wise(listens["artist_name"], listens["track_name"], sep),
        pc.binary_join_element_wise(listens["show_name"], listens["episode_name"], sep),
        pc.binary_join_element_wise(
            listens["audiobook_title"], listens["audiobook_chapter_title"], sep
        ),
        pa.scalar(""),
    )
    uri = pc.coalesce(
        listens["track_uri"],
        listens["episode_uri"],
        listens["audiobook_chapter_uri"],
        pa.scalar(""),
    )
    joined = pc.binary_join_element_wise(names, uri, pa.scalar("\x1e"))
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _item_text(value: str, *, normalise: bool) -> str:
    """What names an item: its names (normalised, or as written), or its URI when it has
    none — or names a normaliser strips to nothing, which would make every play one item
    and leave no sequence to compare."""
    names, _, uri = value.partition("\x1e")
    if normalise:
        names = "\x1f".join(normalised(p) for p in names.split("\x1f"))
    return names if names.strip("\x1f") else uri


Memo = dict[str, tuple[int, int, int]]  # an item as written → its three hashes


def _item_hashes(
    key: bytes, values: pa.Array, memo: Memo
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keyed 64-bit hashes of items — normalised, as written, and by URI alone (0 where
    there is none) — each distinct one hashed once, and not again while in ``memo``."""
    encoded = values.dictionary_encode()
    texts = [v or "" for v in encoded.dictionary.to_pylist()]
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    todo = [i for i, v in enumerate(texts) if v not in memo]
    if todo:
        new = [texts[i] for i in todo]
        for v, *chosen in zip(new, *_chosen(pa.array(new, pa.string())), strict=True):
            memo[v] = cast(tuple[int, int, int], tuple(_hashed(key, c) for c in chosen))
    table = np.array([memo[v] for v in texts], dtype=np.uint64).reshape(-1, 3)[indices]
    return table[:, 0], table[:, 1], table[:, 2]


def _hashed(key: bytes, text: str) -> int:
    """A keyed 64-bit hash of ``text`` (0 for no text)."""
    if not text:
        return 0
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, key=key).digest(), "little")


_ONLY_SEPARATORS = "^\x1f*$"


def _chosen(values: pa.Array) -> tuple[list[str], list[str], list[str]]:
    """What each item is hashed by: :func:`_item_text` normalised and as written, and its
    URI, computed as columns. Names in ASCII, most of them, are normalised by Arrow
    (NFKC leaves ASCII as it is, case folding is lowering, and letters and digits are
    ``a-z0-9``); the others by :func:`normalised` itself (tests/test_fingerprint.py holds
    the two to the same result)."""
    parts = pc.extract_regex(values, "(?s)^(?P<names>[^\x1e]*)\x1e(?P<uri>.*)$")
    names, uri = pc.struct_field(parts, "names"), pc.struct_field(parts, "uri")
    folded = pc.replace_substring_regex(pc.ascii_lower(names), "[^a-z0-9\x1f]+", "")
    ascii_ = pc.string_is_ascii(names).to_numpy(zero_copy_only=False)
    norm = pc.if_else(pc.match_substring_regex(folded, _ONLY_SEPARATORS), uri, folded).to_pylist()
    for i in np.flatnonzero(~ascii_):
        norm[i] = _item_text(values[i].as_py(), normalise=True)
    raw = pc.if_else(pc.match_substring_regex(names, _ONLY_SEPARATORS), uri, names)
    return norm, raw.to_pylist(), uri.to_pylist()


def _shingles(item: np.ndarray) -> np.ndarray:
    """Hashes of every run of :data:`SHINGLE` items in a row (immediate repeats collapsed)."""
    runs = item[np.r_[True, item[1:] != item[:-1]]] if len(item) else item
    if len(runs) < SHINGLE:
        return np.zeros(0, dtype=np.uint64)
    return _combine(*(runs[i : len(runs) - SHINGLE + 1 + i] for i in range(SHINGLE)))


@dataclass
class Prints:
    """A history's sampled hashes by kind, and what the checks weigh them with."""

    hashes: dict[int, np.ndarray]  # kind → distinct sampled hashes (uint64)
    track_plays: dict[int, int] = field(default_factory=dict)  # sampled track → plays
    play_times: dict[int, int] = field(default_factory=dict)  # sampled play → end second
    plays: int = 0  # plays of 30 s or more


def fingerprint(key: bytes, listens: pa.Table, *, memo: Memo | None = None) -> Prints:
    """The sampled fingerprints of ``listens`` (any order; plays under 30 s are left out).
    ``memo`` keeps items' hashes between calls with the same key (one import hashes the
    export, then the member's merged listens, which hold the same items)."""
    t = listens.filter(pc.greater_equal(listens["ms_played"], 30_000))
    empty = np.zeros(0, dtype=np.uint64)
    # an exact play is compared as written, byte for byte (an unaltered copy, not one whose
    # names were re-spaced); sequences and tracks by normalised names
    item, raw, uri = (
        _item_hashes(key, items(t), {} if memo is None else memo)
        if t.num_rows
        else (empty, empty, empty)
    )
    end_ms = t["ts"].cast(pa.int64()).to_numpy() if t.num_rows else np.zeros(0, np.int64)
    ms = t["ms_played"].to_numpy() if t.num_rows else np.zeros(0, np.int64)
    # in time order, ties broken by length and item: the same rows in any order give the
    # same fingerprints (so the import can reuse an export's as its merged listens')
    order = np.lexsort((raw, ms, end_ms))
    item, raw, uri, end_ms, ms = item[order], raw[order], uri[order], end_ms[order], ms[order]
    end_s = end_ms // 1000

    # sequences by names and, apart, by URIs: names match account data (which has no
    # URIs) to extended history; URIs match a copy whose names were blanked or rewritten
    shingles = np.concatenate([_shingles(item), _shingles(uri[uri != 0])])
    plays = _combine(raw, (end_s // 60).astype(np.uint64), ms.astype(np.uint64))
    tracks = _mix(item)
    kept = plays % np.uint64(SAMPLE[PLAY]) == 0
    out = {
        SEQUENCE: np.unique(shingles[shingles % np.uint64(SAMPLE[SEQUENCE]) == 0]),
        PLAY: np.unique(plays[kept]),
    }
    sampled = tracks[tracks % np.uint64(SAMPLE[TRACK]) == 0]
    uniq, counts = np.unique(sampled, return_counts=True)
    out[TRACK] = uniq
    return Prints(
        out,
        dict(zip((int(u) for u in uniq), (int(c) for c in counts), strict=True)),
        dict(zip((int(p) for p in plays[kept]), (int(e) for e in end_s[kept]), strict=True)),
        plays=t.num_rows,
    )


def key_of(home: Home) -> bytes:
    """The key fingerprints are hashed with (derived from the cooperative secret)."""
    return derived_key(home, keys.FINGERPRINT_KEY)


def _signed(h: np.ndarray) -> list[int]:
    """uint64 hashes as the signed 64-bit integers a BIGINT column holds."""
    return [int(v) for v in h.view(np.int64).tolist()]


def store(session: Session, member: Member, prints: Prints, events_file: str | None) -> None:
    """Make ``member``'s rows those of ``prints``, made from their file ``events_file``.

    Only the difference is written: the rows the member no longer has are deleted and the
    new ones inserted, in key order (each page of the key is then visited once, not once
    per row: a history's hashes fall all over an index of millions of rows)."""
    held: dict[int, set[int]] = {}
    for kind, h in session.execute(
        select(Fingerprint.kind, Fingerprint.hash).where(Fingerprint.member_id == member.id)
    ):
        held.setdefault(int(kind), set()).add(int(h))
    for kind, hashes in held.items():
        now = set(_signed(prints.hashes.get(kind, np.zeros(0, np.uint64))))
        gone = sorted(hashes - now)
        for i in range(0, len(gone), _BATCH):
            session.execute(
                delete(Fingerprint).where(
                    Fingerprint.member_id == member.id,
                    Fingerprint.kind == kind,
                    Fingerprint.hash.in_(gone[i : i + _BATCH]),
                )
            )
    rows = [
        {"kind": kind, "hash": h, "member_id": member.id}
        for kind in sorted(prints.hashes)
        for h in np.sort(prints.hashes[kind].view(np.int64)).tolist()
        if h not in held.get(kind, ())
    ]
    if rows:
        session.execute(insert(_TABLE), rows)  # a core insert: no ORM work per row
    member.fingerprinted = events_file


def stored(session: Session, member_id: int, kinds: Iterable[int]) -> Prints:
    """A member's fingerprints of ``kinds`` as their index rows hold them (hashes only:
    what a lookup or corroboration needs; the rows say nothing of plays or times)."""
    hashes = {kind: np.zeros(0, dtype=np.uint64) for kind in kinds}
    rows = session.execute(
        select(Fingerprint.kind, Fingerprint.hash).where(
            Fingerprint.member_id == member_id, Fingerprint.kind.in_(list(hashes))
        )
    ).all()
    for kind in hashes:
        signed = np.array([h for k, h in rows if k == kind], dtype=np.int64)
        hashes[kind] = np.sort(signed.view(np.uint64))
    return Prints(hashes)


def refresh_stale(home: Home, session: Session, key: bytes, *, except_id: int) -> int:
    """Fingerprint every member whose rows were made from another file than their current
    one (a home from before the index, a rebuild, a dispute's decision); how many."""
    stale = list(
        session.scalars(
            select(Member).where(
                Member.id != except_id,
                Member.erased_at.is_(None),
                Member.events_file.is_not(None),
                (Member.fingerprinted.is_(None)) | (Member.fingerprinted != Member.events_file),
            )
        )
    )
    for m in stale:
        listens = home.events.read(m.pseudonym, m.events_file)
        store(session, m, fingerprint(key, listens), m.events_file)
    return len(stale)


@dataclass(frozen=True)
class Matches:
    """Where an export's sampled hashes are found among other members'."""

    sampled: dict[int, int]  # kind → the export's sampled hashes
    found: dict[int, int]  # kind → of those, found in at least one other member
    by_member: dict[int, dict[int, int]]  # kind → member id → hashes found in theirs
    holders: dict[int, dict[int, int]]  # kind → hash → how many other members hold it
    member_ids: dict[int, dict[int, set[int]]]  # kind → hash → other members holding it

    def share(self, kind: int) -> float:
        """The share of the export's sampled hashes of ``kind`` found anywhere else."""
        return self.found[kind] / self.sampled[kind] if self.sampled[kind] else 0.0


def _unsigned(h: int) -> int:
    return int(np.int64(h).view(np.uint64))


def holders(
    session: Session,
    kind: int,
    hashes: np.ndarray,
    *,
    member_id: int,
    known: dict[int, int],
    cap: int = HOLDERS_COUNTED,
) -> dict[int, int]:
    """How many other members hold each of ``hashes``, counted up to ``cap`` (those held
    by none are left out); ``known`` caches answers within one import and is filled.

    Each hash's count stops at ``cap`` rows of the key, however many members hold it: a
    track everyone plays costs what a rare one does (counting them all read a million
    rows for a long history in a cooperative of 10,000)."""
    wanted = [h for h in _signed(hashes) if _unsigned(h) not in known]
    for i in range(0, len(wanted), _BATCH):
        asked = (
            values(column("h", BigInteger), name="wanted")
            .data([(h,) for h in wanted[i : i + _BATCH]])
            .cte("asked")
        )
        held = [
            select(Fingerprint.member_id)
            .where(
                Fingerprint.kind == kind,
                Fingerprint.hash == asked.c.h,
                Fingerprint.member_id != member_id,
            )
            .order_by(Fingerprint.member_id)
            .limit(1)
            .offset(k)
            .scalar_subquery()
            .is_not(None)
            for k in range(cap)
        ]
        counted = sum((case((h, 1), else_=0) for h in held[1:]), case((held[0], 1), else_=0))
        # a hash none holds is remembered as 0 too: it is not asked again
        for h, n in session.execute(select(asked.c.h, counted)):
            known[_unsigned(int(h))] = int(n)
    return {int(h): known[int(h)] for h in hashes if known.get(int(h))}


def _ranked(tracks: np.ndarray) -> np.ndarray:
    """A consistent sample of at most about :data:`RANKED_TRACKS` of ``tracks`` (every
    other, every fourth… by hash value), to rank members by how many they share."""
    step = 1
    while len(tracks) // step > RANKED_TRACKS:
        step *= 2
    kept: np.ndarray = tracks[(tracks // np.uint64(SAMPLE[TRACK])) % np.uint64(step) == 0]
    return kept


def lookup(
    session: Session,
    prints: Prints,
    *,
    member_id: int,
    kinds: Iterable[int],
    known: dict[int, int] | None = None,
) -> Matches:
    """Other members' rows holding any of ``prints``' hashes of ``kinds``.

    Sequences and plays, which few members share, come back as (hash, member) pairs.
    Tracks, which thousands share, are counted in the database instead: how many other
    members hold each, up to :data:`HOLDERS_COUNTED` (``holders``, cached in ``known``),
    and how many of a consistent sample of at most about :data:`RANKED_TRACKS` of the
    export's tracks each member holds (``by_member``: a ranking, from a bounded number of
    rows); ``member_ids`` is left empty for them.
    """
    sampled: dict[int, int] = {}
    found: dict[int, int] = {}
    by_member: dict[int, dict[int, int]] = {}
    held_by: dict[int, dict[int, int]] = {}
    member_ids: dict[int, dict[int, set[int]]] = {}
    for kind in kinds:
        hashes = _signed(prints.hashes[kind])
        sampled[kind] = len(hashes)
        counts: dict[int, int] = {}
        if kind == TRACK:
            held_by[kind] = holders(
                session,
                kind,
                prints.hashes[kind],
                member_id=member_id,
                known={} if known is None else known,
            )
            ranked = _signed(_ranked(prints.hashes[kind]))
            for i in range(0, len(ranked), _BATCH):
                for m, n in session.execute(
                    select(Fingerprint.member_id, func.count())
                    .where(
                        Fingerprint.kind == kind,
                        Fingerprint.hash.in_(ranked[i : i + _BATCH]),
                        Fingerprint.member_id != member_id,
                    )
                    .group_by(Fingerprint.member_id)
                ):
                    counts[int(m)] = counts.get(int(m), 0) + int(n)
            found[kind] = len(held_by[kind])
            by_member[kind] = counts
            member_ids[kind] = {}
            continue
        held: dict[int, set[int]] = {}
        for i in range(0, len(hashes), _BATCH):
            chunk = hashes[i : i + _BATCH]
            for h, m in session.execute(
                select(Fingerprint.hash, Fingerprint.member_id).where(
                    Fingerprint.kind == kind,
                    Fingerprint.hash.in_(chunk),
                    Fingerprint.member_id != member_id,
                )
            ):
                held.setdefault(int(h), set()).add(int(m))
        for members in held.values():
            for m in members:
                counts[m] = counts.get(m, 0) + 1
        found[kind] = len(held)
        by_member[kind] = counts
        unsigned = {_unsigned(h): ms for h, ms in held.items()}
        held_by[kind] = {h: len(ms) for h, ms in unsigned.items()}
        member_ids[kind] = unsigned
    return Matches(sampled, found, by_member, held_by, member_ids)


def held_of(session: Session, kind: int, hashes: np.ndarray, member_id: int) -> set[int]:
    """Which of ``hashes`` one member holds."""
    out: set[int] = set()
    signed = _signed(hashes)
    for i in range(0, len(signed), _BATCH):
        out |= {
            _unsigned(int(h))
            for h in session.scalars(
                select(Fingerprint.hash).where(
                    Fingerprint.kind == kind,
                    Fingerprint.member_id == member_id,
                    Fingerprint.hash.in_(signed[i : i + _BATCH]),
                )
            )
        }
    return out


__all__ = [
    "MIN_SAMPLE",
    "PLAY",
    "SAMPLE",
    "SEQUENCE",
    "TRACK",
    "Matches",
    "Memo",
    "Prints",
    "fingerprint",
    "items",
    "key_of",
    "held_of",
    "holders",
    "lookup",
    "normalised",
    "refresh_stale",
    "store",
    "stored",
]
