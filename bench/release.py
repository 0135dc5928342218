"""Release benchmark: 5,000,000 listens, 50,000 members, Zipf tracks, side by side.

Run: ``.venv/bin/python bench/release.py [--listens N] [--members M]``.
Measures, on the same synthetic Parquet files:

* the floor: a plain, non-private DuckDB group-by of plays and minutes per
  (country, month, track);
* TuneTrust: the same release with user-level DP — contribution bounding in DuckDB,
  OpenDP calibration, private key selection and noise (the spec of issue 6), then
  again with ``min_listeners: 1`` to show what pre-thresholding saves;
* optionally OpenDP's Polars front end and PipelineDP's local backend, each in its own
  virtual environment (their pins conflict with ours): pass ``--opendp-python`` /
  ``--pipelinedp-python`` with the interpreter to use; see bench/_baselines.py.

The data is written as 32 Parquet files with a ``pseudonym`` column (a compacted layout),
and again the way the events store keeps it — one file per member. TuneTrust always
reads the latter: the engine takes (member id, URI) pairs (``engines/base.Source``), one
member per file. ``--layout`` chooses what the floor reads (``compacted``, the default,
or ``per-member``); the baselines read the compacted files and are not run with
``--layout per-member``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from _machine import describe
from tunetrust.releases.engines.base import Source
from tunetrust.releases.engines.duckdb import DuckDBEngine
from tunetrust.releases.noise import plan_noise, release
from tunetrust.releases.spec import parse_spec

SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [country, month, track]
metrics: [plays, minutes]
bounds: {max_partitions: 50, max_plays_per_partition: 5, max_minutes_per_play: 10}
privacy: {epsilon: 1.0, delta: 1.0e-6}
keys: private
"""


def synthesize(folder: Path, listens: int, members: int, seed: int = 5) -> list[Path]:
    """Listens of many members: Zipf tracks, a home country each, two years of months."""
    rng = np.random.default_rng(seed)
    member = np.sort(rng.integers(0, members, listens))
    n_tracks = 200_000
    weights = 1.0 / np.arange(1, n_tracks + 1) ** 1.1
    track = rng.choice(n_tracks, size=listens, p=weights / weights.sum())
    countries = np.array(["SE", "DE", "GB", "US", "FR", "NL", "BR", "JP", "ES", "CA"])
    home = rng.integers(0, len(countries), members)
    start = np.datetime64("2023-01-01T00:00:00", "ms").astype(np.int64)
    ts = start + rng.integers(0, 730 * 86_400_000, listens)
    ms = rng.integers(5_000, 400_000, listens)
    pseudonyms = np.array([f"{i:032x}" for i in range(members)])
    files = []
    for part, idx in enumerate(np.array_split(np.arange(listens), 32)):
        t = pa.table(
            {
                "pseudonym": pseudonyms[member[idx]],
                "ts": pa.array(ts[idx], pa.timestamp("ms", tz="UTC")),
                "ms_played": ms[idx],
                "kind": pa.array(["music"] * len(idx)),
                "artist_name": pa.array([f"Artist {t % 20_000}" for t in track[idx]]),
                "track_name": pa.array([f"Track {t}" for t in track[idx]]),
                "country": countries[home[member[idx]]],
                "skipped": pa.array(rng.random(len(idx)) < 0.2),
                "reason_end": pa.array(["trackdone"] * len(idx)),
            }
        )
        path = folder / f"part-{part:02d}.parquet"
        pq.write_table(t, path)
        files.append(path)
    return files


def per_member(folder: Path, files: list[Path]) -> list[Path]:
    """The same listens, one Parquet file per member under pseudonym=<id>/, as stored."""
    table = pq.read_table(files).sort_by("pseudonym")
    pseudonyms = table["pseudonym"].to_numpy(zero_copy_only=False)
    cuts = (np.flatnonzero(pseudonyms[1:] != pseudonyms[:-1]) + 1).tolist()
    body = table.drop_columns(["pseudonym"])
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(pseudonyms)], strict=True):
        path = folder / "events" / f"pseudonym={pseudonyms[a]}" / "events.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(body.slice(a, b - a), path)
        out.append(path)
    return out


def plain_groupby(files: list[Path]) -> tuple[float, int]:
    con = duckdb.connect()
    start = time.perf_counter()
    rows = (
        con.sql(
            "SELECT country, strftime(ts, '%Y-%m') AS month, artist_name || ' — ' || track_name "
            "AS track, COUNT(*) AS plays, SUM(ms_played) / 60000 AS minutes "
            "FROM read_parquet($files) WHERE ms_played >= 30000 GROUP BY ALL",
            params={"files": [str(f) for f in files]},
        )
        .to_arrow_table()
        .num_rows
    )
    return time.perf_counter() - start, rows


def tunetrust(
    sources: list[Source], spec_text: str = SPEC
) -> tuple[float, dict[str, float], int, int]:
    spec = parse_spec(spec_text)
    engine = DuckDBEngine()
    timings = {}
    start = time.perf_counter()
    aggregates = engine.aggregate(spec, sources, "bench-salt")
    timings["bounding + aggregation (DuckDB)"] = time.perf_counter() - start
    t = time.perf_counter()
    plan = plan_noise(spec)
    timings["calibration (OpenDP maps)"] = time.perf_counter() - t
    t = time.perf_counter()
    released = release(plan, spec, aggregates)
    timings["selection + noise (OpenDP)"] = time.perf_counter() - t
    t = time.perf_counter()
    labelled = engine.label(spec, sources, released)
    timings["labels of released keys (DuckDB)"] = time.perf_counter() - t
    return time.perf_counter() - start, timings, aggregates.num_rows, labelled.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listens", type=int, default=5_000_000)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--opendp-python", help="python of a venv with opendp[polars]")
    parser.add_argument("--pipelinedp-python", help="python of a venv with pipeline-dp")
    parser.add_argument("--layout", choices=("compacted", "per-member"), default="compacted")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        console.print(f"writing {args.listens:,} listens of {args.members:,} members …")
        files = synthesize(folder, args.listens, args.members)
        console.print("rewriting as one file per member, as the events store keeps them …")
        stored = per_member(folder, files)
        # the bench wrote these folders itself; the engine is told each file's member
        sources = [Source(p.parent.name.removeprefix("pseudonym="), str(p)) for p in stored]
        if args.layout == "per-member":
            files = stored
        floor, floor_rows = plain_groupby(files)
        ours, parts, candidates, released = tunetrust(sources)
        # the same release without pre-thresholding: noise drawn for every candidate key
        unshifted, _, _, unshifted_released = tunetrust(sources, SPEC + "min_listeners: 1\n")
        others: dict[str, float | str] = {}
        for label, python, name in (
            ("OpenDP Polars front end", args.opendp_python, "opendp"),
            ("PipelineDP local backend", args.pipelinedp_python, "pipelinedp"),
        ):
            if not python or args.layout == "per-member":
                others[label] = "not run (no environment given, or the per-member layout)"
                continue
            done = subprocess.run(
                [python, str(Path(__file__).with_name("_baselines.py")), name, *map(str, files)],
                capture_output=True,
                text=True,
                check=False,
            )
            others[label] = (
                float(done.stdout.strip().splitlines()[-1])
                if done.returncode == 0
                else f"failed: {done.stderr.strip().splitlines()[-1][:80]}"
            )

    table = Table(
        title=f"Release of plays and minutes per (country, month, track): "
        f"{args.listens:,} listens, {args.members:,} members, {args.layout} layout"
    )
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    table.add_row("plain DuckDB group-by (no privacy)", f"{floor:.2f}", f"{floor_rows:,} groups")
    table.add_row(
        "TuneTrust, user-level DP",
        f"{ours:.2f}",
        f"{candidates:,} bounded partitions, {released:,} released; {ours / floor:.1f}× the floor",
    )
    for step, secs in parts.items():
        table.add_row(f"  {step}", f"{secs:.2f}", "")
    table.add_row(
        "TuneTrust, min_listeners: 1 (no pre-threshold)",
        f"{unshifted:.2f}",
        f"{unshifted_released:,} released; {unshifted / floor:.1f}× the floor",
    )
    for label, value in others.items():
        if isinstance(value, float):
            table.add_row(label, f"{value:.2f}", f"TuneTrust is {value / ours:.1f}× faster")
        else:
            table.add_row(label, "—", value)
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))
    console.print(f"target: within 4× of the floor — {'met' if ours <= 4 * floor else 'not met'}")
    polars = others["OpenDP Polars front end"]
    if isinstance(polars, float):
        met = "met" if polars >= 5 * ours else "not met"
        console.print(f"target: at least 5× faster than OpenDP's Polars front end — {met}")


if __name__ == "__main__":
    sys.exit(main())
