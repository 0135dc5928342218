"""Deduplication: which rows are stored, against a plain-Python reading of the rules."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunetrust.formats.spotify import FACTS
from tunetrust.ingest.dedup import first_of_each, merge
from tunetrust.store.events import EVENTS_SCHEMA

from . import reference

BASE_MS = 1_599_999_960_000  # 2020-09-13 12:26:00 UTC, a whole minute
# album_name is not part of a play's identity: it tags each row, so the multisets
# below say *which* row of several equal plays was kept, not only how many.
FIELDS = (
    "album_name",
    "ts",
    "ms_played",
    "source",
    "artist_name",
    "track_name",
    "show_name",
    "episode_name",
    "track_uri",
)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    full = [
        {
            "kind": "music",
            "contribution": "c",
            **{k: v for k, v in r.items() if k in EVENTS_SCHEMA.names},
            "ts": r["ts"],
        }
        for r in rows
    ]
    columns = {
        f.name: pa.array([r.get(f.name) for r in full], f.type)
        if f.name != "ts"
        else pa.array([r["ts"] for r in full], pa.int64()).cast(f.type)
        for f in EVENTS_SCHEMA
    }
    return pa.table(columns, schema=EVENTS_SCHEMA)


def _rows(t: pa.Table) -> list[dict[str, Any]]:
    out = t.to_pylist()
    for r in out:
        r["ts"] = int(r["ts"].timestamp() * 1000)
    return out


def _play(tag: str, key: str, *, second: int = 0, ms: int = 200_000) -> dict[str, Any]:
    return {
        "album_name": tag,
        "ts": BASE_MS + second * 1_000,
        "ms_played": ms,
        "source": "extended",
        "artist_name": "Artist",
        "track_name": key,
    }


@pytest.mark.parametrize(
    ("keys", "kept"),
    [
        ("abacd", "ab-cd"),  # the case: a repeat in the middle
        ("aabcd", "a-bcd"),  # at the start
        ("abcdd", "abcd-"),  # at the end
        ("abcab", "abc--"),  # several, interleaved
        ("aaaaa", "a----"),
        ("abcde", "abcde"),
    ],
)
def test_first_of_each_keeps_the_first_row_of_each_key(keys: str, kept: str) -> None:
    t = pa.table({"k": list(keys), "row": list(range(len(keys)))})
    got = first_of_each(t, t["k"].combine_chunks())
    assert got["row"].to_pylist() == [i for i, c in enumerate(kept) if c != "-"]
    assert got["k"].to_pylist() == [c for c in kept if c != "-"]


def test_repeats_across_files_keep_every_other_play() -> None:
    """Keys a b a c d, the last file being video: d must not be lost."""
    audio = [_play("a1", "a", second=0), _play("b", "b", second=300)]
    audio2 = [_play("a2", "a", second=0), _play("c", "c", second=600)]
    video = [_play("d", "d", second=900)]
    merged = merge(_table([]), _table(audio + audio2 + video), FACTS)
    assert [r["album_name"] for r in _rows(merged.table)] == ["a1", "b", "c", "d"]
    assert merged.repeated_in_export == 1
    assert merged.added == 4


@pytest.mark.parametrize("shift", [-1, 1])
def test_a_play_moved_by_one_second_is_already_imported(shift: int) -> None:
    stored = _table([_play("old", "a", second=10)])
    again = merge(stored, _table([_play("new", "a", second=10 + shift)]), FACTS)
    assert again.added == 0
    assert again.already_imported == 1
    assert [r["album_name"] for r in _rows(again.table)] == ["old"]


@pytest.mark.parametrize(
    "other",
    [
        _play("new", "a", second=12),  # two seconds apart: another play
        _play("new", "a", second=11, ms=200_001),  # another length
        _play("new", "b", second=11),  # another item
    ],
)
def test_only_one_second_with_the_same_item_and_length_counts_as_the_same(
    other: dict[str, Any],
) -> None:
    merged = merge(_table([_play("old", "a", second=10)]), _table([other]), FACTS)
    assert merged.added == 1
    assert sorted(r["album_name"] for r in _rows(merged.table)) == ["new", "old"]


# --- property: the stored multiset equals the reference -------------------------------

_names = st.one_of(st.none(), st.sampled_from(["Song", "song", "Tune"]))


@st.composite
def _listens(draw: st.DrawFn, tag: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(0, 12))):
        source = draw(st.sampled_from(["extended", "account"]))
        second = draw(st.integers(0, 130))
        ts = BASE_MS + second * 1_000
        if source == "account":
            ts -= ts % 60_000
        podcast = draw(st.booleans())
        rows.append(
            {
                "album_name": f"{tag}{i}",
                "ts": ts,
                "ms_played": draw(st.sampled_from([0, 30_000, 30_001])),
                "source": source,
                "artist_name": None if podcast else draw(_names),
                "track_name": None if podcast else draw(_names),
                "show_name": draw(_names) if podcast else None,
                "episode_name": "Episode 1" if podcast else None,
                "track_uri": draw(st.one_of(st.none(), st.just("spotify:track:1"))),
            }
        )
    return rows


@settings(max_examples=120, deadline=None)
@given(existing=_listens("old"), first=_listens("in"), second=_listens("again"))
def test_merge_matches_the_reference(
    existing: list[dict[str, Any]], first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    # the stored side must itself be a result of the rules; then two imports in a row
    stored = reference.merge([], existing)
    got = merge(_table([]), _table(existing), FACTS)
    assert reference.multiset(_rows(got.table), FIELDS) == reference.multiset(stored, FIELDS)
    for incoming in (first, second):
        expected = reference.merge(stored, incoming)
        got = merge(got.table, _table(incoming), FACTS)
        assert reference.multiset(_rows(got.table), FIELDS) == reference.multiset(expected, FIELDS)
        assert got.table.num_rows == len(expected)
        stored = expected


def test_a_shifted_play_still_covers_its_account_row_across_a_minute() -> None:
    """Stored at hh:mm:59, downloaded again as hh:mm+1:00, with account data of that minute."""
    stored = _table([_play("old", "a", second=59)])
    account = _play("acc", "a", second=60) | {"source": "account"}
    merged = merge(stored, _table([_play("new", "a", second=60), account]), FACTS)
    assert merged.added == 0
    assert merged.covered_by_extended == 1
    assert [r["album_name"] for r in _rows(merged.table)] == ["old"]
