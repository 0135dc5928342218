"""The copy index's own rules, against independent references (ingest/fingerprint.py).

What the attack tests (test_contribution_attacks.py) rely on, checked directly: a
history's fingerprints do not depend on the order of its rows; a track's holders are
counted up to two by the key, whatever the database (SQLite and PostgreSQL); a member's
stored rows are exactly their fingerprints after any change; the typical member's
corroborated share is kept, and computed again when its basis moves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import export_zip, stored_listens
from tunetrust import Home, Settings, add_member, get_member, import_export, init_home
from tunetrust.formats.spotify.parser import FACTS
from tunetrust.ingest import fingerprint as fp
from tunetrust.ingest.dedup import merge
from tunetrust.ingest.provenance import TYPICAL, _typical, typical_corroboration
from tunetrust.store.models import FINGERPRINT_KINDS, CoopFigure, Fingerprint, Member


def _same(a: fp.Prints, b: fp.Prints) -> None:
    assert a.hashes.keys() == b.hashes.keys()
    for kind in a.hashes:
        assert np.array_equal(a.hashes[kind], b.hashes[kind]), FINGERPRINT_KINDS[kind]
    assert (a.track_plays, a.play_times, a.plays) == (b.track_plays, b.play_times, b.plays)


@pytest.fixture
def crowd(tmp_path: Path, coop: Home) -> Home:
    """Six members with synthetic exports of one shared music world, on each database."""
    for i in range(6):
        add_member(coop, f"m{i}")
        import_export(coop, f"m{i}", export_zip(tmp_path, "extended-c", 1500, 300 + i))
    return coop


def test_fingerprints_do_not_depend_on_row_order(home: Home, tmp_path: Path) -> None:
    add_member(home, "a")
    import_export(home, "a", export_zip(tmp_path, "extended-c", 3000, 7))
    listens = stored_listens(home, "a")
    key = fp.key_of(home)
    shuffled = listens.take(np.random.default_rng(1).permutation(listens.num_rows))
    _same(fp.fingerprint(key, listens), fp.fingerprint(key, shuffled))
    # what the import relies on when it reuses an export's fingerprints for a first import
    merged = merge(listens.slice(0, 0), shuffled, FACTS)
    assert merged.added == listens.num_rows
    memo: fp.Memo = {}
    _same(fp.fingerprint(key, listens), fp.fingerprint(key, merged.table, memo=memo))
    _same(fp.fingerprint(key, listens), fp.fingerprint(key, merged.table, memo=memo))  # memo'd


def test_holders_are_counted_up_to_two_as_the_table_says(crowd: Home) -> None:
    with crowd.sessions() as s:
        rows = s.execute(
            select(Fingerprint.hash, Fingerprint.member_id).where(Fingerprint.kind == fp.TRACK)
        ).all()
        me = min(m for _, m in rows)
        everyone: dict[int, set[int]] = {}
        for h, m in rows:
            everyone.setdefault(int(h), set()).add(int(m))
        hashes = np.array(sorted(everyone), dtype=np.int64).view(np.uint64)
        known: dict[int, int] = {}
        held = fp.holders(s, fp.TRACK, hashes, member_id=me, known=known)
    expected = {}
    for h, members in everyone.items():
        others = len(members - {me})
        if others:
            expected[int(np.int64(h).view(np.uint64))] = min(others, fp.HOLDERS_COUNTED)
    assert held == expected
    assert {1, 2} <= set(held.values())  # both counts occur: the cap is exercised
    assert len(known) == len(hashes)  # every hash remembered, those none holds too


def test_stored_rows_are_the_fingerprints_after_every_change(home: Home, tmp_path: Path) -> None:
    add_member(home, "a")
    key = fp.key_of(home)
    for seed, listens in ((11, 2000), (12, 800)):  # a second export: rows added and kept
        import_export(home, "a", export_zip(tmp_path, "extended-c", listens, seed))
        prints = fp.fingerprint(key, stored_listens(home, "a"))
        with home.sessions() as s:
            stored = {
                (int(k), int(h))
                for k, h in s.execute(
                    select(Fingerprint.kind, Fingerprint.hash).where(
                        Fingerprint.member_id == get_member(home, "a").id
                    )
                )
            }
        wanted = {(kind, int(h)) for kind, hs in prints.hashes.items() for h in hs.view(np.int64)}
        assert stored == wanted
        with home.sessions() as s:  # what the import reads for the member's tracks before
            kept = fp.stored(s, get_member(home, "a").id, (fp.TRACK,))
        assert np.array_equal(kept.hashes[fp.TRACK], prints.hashes[fp.TRACK])
    with home.transaction() as s:  # fewer listens: the rows no longer there go
        row = s.get(Member, get_member(home, "a").id)
        assert row is not None
        fewer = fp.fingerprint(key, stored_listens(home, "a").slice(0, 500))
        fp.store(s, row, fewer, row.events_file)
    with home.sessions() as s:
        left = set(s.scalars(select(Fingerprint.hash).where(Fingerprint.member_id == row.id)))
    assert left == {int(h) for hs in fewer.hashes.values() for h in hs.view(np.int64)}


def test_members_are_ranked_on_a_bounded_consistent_sample() -> None:
    tracks = np.unique(np.random.default_rng(3).integers(0, 2**62, 50_000, dtype=np.uint64) * 4)
    ranked = fp._ranked(tracks)
    assert fp.RANKED_TRACKS // 2 <= len(ranked) <= fp.RANKED_TRACKS * 1.2
    assert set(ranked.tolist()) <= set(tracks.tolist())
    # consistent: a hash kept for the whole is kept for any part of it (a part's step is
    # no coarser), so a member holding it is ranked on it whatever the export's length
    half = tracks[: len(tracks) // 2]
    assert set(ranked.tolist()) & set(half.tolist()) <= set(fp._ranked(half).tolist())
    assert len(fp._ranked(half)) < len(half)  # the part is still sampled
    small = tracks[:100]
    assert np.array_equal(fp._ranked(small), small)  # a short history keeps every track


def test_typical_share_is_kept_and_computed_again_when_its_basis_moves(crowd: Home) -> None:
    checks = crowd.settings.checks
    now = datetime.now(UTC)
    with crowd.transaction() as s:
        first = typical_corroboration(s, except_id=-1, checks=checks, now=now)
        ids = list(s.scalars(select(Member.id).order_by(Member.id)))
        assert first == _typical(s, ids, -1)  # the figure is the computation, kept
    with crowd.transaction() as s:
        kept = s.get(CoopFigure, TYPICAL)
        assert kept is not None and kept.value == first and kept.basis == 6
        kept.value = 0.123  # marks the kept figure: a later call that returns it did not compute
    with crowd.transaction() as s:
        assert typical_corroboration(s, except_id=-1, checks=checks, now=now) == 0.123
        later = now + timedelta(days=1, minutes=1)
        assert typical_corroboration(s, except_id=-1, checks=checks, now=later) == first
    with crowd.transaction() as s:
        kept = s.get(CoopFigure, TYPICAL)
        assert kept is not None
        kept.value = 0.123
    with crowd.transaction() as s:  # one member fewer than it was computed over: again
        got = typical_corroboration(s, except_id=ids[0], checks=checks, now=now)
        assert got == _typical(s, ids[1:], ids[0]) != 0.123  # five left: all picked


def test_a_young_cooperative_has_no_typical_share(tmp_path: Path) -> None:
    home = init_home(Settings(home=tmp_path / "h"))
    add_member(home, "a")
    import_export(home, "a", export_zip(tmp_path, "extended-c", 1000, 5))
    with home.transaction() as s:
        got = typical_corroboration(
            s, except_id=-1, checks=home.settings.checks, now=datetime.now(UTC)
        )
        assert got is None and s.get(CoopFigure, TYPICAL) is None
    home.close()


_LETTERS = "aZ09 _-.'!\x1f\n\té\u00dfﬁİΣς\uff21\u0663\u0301ÅあB"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(_LETTERS, max_size=12), st.text(_LETTERS + "\x1e", max_size=6)),
        min_size=1,
        max_size=20,
    )
)
def test_items_are_chosen_by_columns_as_one_by_one(pairs: list[tuple[str, str]]) -> None:
    """Arrow's ASCII path and Python's normaliser name every item alike."""
    values = [f"{names}\x1e{uri}" for names, uri in pairs]
    norm, raw, uri = fp._chosen(pa.array(values, pa.string()))
    assert norm == [fp._item_text(v, normalise=True) for v in values]
    assert raw == [fp._item_text(v, normalise=False) for v in values]
    assert uri == [v.partition("\x1e")[2] for v in values]
