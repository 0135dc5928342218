"""bench/web.py's client side: timed requests and simulated browsers (members)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # the client Starlette's test client prefers; plain httpx where it is not installed
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

COOKIE = "tunetrust_session"


# --- measuring -------------------------------------------------------------------------


@dataclass
class Sample:
    phase: str
    label: str
    seconds: float
    status: int


@dataclass
class Recorder:
    """Every timed request, the wall time of each phase, and what went wrong."""

    deadline: float
    join_until: float  # members not started joining by then are left out (and counted)
    skipped: int = 0
    samples: list[Sample] = field(default_factory=list)
    walls: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # phases cut short by the time limit
    phase: str = ""

    def add(self, label: str, seconds: float, status: int) -> None:
        self.samples.append(Sample(self.phase, label, seconds, status))  # atomic in CPython

    def run(self, phase: str, jobs: Iterable[Callable[[], None]], workers: int) -> None:
        """Run ``jobs`` on ``workers`` threads as one phase; its wall time is recorded."""
        self.phase = phase
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(job) for job in jobs]:
                try:
                    future.result()
                except TimeUp:
                    if phase not in self.stopped:
                        self.stopped.append(phase)
                except Exception as exc:  # one member's failure is reported, the rest go on
                    if len(self.errors) < 20:
                        self.errors.append(f"{phase}: {exc}")
        self.walls[phase] = time.perf_counter() - start


class TimeUp(Exception):
    """The run's time limit passed: no more requests."""


def pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0–1) of ``values``."""
    xs = sorted(values)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


def vm(pid: int | str, key: str) -> int:
    """A ``/proc/PID/status`` memory line (VmHWM, VmRSS) in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


# --- a simulated browser ---------------------------------------------------------------


class Failed(Exception):
    """A request answered something other than what a browser expects."""


_local = threading.local()


def _client() -> httpx.Client:
    """One HTTP client (connection pool) per thread."""
    if not hasattr(_local, "client"):
        _local.client = httpx.Client(timeout=600, follow_redirects=False)
    return _local.client  # type: ignore[no-any-return]


class Browser:
    """One member's browser: their session cookie, kept by hand (it is Secure, and this
    is http on loopback), and every request timed into the recorder."""

    def __init__(self, base: str, rec: Recorder) -> None:
        self.base = base
        self.rec = rec
        self.cookie: str | None = None

    def go(
        self, label: str, method: str, path: str, expect: int = 200, **kw: Any
    ) -> httpx.Response:
        if time.perf_counter() > self.rec.deadline:
            raise TimeUp
        headers = dict(kw.pop("headers", {}))
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        client = _client()
        start = time.perf_counter()
        r = client.request(method, self.base + path, headers=headers, **kw)
        seconds = time.perf_counter() - start
        client.cookies.clear()  # the jar of a thread's client is shared by its browsers
        for value in r.headers.get_list("set-cookie"):
            if value.startswith(COOKIE + "="):
                self.cookie = value.split(";", 1)[0].split("=", 1)[1]
        self.rec.add(label, seconds, r.status_code)
        if r.status_code != expect:
            raise Failed(f"{label}: {r.status_code} {r.text[:160]!r}")
        return r


def csrf_of(html: str) -> str:
    """The session's CSRF token in a page (a passkey form's attribute, or a form field)."""
    found = re.search(r'data-csrf="([^"]+)"', html) or re.search(
        r'name="csrf" value="([^"]+)"', html
    )
    if not found:
        raise Failed("the page has no CSRF token")
    return found.group(1)


@dataclass
class Member:
    name: str
    kind: str  # big, small, uploader
    link: str  # the enrolment invitation's path
    browser: Browser | None = None
    csrf: str = ""


def join_and_sign_in(m: Member, base: str, origin: str, rec: Recorder) -> None:
    """Register a passkey through the invitation link, sign out, sign in with it."""
    from softauthn import SoftAuthenticator

    if time.perf_counter() > rec.join_until:
        rec.skipped += 1
        return
    key = SoftAuthenticator(origin=origin, rp_id="localhost")
    b = Browser(base, rec)
    token = csrf_of(b.go("join: invitation page", "GET", m.link).text)
    h = {"X-CSRF-Token": token}
    options = b.go(
        "join: passkey options", "POST", f"{m.link}/options", json={"name": m.name}, headers=h
    )
    b.go(
        "join: passkey finish",
        "POST",
        f"{m.link}/finish",
        json=key.register(options.json()),
        headers=h,
    )
    token = csrf_of(b.go("welcome page (recovery codes)", "GET", "/welcome").text)
    b.go("sign out", "POST", "/signout", expect=303, data={"csrf": token})

    b = Browser(base, rec)  # signed out: a fresh visit
    token = csrf_of(b.go("sign in: page", "GET", "/signin").text)
    h = {"X-CSRF-Token": token}
    options = b.go("sign in: passkey options", "POST", "/signin/options", headers=h)
    b.go(
        "sign in: passkey finish",
        "POST",
        "/signin/finish",
        json=key.sign_in(options.json()),
        headers=h,
    )
    m.csrf = csrf_of(b.go("home page", "GET", "/").text)
    m.browser = b


def view_insights(m: Member, label: str, json_too: bool = False) -> None:
    assert m.browser is not None
    page = m.browser.go(label, "GET", "/insights")
    if m.kind == "big" and "Top artists" not in page.text:
        raise Failed(f"{label}: the page shows no insights")
    if json_too:
        m.browser.go(label.replace("page", "JSON"), "GET", "/insights.json")


def vote(m: Member, request_id: str, choice: str, label: str, follow: bool) -> None:
    assert m.browser is not None
    m.browser.go(
        label, "POST", f"/votes/{request_id}", expect=303, data={"csrf": m.csrf, "choice": choice}
    )
    if follow:  # where the browser goes next: the request, the tally and the receipt
        m.browser.go("vote page (after voting)", "GET", f"/votes/{request_id}")


def upload(m: Member, zpath: Path, rec: Recorder, out: dict[str, Any]) -> None:
    """Upload one export and follow its job to the end."""
    assert m.browser is not None
    start = time.perf_counter()
    with zpath.open("rb") as fh:
        r = m.browser.go(
            "upload (POST /upload)",
            "POST",
            f"/upload?csrf={m.csrf}",
            expect=303,
            files={"export": (zpath.name, fh, "application/zip")},
        )
    job = r.headers["location"].rsplit("/", 1)[1]
    while True:
        info = m.browser.go("job status (JSON)", "GET", f"/jobs/{job}.json").json()
        if info["state"] in ("done", "failed"):
            break
        time.sleep(0.5)
    rec.add("upload → imported (job done)", time.perf_counter() - start, 200)
    out[m.name] = {
        "job": job,
        "state": info["state"],
        "contribution": info["contribution"],
        "error": info["error"],
    }
