"""examples/buyer.py against a real server: a buyer proposes, the cooperative delivers,
the buyer downloads and verifies.

A real ``tunetrust serve`` runs on a home whose members imported synthetic exports and
consented to research. The example runs as the buyer would run it (a process, its
token in ``TUNETRUST_TOKEN``) and submits ``examples/spec.yaml``; meanwhile the test,
as the steward, opens the vote, has every member vote yes, closes it and delivers
through the API. The example must exit 0 having written the release's files byte for
byte, and its ``verify()`` must refuse a file changed after download.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.factories import consenting_members
from tests.web_support import clean_env, free_port, served
from tunetrust.releases.build import release_files
from tunetrust.services import governance, releases
from tunetrust.services import tokens as token_service
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import Home, init_home

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "buyer.py"
SPEC = REPO / "examples" / "spec.yaml"
STEWARD = Actor.steward()
MEMBERS = 5


def _example() -> ModuleType:
    """examples/buyer.py imported as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("example_buyer", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _buyer(base: str, token: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--url", base, *args],
        env=clean_env() | {"TUNETRUST_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _proposed(home: Home, seconds: float = 30) -> str:
    """The id of the buyer's request once the example has proposed it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = governance.list_requests(home, STEWARD)
        if found:
            assert len(found) == 1 and found[0].state == "draft"
            return found[0].id
        time.sleep(0.2)
    raise AssertionError("the example proposed no request")


@pytest.mark.slow
def test_the_buyer_example_proposes_waits_downloads_and_verifies(tmp_path: Path) -> None:
    root = tmp_path / "home"
    home = init_home(Settings(home=root))
    voters = consenting_members(home, tmp_path, MEMBERS)
    buyer = governance.add_buyer(home, STEWARD, "Lab", "lab@example.invalid", "SE")
    steward = token_service.issue_token(home, STEWARD, kind="steward", holder="steward")
    port = free_port()
    server = ExitStack()
    server.enter_context(served(root, port, tmp_path / "server.log", "--no-worker"))
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "out"
    children: list[subprocess.Popen[str]] = []

    def example_run(*args: str) -> subprocess.Popen[str]:
        children.append(_buyer(base, buyer.token, *args))
        return children[-1]

    try:
        # a refusal is printed as its detail and each field at fault, and nothing is proposed
        typo = tmp_path / "typo.yaml"
        typo.write_text(SPEC.read_text().replace("[weekday]", "[weekdy]"))
        refused = example_run("--spec", str(typo), "--price", "1", "--out", "x")
        stdout, stderr = refused.communicate(timeout=60)
        assert refused.returncode == 1, (stdout, stderr)
        assert "  spec.group_by: unknown key 'weekdy'" in stderr
        assert governance.list_requests(home, STEWARD) == []

        example = example_run(
            *("--spec", str(SPEC), "--price", "25000", "--currency", "EUR"),
            *("--licence", "research-only", "--wait", "60", "--out", str(out)),
        )
        rid = _proposed(home)
        governance.open_request(home, STEWARD, rid)
        for name in voters:
            governance.vote(home, Actor.member(name), name, rid, "yes")
        closed = governance.close_request(home, STEWARD, rid, early_reason="all have voted")
        assert closed.state == "passed"
        delivered = httpx.post(
            f"{base}/api/v1/requests/{rid}/deliver",
            headers={
                "Authorization": f"Bearer {steward.token}",
                "Idempotency-Key": str(uuid.uuid4()),
            },
            timeout=60,
        )
        assert delivered.status_code == 200, delivered.text
        delivery = releases.delivery(home, STEWARD, rid)
        files = release_files(home, delivery.release)
        stored = {f.name: files.get(f.name) for f in delivery.files}
        _tampering_is_found(delivery.model_dump(mode="json"), stored)

        stdout, stderr = example.communicate(timeout=60)
        assert example.returncode == 0, (stdout, stderr)
        assert "Plan: 5 members included" in stdout
        assert "5 files verified" in stdout
        assert {p.name: p.read_bytes() for p in out.iterdir()} == stored  # byte for byte

        # asked again for the same request, it downloads and verifies again
        again = example_run("--request", rid, "--out", str(tmp_path / "again"))
        stdout, stderr = again.communicate(timeout=60)
        assert again.returncode == 0, (stdout, stderr)
    finally:
        for child in children:  # one left waiting when an assertion failed
            if child.poll() is None:
                child.kill()
                child.communicate()
        server.close()
        home.close()


def _tampering_is_found(delivery: dict[str, Any], downloaded: dict[str, bytes]) -> None:
    """The example's verify() passes the release's own files and finds each change."""
    verify = _example().verify
    assert verify(delivery, downloaded) == []

    csv = downloaded["data.csv"]  # one bit of its last number flipped: the same size
    changed = {**downloaded, "data.csv": csv[:-2] + bytes([csv[-2] ^ 1]) + csv[-1:]}
    assert "data.csv: does not match its size and SHA-256 in the delivery" in verify(
        delivery, changed
    )

    # a delivery altered to list the changed file's digest: SHA256SUMS and the manifest
    # still catch it
    lying = {**delivery, "files": [dict(f) for f in delivery["files"]]}
    for f in lying["files"]:
        if f["name"] == "data.csv":
            f["sha256"] = hashlib.sha256(changed["data.csv"]).hexdigest()
            f["bytes"] = len(changed["data.csv"])
    assert verify(lying, changed) == [
        "data.csv: does not match its SHA-256 in manifest.json",
        "data.csv: does not match its SHA-256 in SHA256SUMS",
    ]

    missing = {k: v for k, v in downloaded.items() if k != "schema.json"}
    assert "schema.json: listed in the delivery but not downloaded" in verify(delivery, missing)


def test_a_retried_submission_sends_the_same_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A network error, then a busy answer (the first try still running): the proposal is
    sent three times with one key, so the server makes it once."""
    example = _example()
    monkeypatch.setattr(example.time, "sleep", lambda _: None)
    keys: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ConnectError("connection reset", request=request)
        if len(keys) == 2:
            return httpx.Response(409, headers={"Retry-After": "1"}, json={"detail": "in use"})
        info = {"id": "r1", "state": "draft", "price": {"text": "250.00 EUR"}}
        return httpx.Response(201, json=info)

    api = example.Api("http://coop.invalid", "tt_x")
    api.http.close()
    api.http = httpx.Client(
        base_url="http://coop.invalid/api/v1", transport=httpx.MockTransport(server)
    )
    assert example.submit(api, "purpose: research", 25_000, "EUR", "research-only", 14) == "r1"
    assert len(keys) == 3 and len(set(keys)) == 1
    api.close()
