"""The API's OpenAPI document holds for the live server: Schemathesis against uvicorn.

A real ``uvicorn`` server (the web app, with the API mounted at ``/api/v1``) runs in a
background thread on a free local port, over a home with members, buyer Lab and a
delivered request. For every operation of the document, Schemathesis generates a few
valid requests and checks each answer: no server error, a status the document lists,
the content type it lists, and a body that matches its schema. Each operation runs as
the steward and as the buyer, so most routes answer 2xx and the others their problems.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import requests
import schemathesis
import uvicorn
import yaml
from hypothesis import HealthCheck, Phase, given
from hypothesis import configuration as hypothesis_configuration
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import WEEKDAY_SPEC, consenting_members, passed_request
from tests.web_support import site
from tunetrust.services import governance
from tunetrust.services.models import Actor
from tunetrust.services.tokens import issue_token
from tunetrust.web.api import create_api

STEWARD = Actor.steward()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 12
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "positive", "max-examples": EXAMPLES, "database": "none"},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests every run: a failure here is reproducible
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
# the document needs no home to be built: read once, for the parametrisation
SCHEMA = schemathesis.openapi.from_dict(create_api(None).openapi(), config=CONFIG)  # type: ignore[arg-type]
OPERATIONS = {r.ok().label: r.ok() for r in SCHEMA.get_all_operations() if isinstance(r, Ok)}


@dataclass
class Live:
    """The running server and what its callers need."""

    base_url: str  # .../api/v1
    secrets: dict[str, str]  # "steward", "buyer"
    ids: dict[str, str]  # real path values: request_id, release_id


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis keeps caches (constants, unicode tables) in ./.hypothesis: here, in a
    temporary folder, so this file writes nothing into the repository."""
    before = getattr(hypothesis_configuration, "__hypothesis_home_directory", None)
    hypothesis_configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    hypothesis_configuration.set_hypothesis_home_dir(before)


class _ByTypeOnly(logging.Filter):
    """The server's error log names the exception's type, without its traceback.

    As web/app.py logs errors (a message may hold a value), and because formatting a
    traceback on Python 3.11 calls ``ast.parse`` (for its carets), which is not safe to
    run in two threads at once: the server thread's log raced pytest's own ``ast.parse``
    of a failure on the main thread ("AST constructor recursion depth mismatch").
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{str(record.msg).rstrip()} ({type(record.exc_info[1]).__name__})"
            record.exc_info = None
        return True


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root: Path = tmp_path_factory.mktemp("api-schema")
    s = site(root)
    rid = passed_request(s.home, consenting_members(s.home, root, 3, listens=150), 40_000)
    release = governance.deliver(s.home, STEWARD, rid).release
    assert release is not None
    secrets = {
        "steward": issue_token(s.home, STEWARD, kind="steward", holder="Sam").token,
        "buyer": issue_token(s.home, STEWARD, kind="buyer", holder="Lab").token,
    }
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(s.app, log_level="warning", lifespan="on", access_log=False)
    )
    quiet = _ByTypeOnly()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Live(
            f"http://127.0.0.1:{port}/api/v1", secrets, {"request_id": rid, "release_id": release}
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        logging.getLogger("uvicorn.error").removeFilter(quiet)
        sock.close()
        s.close()


def _exercise(live: Live, who: str, label: str) -> int:
    """Schemathesis' generated requests for one operation, each checked; how many answered
    2xx. Reads use the real request and release (else nearly every read is a 404)."""
    operation = OPERATIONS[label]
    real = {k: v for k, v in live.ids.items() if k in _path_names(label)}
    reading = label.startswith("GET ")
    strategy = operation.as_strategy(path_parameters=real if reading and real else None)
    headers = {"Authorization": f"Bearer {live.secrets[who]}"}
    statuses: list[int] = []

    @SETTINGS
    @given(case=strategy)
    def check(case: Any) -> None:
        # a connection per call: a kept-alive one waits ~40 ms per request for delayed ACKs
        r = case.call_and_validate(
            base_url=live.base_url, headers=headers, checks=CHECKS, timeout=30
        )
        statuses.append(r.status_code)

    check()
    assert statuses, label
    return sum(200 <= s < 300 for s in statuses)


def _path_names(label: str) -> set[str]:
    return {part.strip("{}") for part in label.split(" ", 1)[1].split("/") if part.startswith("{")}


# reads that must answer 2xx at least once (a steward reads all but a member's own things)
STEWARD_2XX = {
    label
    for label in OPERATIONS
    if label.startswith("GET ") and not label.startswith(("GET /me/", "GET /downloads/"))
}
BUYER_2XX = {
    "GET /me",
    "GET /rules",
    "GET /requests",
    "GET /requests/{request_id}",
    "GET /requests/{request_id}/plan",
    "GET /requests/{request_id}/release",
    "GET /tokens",
}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@pytest.mark.parametrize("who", ["steward", "buyer"])
def test_the_live_server_answers_as_its_document_says(live: Live, who: str, label: str) -> None:
    answered = _exercise(live, who, label)
    if label in (STEWARD_2XX if who == "steward" else BUYER_2XX):
        assert answered > 0, f"{label} as the {who} never answered 2xx"


def test_the_document_is_the_one_the_server_serves(live: Live) -> None:
    served = requests.get(f"{live.base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == create_api(None).openapi()  # type: ignore[arg-type]
    assert len(OPERATIONS) == sum(len(item) for item in served.json()["paths"].values())


def test_a_download_answers_as_its_document_says(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.secrets['buyer']}"}
    rid = live.ids["request_id"]
    got = requests.get(f"{live.base_url}/requests/{rid}/release", headers=headers, timeout=10)
    operation = OPERATIONS["GET /downloads/{request_id}/{name}"]
    for link in got.json()["links"]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(link["url"]).query).items()}
        case = operation.Case(
            path_parameters={"request_id": rid, "name": link["name"]},
            query={
                "expires": int(query["expires"]),
                "by": query["by"],
                "signature": query["signature"],
            },
        )
        r = case.call_and_validate(base_url=live.base_url, checks=CHECKS, timeout=10)
        assert r.status_code == 200


# --- the bugs the generated requests found, each as one plain request -------------------


def test_a_signature_that_is_not_ascii_is_refused(live: Live) -> None:
    rid = live.ids["request_id"]
    r = requests.get(
        f"{live.base_url}/downloads/{rid}/data.csv",
        params={"expires": str(int(time.time()) + 60), "by": "buyer:Lab", "signature": "é" * 64},
        timeout=10,
    )
    assert r.status_code == 400, r.text  # not hex: refused before any comparison
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["signature"]


@pytest.mark.parametrize("path", ["/specs/check", "/requests"])
def test_a_spec_object_with_a_huge_number_is_a_problem(live: Live, path: str) -> None:
    spec = yaml.safe_load(WEEKDAY_SPEC)
    spec["bounds"]["max_partitions"] = 2**64  # beyond what orjson (or a C long) can write
    body: dict[str, Any] = {"spec": spec}
    if path == "/requests":
        body |= {"price": 1, "currency": "EUR", "licence": "research-only"}
    headers = {"Authorization": f"Bearer {live.secrets['buyer']}"}
    r = requests.post(f"{live.base_url}{path}", json=body, headers=headers, timeout=10)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["spec.bounds.max_partitions"]


def test_a_newline_in_a_path_stays_in_the_api(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.secrets['steward']}"}
    # Starlette's Mount matches its rest with ".*", which stops at a newline: such a path
    # leaves the API's routes, and must still be answered as the API answers
    r = requests.get(f"{live.base_url}/requests/%0Aabc", headers=headers, timeout=10)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json", r.text[:100]
    assert r.json()["type"] == "urn:tunetrust:problem:not-found"
