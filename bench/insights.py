"""Insights benchmark: the full report for a member with 500,000 listens.

Run: ``.venv/bin/python bench/insights.py [--listens N]`` (or ``make bench``).
Target (issue 3): under 2 s on the 2-core reference machine. Measured two ways: the
library call (statistics + HTML) in a warm process, and the command line end to end
(``tunetrust insights --html``, a new process: interpreter start, imports, DuckDB).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _machine import describe
from tunetrust import Settings, add_member, import_export, init_home
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.insights.report import render_html
from tunetrust.insights.stats import Period, member_insights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listens", type=int, default=500_000)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        console.print(f"preparing a member with {args.listens:,} listens …")
        # about 15 years of heavy listening (about 90 plays a day)
        zpath = root / "export.zip"
        write_zip(render(synthesize("extended-c", args.listens, 15, years=15), "extended-c"), zpath)
        home = init_home(Settings(home=root / "home"))
        add_member(home, "bench")
        stored = import_export(home, "bench", zpath).listens_total

        timings = []
        for _ in range(3):
            start = time.perf_counter()
            insights = member_insights(home, "bench", Period(), tz="Europe/Berlin")
            html = render_html(insights, member="bench")
            timings.append(time.perf_counter() - start)
        home.close()
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tunetrust",
                "--home",
                str(root / "home"),
                "insights",
                "--member",
                "bench",
                "--tz",
                "Europe/Berlin",
                "--html",
                str(root / "r.html"),
            ],
            check=True,
            capture_output=True,
        )
        cli = time.perf_counter() - start

    table = Table(title=f"Full insights report, {stored:,} listens, all time")
    table.add_column("measure")
    table.add_column("seconds", justify="right")
    table.add_row("library: statistics + HTML (best of 3)", f"{min(timings):.2f}")
    table.add_row("command line end to end (new process)", f"{cli:.2f}")
    table.add_row("HTML size", f"{len(html) / 1024:.0f} KiB")
    table.add_row("target", "< 2 s")
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))
    ok = cli < 2
    console.print("[green]within target[/]" if ok else "[red]over target[/]")


if __name__ == "__main__":
    main()
