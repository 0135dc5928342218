"""The engine seam: a sampling hash every engine computes alike, sources, engine choice.

The portable hash is checked against checked-in vectors in Python and in DuckDB's SQL;
the engine's sampled aggregates are checked against a reference written here from the
definition (hashlib, not the engine's helpers), so a second engine that passes the same
vectors keeps the same partitions.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunetrust import (
    Home,
    InputError,
    Settings,
    add_member,
    decide_consent,
    get_member,
    import_export,
    init_home,
)
from tunetrust.releases.build import build_release, plan_release
from tunetrust.releases.engines import ENGINES, engine_for
from tunetrust.releases.engines.base import (
    Source,
    canonical,
    digest_sql,
    hash_sql,
    portable_digest,
    portable_hash,
)
from tunetrust.releases.engines.duckdb import DuckDBEngine
from tunetrust.releases.spec import ReleaseSpec, parse_spec

from .factories import export_zip

VECTORS = json.loads(
    Path(__file__).with_name("vectors").joinpath("portable_hash.json").read_text()
)["vectors"]

SAMPLED = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [country, month, artist]
metrics: [plays, minutes, listeners]
bounds: {max_partitions: 5, max_plays_per_partition: 3, max_minutes_per_play: 4}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: private
min_listeners: 1
"""
MEMBERS = ["ann", "bo", "cy", "di"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"] for v in VECTORS])
def test_python_reference_matches_the_vectors(vector: dict[str, Any]) -> None:
    parts = vector["parts"]
    assert canonical(parts) == vector["canonical"].encode()
    assert portable_digest(parts) == vector["sha256"]
    assert portable_hash(parts) == int(vector["hash64"])
    assert portable_hash(parts) < 2**64


def test_duckdb_sql_matches_the_vectors() -> None:
    con = duckdb.connect()
    for vector in VECTORS:
        parts = vector["parts"]
        names = [f"$p{i}" for i in range(len(parts))]
        params = {f"p{i}": p for i, p in enumerate(parts)}
        digest, value = con.execute(
            f"SELECT {digest_sql(names)}, {hash_sql(names)}", params
        ).fetchone() or (None, None)
        assert (digest, value) == (vector["sha256"], int(vector["hash64"])), vector["note"]


def test_length_prefixes_keep_look_alike_part_lists_apart() -> None:
    digests = {v["note"]: v["sha256"] for v in VECTORS}
    assert len(set(digests.values())) == len(VECTORS)
    assert portable_digest(["a:b", "c"]) != portable_digest(["a", "b:c"])
    assert portable_digest(["ab"]) != portable_digest(["a", "b"])


def test_engine_for_names_the_choices() -> None:
    assert isinstance(engine_for("duckdb"), DuckDBEngine)
    with pytest.raises(InputError, match="unknown release engine 'spark'; choose from duckdb"):
        engine_for("spark")
    assert sorted(ENGINES) == ["duckdb"]


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("seam")
    home = init_home(Settings(home=root / "home", epsilon_cap=10.0))
    for i, name in enumerate(MEMBERS):
        add_member(home, name)
        import_export(home, name, export_zip(root, "extended-c", 700, 70 + i, 1))
        decide_consent(home, name, "research", granted=True)
    return home


def _reference(home: Home, spec: ReleaseSpec, salt: str) -> dict[tuple[str, ...], dict[str, int]]:
    """Bounded aggregates from the definition: each member's partitions, the P of lowest
    SHA-256 of the length-prefixed (pseudonym, country, yyyymm, artist, salt), summed."""
    c, clamp, p = (
        spec.bounds.max_plays_per_partition,
        spec.bounds.max_minutes_per_play,
        spec.bounds.max_partitions,
    )
    out: dict[tuple[str, ...], dict[str, int]] = defaultdict(
        lambda: {"listeners": 0, "plays": 0, "minutes": 0}
    )
    for name in MEMBERS:
        m = get_member(home, name)
        mine: dict[tuple[str, int, str], list[int]] = defaultdict(list)
        for r in home.events.read(m.pseudonym, m.events_file).to_pylist():
            if r["kind"] != "music" or r["ms_played"] < 30_000:
                continue
            if r["country"] is None or r["artist_name"] is None:
                continue
            mine[(r["country"], r["ts"].year * 100 + r["ts"].month, r["artist_name"])].append(
                r["ms_played"]
            )

        def order(key: tuple[str, int, str], member: str = m.pseudonym) -> str:
            parts = [member, key[0], str(key[1]), key[2], salt]
            text = "".join(f"{len(x.encode())}:{x}" for x in parts)
            return hashlib.sha256(text.encode()).hexdigest()

        for key in sorted(mine, key=order)[:p]:
            plays = mine[key]
            n, mins = len(plays), sum(min(ms / 60000, clamp) for ms in plays)
            row = out[(key[0], f"{key[1] // 100:04d}-{key[1] % 100:02d}", key[2])]
            row["listeners"] += 1
            row["plays"] += min(n, c)
            row["minutes"] += math.floor(min(n, c) * mins / n)
    return dict(out)


def test_sampled_aggregates_equal_the_reference_drawn_from_the_definition(coop: Home) -> None:
    spec = parse_spec(SAMPLED)
    built = build_release(coop, spec, allow_empty=True, _noise=False)
    salt = built.manifest["privacy"]["bounding_salt"]
    want = _reference(coop, spec, salt)
    got = {
        (r["country"], r["month"], r["artist"]): {
            c: r[c] for c in ("listeners", "plays", "minutes")
        }
        for r in pq.read_table(built.path / "data.parquet").to_pylist()
    }
    # every member has more than P partitions, so the sample decides what is counted
    assert sum(row["listeners"] for row in want.values()) == len(MEMBERS) * 5
    assert got == want
    assert built.manifest["engine"] == "duckdb"


def test_the_member_comes_from_the_sources_not_the_folder(coop: Home, tmp_path: Path) -> None:
    spec = parse_spec(SAMPLED)
    engine = DuckDBEngine()
    m = get_member(coop, "ann")
    stored = Source(m.pseudonym, coop.events.uri(m.pseudonym, str(m.events_file)))
    elsewhere = tmp_path / "anywhere" / "listens.parquet"  # no pseudonym=<p> folder
    elsewhere.parent.mkdir()
    shutil.copy(stored.uri, elsewhere)
    moved = Source(m.pseudonym, str(elsewhere))

    def aggregate(sources: list[Source]) -> pa.Table:
        keys = [f"k_{k}" for k in spec.group_by]
        return engine.aggregate(spec, sources, "s").sort_by([(k, "ascending") for k in keys])

    here = aggregate([stored])
    assert aggregate([moved]).equals(here)
    # the member id seeds the sample: another id keeps other partitions of the same file
    assert not aggregate([Source("someone-else", str(elsewhere))]).equals(here)
    # two files of one member are bounded together: still P partitions, one listener each
    both = aggregate([stored, moved])
    assert both.num_rows == spec.bounds.max_partitions
    assert set(both["listeners"].to_pylist()) == {1}
    counted = ["plays", "minutes", "skips"]  # bounded sums of twice the plays
    assert both.drop_columns(counted).equals(here.drop_columns(counted))


def test_an_unknown_engine_in_settings_is_refused_before_any_work(tmp_path: Path) -> None:
    home = init_home(Settings(home=tmp_path / "h", engine="spark"))
    with pytest.raises(InputError, match="choose from duckdb"):
        plan_release(home, parse_spec(SAMPLED), allow_empty=True)
    with pytest.raises(InputError, match="unknown release engine 'spark'"):
        build_release(home, parse_spec(SAMPLED), allow_empty=True)
    home.close()
