"""Service facts live in the parsers: declared, normalised at import, named nowhere else."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunetrust import Home, get_member, import_export
from tunetrust.formats import ServiceFacts, normalise, registry, service_facts
from tunetrust.formats.spotify import FACTS
from tunetrust.ingest.rebuild import rebuild_events
from tunetrust.insights.stats import Period, member_insights
from tunetrust.listens import PARSED_SCHEMA
from tunetrust.store.models import Contribution, Member

from . import reference
from .factories import export_zip
from .test_import import _source_rows

SRC = Path(__file__).resolve().parents[1] / "src" / "tunetrust"

# --- declared by each parser ------------------------------------------------------------


def test_every_parser_declares_its_facts() -> None:
    for parser in registry():
        assert isinstance(parser.facts, ServiceFacts)
        assert parser.facts.service == parser.service
        assert service_facts(parser.service) is parser.facts
    with pytest.raises(LookupError, match="no parser"):
        service_facts("no-such-service")


def test_spotify_facts() -> None:
    assert FACTS.skip_reasons == {"fwdbtn", "backbtn"}
    assert FACTS.resolution("extended") == 1_000
    assert FACTS.resolution("account") == 60_000
    assert FACTS.started == datetime(2008, 10, 7)
    assert FACTS.reexport_shift_ms == 1_000
    with pytest.raises(TypeError):
        FACTS.resolution_ms["account"] = 1  # type: ignore[index]


_OK: dict[str, Any] = {
    "service": "s",
    "started": datetime(2000, 1, 1),
    "resolution_ms": {"extended": 1_000},
    "skip_reasons": frozenset({"next"}),
    "reasons": frozenset({"next", "done"}),
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"service": ""}, "a name"),
        ({"started": datetime(2000, 1, 1, tzinfo=UTC)}, "naive"),
        ({"resolution_ms": {}}, "positive"),
        ({"resolution_ms": {"account": 0}}, "positive"),
        ({"skip_reasons": frozenset({"odd"})}, "known reason"),
        ({"reexport_shift_ms": -1}, "negative"),
    ],
)
def test_facts_are_validated(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceFacts(**(_OK | change))


# --- normalised at import -----------------------------------------------------------------


def _parsed(rows: list[tuple[int, str, bool | None, str | None]]) -> pa.Table:
    columns: dict[str, Any] = {
        "ts": pa.array([r[0] for r in rows], pa.timestamp("ms", tz="UTC")),
        "ms_played": pa.array([1] * len(rows), pa.int64()),
        "kind": pa.array(["music"] * len(rows)),
        "source": pa.array([r[1] for r in rows]),
        "skipped": pa.array([r[2] for r in rows], pa.bool_()),
        "reason_end": pa.array([r[3] for r in rows], pa.string()),
    }
    n = len(rows)
    return pa.table(
        [columns.get(f.name, pa.nulls(n, f.type)) for f in PARSED_SCHEMA], schema=PARSED_SCHEMA
    )


@pytest.mark.parametrize(
    ("skipped", "reason", "stored"),
    [
        (True, "trackdone", True),  # the flag wins
        (False, "fwdbtn", False),
        (None, "fwdbtn", True),  # no flag: the reason says
        (None, "backbtn", True),
        (None, "trackdone", False),
        (None, "not-a-code", False),
        (None, None, None),  # neither: unknown
    ],
)
def test_skip_filled_from_the_reason(skipped: bool | None, reason: str | None, stored: bool | None):
    table = normalise(_parsed([(0, "extended", skipped, reason)]), FACTS)
    assert table["skipped"].to_pylist() == [stored]
    assert table["reason_end"].to_pylist() == [reason]  # kept as exported


def test_end_times_floored_to_their_resolution() -> None:
    table = normalise(
        _parsed([(61_234, "extended", None, None), (119_999, "account", None, None)]), FACTS
    )
    ms = table["ts"].cast(pa.int64()).to_pylist()
    assert ms == [61_000, 60_000]
    assert table.schema == PARSED_SCHEMA
    with pytest.raises(ValueError, match="no time resolution"):
        normalise(_parsed([(0, "elsewhere", None, None)]), FACTS)


@given(
    st.lists(
        st.tuples(
            st.integers(-(10**12), 4 * 10**12),
            st.sampled_from(["extended", "account"]),
            st.none() | st.booleans(),
            st.none() | st.sampled_from(sorted(FACTS.reasons)) | st.text(max_size=5),
        ),
        max_size=30,
    )
)
def test_normalise_matches_the_reference_and_is_idempotent(
    rows: list[tuple[int, str, bool | None, str | None]],
) -> None:
    once = normalise(_parsed(rows), FACTS)
    assert once["skipped"].to_pylist() == [reference.skipped(r[2], r[3]) for r in rows]
    steps = {"extended": 1_000, "account": 60_000}
    assert once["ts"].cast(pa.int64()).to_pylist() == [
        r[0] // steps[r[1]] * steps[r[1]] for r in rows
    ]
    assert normalise(once, FACTS).equals(once)


# --- named nowhere else -------------------------------------------------------------------

# reason codes that are also ordinary English words appear in prose everywhere
_ORDINARY_WORDS = {"unknown", "remote", "popup", "logout", "persisted", "finished"}
_FILE_NAMES = (
    "StreamingHistory",
    "Streaming_History",
    "endsong",
    "endvideo",
    "Userdata.json",
    "YourLibrary",
    "SearchQueries",
    "Inferences.json",
    "MyData",
    "Spotify Account Data",
    "Extended Streaming History",
    "ReadMeFirst",
)
ALLOWED = {
    # the member's data dictionary explains reason_start / reason_end with a code they
    # will see in their own export: prose for people, applied by no code
    "coop/rights.py",
}


def _service_literals() -> re.Pattern[str]:
    codes = sorted(FACTS.reasons - _ORDINARY_WORDS)
    words = [rf"(?<![\w-]){re.escape(c)}(?![\w-])" for c in codes]
    return re.compile("|".join(words + [re.escape(n) for n in _FILE_NAMES]), re.I)


def _hits(path: Path) -> set[str]:
    return {m.group(0) for m in _service_literals().finditer(path.read_text("utf-8"))}


def test_no_spotify_fact_outside_the_parsers() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*")):
        rel = path.relative_to(SRC).as_posix()
        if not path.is_file() or "__pycache__" in rel or path.suffix not in {".py", ".html"}:
            continue
        if rel.startswith("formats/") or rel in ALLOWED:
            continue
        hits = _hits(path)
        if hits:
            found[rel] = hits
    assert found == {}, "Spotify facts belong in src/tunetrust/formats/ (ServiceFacts)"
    # the scan sees what it looks for
    assert {"fwdbtn", "backbtn"} <= _hits(SRC / "formats" / "spotify" / "parser.py")
    assert "endsong" in _hits(SRC / "formats" / "spotify" / "parser.py")


# --- stores written before the change -------------------------------------------------------


def _skips(home: Home, member: str) -> list[bool | None]:
    m = get_member(home, member)
    return list(home.events.read(m.pseudonym, m.events_file)["skipped"].to_pylist())


def _make_old_shaped(home: Home, member: str, export: Path) -> None:
    """Store what the importer stored before the facts: ``skipped`` only as exported."""
    flags = {}
    for rows in _source_rows(export).values():
        for r in rows:
            flags[(_ms(r["ts"]), r["ms_played"], r["master_metadata_track_name"])] = r["skipped"]
    m = get_member(home, member)
    table = home.events.read(m.pseudonym, m.events_file)
    ts = table["ts"].cast(pa.int64()).to_pylist()
    old = [
        flags[(t, ms, name)]
        for t, ms, name in zip(
            ts, table["ms_played"].to_pylist(), table["track_name"].to_pylist(), strict=True
        )
    ]
    i = table.schema.get_field_index("skipped")
    table = table.set_column(i, table.schema.field(i), pa.array(old, pa.bool_()))
    home.events.stage(m.pseudonym, "old.parquet", table)
    with home.transaction() as s:
        row = s.get(Member, m.id)
        assert row is not None
        row.events_file = "old.parquet"
    home.events.publish(m.pseudonym, "old.parquet")


def _ms(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize("raw_kept", [True, False])
def test_rebuild_fills_skips_of_an_old_store(
    home: Home, member: str, tmp_path: Path, raw_kept: bool
) -> None:
    export = export_zip(tmp_path, "extended-b", 3_000, 4)
    import_export(home, member, export)
    right_skips = _skips(home, member)
    right = member_insights(home, member, Period())
    _make_old_shaped(home, member, export)
    assert _skips(home, member) != right_skips  # skips from reasons are missing
    assert None in _skips(home, member)
    assert member_insights(home, member, Period()).skip_rate != right.skip_rate
    if not raw_kept:  # only the stored rows are left: they are normalised in place
        with home.transaction() as s:
            for c in s.query(Contribution).all():
                c.vault_file = None

    report = rebuild_events(home, actor="steward")  # the upgrade step (CHANGELOG.md)

    assert report.changed == 1
    assert report.members[0].missing_raw == (0 if raw_kept else 1)
    assert _skips(home, member) == right_skips
    expected = reference.merge([], reference.listens_from_source(_source_rows(export)))
    stored = _skips(home, member)
    assert sorted(stored, key=repr) == sorted((r["skipped"] for r in expected), key=repr)
    after = member_insights(home, member, Period())
    assert after.skip_rate == right.skip_rate
    assert after.plays == right.plays
    assert rebuild_events(home, actor="steward").changed == 0
