"""Validation benchmark: what the contribution checks add to a 500,000-listen import in a
cooperative of 10,000 members, the copy index included.

Run: ``.venv/bin/python bench/validate.py [--listens N] [--members M]`` (or ``make bench``).
Target (issue 17): the checks add under 50 % to the import, and the export is accepted.

The home holds ``--members`` other members before the import, each as a member of
10,000 listens would be in the copy index (ingest/fingerprint.py), built so:

- 32 of them (fewer when ``--members`` is smaller) import a real synthetic export of
  10,000 listens each (variant C, seeds 100 onwards) through ``import_export``: their
  rows are exactly what an import stores, and they have events files a check can read.
  Synthetic people play music of one shared world (formats/spotify/synth.py), so these
  are real neighbours of the measured export: the lookups find its tracks in theirs.
- The others are added with ``add_member`` and given rows in bulk (one transaction,
  executemany): as many of each kind as one of the real members has (taken in turn,
  about 1,100 sequences, 1,100 plays and 250 tracks). Sequence and play hashes are
  random 64-bit values that pass the sampling rule (a multiple of ``SAMPLE[kind]``): two
  people's sequences and exact plays rarely meet, and a copy is not what is measured.
  Track hashes are drawn from the real members' sampled tracks, each as often as the
  real members hold it (popular music is everyone's): at 10,000 members the popular
  tracks are held by thousands, and the export's track lookup returns about a million
  (hash, member) rows, as a cooperative whose members play the same music would.
  (They hold no music of their own, so the typical member's corroborated share is
  near 1 and the export's corroboration part lower than a real cooperative would give;
  the time does not depend on it.)
  These members have no events file (so the import has nothing of theirs to refresh or
  read); their ``fingerprinted`` names the rows as synthetic (not NULL: they are in the
  index, and the typical member for corroboration is drawn from such members). The
  rows go in with SQLite's own executemany (the bench's home is the default SQLite
  one), its page cache raised for that one transaction (the file is the same; only the
  build is faster); the home is then closed and opened again, so the import starts on
  fresh connections.

The import (a new member, the 500,000-listen export, seed 8, 15 years) is timed whole,
and the checks' calls inside it are timed by wrapping what the pipeline calls, in wall
time and in CPU time (the process's threads; less moved by other work on the machine).
The typical member's corroborated share is kept before it, as the import before this
one would have left it (it is computed again once a day or when the members in the
index move by a hundredth: that computation is timed apart). The
checks are then timed again alone, as before issue 17, on the same data: the file and
pattern checks, the export's fingerprint, the refresh of stale members, the assessment
(index lookups, copies, split history, the typical member's corroborated share), the
fingerprints of the member's listens before and after and their corroboration (track
lookups), quality before and after, and the store of the merged listens' rows (on a
member without rows, in a transaction that is rolled back). The overhead is checks ÷
(import − checks), every way; the target is judged on the two measured in one go (inside
the import, wall and CPU time); the parts alone are a cross-check, set against the
import's total from another moment (on a loaded machine they move most).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, update

from _machine import describe
from tunetrust import Settings, add_member, get_member, import_export, init_home, open_home
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.ingest import fingerprint as fp
from tunetrust.ingest import pipeline
from tunetrust.ingest.deidentify import deidentify
from tunetrust.ingest.pipeline import ReadExport, read_package
from tunetrust.ingest.provenance import assess, corroboration, typical_corroboration
from tunetrust.ingest.quality import quality
from tunetrust.ingest.validate import ACCEPTED, run_checks
from tunetrust.store.home import Home
from tunetrust.store.models import FINGERPRINT_KINDS, Fingerprint, Member

REAL = 32  # members who import a real synthetic export
REAL_LISTENS = 10_000
BATCH = 100  # members' rows per executemany
SYNTHETIC = "synthetic rows (bench/validate.py)"  # their ``fingerprinted``


def _hwm_reset() -> None:
    """Start this process's peak resident set (VmHWM) again from its current size."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _vm(field: str) -> int:
    """A ``/proc/self/status`` memory line (VmHWM, VmRSS) in bytes."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))


def _read(home: Home, path: Path, keep_incognito: bool) -> tuple[ReadExport, pa.Table, pa.Table]:
    """The export as the import reads it: files, parsed rows, de-identified rows."""
    read = read_package(home, [path], None)
    parsed = pa.concat_tables([p.table for _, p in read.parsed])
    events, _ = deidentify(parsed, keep_incognito=keep_incognito, contribution="bench")
    return read, parsed, events


def _real_members(home: Home, root: Path, n: int) -> list[int]:
    """``n`` members who import a real 10,000-listen export each; their ids."""
    ids = []
    for i in range(n):
        path = root / f"real-{i}.zip"
        write_zip(render(synthesize("extended-c", REAL_LISTENS, 100 + i), "extended-c"), path)
        m = add_member(home, f"real-{i:05d}")
        import_export(home, f"real-{i:05d}", path)
        path.unlink()
        ids.append(m.id)
    return ids


def _index(home: Home, real: list[int], others: list[int]) -> None:
    """Rows for ``others``, shaped as the real members' (see the module docstring)."""
    rng = np.random.default_rng(17)
    with home.sessions() as s:
        counts: dict[int, dict[int, int]] = {}
        for m, kind, n in s.execute(
            select(Fingerprint.member_id, Fingerprint.kind, func.count())
            .where(Fingerprint.member_id.in_(real))
            .group_by(Fingerprint.member_id, Fingerprint.kind)
        ):
            counts.setdefault(m, {})[kind] = n
        real_tracks = s.scalars(
            select(Fingerprint.hash).where(
                Fingerprint.kind == fp.TRACK, Fingerprint.member_id.in_(real)
            )
        ).all()
    # a track as often as the real members play it: popular music is everyone's
    pool, held = np.unique(np.array(real_tracks, dtype=np.int64), return_counts=True)
    weights = held / held.sum()
    shapes = [counts[m] for m in real]
    insert_rows = (
        f"INSERT INTO {Fingerprint.__tablename__} (kind, hash, member_id) VALUES (?, ?, ?)"
    )
    with home.transaction() as s:
        conn = s.connection()
        conn.exec_driver_sql("PRAGMA cache_size=-1048576")  # 1 GiB for this build only
        for b in range(0, len(others), BATCH):
            kinds, hashes, ids = [], [], []
            for j, m in enumerate(others[b : b + BATCH], start=b):
                shape = shapes[j % len(shapes)]
                for kind in (fp.SEQUENCE, fp.PLAY, fp.TRACK):
                    n = shape.get(kind, 0)
                    if kind == fp.TRACK:
                        n = min(n, len(pool))
                        h = rng.choice(pool, n, replace=False, p=weights)
                    else:
                        step = fp.SAMPLE[kind]
                        drawn = rng.integers(0, 2**64 // step, n, dtype=np.uint64)
                        h = np.unique(drawn * np.uint64(step)).view(np.int64)
                    kinds.append(np.full(len(h), kind))
                    hashes.append(h)
                    ids.append(np.full(len(h), m))
            rows = zip(*(np.concatenate(c).tolist() for c in (kinds, hashes, ids)), strict=True)
            conn.exec_driver_sql(insert_rows, list(rows))
        conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default
        # indexed, as a member whose rows were stored is (the typical member is drawn
        # from these); no events file, so nothing is stale
        s.execute(update(Member).where(Member.id.in_(others)).values(fingerprinted=SYNTHETIC))


# the checks' parts, named alike in both timings
RUN_CHECKS = "file and pattern checks (run_checks)"
PRINT_EXPORT = "fingerprint of the export"
STALE = "stale members refreshed"
ASSESS = "assess: index lookups, copies, split, typical member"
PRINT_MEMBER = "fingerprints of the member's listens, before and after"
CORROBORATION = "corroboration before and after (track lookups)"
QUALITY = "quality before and after"
STORE = "store of the merged listens' rows"
PARTS = (RUN_CHECKS, PRINT_EXPORT, STALE, ASSESS, PRINT_MEMBER, CORROBORATION, QUALITY, STORE)


@contextmanager
def _inside(spent: dict[str, float], cpu: dict[str, float]) -> Iterator[None]:
    """Time the checks' calls inside the import, by wrapping what the pipeline calls (a
    call renamed there fails here, loudly). No member is stale in this home, so
    refresh_stale's own calls to fingerprint and store are not counted twice. ``cpu`` gets
    the same in CPU seconds (all of the process's threads), which other work on the
    machine moves less than it moves wall time."""
    calls = [
        (pipeline, "run_checks", [RUN_CHECKS]),
        (fp, "fingerprint", [PRINT_EXPORT, PRINT_MEMBER]),  # the export's first
        (fp, "refresh_stale", [STALE]),
        (pipeline, "assess", [ASSESS]),
        (pipeline, "corroboration", [CORROBORATION]),
        (pipeline, "quality", [QUALITY]),
        (fp, "store", [STORE]),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in calls]

    def timed(call: Callable[..., Any], labels: list[str]) -> Callable[..., Any]:
        made = [0]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            label = labels[min(made[0], len(labels) - 1)]
            made[0] += 1
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
                cpu[label] = cpu.get(label, 0.0) + time.process_time() - start_cpu

        return wrapper

    for (module, name, labels), (_, _, call) in zip(calls, originals, strict=True):
        setattr(module, name, timed(call, labels))
    try:
        yield
    finally:
        for module, name, call in originals:
            setattr(module, name, call)


def _alone(home: Home, path: Path, now: datetime) -> tuple[dict[str, float], dict[str, float]]:
    """The checks' parts, timed alone on the data the import had; and, timed again
    separately, what the assessment spends in the index."""
    me = get_member(home, "bench")
    scratch = add_member(home, "scratch")  # no rows: the store inserts as on a first import
    read, parsed, events = _read(home, path, me.keep_incognito)
    stored = home.events.read(me.pseudonym, me.events_file)
    checks = home.settings.checks
    parts: dict[str, float] = {}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = call()
        parts[name] = time.perf_counter() - start
        return result

    kw = {"checks": checks, "now": now.replace(tzinfo=None), "skipped": read.unknown}
    timed(RUN_CHECKS, lambda: run_checks(read.infos, parsed, extra=[], facts=read.facts, **kw))
    key = fp.key_of(home)
    mine = timed(PRINT_EXPORT, lambda: fp.fingerprint(key, events))
    with home.sessions() as s:
        row = s.get(Member, me.id)
        assert row is not None
        timed(STALE, lambda: fp.refresh_stale(home, s, key, except_id=me.id))
        found = timed(ASSESS, lambda: assess(home, s, row, events, mine, checks, now=now))
    empty = stored.slice(0, 0)  # a first import: the member had no listens before
    # as the import: a first import that adds every row reuses the export's fingerprints
    whole = stored.num_rows == events.num_rows
    before, after = timed(
        PRINT_MEMBER,
        lambda: (fp.fingerprint(key, empty), mine if whole else fp.fingerprint(key, stored)),
    )
    with home.sessions() as s:
        corr = timed(
            CORROBORATION,
            lambda: [
                corroboration(
                    s, p, member_id=me.id, typical=found.typical, known=found.known_tracks
                )
                for p in (before, after)
            ],
        )
    timed(QUALITY, lambda: (quality(empty, now, corr[0]), quality(stored, now, corr[1])))
    with home.sessions() as s:
        s.begin()
        row = s.get(Member, scratch.id)
        assert row is not None

        def store() -> None:
            fp.store(s, row, after, "bench")
            s.flush()

        timed(STORE, store)
        s.rollback()

    index: dict[str, float] = {}
    with home.sessions() as s:
        for kind, name in FINGERPRINT_KINDS.items():
            start = time.perf_counter()
            fp.lookup(s, mine, member_id=me.id, kinds=(kind,))
            index[f"lookup of {len(mine.hashes[kind]):,} {name} hashes"] = (
                time.perf_counter() - start
            )
        start = time.perf_counter()
        typical_corroboration(s, except_id=me.id, checks=checks, now=now)
        index["the typical member's corroborated share, as kept"] = time.perf_counter() - start
        start = time.perf_counter()  # as each day, or each hundredth more members, does
        typical_corroboration(s, except_id=me.id, checks=checks, now=now + timedelta(days=2))
        index["the same computed again (daily)"] = time.perf_counter() - start
        s.rollback()
    return parts, index


def _build(built: Path, args: argparse.Namespace, home_rows: dict[str, str]) -> None:
    """The home before the import, and the export, in ``built`` (kept with ``--keep``)."""
    if built.exists():
        shutil.rmtree(built)
    built.mkdir(parents=True)
    home = init_home(Settings(home=built / "home"))
    write_zip(
        render(synthesize("extended-c", args.listens, 8, years=15), "extended-c"),
        built / "export.zip",
    )
    start = time.perf_counter()
    real = _real_members(home, built, min(REAL, args.members))
    home_rows["real members imported"] = f"{len(real)} in {time.perf_counter() - start:.1f} s"
    start = time.perf_counter()
    others = [add_member(home, f"member-{i:05d}").id for i in range(len(real), args.members)]
    home_rows["other members added (add_member)"] = (
        f"{len(others):,} in {time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    _index(home, real, others)
    home_rows["their index rows inserted"] = f"{time.perf_counter() - start:.1f} s"
    home.close()
    (built / "ready").write_text(_shape(args))


def _shape(args: argparse.Namespace) -> str:
    return f"{args.listens} listens, {args.members} members\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listens", type=int, default=500_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the home and export in DIR once and reuse them on later runs "
        "(each run imports into a copy; rebuilt when --listens or --members differ)",
    )
    args = parser.parse_args()
    console = Console()
    home_rows: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built = Path(args.keep) if args.keep else root / "built"
        ready = built / "ready"
        if not ready.exists() or ready.read_text() != _shape(args):
            _build(built, args, home_rows)
        else:
            home_rows["home"] = f"reused from {built} (--keep)"
        shutil.copytree(built / "home", root / "home")  # the import changes its copy only
        path = built / "export.zip"
        settings = Settings(home=root / "home")
        home = open_home(settings)
        add_member(home, "bench")
        with home.transaction() as s:  # kept, as the import before this one left it
            me = get_member(home, "bench")
            typical_corroboration(s, except_id=me.id, checks=settings.checks, now=datetime.now(UTC))
        _hwm_reset()
        rss_before = _vm("VmRSS")
        inside: dict[str, float] = {}
        inside_cpu: dict[str, float] = {}
        with _inside(inside, inside_cpu):
            start, start_cpu = time.perf_counter(), time.process_time()
            summary = import_export(home, "bench", path)
            total, total_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        peak = _vm("VmHWM")
        alone, index = _alone(home, path, datetime.now(UTC))
        with home.sessions() as s:
            rows = s.scalar(select(func.count()).select_from(Fingerprint)) or 0
            members = s.scalar(select(func.count()).select_from(Member)) or 0
        home.close()
        db = sum(p.stat().st_size for p in (root / "home").glob("tunetrust.db*"))

    home_rows["index rows; members (the importing one included)"] = f"{rows:,}; {members:,}"
    home_rows["database size (with its WAL)"] = f"{db / 2**20:,.0f} MiB"
    table = Table(title=f"The home: {args.members:,} members in the copy index")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in home_rows.items():
        table.add_row(name, value)
    console.print(table)

    sums = {"inside": sum(inside.values()), "alone": sum(alone.values())}
    over = {k: v / (total - v) for k, v in sums.items()}
    table = Table(title=f"Contribution checks on a {summary.listens_in_export:,}-listen import")
    table.add_column("measure")
    table.add_column("inside the import", justify="right")
    table.add_column("alone, after it", justify="right")
    table.add_row("import, end to end, checks included", f"{total:.2f} s", "")
    for name in PARTS:
        table.add_row(f"  {name}", f"{inside.get(name, 0.0):.2f} s", f"{alone[name]:.2f} s")
    table.add_row("checks, all parts", f"{sums['inside']:.2f} s", f"{sums['alone']:.2f} s")
    for name, seconds in index.items():
        table.add_row(f"  of assess, timed again: {name}", "", f"{seconds:.2f} s")
    table.add_row(
        "overhead: checks ÷ import without checks",
        f"{over['inside'] * 100:.0f} %",
        f"{over['alone'] * 100:.0f} %",
    )
    checks_cpu = sum(inside_cpu.values())
    over_cpu = checks_cpu / (total_cpu - checks_cpu)
    table.add_row(
        "the same in CPU time (checks of import)",
        f"{over_cpu * 100:.0f} % ({checks_cpu:.2f} of {total_cpu:.2f} s)",
        "",
    )
    table.add_row(
        "peak memory during the import (before it)",
        f"{peak / 2**20:,.0f} MiB ({rss_before / 2**20:,.0f} MiB)",
        "",
    )
    by_name = {c.name: c for c in summary.checks}
    for name in ("copied_data", "split_history"):
        table.add_row(name, f"{by_name[name].status} ({by_name[name].value})", "")
    table.add_row("corroboration", str(summary.quality.get("corroboration")), "")
    table.add_row("verdict", summary.verdict, "")
    table.add_row("target", "< 50 %, accepted", "")
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in describe().items()))
    # judged on what was measured in one go: the checks inside the import, in wall and in
    # CPU time; the parts alone are set against the import's total from another moment,
    # so on a shared machine they move most (a cross-check, not the verdict)
    ok = max(over["inside"], over_cpu) < 0.5 and summary.verdict == ACCEPTED
    console.print("[green]within target[/]" if ok else "[red]over target[/]")


if __name__ == "__main__":
    main()
