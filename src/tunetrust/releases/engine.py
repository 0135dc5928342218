"""Release engines: contribution bounding and aggregation where the data is.

An engine turns a spec and the included members' Parquet files into *bounded true
aggregates*, one row per partition, before any noise. Bounding works on per-(member,
partition) pre-aggregates, never per event:

1. filter listens (kind, period, countries, minimum play length, keys present);
2. per member and partition: n plays, clamped minutes, skips;
3. keep each member's ``max_partitions`` partitions of lowest md5(pseudonym|keys|salt)
   — a seeded random sample that any SQL engine computes identically;
4. per partition: listeners = members; plays = Σ min(n, C);
   minutes = Σ floor(min(n, C) × clamped minutes / n); skips = Σ floor(min(n, C) × skips / n).

So one member changes any partition by at most 1 listener, C plays, floor(C × M)
minutes and C skips, in at most P partitions — the sensitivities the noise uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from tunetrust.releases.spec import ReleaseSpec

_KEY_SQL = {
    "country": "country",
    "year": "strftime(ts, '%Y')",
    "quarter": "strftime(ts, '%Y') || '-Q' || CAST(quarter(ts) AS VARCHAR)",
    "month": "strftime(ts, '%Y-%m')",
    "week": "strftime(ts, '%G-W%V')",
    "weekday": "CAST(isodow(ts) AS VARCHAR)",
    "hour": "strftime(ts, '%H')",
    "platform": "platform",
    "artist": "artist_name",
    "track": "artist_name || ' — ' || track_name",
    "album": "artist_name || ' — ' || album_name",
    "show": "show_name",
}

AGGREGATE_COLUMNS = ("listeners", "plays", "minutes", "skips")


class Engine(Protocol):
    """Computes bounded true aggregates for a spec over the given member files."""

    name: str

    def aggregate(self, spec: ReleaseSpec, files: list[Path], salt: str) -> pa.Table:
        """Rows: the spec's group keys (strings), then listeners, plays, minutes, skips."""


class DuckDBEngine:
    """The embedded engine: DuckDB over the events Parquet, in process."""

    name = "duckdb"

    def aggregate(self, spec: ReleaseSpec, files: list[Path], salt: str) -> pa.Table:
        """Bounded true aggregates (see the module docstring for the bounding rules)."""
        keys = list(spec.group_by)
        if not files:
            return pa.table(
                {
                    **{k: pa.array([], pa.string()) for k in keys},
                    **{c: pa.array([], pa.int64()) for c in AGGREGATE_COLUMNS},
                }
            )
        select_keys = ", ".join(f"{_KEY_SQL[k]} AS k_{k}" for k in keys)
        key_cols = ", ".join(f"k_{k}" for k in keys)
        filters = ["ms_played >= $min_ms", "kind IN (SELECT unnest($kinds))"]
        filters += [f"{_KEY_SQL[k]} IS NOT NULL" for k in keys]
        params: dict[str, object] = {
            "files": [str(f) for f in files],
            "min_ms": spec.min_seconds * 1000,
            "kinds": list(spec.kinds),
            "clamp": float(spec.bounds.max_minutes_per_play),
            "C": spec.bounds.max_plays_per_partition,
            "P": spec.bounds.max_partitions,
            "salt": salt,
        }
        if spec.period_from:
            filters.append("ts >= CAST($from AS TIMESTAMPTZ)")
            params["from"] = str(spec.period_from)
        if spec.period_to:
            filters.append("ts < CAST($to AS TIMESTAMPTZ) + INTERVAL 1 DAY")
            params["to"] = str(spec.period_to)
        if spec.countries:
            filters.append("country IN (SELECT unnest($countries))")
            params["countries"] = list(spec.countries)
        rank_key = " || '|' || ".join([*(f"k_{k}" for k in keys), "$salt"])
        sql = f"""
            WITH e AS (
                SELECT pseudonym, {select_keys}, ms_played,
                       COALESCE(skipped, reason_end IN ('fwdbtn', 'backbtn'), FALSE) AS skip
                FROM read_parquet($files, hive_partitioning = true)
                WHERE {" AND ".join(filters)}
            ), pm AS (
                SELECT pseudonym, {key_cols}, COUNT(*) AS n,
                       SUM(LEAST(ms_played / 60000.0, $clamp)) AS mins,
                       SUM(CAST(skip AS INTEGER)) AS skips
                FROM e GROUP BY ALL
            ), ranked AS (
                SELECT *, row_number() OVER (
                    PARTITION BY pseudonym ORDER BY md5(pseudonym || '|' || {rank_key})) AS r
                FROM pm
            )
            SELECT {key_cols},
                   COUNT(*) AS listeners,
                   SUM(LEAST(n, $C)) AS plays,
                   SUM(CAST(FLOOR(LEAST(n, $C) * mins / n) AS BIGINT)) AS minutes,
                   SUM(CAST(FLOOR(LEAST(n, $C) * skips / n) AS BIGINT)) AS skips
            FROM ranked WHERE r <= $P
            GROUP BY ALL ORDER BY ALL
        """
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            table = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.close()
        renamed = table.rename_columns([*keys, *AGGREGATE_COLUMNS])
        return renamed.cast(
            pa.schema(
                [
                    *(pa.field(k, pa.string()) for k in keys),
                    *(pa.field(c, pa.int64()) for c in AGGREGATE_COLUMNS),
                ]
            )
        )
