"""Import benchmark: a synthetic extended export (variant C) end to end, against orjson alone.

Run: ``make bench`` or ``.venv/bin/python bench/ingest.py [--listens N]``.
Target (issue 2): 150,000 listens in under 5 s end to end and under 1 GiB peak memory
on the 2-core reference machine. The figure that matters next to it is the ratio to
``orjson.loads`` on the same files: how much the import costs beyond parsing JSON.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from _machine import describe
from tunetrust.formats.spotify.synth import write_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listens", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        zpath = root / "export.zip"
        result = write_export("extended-c", args.listens, args.seed, zpath)

        zip_mb = zpath.stat().st_size / 1e6
        # the floor: orjson.loads alone on the same files (unzipped beforehand, not timed)
        with zipfile.ZipFile(zpath) as zf:
            blobs = [zf.read(n) for n in zf.namelist() if n.endswith(".json")]
        json_mb = sum(map(len, blobs)) / 1e6
        start = time.perf_counter()
        for blob in blobs:
            orjson.loads(blob)
        floor = time.perf_counter() - start
        del blobs

        cli = [sys.executable, "-m", "tunetrust", "--home", str(root / "home")]
        subprocess.run([*cli, "init"], check=True, capture_output=True)
        subprocess.run([*cli, "member", "add", "bench"], check=True, capture_output=True)
        start = time.perf_counter()
        done = subprocess.run(
            [*cli, "import", str(zpath), "--member", "bench", "--json"],
            check=True,
            capture_output=True,
        )
        total = time.perf_counter() - start
        # largest resident set of any child so far; the import is by far the largest
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = orjson.loads(done.stdout)

    machine = describe()
    table = Table(title=f"Import of {result.listens:,} listens (variant C)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("export size (zip / JSON)", f"{zip_mb:.1f} MB / {json_mb:.0f} MB")
    table.add_row("orjson.loads alone", f"{floor:.2f} s")
    table.add_row("tunetrust import, end to end (new process)", f"{total:.2f} s")
    table.add_row("ratio import / orjson.loads", f"{total / floor:.1f}×")
    table.add_row("peak memory of the import process", f"{peak_kib / 1024:.0f} MiB")
    table.add_row("listens added", f"{summary['listens_added']:,}")
    table.add_row("target", "< 5 s and < 1024 MiB")
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in machine.items()))
    ok = total < 5 and peak_kib / 1024 < 1024
    console.print("[green]within target[/]" if ok else "[red]over target[/]")


if __name__ == "__main__":
    main()
