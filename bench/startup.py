"""Startup benchmark: `member list` and `budget show` as new processes, by cooperative size.

Run: ``.venv/bin/python bench/startup.py [--members 10 1000 10000] [--repeat 7]``.
Target (issue 12): flat from 10 to 10,000 members, within 1.5× of the bare
``python -c "import tunetrust"``, and the command line's own import under 0.5 s.

Each home is made by ``init_home``, and every member joins through the library
(``add_member``, with its audit entry; about 11 ms each, so the 10,000-member home
takes a couple of minutes to build). Since 0.3 a member's name is sealed under their
own data key, so rows cannot simply be copied. Every command is timed as a new process
(interpreter start included), after one untimed warm-up run; the figure is the median
of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _machine import describe

PYTHON = sys.executable
# the library as `import tunetrust` loaded it before issue 12 made the re-exports lazy
EAGER = "import tunetrust; from tunetrust import *"


def build_home(root: Path, members: int) -> Path:
    """A home with ``members`` members, one of them ``bench``, each added through the
    library (names are sealed under each member's own data key, so rows cannot be
    copied); about 11 ms a member."""
    from tunetrust import Settings, add_member, init_home

    settings = Settings(home=root / f"home-{members}")
    home = init_home(settings)
    try:
        add_member(home, "bench")
        for i in range(members - 1):
            add_member(home, f"member {i:05d}")
    finally:
        home.close()
    return settings.home


def timed(argv: list[str], repeat: int) -> float:
    """Median wall time of ``argv`` as a new process, after one untimed warm-up run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    subprocess.run(argv, check=True, capture_output=True, env=env)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    console = Console()

    floor = {
        "python -c pass (the interpreter alone)": timed([PYTHON, "-c", "pass"], args.repeat),
        'python -c "import tunetrust"': timed([PYTHON, "-c", "import tunetrust"], args.repeat),
        "python -c 'import tunetrust.cli' (the CLI's import)": timed(
            [PYTHON, "-c", "import tunetrust.cli"], args.repeat
        ),
        "python -c 'from tunetrust import *' (every re-export)": timed(
            [PYTHON, "-c", EAGER], args.repeat
        ),
    }
    bare = floor['python -c "import tunetrust"']
    cli_import = floor["python -c 'import tunetrust.cli' (the CLI's import)"]

    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.members:
            start = time.perf_counter()
            home = build_home(Path(tmp), n)
            console.print(f"built a home of {n:,} members in {time.perf_counter() - start:.1f} s")
            cli = [PYTHON, "-m", "tunetrust", "--home", str(home)]
            results[n] = {
                "member list": timed([*cli, "member", "list"], args.repeat),
                "budget show": timed([*cli, "budget", "show", "bench"], args.repeat),
            }

    machine = describe()
    table = Table(title=f"Startup, new process, median of {args.repeat}")
    table.add_column("command")
    table.add_column("members", justify="right")
    table.add_column("time", justify="right")
    table.add_column("÷ import tunetrust", justify="right")
    for label, value in floor.items():
        table.add_row(label, "", f"{value:.3f} s", f"{value / bare:.1f}×")
    for n, timings in results.items():
        for command, value in timings.items():
            table.add_row(
                f"tunetrust {command}", f"{n:,}", f"{value:.3f} s", f"{value / bare:.1f}×"
            )
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in machine.items()))

    smallest, largest = results[min(results)], results[max(results)]
    flat = all(largest[c] <= 1.2 * smallest[c] for c in smallest)
    near = all(v <= 1.5 * bare for t in results.values() for v in t.values())
    console.print(
        f"flat from {min(results):,} to {max(results):,} members (within 20 %): "
        + ("[green]yes[/]" if flat else "[red]no[/]")
    )
    console.print("within 1.5× of import tunetrust: " + ("[green]yes[/]" if near else "[red]no[/]"))
    console.print(
        f"CLI import {cli_import:.3f} s under 0.5 s: "
        + ("[green]yes[/]" if cli_import < 0.5 else "[red]no[/]")
    )


if __name__ == "__main__":
    main()
