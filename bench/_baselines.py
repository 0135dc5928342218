"""Baselines for bench/release.py, run in their own virtual environments.

    python _baselines.py opendp FILE.parquet ...      (a venv with opendp[polars]==0.16.*)
    python _baselines.py pipelinedp FILE.parquet ...  (a venv with pipeline-dp)

Each computes the same release as TuneTrust's benchmark — plays and minutes per
(country, month, track), user-level DP, ε = 1, δ = 1e-6, at most 50 partitions and 5
plays per partition per member, minutes clamped to 10, keys selected privately — and
prints the seconds it took on its last line. This file imports nothing from TuneTrust.
"""

from __future__ import annotations

import sys
import time


def opendp_polars(files: list[str]) -> float:
    import opendp.prelude as dp
    import polars as pl

    dp.enable_features("contrib")
    start = time.perf_counter()
    lf = (
        pl.scan_parquet(files)
        .filter(pl.col("ms_played") >= 30_000)
        .select(
            pl.col("pseudonym"),
            pl.col("country"),
            pl.col("ts").dt.strftime("%Y-%m").alias("month"),
            (pl.col("artist_name") + " — " + pl.col("track_name")).alias("track"),
            (pl.col("ms_played") / 60_000).alias("minutes"),
        )
    )
    keys = ["country", "month", "track"]
    context = dp.Context.compositor(
        data=lf,
        privacy_unit=dp.unit_of(contributions=1, identifier=pl.col("pseudonym")),
        privacy_loss=dp.loss_of(epsilon=1.0, delta=1e-6),
        split_evenly_over=1,
        # a public bound on rows per group is required; this is the margin whose ε
        # accounting issue 2945 questions: used for timing only
        margins=[dp.polars.Margin(by=keys, max_length=10_000_000, max_groups=10_000_000)],
    )
    query = (
        context.query()
        .truncate_per_group(5, by=keys)
        .truncate_num_groups(50, by=keys, keep="first")
        .group_by(keys)
        .agg(dp.len(), pl.col("minutes").fill_null(0).dp.sum((0.0, 10.0)))
    )
    query.release().collect()
    return time.perf_counter() - start


def pipelinedp(files: list[str]) -> float:
    import pipeline_dp
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rows = []
    for f in files:
        t = pq.read_table(f)
        t = t.filter(pc.greater_equal(t["ms_played"], 30_000))
        months = pc.strftime(t["ts"], format="%Y-%m").to_pylist()
        tracks = pc.binary_join_element_wise(t["artist_name"], t["track_name"], " — ").to_pylist()
        rows += list(
            zip(
                t["country"].to_pylist(),
                months,
                tracks,
                t["pseudonym"].to_pylist(),
                (v / 60_000 for v in t["ms_played"].to_pylist()),
                strict=False,
            )
        )
    accountant = pipeline_dp.NaiveBudgetAccountant(total_epsilon=1.0, total_delta=1e-6)
    engine = pipeline_dp.DPEngine(accountant, pipeline_dp.LocalBackend())
    params = pipeline_dp.AggregateParams(
        noise_kind=pipeline_dp.NoiseKind.GAUSSIAN,
        metrics=[pipeline_dp.Metrics.COUNT, pipeline_dp.Metrics.SUM],
        max_partitions_contributed=50,
        max_contributions_per_partition=5,
        min_value=0.0,
        max_value=10.0,
    )
    extractors = pipeline_dp.DataExtractors(
        partition_extractor=lambda r: (r[0], r[1], r[2]),
        privacy_id_extractor=lambda r: r[3],
        value_extractor=lambda r: r[4],
    )
    result = engine.aggregate(rows, params, extractors)
    accountant.compute_budgets()
    list(result)
    return time.perf_counter() - start


if __name__ == "__main__":
    which, paths = sys.argv[1], sys.argv[2:]
    seconds = opendp_polars(paths) if which == "opendp" else pipelinedp(paths)
    print(f"{seconds:.3f}")
