"""Driving the members' web app in tests: a home, an app, members who join with passkeys.

Clients talk to the app in-process through Starlette's test client on ``https://localhost``
(the session cookie is ``Secure``), and register and sign in with ``SoftAuthenticator``,
so every request goes through the real routes, sessions, CSRF checks and WebAuthn
verification.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.softauthn import SoftAuthenticator
from tunetrust.services.jobs import Worker
from tunetrust.services.members import invite
from tunetrust.services.models import Actor
from tunetrust.settings import ImportLimits, Settings
from tunetrust.store.home import Home, init_home
from tunetrust.web.app import create_app

ORIGIN = "https://localhost"
TUNETRUST = Path(sys.executable).with_name("tunetrust")


def clean_env() -> dict[str, str]:
    """This environment without TUNETRUST_* (the home is named on the command line)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}


def session_secret(home: Home, name: str) -> str:
    """A session secret for member ``name``, as signing in would open one (the cookie)."""
    from tunetrust.coop import accounts
    from tunetrust.coop.members import get_member

    with home.transaction() as s:
        _, secret = accounts.open_session(s, get_member(home, name).id)
    return secret


def run_cli(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """``tunetrust --home HOME ARGS`` in a new process, wide, without TUNETRUST_*."""
    return subprocess.run(
        [str(TUNETRUST), "--home", str(home.settings.home), *args],
        env=clean_env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    """A loopback port free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def served(
    home: Path, port: int, log: Path, *options: str, ready: str = "/signin"
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``tunetrust serve`` of ``home`` on ``port`` (its output in ``log``), ready to
    answer ``ready``; stopped (terminated, then killed) when the block ends."""
    argv = [str(TUNETRUST), "--home", str(home), "serve", "--port", str(port), *options]
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen(argv, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the server did not start:\n{log.read_text('utf-8')[-4000:]}"
                    ) from None
                time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def csrf_of(html: str) -> str:
    """The CSRF token a page carries (a form field, or a passkey form's data attribute)."""
    found = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(
        r'data-csrf="([^"]+)"', html
    )
    assert found, "the page has no CSRF token"
    return found.group(1)


@dataclass
class Site:
    """A home and the web app serving it."""

    home: Home
    app: FastAPI
    clients: list[TestClient] = field(default_factory=list)

    def client(self) -> TestClient:
        """A new browser: its own cookie jar."""
        c = TestClient(self.app, base_url=ORIGIN, follow_redirects=False)
        self.clients.append(c)
        return c

    def join(self, name: str, *, member: str | None = None) -> tuple[TestClient, SoftAuthenticator]:
        """A person opens an invitation, registers a passkey and is signed in."""
        c = self.client()
        path = invite(self.home, Actor.steward(), member=member).link.removeprefix(ORIGIN)
        token = csrf_of(c.get(path).text)
        key = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
        options = c.post(f"{path}/options", json={"name": name}, headers={"X-CSRF-Token": token})
        assert options.status_code == 200, options.text
        done = c.post(
            f"{path}/finish", json=key.register(options.json()), headers={"X-CSRF-Token": token}
        )
        assert done.status_code == 200, done.text
        return c, key

    def sign_in(self, key: SoftAuthenticator) -> tuple[TestClient, Any]:
        """A new browser signs in with an existing passkey; the finish response."""
        c = self.client()
        token = csrf_of(c.get("/signin").text)
        options = c.post("/signin/options", headers={"X-CSRF-Token": token})
        assert options.status_code == 200, options.text
        done = c.post(
            "/signin/finish", json=key.sign_in(options.json()), headers={"X-CSRF-Token": token}
        )
        return c, done

    @contextmanager
    def worker(self) -> Iterator[None]:
        """An import worker running beside the app, as ``tunetrust serve`` runs one."""
        w = Worker(self.home, poll=0.1)
        w.start()
        try:
            yield
        finally:
            w.stop(timeout=30)

    def wait(self, client: TestClient, job: str, seconds: float = 60) -> dict[str, Any]:
        """Poll a job's JSON until it ends; its last state."""
        deadline = time.monotonic() + seconds
        while True:
            state: dict[str, Any] = client.get(f"{job}.json").json()
            if state["state"] in ("done", "failed") or time.monotonic() > deadline:
                return state
            time.sleep(0.1)

    def close(self) -> None:
        """Close every client, then the home."""
        for c in self.clients:
            c.close()
        self.home.close()


def site(tmp: Path, *, limits: ImportLimits | None = None, database_url: str | None = None) -> Site:
    """A new home served by the web app (imports run where ``Site.worker()`` is used)."""
    settings = Settings(
        home=tmp / "home",
        web_origin=ORIGIN,
        limits=limits or ImportLimits(),
        database_url=database_url,
    )
    home = init_home(settings)
    return Site(home, create_app(settings, worker=False, home=home))


def form(client: TestClient, page: str) -> str:
    """The CSRF token of the session, read from a page."""
    return csrf_of(client.get(page).text)


__all__ = ["ORIGIN", "Site", "csrf_of", "form", "site"]
