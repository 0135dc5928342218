"""Release engines: contribution bounding and aggregation where the data is.

An engine turns a spec and the included members' Parquet files (``Source``: member id,
URI) into *bounded true aggregates*, one row per partition, before any noise. Bounding
works on per-(member, partition) pre-aggregates, never per event:

1. filter listens (kind, period, countries, minimum play length, keys present);
2. per member and partition: n plays, clamped minutes, skips;
3. keep each member's ``max_partitions`` partitions of lowest portable hash of (member,
   keys, salt) (``base.py``) — a sample seeded per release that depends on that
   member's own listens only, and that every engine draws alike;
4. per partition: listeners = members; plays = Σ min(n, C);
   minutes = Σ floor(min(n, C) × clamped minutes / n); skips = Σ floor(min(n, C) × skips / n).

So one member changes any partition by at most 1 listener, C plays, floor(C × M)
minutes and C skips, in at most P partitions — the sensitivities the noise uses.

Keys travel in the engine's own compact encoding (time keys as integers, names as
DuckDB's 64-bit hashes of their label) because grouping on integers is several times
faster than on strings. That encoding stays inside one build: the sample is drawn on
the keys' canonical values (for names the label itself, carried through the
pre-aggregation once per member and partition), so it is the same for any engine.
``label`` turns encoded keys into the labels a release shows; it runs on the few
partitions a release keeps, not on every candidate, and looks names up only in the
files of one member per partition (the ``_witness`` column), not in every member's file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from tunetrust.releases.engines.base import (
    AGGREGATE_COLUMNS,
    WITNESS,
    Source,
    digest_sql,
    portable_hash,
)
from tunetrust.releases.spec import HOURS_BUCKETS, ReleaseSpec

# members come from the sources, never from folder names: no hive columns
_SCAN = "read_parquet($uris, hive_partitioning = false)"


@dataclass(frozen=True)
class _Key:
    """How one group key is computed from an event, encoded, and labelled."""

    value: str  # from event columns: the label itself (time keys: "", see label)
    present: str  # when an event has this key (a cheap test, no string building)
    encoded: str = ""  # compact encoding of the value; empty: group on the value itself
    label: str = ""  # the label from the encoding ({c}); empty: the value itself
    named: bool = False  # encoded as a hash: labels are looked up in the events


def _time(encoded: str, label: str) -> _Key:
    """Time keys (UTC) are integers from ``ts``, labelled by arithmetic."""
    return _Key("", "ts IS NOT NULL", encoded, label)


def _name(value: str, *columns: str) -> _Key:
    present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return _Key(value, present, "hash({value})", named=True)


def _member_hours() -> _Key:
    """The member's hours over every listen the filters keep (a window over the member),
    encoded as the lower bound of its bucket: one value per member, labelled as is."""
    total = "SUM(ms_played) OVER (PARTITION BY f.member)"
    cases = " ".join(
        f"WHEN {total} >= {b * 3_600_000} THEN {b}" for b in reversed(HOURS_BUCKETS[1:])
    )
    return _Key("", "ms_played IS NOT NULL", f"CASE {cases} ELSE 0 END", "CAST({c} AS VARCHAR)")


_KEYS = {
    "country": _Key("country", "country IS NOT NULL"),
    "year": _time("year(ts)", "printf('%04d', {c})"),  # 2024
    "quarter": _time("year(ts) * 10 + quarter(ts)", "printf('%04d-Q%d', {c} // 10, {c} % 10)"),
    "month": _time("year(ts) * 100 + month(ts)", "printf('%04d-%02d', {c} // 100, {c} % 100)"),
    "week": _time(  # ISO year and week: 2024-W01
        "isoyear(ts) * 100 + week(ts)", "printf('%04d-W%02d', {c} // 100, {c} % 100)"
    ),
    "weekday": _time("isodow(ts)", "CAST({c} AS VARCHAR)"),  # 1 = Monday
    "hour": _time("hour(ts)", "printf('%02d', {c})"),
    "platform": _Key("platform", "platform IS NOT NULL"),
    "artist": _name("artist_name", "artist_name"),
    "track": _name("artist_name || ' — ' || track_name", "artist_name", "track_name"),
    "album": _name("artist_name || ' — ' || album_name", "artist_name", "album_name"),
    "show": _name("show_name", "show_name"),
    "member_hours": _member_hours(),
}


def _encoded(key: str) -> str:
    k = _KEYS[key]
    return k.encoded.format(value=k.value) if k.encoded else k.value


def _canonical(key: str) -> str:
    """The key's canonical value (base.py) from the pre-aggregates' columns, as VARCHAR."""
    k = _KEYS[key]
    if k.named:
        return f"v_{key}"  # the label, carried beside its hash
    return f"CAST(k_{key} AS VARCHAR)" if k.encoded else f"k_{key}"


def _members(sources: Sequence[Source]) -> tuple[pa.Table, pa.Table]:
    """The sources as two tables: file (uri → member index) and member (index → id, witness)."""
    ids = sorted({s.member for s in sources})
    index = {m: i for i, m in enumerate(ids)}
    owner: dict[str, str] = {}
    for s in sources:
        if owner.setdefault(s.uri, s.member) != s.member:
            raise ValueError("one file was given as two members' events")
    files = pa.table(
        {
            "uri": pa.array(list(owner), pa.string()),
            "member": pa.array([index[m] for m in owner.values()], pa.int32()),
        }
    )
    members = pa.table(
        {
            "member": pa.array(range(len(ids)), pa.int32()),
            "member_id": pa.array(ids, pa.string()),
            "w": pa.array([portable_hash([m]) for m in ids], pa.uint64()),
        }
    )
    return files, members


class DuckDBEngine:
    """The embedded engine: DuckDB over the events Parquet, in process."""

    name = "duckdb"

    def _filters(
        self, spec: ReleaseSpec, sources: Sequence[Source]
    ) -> tuple[str, dict[str, object]]:
        filters = ["ms_played >= $min_ms", "list_contains($kinds, kind)"]
        filters += [_KEYS[k].present for k in spec.group_by]
        params: dict[str, object] = {
            "uris": list(dict.fromkeys(s.uri for s in sources)),
            "min_ms": spec.min_seconds * 1000,
            "kinds": list(spec.kinds),
        }
        if spec.period_from:
            filters.append("ts >= CAST($from AS TIMESTAMPTZ)")
            params["from"] = str(spec.period_from)
        if spec.period_to:
            filters.append("ts < CAST($to AS TIMESTAMPTZ) + INTERVAL 1 DAY")
            params["to"] = str(spec.period_to)
        if spec.countries:
            filters.append("list_contains($countries, country)")
            params["countries"] = list(spec.countries)
        return " AND ".join(filters), params

    def _run(self, sql: str, params: dict[str, object], tables: dict[str, pa.Table]) -> pa.Table:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for name, table in tables.items():
                con.register(name, table)
            return con.sql(sql, params=params).to_arrow_table()
        finally:
            con.close()

    def _witness_sources(self, sources: Sequence[Source], table: pa.Table) -> list[Source]:
        """The files of the partitions' witnesses: every name in ``table`` is in them."""
        if WITNESS not in table.column_names:
            return list(sources)
        wanted = set(table[WITNESS].to_pylist())
        return [s for s in sources if portable_hash([s.member]) in wanted]

    def aggregate(self, spec: ReleaseSpec, sources: Sequence[Source], salt: str) -> pa.Table:
        """Bounded true aggregates (see the module docstring for the bounding rules)."""
        keys = list(spec.group_by)
        if not sources:
            return pa.table(
                {
                    **{f"k_{k}": pa.array([], pa.int64()) for k in keys},
                    **{c: pa.array([], pa.int64()) for c in AGGREGATE_COLUMNS},
                    WITNESS: pa.array([], pa.uint64()),
                }
            )
        where, params = self._filters(spec, sources)
        params |= {
            "clamp": float(spec.bounds.max_minutes_per_play),
            "C": spec.bounds.max_plays_per_partition,
            "P": spec.bounds.max_partitions,
            "salt": salt,
        }
        named = [k for k in keys if _KEYS[k].named]
        select_keys = ", ".join(
            [
                *(f"{_encoded(k)} AS k_{k}" for k in keys),
                *(f"{_KEYS[k].value} AS v_{k}" for k in named),
            ]
        )
        key_cols = ", ".join(f"k_{k}" for k in keys)
        # a label per (member, partition) for the sample; min() only matters should two
        # labels share a hash, and keeps the choice deterministic
        labels = "".join(f"min(v_{k}) AS v_{k}, " for k in named)
        order = digest_sql(["member_id", *(_canonical(k) for k in keys), "$salt"])
        sql = f"""
            WITH e AS (
                SELECT f.member, {select_keys}, ms_played,
                       COALESCE(skipped, FALSE) AS skip
                FROM read_parquet($uris, hive_partitioning = false, filename = true) AS ev
                JOIN files AS f ON ev.filename = f.uri
                WHERE {where}
            ), pm AS (
                SELECT member, {key_cols}, {labels}COUNT(*) AS n,
                       SUM(LEAST(ms_played / 60000.0, $clamp)) AS mins,
                       SUM(CAST(skip AS INTEGER)) AS skips
                FROM e GROUP BY member, {key_cols}
            ), kept AS (
                SELECT pm.*, m.w, row_number() OVER (
                    PARTITION BY pm.member ORDER BY {order}) AS r
                FROM pm JOIN members AS m USING (member) QUALIFY r <= $P
            )
            -- the repeated "r <= $P" is redundant, yet DuckDB 2.0 plans it ~25 % faster
            SELECT {key_cols},
                   COUNT(*) AS listeners,
                   CAST(SUM(LEAST(n, $C)) AS BIGINT) AS plays,
                   CAST(SUM(FLOOR(LEAST(n, $C) * mins / n)) AS BIGINT) AS minutes,
                   CAST(SUM(FLOOR(LEAST(n, $C) * skips / n)) AS BIGINT) AS skips,
                   MIN(w) AS {WITNESS}
            FROM kept WHERE r <= $P GROUP BY {key_cols}
        """
        files, members = _members(sources)
        table = self._run(sql, params, {"files": files, "members": members})
        return table.cast(
            pa.schema(
                [
                    *(table.schema.field(f"k_{k}") for k in keys),
                    *(pa.field(c, pa.int64()) for c in AGGREGATE_COLUMNS),
                    table.schema.field(WITNESS),
                ]
            )
        )

    def label(self, spec: ReleaseSpec, sources: Sequence[Source], table: pa.Table) -> pa.Table:
        """Labels for encoded keys, rows sorted by them: time keys by arithmetic, names
        looked up in the files.

        A name's label is its value in the events, read from the partition's witness.
        Should two names ever share a 64-bit hash, their partition was counted as one and
        carries every such name the witness listened to, as "a / b".
        """
        keys = list(spec.group_by)
        rest = [c for c in table.column_names if not c.startswith(("k_", "_"))]
        schema = pa.schema(
            [*(pa.field(k, pa.string()) for k in keys), *(table.schema.field(c) for c in rest)]
        )
        if table.num_rows == 0:
            return schema.empty_table()
        ctes = []
        joins = []
        labels = []
        params: dict[str, object] = {}
        if any(_KEYS[k].named for k in keys):
            where, params = self._filters(spec, self._witness_sources(sources, table))
        for k in keys:
            key = _KEYS[k]
            if key.named:
                ctes.append(
                    f"""n_{k} AS (
                        SELECT k_{k}, string_agg(v, ' / ' ORDER BY v) AS v FROM (
                            SELECT DISTINCT {_encoded(k)} AS k_{k}, {key.value} AS v
                            FROM {_SCAN}
                            WHERE {where} AND {_encoded(k)} IN (SELECT k_{k} FROM wanted)
                        ) GROUP BY k_{k})"""
                )
                joins.append(f"LEFT JOIN n_{k} USING (k_{k})")
                labels.append(f'n_{k}.v AS "{k}"')
            elif key.label:
                labels.append(f'{key.label.format(c=f"k_{k}")} AS "{k}"')
            else:
                labels.append(f'k_{k} AS "{k}"')
        order = ", ".join(f'"{k}"' for k in keys)
        columns = ", ".join([*labels, *(f'"{c}"' for c in rest)])
        sql = (
            f"{'WITH ' + ', '.join(ctes) if ctes else ''} "
            f"SELECT {columns} "
            f"FROM wanted {' '.join(joins)} ORDER BY {order}"
        )
        return self._run(sql, params, {"wanted": table}).cast(schema)
