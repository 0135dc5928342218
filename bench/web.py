"""Web benchmark: members sign in with passkeys, open their insights, vote and upload.

(This file runs the phases and reports; ``_webclient.py`` is the simulated browsers and
the timing, ``_webhome.py`` the home, the server process and the in-process calls.)

Run: ``.venv/bin/python bench/web.py [--members 200 --uploads 10 --listens 150000
--big 100000] [--quick] [--only all|members|api] [--json results.json]``;
``--only api`` runs the buyers' API part alone (under a minute on 2 cores).

Everything runs on loopback (``http://localhost:PORT``), bounded in count (every loop
runs over the members, views and uploads asked for) and in time (``--time-limit``: a
request past it is not sent, and the run reports what it had). The server is the real
one (``tunetrust serve``, uvicorn, the import worker in its process) started here as a
child process, so its peak memory is its own ``VmHWM``. Issue targets, on 2 cores: the
insights page under 300 ms p95 for a 100,000-listen member after the first view, a vote
under 50 ms p95, every upload imported exactly once.

1. A home is built through the library: ``--members`` members, ``--big-members`` of
   them with a ``--big``-listen synthetic export, the last ``--uploads`` with none (they
   upload theirs), the rest with ``--small-listens``; all consent to research; a buyer's
   request is opened to a vote; each member gets an enrolment invitation link.
2. Over HTTP, ``--concurrency`` clients at a time (threads): each member opens their
   link, registers a passkey (``tests/softauthn.py``), signs out and signs in again with
   it; opens the insights page (first view, then ``--views`` more for the big members);
   votes. Then one client alone repeats the big members' views (page and JSON) and some
   votes, so latency without queueing is seen too. Then ``--uploads`` members upload a
   ``--listens``-listen export each, all at once, and follow their jobs to the end.
3. The server is stopped and a new process makes the same service calls in-process
   (``services.data.insights``, ``services.governance.vote`` on the same home, with the
   same concurrency; ``services.data.import_contribution`` of the same zips into a
   scratch home): the difference is the web layer's cost. The uploads are checked: one
   contribution each, holding what the library stores from the same zip.

4. The buyers' API (``--only api`` runs this part alone): a home of ``--api-members``
   consenting members whose one request (``WEEKDAY_SPEC``) is delivered, served by a
   new server. A buyer's token asks for the request's status (``GET
   /api/v1/requests/{id}``) and downloads its release (``GET …/release``, then
   ``data.parquet`` through its signed link), ``--api-calls`` times with one client and
   twice as many with ``--concurrency`` clients (downloads: half as many), after five
   untimed rounds. Then, with the server stopped, this process makes the service calls
   behind them (``services.governance.show_request``; ``services.releases.delivery`` and
   ``release_file``) on the same home, timed the same way. Targets (issue): request
   status under 100 ms p95 and a download under 300 ms p95, with one client.

The session cookie is ``Secure``; httpx (rightly) never sends a Secure cookie over
http, so each simulated browser keeps its own cookie from ``Set-Cookie`` and sends it
back itself. Client and server share the machine's cores, so HTTP latencies include the
client's own work; the server's access log times each request inside the app too, and
those figures are shown next to the client's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from _machine import describe

REPO = Path(__file__).resolve().parent.parent
# the software WebAuthn authenticator lives with the tests (tests/softauthn.py); bench
# scripts may put the tests folder on the path to use it
sys.path.insert(0, str(REPO / "tests"))


from _webclient import (  # noqa: E402
    Failed,
    Member,
    Recorder,
    _client,
    join_and_sign_in,
    pct,
    upload,
    view_insights,
    vm,
    vote,
)
from _webhome import (  # noqa: E402
    access_log,
    build,
    check_uploads,
    free_port,
    in_process,
    start_server,
    stop_server,
)

# --- the report ------------------------------------------------------------------------

# (row title, HTTP phase, HTTP label, in-process phase, in-process label)
ROWS = [
    ("join: invitation page", "join and sign in", "join: invitation page", None, None),
    ("join: passkey options", "join and sign in", "join: passkey options", None, None),
    ("join: passkey finish", "join and sign in", "join: passkey finish", None, None),
    ("sign out", "join and sign in", "sign out", None, None),
    ("sign in: page", "join and sign in", "sign in: page", None, None),
    ("sign in: passkey options", "join and sign in", "sign in: passkey options", None, None),
    ("sign in: passkey finish", "join and sign in", "sign in: passkey finish", None, None),
    ("home page", "join and sign in", "home page", None, None),
    (
        "insights page, big member, first view",
        "insights, first view",
        "insights page (big)",
        "insights, first view",
        "insights (big), first call",
    ),
    (
        "insights page, big member, repeat views, C clients",
        "insights, repeat views",
        "insights page (big)",
        "insights, repeat views",
        "insights (big)",
    ),
    (
        "insights page, big member, one client",
        "insights, one client",
        "insights page (big)",
        "insights, one client",
        "insights (big)",
    ),
    (
        "insights JSON, big member, one client",
        "insights, one client",
        "insights JSON (big)",
        "insights, one client",
        "insights (big)",
    ),
    (
        "insights page, small member, first view",
        "insights, first view",
        "insights page (small)",
        "insights, small members",
        "insights (small)",
    ),
    (
        "insights page, no listens yet",
        "insights, first view",
        "insights page (uploader)",
        None,
        None,
    ),
    ("vote, C clients", "votes", "vote", "votes", "vote"),
    ("vote page (after voting)", "votes", "vote page (after voting)", None, None),
    ("vote, one client", "votes, one client", "vote", "votes, one client", "vote"),
    ("upload (POST /upload, all at once)", "uploads", "upload (POST /upload)", None, None),
    ("job status (JSON)", "uploads", "job status (JSON)", None, None),
    (
        "upload → imported (job done)",
        "uploads",
        "upload → imported (job done)",
        "imports",
        "import",
    ),
]


def _ms(x: float) -> str:
    return "—" if math.isnan(x) else f"{x * 1000:,.0f}" if x >= 0.1 else f"{x * 1000:.1f}"


def summarise(
    samples: list[dict[str, Any]], walls: dict[str, float], phase: str | None, label: str | None
) -> dict[str, Any] | None:
    if phase is None:
        return None
    xs = [s["seconds"] for s in samples if s["phase"] == phase and s["label"] == label]
    if not xs:
        return None
    wall = walls.get(phase) or float("nan")
    return {
        "n": len(xs),
        "p50": pct(xs, 0.5),
        "p95": pct(xs, 0.95),
        "max": max(xs),
        "per_second": len(xs) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument(
        "--uploads", type=int, default=10, help="concurrent uploads, by as many members"
    )
    parser.add_argument(
        "--listens", type=int, default=150_000, help="listens in each uploaded export"
    )
    parser.add_argument("--big", type=int, default=100_000, help="listens of each big member")
    parser.add_argument("--big-members", type=int, default=5)
    parser.add_argument("--small-listens", type=int, default=1_000, help="listens of the others")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at a time")
    parser.add_argument(
        "--views", type=int, default=10, help="repeat insights views per big member"
    )
    parser.add_argument(
        "--alone-views", type=int, default=4, help="views per big member, one client"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=1800,
        help="seconds for the HTTP part; members start joining only in its first half",
    )
    parser.add_argument(
        "--quick", action="store_true", help="20 members, 2 uploads of 20,000, big 20,000"
    )
    parser.add_argument(
        "--only",
        choices=("all", "members", "api"),
        default="all",
        help="run one part: the members' web app, or the buyers' API (under a minute)",
    )
    parser.add_argument(
        "--api-members", type=int, default=10, help="members in the API part's home"
    )
    parser.add_argument(
        "--api-calls", type=int, default=200, help="request status calls with one client"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)  # the child's spec
    args = parser.parse_args()
    if args.in_process:
        spec = json.loads(args.in_process.read_text())
        Path(spec["out"]).write_text(json.dumps(in_process(spec)))
        return
    if args.quick:
        args.members, args.uploads, args.listens, args.big = 20, 2, 20_000, 20_000
        args.big_members, args.views, args.alone_views, args.time_limit = 2, 3, 2, 300
    if args.members < args.big_members + args.uploads:
        parser.error("--members must be at least --big-members + --uploads")
    console = Console(width=max(Console().width, 150))
    results: dict[str, Any] = {}
    if args.only != "api":
        results = members_part(args, console)
    if args.only != "members":
        results["api"] = api_part(args, console)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def members_part(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Members join, view insights, vote and upload over HTTP; then the calls in-process."""
    port = free_port()
    origin = f"http://localhost:{port}"
    base = f"http://127.0.0.1:{port}"  # loopback; the origin's host is only the passkeys' rp id

    with tempfile.TemporaryDirectory(prefix="tunetrust-bench-web-") as tmp:
        root = Path(tmp)
        built = build(root, args, origin, console)
        ms: list[Member] = built["members"]
        request = built["request"]
        log = root / "server.log"
        server = start_server(root / "home", port, origin, log)
        memory = {"server after start": vm(server.pid, "VmRSS")}
        now = time.perf_counter()
        rec = Recorder(deadline=now + args.time_limit, join_until=now + args.time_limit / 2)
        c = args.concurrency
        jobs: dict[str, Any] = {}
        try:
            console.print(f"server up (pid {server.pid}); {len(ms)} members join and sign in …")
            # the big members and the uploaders first: a time limit leaves out small ones
            first = sorted(ms, key=lambda m: m.kind == "small")
            rec.run(
                "join and sign in",
                [lambda m=m: join_and_sign_in(m, base, origin, rec) for m in first],
                c,
            )
            ok = [m for m in ms if m.browser is not None]
            bigs = [m for m in ok if m.kind == "big"]
            rec.run(
                "insights, first view",
                [lambda m=m: view_insights(m, f"insights page ({m.kind})") for m in ok],
                c,
            )
            rec.run(
                "insights, repeat views",
                [
                    lambda m=m: view_insights(m, "insights page (big)")
                    for _ in range(args.views)
                    for m in bigs
                ],
                c,
            )
            rec.run(
                "insights, one client",
                [
                    lambda m=m: view_insights(m, "insights page (big)", json_too=True)
                    for _ in range(args.alone_views)
                    for m in bigs
                ],
                1,
            )
            rec.run(
                "votes", [lambda m=m: vote(m, request, "yes", "vote", follow=True) for m in ok], c
            )
            alone = ok[: min(50, len(ok))]
            rec.run(
                "votes, one client",
                [lambda m=m: vote(m, request, "no", "vote", follow=False) for m in alone],
                1,
            )
            memory["server peak, members' part"] = vm(server.pid, "VmHWM")
            console.print(f"{args.uploads} uploads of {args.listens:,} listens at once …")
            uploaders = [m for m in ok if m.kind == "uploader"]
            zips = [built["upload_zips"][m.name] for m in uploaders]
            rec.run(
                "uploads",
                [
                    lambda m=m, z=z: upload(m, z, rec, jobs)
                    for m, z in zip(uploaders, zips, strict=True)
                ],
                max(1, len(uploaders)),
            )
            memory["server peak, whole run"] = vm(server.pid, "VmHWM")
        finally:
            stop_server(server)
        server_times = access_log(log)

        console.print("the same calls in-process …")
        out = root / "in-process.json"
        spec = {
            "home": str(root / "home"),
            "scratch": str(root / "scratch"),
            "out": str(out),
            "big": [m.name for m in bigs],
            "small": [m.name for m in ok if m.kind == "small"],
            "request": request,
            "concurrency": c,
            "views": args.views,
            "alone_views": args.alone_views,
            "voters": [m.name for m in ok],
            "alone_voters": [m.name for m in alone],
            "uploaders": [m.name for m in uploaders],
            "upload_zips": [str(z) for z in zips],
        }
        (root / "spec.json").write_text(json.dumps(spec))
        child = subprocess.run([sys.executable, __file__, "--in-process", str(root / "spec.json")])
        if child.returncode == 0:
            inproc = json.loads(out.read_text())
        else:  # still report what was measured over HTTP
            rec.errors.append("the in-process run failed (see above)")
            inproc = {"samples": [], "walls": {}, "memory": {}, "listens": {}}
        problems = check_uploads(root / "home", jobs, inproc["listens"])

    http = [asdict(s) for s in rec.samples]
    rows = []
    for title, hp, hl, ip, il in ROWS:
        title = title.replace("C clients", f"{c} clients")
        h = summarise(http, rec.walls, hp, hl)
        i = summarise(inproc["samples"], inproc["walls"], ip, il)
        rows.append({"measure": title, "http": h, "in_process": i})
    bad = [s for s in rec.samples if s.status >= 400]
    results = {
        "machine": describe(),
        "load_average": os.getloadavg(),
        "options": {k: str(v) for k, v in vars(args).items() if k not in ("in_process",)},
        "rows": rows,
        "phases": rec.walls,
        "phase_requests": {p: sum(1 for s in rec.samples if s.phase == p) for p in rec.walls},
        "memory": {**memory, **{f"in-process: {k}": v for k, v in inproc["memory"].items()}},
        "members_left_out": rec.skipped,
        "errors": rec.errors,
        "stopped_at_time_limit": rec.stopped,
        "http_errors": len(bad),
        "uploads": jobs,
        "upload_problems": problems,
        "server_log": {
            k: {"n": len(v), "p50": pct(v, 0.5), "p95": pct(v, 0.95)}
            for k, v in sorted(server_times.items())
        },
    }
    report(console, results, args)
    return results


def report(console: Console, results: dict[str, Any], args: argparse.Namespace) -> None:
    c = args.concurrency
    table = Table(
        title=f"Web app over loopback ({args.members} members, {c} clients at a time) "
        "against the same service calls in-process; milliseconds"
    )
    for col in (
        "measure",
        "n",
        "HTTP p50",
        "HTTP p95",
        "HTTP /s",
        "in-proc n",
        "in-proc p50",
        "in-proc p95",
        "in-proc /s",
    ):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in results["rows"]:
        h, i = r["http"], r["in_process"]
        if h is None:
            continue
        table.add_row(
            r["measure"],
            str(h["n"]),
            _ms(h["p50"]),
            _ms(h["p95"]),
            f"{h['per_second']:.1f}",
            str(i["n"]) if i else "—",
            _ms(i["p50"]) if i else "—",
            _ms(i["p95"]) if i else "—",
            f"{i['per_second']:.1f}" if i else "—",
        )
    console.print(table)
    phases = Table(title="Phases")
    for col in ("phase", "requests", "wall", "requests/s"):
        phases.add_column(col, justify="left" if col == "phase" else "right")
    for p, wall in results["phases"].items():
        n = results["phase_requests"][p]
        phases.add_row(p, str(n), f"{wall:.1f} s", f"{n / wall:.1f}")
    console.print(phases)
    server = Table(title="Time inside the app, from the server's access log (all phases together)")
    for col in ("route", "n", "p50 ms", "p95 ms"):
        server.add_column(col, justify="left" if col == "route" else "right")
    for route, v in results["server_log"].items():
        server.add_row(route, str(v["n"]), _ms(v["p50"]), _ms(v["p95"]))
    console.print(server)
    for k, v in results["memory"].items():
        console.print(f"{k}: {v / 2**20:,.0f} MiB")
    console.print(
        ", ".join(f"{k}: {v}" for k, v in results["machine"].items()),
        f"load average {results['load_average'][0]:.1f}",
    )
    for e in results["errors"]:
        console.print(f"[red]{e}[/]")
    if results["members_left_out"]:
        console.print(
            f"[red]{results['members_left_out']} members did not join: "
            "half the time limit had passed[/]"
        )
    if results["stopped_at_time_limit"]:
        console.print(
            f"[red]stopped at the time limit: {', '.join(results['stopped_at_time_limit'])}[/]"
        )
    rows = {r["measure"]: r["http"] for r in results["rows"]}
    big = rows[f"insights page, big member, repeat views, {c} clients"]
    alone = rows["insights page, big member, one client"]
    votes = rows[f"vote, {c} clients"]

    def verdict(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]missed[/]"

    if big and alone:
        console.print(
            f"insights page p95 < 300 ms (big member, after the first view): {c} clients "
            f"{_ms(big['p95'])} ms {verdict(big['p95'] < 0.3)}, one client "
            f"{_ms(alone['p95'])} ms {verdict(alone['p95'] < 0.3)}"
        )
    if votes:
        console.print(f"vote p95 < 50 ms: {_ms(votes['p95'])} ms {verdict(votes['p95'] < 0.05)}")
    done = sum(1 for j in results["uploads"].values() if j["state"] == "done")
    console.print(
        f"uploads imported exactly once: {done} of {args.uploads} done, "
        f"{len(results['upload_problems'])} problems "
        + verdict(done == args.uploads and not results["upload_problems"])
    )
    for p in results["upload_problems"]:
        console.print(f"[red]{p}[/]")


# --- the buyers' API -------------------------------------------------------------------

API_FILE = "data.parquet"  # the file each download fetches through its link
# (row title, phase, label): the HTTP and in-process phases have the same names
API_ROWS = [
    ("request status, one client", "status, one client", "request status"),
    ("request status, C clients", "status, C clients", "request status"),
    ("download (release + one file), one client", "download, one client", "release + file"),
    ("— the release: manifest, digests, links", "download, one client", "release"),
    (f"— {API_FILE} through its link", "download, one client", "file"),
    ("download (release + one file), C clients", "download, C clients", "release + file"),
    ("— the release: manifest, digests, links", "download, C clients", "release"),
    (f"— {API_FILE} through its link", "download, C clients", "file"),
]


@dataclass
class HttpBuyer:
    """A buyer's calls over HTTP, each request timed into ``rec``."""

    base: str
    token: str
    request: str
    rec: Recorder

    def _get(self, label: str, url: str, token: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        start = time.perf_counter()
        r = _client().get(url, headers=headers)
        self.rec.add(label, time.perf_counter() - start, r.status_code)
        if r.status_code != 200:
            raise Failed(f"{label}: HTTP {r.status_code} for {urlsplit(url).path}")
        return r

    def status(self) -> None:
        info = self._get("request status", f"{self.base}/api/v1/requests/{self.request}")
        if info.json()["state"] != "paid":
            raise Failed(f"request status: {info.json()['state']}")

    def download(self) -> None:
        start = time.perf_counter()
        release = self._get("release", f"{self.base}/api/v1/requests/{self.request}/release")
        link = next(x for x in release.json()["links"] if x["name"] == API_FILE)
        data = self._get("file", link["url"], token=False).content  # the link needs no token
        self.rec.add("release + file", time.perf_counter() - start, 200)
        if hashlib.sha256(data).hexdigest() != link["sha256"]:
            raise Failed(f"{API_FILE}: not the SHA-256 its link lists")


@dataclass
class LibraryBuyer:
    """The same calls' service functions in this process, timed the same way."""

    home: Any
    request: str
    rec: Recorder

    def status(self) -> None:
        from tunetrust.services import governance
        from tunetrust.services.models import Actor

        start = time.perf_counter()
        governance.show_request(self.home, Actor.buyer("Lab"), self.request)
        self.rec.add("request status", time.perf_counter() - start, 200)

    def download(self) -> None:
        from tunetrust.services import releases
        from tunetrust.services.models import Actor

        lab = Actor.buyer("Lab")
        start = time.perf_counter()
        releases.delivery(self.home, lab, self.request)
        middle = time.perf_counter()
        releases.release_file(self.home, lab, self.request, API_FILE)
        end = time.perf_counter()
        self.rec.add("release", middle - start, 200)
        self.rec.add("file", end - middle, 200)
        self.rec.add("release + file", end - start, 200)


def _buyer_rounds(buyer: HttpBuyer | LibraryBuyer, rec: Recorder, n: int, c: int) -> None:
    """Five untimed rounds, then the timed phases: status and downloads, 1 and c clients."""
    quiet = Recorder(deadline=math.inf, join_until=0)
    warm = dataclass_replace(buyer, rec=quiet)  # the first calls import modules, fill caches
    quiet.run("warm-up", [warm.status, warm.download] * 5, 1)
    rec.errors += quiet.errors
    rec.run("status, one client", [buyer.status] * n, 1)
    rec.run(f"status, {c} clients", [buyer.status] * (2 * n), c)
    rec.run("download, one client", [buyer.download] * (n // 2), 1)
    rec.run(f"download, {c} clients", [buyer.download] * n, c)


def api_part(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """A buyer's request status and release download over HTTP, then in-process."""
    from factories import consenting_members, passed_request
    from tunetrust import Settings, init_home
    from tunetrust.services import governance, releases, tokens
    from tunetrust.services.models import Actor
    from tunetrust.store.home import open_home

    c, n = args.concurrency, args.api_calls
    port = free_port()
    origin, base = f"http://localhost:{port}", f"http://127.0.0.1:{port}"
    load = {"start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="tunetrust-bench-api-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        home = init_home(Settings(home=root / "home", web_origin=origin))
        try:
            voters = consenting_members(home, root, args.api_members, args.small_listens)
            request = passed_request(home, voters, price=10_000)
            governance.deliver(home, Actor.steward(), request)
            token = tokens.issue_token(home, Actor.steward(), kind="buyer", holder="Lab").token
            files = {
                f.name: f.bytes for f in releases.delivery(home, Actor.steward(), request).files
            }
        finally:
            home.close()
        console.print(
            f"API: a delivered request in a home of {args.api_members} members, built in "
            f"{time.perf_counter() - start:.0f} s; {n} status calls with one client …"
        )
        log = root / "server.log"
        server = start_server(root / "home", port, origin, log)
        http = Recorder(deadline=time.perf_counter() + args.time_limit, join_until=0)
        try:
            _buyer_rounds(HttpBuyer(base, token, request, http), http, n, c)
        finally:
            stop_server(server)
        server_times = access_log(log)

        console.print("API: the same calls in-process …")
        inproc = Recorder(deadline=math.inf, join_until=0)
        home = open_home(Settings(home=root / "home"))
        try:
            _buyer_rounds(LibraryBuyer(home, request, inproc), inproc, n, c)
        finally:
            home.close()
    load["end"] = os.getloadavg()[0]

    # answered calls only: an error's time says nothing of the route's
    h_samples = [asdict(s) for s in http.samples if s.status < 400]
    i_samples = [asdict(s) for s in inproc.samples]
    rows = []
    for title, phase, label in API_ROWS:
        title, phase = (x.replace("C clients", f"{c} clients") for x in (title, phase))
        h = summarise(h_samples, http.walls, phase, label)
        i = summarise(i_samples, inproc.walls, phase, label)
        rows.append({"measure": title, "http": h, "in_process": i})
    results = {
        "machine": describe(),
        "load_average": load,
        "options": {"api_members": args.api_members, "api_calls": n, "concurrency": c},
        "files": files,
        "rows": rows,
        "errors": http.errors + inproc.errors,
        "http_errors": sum(1 for s in http.samples if s.status >= 400),
        "server_log": {
            k: {"n": len(v), "p50": pct(v, 0.5), "p95": pct(v, 0.95)}
            for k, v in sorted(server_times.items())
        },
    }
    api_report(console, results)
    return results


def api_report(console: Console, results: dict[str, Any]) -> None:
    c = results["options"]["concurrency"]
    table = Table(
        title=f"Buyers' API over loopback (one client, then {c}) against the same service "
        "calls in-process; milliseconds"
    )
    for col in ("measure", "n", "HTTP p50", "HTTP p95", "HTTP /s", "in-proc p50", "in-proc p95"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in results["rows"]:
        h, i = r["http"], r["in_process"]
        table.add_row(
            r["measure"],
            str(h["n"]) if h else "0",
            _ms(h["p50"]) if h else "—",
            _ms(h["p95"]) if h else "—",
            f"{h['per_second']:.1f}" if h else "—",
            _ms(i["p50"]) if i else "—",
            _ms(i["p95"]) if i else "—",
        )
    console.print(table)
    server = Table(title="Time inside the app, from the server's access log (warm-up included)")
    for col in ("route", "n", "p50 ms", "p95 ms"):
        server.add_column(col, justify="left" if col == "route" else "right")
    for route, v in results["server_log"].items():
        server.add_row(route, str(v["n"]), _ms(v["p50"]), _ms(v["p95"]))
    console.print(server)
    sizes = ", ".join(f"{k} {v:,} B" for k, v in results["files"].items())
    console.print(f"release files: {sizes}")
    load = results["load_average"]
    console.print(
        ", ".join(f"{k}: {v}" for k, v in results["machine"].items()),
        f"load average {load['start']:.1f} at the start, {load['end']:.1f} at the end",
    )
    errors = results["errors"]
    for e in errors[:5]:
        console.print(f"[red]{e}[/]")
    if len(errors) > 5:
        console.print(f"[red]… and {len(errors) - 5} more errors[/]")
    rows = {r["measure"]: r["http"] for r in results["rows"]}
    for title, target in (
        ("request status, one client", 0.1),
        ("download (release + one file), one client", 0.3),
    ):
        row = rows[title]
        if row is None:
            console.print(f"{title}: [red]not measured[/] (see the errors above)")
            continue
        ok = row["p95"] < target
        console.print(
            f"{title}: p95 {_ms(row['p95'])} ms, target < {target * 1000:.0f} ms: "
            + ("[green]met[/]" if ok else "[red]missed[/]")
        )


if __name__ == "__main__":
    main()
