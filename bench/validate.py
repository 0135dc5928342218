"""Validation benchmark: what the contribution checks add to a 500,000-listen import.

Run: ``.venv/bin/python bench/validate.py [--listens N]`` (or ``make bench``).
Target (issue 5): the checks add under 50 % to the import time. Another member with
100,000 listens is in the home first, so the copied-data check has real data to join.
The import is timed whole (checks included); the checks are then timed alone on the
same parsed data, and the overhead is checks ÷ (import − checks).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _machine import describe
from tunetrust import Settings, add_member, get_member, import_export, init_home
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.ingest.deidentify import deidentify
from tunetrust.ingest.pipeline import read_package
from tunetrust.ingest.quality import quality
from tunetrust.ingest.validate import copied_share, run_checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listens", type=int, default=500_000)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = init_home(Settings(home=root / "home"))
        other = root / "other.zip"
        write_zip(render(synthesize("extended-c", 100_000, 7), "extended-c"), other)
        add_member(home, "other")
        import_export(home, "other", other)
        path = root / "export.zip"
        write_zip(render(synthesize("extended-c", args.listens, 8, years=15), "extended-c"), path)
        add_member(home, "bench")

        start = time.perf_counter()
        summary = import_export(home, "bench", path)
        total = time.perf_counter() - start

        read = read_package(home, [path], None)
        import pyarrow as pa

        parsed = pa.concat_tables([p.table for _, p in read.parsed])
        events, _ = deidentify(parsed, keep_incognito=False, contribution="x")
        o = get_member(home, "other")
        others = [home.events.partition(o.pseudonym) / str(o.events_file)]
        me = get_member(home, "bench")
        mine = home.events.read(me.pseudonym, me.events_file)
        now = datetime.now(UTC)
        start = time.perf_counter()
        run_checks(
            read.infos, parsed, checks=home.settings.checks, now=now.replace(tzinfo=None), extra=[]
        )
        copied_share(events, others, home.settings.checks.copy_window_minutes)
        quality(mine, now)
        quality(mine, now)
        checks = time.perf_counter() - start
        home.close()

    table = Table(title=f"Contribution checks on {summary.listens_in_export:,} listens")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("import, end to end, checks included", f"{total:.2f} s")
    table.add_row("checks alone (all checks, copied-data join, quality ×2)", f"{checks:.2f} s")
    table.add_row(
        "overhead: checks ÷ import without checks", f"{checks / (total - checks) * 100:.0f} %"
    )
    table.add_row("verdict", summary.verdict)
    table.add_row("target", "< 50 %")
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))
    ok = checks / (total - checks) < 0.5
    console.print("[green]within target[/]" if ok else "[red]over target[/]")


if __name__ == "__main__":
    main()
