"""Insights benchmark: the full report for a member with 500,000 listens, and their story.

Run: ``.venv/bin/python bench/insights.py [--listens N]`` (or ``make bench``).
Target (issue 3): under 2 s on the 2-core reference machine. Measured two ways: the
library call (statistics + HTML) in a warm process, and the command line end to end
(``tunetrust insights --html``, a new process: interpreter start, imports, DuckDB).
Issue 18: the year's story (statistics, each month's top song, the year before) and
its shareable image, tall and square (SVG drawn, PNG rendered); target for the image:
under 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
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
from tunetrust.insights.share import share_image
from tunetrust.insights.stats import Period, member_insights
from tunetrust.insights.story import member_story


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
        start = time.perf_counter()
        stored = import_export(home, "bench", zpath).listens_total
        imported = time.perf_counter() - start

        timings, call_cpu = [], []
        for _ in range(3):
            start, used = time.perf_counter(), time.process_time()
            insights = member_insights(home, "bench", Period(), tz="Europe/Berlin")
            html = render_html(insights, member="bench")
            timings.append(time.perf_counter() - start)
            call_cpu.append(time.process_time() - used)
        told, tells = None, []
        for _ in range(3):
            start = time.perf_counter()
            told = member_story(home, "bench", tz="Europe/Berlin")  # the latest year
            tells.append(time.perf_counter() - start)
        assert told is not None and not told.empty
        drawn: dict[str, list[float]] = {"tall": [], "square": []}
        cpu: dict[str, list[float]] = {"tall": [], "square": []}  # on a shared machine, too
        for _ in range(5):
            for shape, times in drawn.items():
                start, used = time.perf_counter(), time.process_time()
                share_image(told, shape=shape)
                times.append(time.perf_counter() - start)
                cpu[shape].append(time.process_time() - used)
        home.close()
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    table = Table(title=f"Full insights report, {stored:,} listens, all time")
    table.add_column("measure")
    table.add_column("seconds", justify="right")
    table.add_row("library: statistics + HTML (best of 3)", f"{min(timings):.2f}")
    table.add_row("  CPU time of that call (all threads)", f"{min(call_cpu):.2f}")
    table.add_row("command line end to end (new process)", f"{cli:.2f}")
    table.add_row("  CPU time of that process (all threads)", f"{cli_cpu:.2f}")
    table.add_row("HTML size", f"{len(html) / 1024:.0f} KiB")
    table.add_row("(preparing: the import of the export)", f"{imported:.1f}")
    table.add_row("target", "< 2 s")
    table.add_row(f"library: the story of {told.period} (best of 3)", f"{min(tells):.2f}")
    for shape, times in drawn.items():
        table.add_row(
            f"image, {shape}: SVG + PNG (best of 5; worst; CPU best)",
            f"{min(times):.2f}; {max(times):.2f}; {min(cpu[shape]):.2f}",
        )
    table.add_row("image target", "< 1 s")
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))
    # wall time on a busy machine is not the code's: the load says how busy it was
    console.print(f"load average (1 min) before the command line: {load:.2f}")
    ok = cli < 2 and max(max(t) for t in drawn.values()) < 1
    console.print("[green]within target[/]" if ok else "[red]over target[/]")


if __name__ == "__main__":
    main()
