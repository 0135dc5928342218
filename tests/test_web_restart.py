"""A server killed mid-import: after a restart the job ends clearly and the home is whole.

A real ``tunetrust serve`` process claims an upload's import and is held at a known step
(the import's files staged, nothing committed), then killed with SIGKILL, as a power cut
or the OOM killer would. A second server, started on the same home, must finish that
job exactly once (or fail it plainly), and `tunetrust doctor`, `audit verify` and
`tunetrust verify` must pass.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.factories import export_zip, stored_listens
from tunetrust.coop import jobs as job_records
from tunetrust.services import data, jobs, members
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import init_home, open_home
from tunetrust.store.models import Contribution, Job

TUNETRUST = str(Path(sys.executable).parent / "tunetrust")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(home: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen(
            [TUNETRUST, "--home", str(home), "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")


def _tunetrust(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TUNETRUST, "--home", str(home), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_server_killed_mid_import_finishes_the_job_once_after_restart(tmp_path: Path) -> None:
    root = tmp_path / "home"
    home = init_home(Settings(home=root))
    members.join(home, Actor.steward(), "alice")
    upload = export_zip(tmp_path, "extended-c", listens=2_000)
    job_records.uploads(home).put("restart.zip", upload.read_bytes())
    job = jobs.submit_import(home, Actor.member("alice"), "alice", "restart.zip", "export.zip")
    home.close()

    marker = tmp_path / "paused"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    held = env | {"TUNETRUST_PAUSE_AT": "import.staged", "TUNETRUST_PAUSE_FILE": str(marker)}
    port = _port()
    first = _serve(root, port, held, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the import never reached its staged step"
        os.kill(first.pid, signal.SIGKILL)  # mid-import: files staged, nothing committed
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    marker.unlink()

    home = open_home(Settings(home=root))
    with home.sessions() as s:
        row = s.get(Job, job.id)
        assert row is not None and row.state == "running"  # what the killed server left

    second = _serve(root, _port(), env, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 120  # well under STALE_AFTER: the restart releases it
        while time.monotonic() < deadline:
            status = jobs.job_status(home, Actor.member("alice"), job.id)
            if status.state in ("done", "failed"):
                break
            time.sleep(0.2)
        assert status.state == "done", (status, (tmp_path / "second.log").read_text()[-2000:])
        assert status.contribution
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()

    # imported exactly once, and what is stored is what a plain import of the zip stores
    reference = init_home(Settings(home=tmp_path / "reference"))
    members.join(reference, Actor.steward(), "alice")
    data.import_contribution(reference, Actor.member("alice"), "alice", [upload])
    assert stored_listens(home, "alice").equals(stored_listens(reference, "alice"))
    reference.close()
    with home.sessions() as s:
        assert s.query(Contribution).count() == 1
        row = s.get(Job, job.id)
        assert row is not None and row.attempts == 2
    assert job_records.uploads(home).list() == []  # the upload is gone once the job ended
    home.close()
    for check in (("doctor",), ("audit", "verify"), ("verify",)):
        done = _tunetrust(root, *check)
        assert done.returncode == 0, (check, done.stdout, done.stderr)
    listed = _tunetrust(root, "contribution", "list", "--member", "alice", "--json")
    assert listed.returncode == 0 and listed.stdout.count('"id"') == 1
