"""bench/web.py's server side: the home built through the library, the server process,
the same calls in-process, and the check that every upload was imported once."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from _webclient import Member, Sample, httpx, vm

REPO = Path(__file__).resolve().parent.parent


# --- the home, built through the library ----------------------------------------------


def write_export(path: Path, listens: int, seed: int) -> Path:
    """A synthetic extended export (variant C) written as a zip."""
    from tunetrust.formats.spotify.synth import render, synthesize, write_zip

    write_zip(render(synthesize("extended-c", listens, seed), "extended-c"), path)
    return path


def build(root: Path, args: argparse.Namespace, origin: str, console: Console) -> dict[str, Any]:
    """The home, its members and their data, an open request, the invitation links."""
    from factories import lab_request  # tests/factories.py (the tests folder is on the path)
    from tunetrust import Settings, init_home
    from tunetrust.services import data, members
    from tunetrust.services.models import Actor

    n, nb, nu = args.members, args.big_members, args.uploads
    kinds = ["big"] * nb + ["small"] * (n - nb - nu) + ["uploader"] * nu
    names = [f"member-{i:04d}" for i in range(n)]
    exports = root / "exports"
    exports.mkdir()
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        bigs = [
            pool.submit(write_export, exports / f"big-{i}.zip", args.big, 100 + i)
            for i in range(nb)
        ]
        ups = [
            pool.submit(write_export, exports / f"upload-{i}.zip", args.listens, 500 + i)
            for i in range(nu)
        ]
        big_zips = [f.result() for f in bigs]
        upload_zips = [f.result() for f in ups]
    console.print(f"synthesized {nb} + {nu} exports in {time.perf_counter() - start:.0f} s")

    start = time.perf_counter()
    home = init_home(Settings(home=root / "home", web_origin=origin))
    steward = Actor.steward()
    links = []
    try:
        for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
            members.join(home, steward, name)
            me = Actor.member(name)
            if kind == "big":
                data.import_contribution(home, me, name, [big_zips[i]])
            elif kind == "small" and args.small_listens:
                z = write_export(exports / "small.zip", args.small_listens, 1000 + i)
                data.import_contribution(home, me, name, [z])
            members.set_consent(home, me, name, "research", granted=True)
            links.append(members.invite(home, steward, member=name).link.removeprefix(origin))
        request_id = lab_request(home, 10_000)  # WEEKDAY_SPEC: public keys, cheap to plan
    finally:
        home.close()
    console.print(f"built the home ({n} members) in {time.perf_counter() - start:.0f} s")
    return {
        "members": [Member(nm, k, link) for nm, k, link in zip(names, kinds, links, strict=True)],
        "request": request_id,
        "upload_zips": dict(zip(names[n - nu :], upload_zips, strict=True)),
    }


# --- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, origin: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    argv = [
        str(Path(sys.executable).parent / "tunetrust"),
        "--home",
        str(home),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--origin",
        origin,
    ]
    server = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(600):  # at most 60 s to start
        try:
            if httpx.get(f"http://127.0.0.1:{port}/guide", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)  # uvicorn shuts down; the app stops its worker
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def access_log(log: Path) -> dict[str, list[float]]:
    """The server's own time per route (its access log: method, route pattern, ms)."""
    found: dict[str, list[float]] = defaultdict(list)
    pattern = re.compile(r"tunetrust\.web (\w+) (\S+) (\d+) ([\d.]+) ms")
    for line in log.read_text(errors="replace").splitlines():
        if m := pattern.search(line):
            found[f"{m[1]} {m[2]}"].append(float(m[4]) / 1000)
    return found


# --- the same calls in-process ---------------------------------------------------------


def in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Time the service calls behind the pages in this process (run as a child)."""
    from tunetrust import Settings, init_home
    from tunetrust.insights.stats import Period
    from tunetrust.services import data, governance, members
    from tunetrust.services.models import Actor
    from tunetrust.store.home import open_home

    samples: list[Sample] = []
    walls: dict[str, float] = {}

    def timed(phase: str, label: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = call()
        samples.append(Sample(phase, label, time.perf_counter() - start, 0))
        return result

    def run(phase: str, jobs: list[Callable[[], Any]], workers: int) -> None:
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(j) for j in jobs]:
                f.result()
        walls[phase] = time.perf_counter() - start

    home = open_home(Settings(home=Path(spec["home"])))
    memory = {"after opening the home": vm("self", "VmRSS")}
    big, small, request = spec["big"], spec["small"], spec["request"]
    c, views, alone = spec["concurrency"], spec["views"], spec["alone_views"]

    def look(phase: str, label: str, name: str) -> Callable[[], Any]:
        return lambda: timed(
            phase, label, lambda: data.insights(home, Actor.member(name), name, Period())
        )

    def cast(phase: str, name: str, choice: str) -> Callable[[], Any]:
        return lambda: timed(
            phase, "vote", lambda: governance.vote(home, Actor.member(name), name, request, choice)
        )

    run(
        "insights, first view",
        [look("insights, first view", "insights (big), first call", n) for n in big],
        1,
    )
    run(
        "insights, repeat views",
        [look("insights, repeat views", "insights (big)", n) for _ in range(views) for n in big],
        c,
    )
    run(
        "insights, one client",
        [look("insights, one client", "insights (big)", n) for _ in range(alone) for n in big],
        1,
    )
    run(
        "insights, small members",
        [look("insights, small members", "insights (small)", n) for n in small],
        c,
    )
    run("votes", [cast("votes", n, "yes") for n in spec["voters"]], c)
    run("votes, one client", [cast("votes, one client", n, "no") for n in spec["alone_voters"]], 1)
    memory["peak after insights and votes"] = vm("self", "VmHWM")
    home.close()

    scratch = init_home(Settings(home=Path(spec["scratch"])))
    listens = {}
    start = time.perf_counter()
    for name, z in zip(spec["uploaders"], spec["upload_zips"], strict=True):
        members.join(scratch, Actor.steward(), name)
        s = timed(
            "imports",
            "import",
            lambda n=name, z=z: data.import_contribution(scratch, Actor.member(n), n, [Path(z)]),
        )
        listens[name] = s.listens_total
    walls["imports"] = time.perf_counter() - start
    scratch.close()
    memory["peak after the imports"] = vm("self", "VmHWM")
    return {
        "samples": [asdict(s) for s in samples],
        "walls": walls,
        "memory": memory,
        "listens": listens,
    }


def check_uploads(home_path: Path, jobs: dict[str, Any], expected: dict[str, int]) -> list[str]:
    """Each uploader: one contribution, the job's, holding what the library stores."""
    from tunetrust import Settings
    from tunetrust.services import data, members
    from tunetrust.services.models import Actor
    from tunetrust.store.home import open_home

    problems = []
    home = open_home(Settings(home=home_path))
    try:
        for name in jobs:
            want = expected.get(name)
            job = jobs.get(name)
            mine = data.list_contributions(home, Actor.member(name), name)
            stored = members.member_profile(home, Actor.member(name), name).listens
            if job is None or job["state"] != "done":
                problems.append(f"{name}: job {job}")
            elif [c.id for c in mine] != [job["contribution"]]:
                problems.append(
                    f"{name}: contributions {[c.id for c in mine]}, job {job['contribution']}"
                )
            elif want is not None and stored != want:
                problems.append(f"{name}: {stored:,} listens stored, the library stores {want:,}")
    finally:
        home.close()
    return problems
