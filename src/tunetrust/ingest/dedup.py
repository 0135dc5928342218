"""Each play counted once, across re-imports and across export kinds.

A play is identified by what was played (artist+track, show+episode, book+chapter,
else the URI; case-insensitive, so account data and every extended generation
agree) plus when it ended and how long it played:

* extended history: end time at its resolution + ``ms_played`` + identity ("fine key");
* account data is coarser and has no URIs: end time truncated to the account data's
  resolution + ``ms_played`` + identity ("coarse key").

The resolutions and the re-export shift are the service's facts
(:class:`~tunetrust.formats.ServiceFacts`; for Spotify: a second, a minute, one second).

Rules: an extended play already stored is a duplicate, also when its end differs by
the re-export shift (two downloads of one account can disagree by that much); an
account play whose coarse key matches any extended play (stored or new) is a
duplicate — extended history wins; stored account plays that a new extended play
covers are replaced by it ("superseded"); repeated rows inside one export count once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.formats import ServiceFacts

_SEP = "\x1f"


@dataclass(frozen=True)
class Merge:
    """The member's new partition and what happened to each incoming play."""

    table: pa.Table
    added: int
    already_imported: int
    repeated_in_export: int
    covered_by_extended: int
    superseded: int

    @property
    def duplicates(self) -> int:
        """Incoming plays not added because they were counted already."""
        return self.already_imported + self.repeated_in_export + self.covered_by_extended


def _identity(t: pa.Table) -> pa.Array:
    def pair(a: str, b: str) -> pa.Array:
        return pc.binary_join_element_wise(
            pc.utf8_lower(t[a]), pc.utf8_lower(t[b]), _SEP, null_handling="emit_null"
        )

    return pc.coalesce(
        pair("artist_name", "track_name"),
        pair("show_name", "episode_name"),
        pair("audiobook_title", "audiobook_chapter_title"),
        t["track_uri"],
        t["episode_uri"],
        t["audiobook_chapter_uri"],
        pa.scalar(""),
    )


def _key(t: pa.Table, resolution_ms: int, shift_ms: int = 0) -> pa.Array:
    when = pc.divide(pc.add(pc.cast(t["ts"], pa.int64()), shift_ms), resolution_ms)
    key = pc.binary_join_element_wise(
        pc.cast(when, pa.string()), pc.cast(t["ms_played"], pa.string()), _identity(t), _SEP
    )
    return key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key


def fine_key(t: pa.Table, facts: ServiceFacts, shift_ms: int = 0) -> pa.Array:
    """Key of extended plays at their resolution (optionally of their end moved by ``shift_ms``)."""
    return _key(t, facts.resolution("extended"), shift_ms)


def coarse_key(t: pa.Table, facts: ServiceFacts) -> pa.Array:
    """Key at the account data's resolution, comparable between account data and extended."""
    return _key(t, facts.resolution("account"))


def first_of_each(t: pa.Table, key: pa.Array) -> pa.Table:
    """The rows of ``t`` whose ``key`` is seen for the first time, in their order."""
    if t.num_rows == 0:
        return t
    idx = pa.table({"k": key, "i": pa.array(range(t.num_rows), pa.int64())})
    firsts = idx.group_by("k", use_threads=False).aggregate([("i", "min")])["i_min"]
    # the row numbers themselves, ascending (not the positions that would sort them)
    return t.take(pc.take(firsts, pc.sort_indices(firsts)))


def _split(t: pa.Table) -> tuple[pa.Table, pa.Table]:
    ext = pc.equal(t["source"], "extended")
    return t.filter(ext), t.filter(pc.invert(ext))


def merge(existing: pa.Table, incoming: pa.Table, facts: ServiceFacts) -> Merge:
    """Combine a member's stored plays with an export's (of the service of ``facts``), each once."""
    old_ext, old_acc = _split(existing)
    new_ext, new_acc = _split(incoming)

    n_in = incoming.num_rows
    new_ext = first_of_each(new_ext, fine_key(new_ext, facts))
    new_acc = first_of_each(new_acc, coarse_key(new_acc, facts))
    repeated = n_in - new_ext.num_rows - new_acc.num_rows

    seen_fine = fine_key(old_ext, facts)
    stored = pc.is_in(fine_key(new_ext, facts), value_set=seen_fine)
    shift_ms = facts.reexport_shift_ms
    for shift in (-shift_ms, shift_ms) if shift_ms else ():
        stored = pc.or_(stored, pc.is_in(fine_key(new_ext, facts, shift), value_set=seen_fine))
    new_ext_fresh = new_ext.filter(pc.invert(stored))
    already = new_ext.num_rows - new_ext_fresh.num_rows

    # rule 3: any extended play, stored or in this import (also one that counted as
    # already stored through the re-export rule, whose minute may be the next one)
    ext_coarse = pa.concat_arrays([coarse_key(old_ext, facts), coarse_key(new_ext, facts)])
    acc_in_ext = pc.is_in(coarse_key(new_acc, facts), value_set=ext_coarse)
    acc_in_old = pc.is_in(coarse_key(new_acc, facts), value_set=coarse_key(old_acc, facts))
    covered = pc.sum(acc_in_ext).as_py() or 0
    already_acc = pc.sum(pc.and_(acc_in_old, pc.invert(acc_in_ext))).as_py() or 0
    new_acc_fresh = new_acc.filter(pc.invert(pc.or_(acc_in_ext, acc_in_old)))

    superseded_mask = pc.is_in(
        coarse_key(old_acc, facts), value_set=coarse_key(new_ext_fresh, facts)
    )
    superseded = pc.sum(superseded_mask).as_py() or 0
    old_acc_kept = old_acc.filter(pc.invert(superseded_mask))

    combined = pa.concat_tables([old_ext, old_acc_kept, new_ext_fresh, new_acc_fresh])
    combined = combined.sort_by("ts")  # stable: equal end times keep their order
    return Merge(
        table=combined,
        added=new_ext_fresh.num_rows + new_acc_fresh.num_rows,
        already_imported=already + already_acc,
        repeated_in_export=repeated,
        covered_by_extended=covered,
        superseded=superseded,
    )
