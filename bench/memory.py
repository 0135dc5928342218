"""Memory benchmark: peak resident memory and time of importing ever larger exports.

Run: ``make bench`` or ``.venv/bin/python bench/memory.py [--sizes 50,200,500]``.
Each size is a zip holding one extended-history file of that size (variant C: the
worst case the limits allow, where the service cuts its files at about 12 MB; ``--file-mb``
cuts them smaller), imported for a new member in a fresh process, which reports its own
largest resident set. The stated bound (docs/formats.md, "Memory"): reading
one file grows memory by at most its size plus a fixed 96 MiB; the table shows what a
whole import costs per MB of JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from _machine import describe

MB = 1_000_000

_CHILD = """
import json, sys, time
from pathlib import Path
from tunetrust import Settings, add_member, import_export, init_home
from tunetrust.errors import ExportError

home = init_home(Settings(home=Path(sys.argv[2])))
add_member(home, "bench")
def hwm():  # this process's peak resident set (ru_maxrss keeps the parent's over exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM:"))
base = hwm()
start = time.perf_counter()
try:
    summary = import_export(home, "bench", Path(sys.argv[1]))
    verdict, added = summary.verdict, summary.listens_added
except ExportError as exc:  # a rejected contribution still ran every step but storing
    verdict, added = type(exc).__name__, 0
took = time.perf_counter() - start
peak = hwm()
print(json.dumps({"base": base, "peak": peak, "seconds": took, "verdict": verdict,
                  "added": added}))
"""


def _rows(start: datetime, n: int, seed: int) -> bytes:
    """``n`` plausible variant-C plays, one after another, pretty-printed like the service."""
    rows = []
    t = start
    for i in range(n):
        k = (i * 7919 + seed) % 5000
        t += timedelta(seconds=200 + k % 97)
        rows.append(
            {
                "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "platform": ("android", "ios", "windows", "osx")[k % 4],
                "ms_played": 30_000 + (k * 37) % 170_000,
                "conn_country": ("DE", "FR", "NL", "SE")[k % 4],
                "ip_addr": "10.0.0.1",
                "master_metadata_track_name": f"Track {k}",
                "master_metadata_album_artist_name": f"Artist {k % 400}",
                "master_metadata_album_album_name": f"Album {k % 900}",
                "spotify_track_uri": f"spotify:track:{k:022d}",
                "episode_name": None,
                "episode_show_name": None,
                "spotify_episode_uri": None,
                "audiobook_title": None,
                "audiobook_uri": None,
                "audiobook_chapter_uri": None,
                "audiobook_chapter_title": None,
                "reason_start": ("trackdone", "clickrow", "fwdbtn")[k % 3],
                "reason_end": ("trackdone", "fwdbtn", "endplay")[k % 3],
                "shuffle": k % 2 == 0,
                "skipped": k % 5 == 0,
                "offline": False,
                "offline_timestamp": None,
                "incognito_mode": False,
            }
        )
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2)


def write_export(path: Path, json_bytes: int, file_bytes: int) -> tuple[int, int]:
    """A zip of variant-C files holding about ``json_bytes`` of JSON; (bytes, plays).

    Written in slices of rows, so this process stays small: a child's peak is its own.
    """
    slice_rows = 10_000
    per_row = len(_rows(datetime(2012, 1, 1, tzinfo=UTC), 100, 0)) / 100
    total = plays = 0
    start = datetime(2012, 1, 1, tzinfo=UTC)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        i = 0
        while total < json_bytes * 0.99:
            n = max(1, int(min(file_bytes, json_bytes - total) / per_row))
            name = f"Spotify Extended Streaming History/Streaming_History_Audio_{i}.json"
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(b"[\n")
                for first in range(0, n, slice_rows):
                    k = min(slice_rows, n - first)
                    body = _rows(start, k, i * 7 + first)[1:-1].strip()
                    start += timedelta(seconds=250 * k)
                    out.write((b",\n  " if first else b"  ") + body)
                    total += len(body) + 4
                out.write(b"\n]\n")
            plays += n
            i += 1
    return total, plays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,200,500", help="MB of JSON, comma-separated")
    parser.add_argument("--file-mb", type=int, default=0, help="cut files at this size (0: one)")
    args = parser.parse_args()
    console = Console()
    cut = f"files of {args.file_mb} MB" if args.file_mb else "one file"
    table = Table(title=f"Peak memory of an import against export size ({cut}, new process each)")
    for col in ("JSON", "plays", "zip", "time", "peak RSS", "import's growth", "growth / JSON"):
        table.add_column(col, justify="right")
    for mb in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            zpath = root / "export.zip"
            size, plays = write_export(zpath, mb * MB, args.file_mb * MB or mb * MB)
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(zpath), str(root / "home")],
                check=True,
                capture_output=True,
                text=True,
            )
            got = json.loads(done.stdout.strip().splitlines()[-1])
            growth = got["peak"] - got["base"]
            table.add_row(
                f"{size / MB:.0f} MB",
                f"{plays:,}",
                f"{zpath.stat().st_size / MB:.0f} MB",
                f"{got['seconds']:.1f} s",
                f"{got['peak'] / 2**20:.0f} MiB",
                f"{growth / 2**20:.0f} MiB",
                f"{growth / size:.2f}×",
            )
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))


if __name__ == "__main__":
    main()
