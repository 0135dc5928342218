"""The HTTP API end to end: a buyer's request from the spec to the downloaded release.

A buyer checks and submits a spec, the steward opens the vote, members vote (a signed-in
browser session with its CSRF token, and a personal token), the steward closes the vote
and delivers with an Idempotency-Key, and the buyer downloads every file and checks it
against the delivery's digests. Around that: problems (RFC 9457) that name the field at
fault, idempotent delivery and submission (also two at once, on SQLite and PostgreSQL),
pages walked by cursor, the member's own endpoints, revocation, and that nothing a buyer
or an auditor receives names a member or holds their listens or a token's secret.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import WEEKDAY_SPEC, export_zip
from tests.web_support import Site, form, site
from tunetrust.insights.stats import Period
from tunetrust.services import audit as audit_service
from tunetrust.services import data, governance, members
from tunetrust.services.models import Actor
from tunetrust.services.outputs import to_json
from tunetrust.services.tokens import issue_token, revoke_token
from tunetrust.store.models import BudgetSpend, DataRequest, LedgerTransaction, Release

STEWARD = Actor.steward()
PROBLEM = "application/problem+json"
# distinctive names: a buyer's or auditor's answer holding one of these names a member
BROWSER = "Annika Lindqvist"
OTHERS = ["Bertil Ekdahl", "Cecilia Hallström", "Dagny Wikström", "Einar Sjöberg"]
MEMBERS = [BROWSER, *OTHERS]
REQUEST = {"price": 60_000, "currency": "EUR", "licence": "research-only", "voting_days": 7}


@dataclass
class Coop:
    """A cooperative served by the web app, and how each party calls its API."""

    site: Site
    browser: TestClient  # BROWSER's signed-in session
    csrf: str
    secrets: dict[str, str]  # who → token secret: "steward", "auditor", "Lab", members
    api: TestClient  # for token calls: no cookies (the API sets none)
    seen: list[bytes] = field(default_factory=list)  # every body a buyer or auditor got

    @property
    def home(self) -> Any:
        return self.site.home

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        """``who`` calls ``/api/v1{path}`` with their token."""
        headers = {"Authorization": f"Bearer {self.secrets[who]}", **kwargs.pop("headers", {})}
        r = self.api.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        assert "set-cookie" not in r.headers  # a token call opens no session
        if who in ("Lab", "auditor"):
            self.seen.append(r.content)
        return r

    def download(self, who: str, url: str) -> Any:
        """Fetch a download link as given, with no token at all (the link is the permission)."""
        assert url.startswith("https://localhost/api/v1/downloads/"), url
        r = self.site.client().get(url.removeprefix("https://localhost"))
        if who in ("Lab", "auditor"):
            self.seen.append(r.content)
        return r


def build(root: Path, *, database_url: str | None = None) -> Coop:
    """Five members with imported listens consenting to research (the first signed in
    through the web app with a passkey), buyer Lab, a steward and an auditor."""
    s = site(root, database_url=database_url)
    browser, _ = s.join(BROWSER)
    for name in OTHERS:
        members.join(s.home, STEWARD, name)
    secrets: dict[str, str] = {}
    for i, name in enumerate(MEMBERS):
        me = Actor.member(name)
        data.import_contribution(s.home, me, name, [export_zip(root, "extended-c", 150, 40 + i)])
        members.set_consent(s.home, me, name, "research", granted=True)
        secrets[name] = issue_token(s.home, me, kind="member", holder=name).token
    secrets["Lab"] = governance.add_buyer(s.home, STEWARD, "Lab", "lab@example.invalid", "SE").token
    for kind, holder in (("steward", "Sam"), ("auditor", "Aud")):
        secrets[kind] = issue_token(s.home, STEWARD, kind=kind, holder=holder).token
    return Coop(s, browser, form(browser, "/"), secrets, s.client())


@pytest.fixture
def coop(tmp_path: Path) -> Iterator[Coop]:
    c = build(tmp_path)
    yield c
    c.site.close()


def _passed(coop: Coop) -> str:
    """Lab's request, submitted, opened, voted yes by everyone and closed passed (API)."""
    r = coop.call("Lab", "POST", "/requests", json={"spec": WEEKDAY_SPEC, **REQUEST})
    assert r.status_code == 201, r.text
    rid: str = r.json()["id"]
    assert coop.call("steward", "POST", f"/requests/{rid}/open").json()["state"] == "open"
    for name in MEMBERS:
        vote = coop.call(name, "PUT", f"/me/votes/{rid}", json={"choice": "yes"})
        assert vote.status_code == 200, vote.text
    closed = coop.call("steward", "POST", f"/requests/{rid}/close", json={"early_reason": "all"})
    assert closed.json()["state"] == "passed", closed.text
    return rid


def _is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("urn:tunetrust:problem:")
    assert set(body) <= {"type", "title", "status", "detail", "errors"}
    return body


def _count(coop: Coop, model: Any, *where: Any) -> int:
    with coop.home.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _audited(coop: Coop, action: str, subject: str) -> list[Any]:
    entries = audit_service.entries(coop.home, STEWARD)
    return [e for e in entries if e.action == action and e.subject == subject]


# --- the whole journey ------------------------------------------------------------------


def test_a_request_from_spec_to_downloaded_release(coop: Coop) -> None:
    # the buyer checks the spec and sees the plan: counts and costs, nothing personal
    checked = coop.call("Lab", "POST", "/specs/check", json={"spec": WEEKDAY_SPEC})
    assert checked.status_code == 200, checked.text
    plan = checked.json()
    assert (plan["purpose"], plan["members_included"], plan["epsilon_per_member"]) == (
        "research",
        5,
        "0.5",
    )
    outcome = plan["outcome"]
    assert (outcome["keys_declared"], outcome["keys"], outcome["expected_empty"]) == (
        7,
        "public",
        False,
    )
    assert set(outcome["accuracy"]) == {"plays", "listeners"}
    assert all(
        a["half_width"] > 0 and 0.9 < a["coverage"] < 1 for a in outcome["accuracy"].values()
    )

    # the buyer proposes it; the steward opens the vote
    submitted = coop.call("Lab", "POST", "/requests", json={"spec": WEEKDAY_SPEC, **REQUEST})
    assert submitted.status_code == 201, submitted.text
    req = submitted.json()
    rid = req["id"]
    assert submitted.headers["location"] == f"https://localhost/api/v1/requests/{rid}"
    assert (req["buyer"], req["state"], req["purpose"]) == ("Lab", "draft", "research")
    assert req["licence"].startswith("Use for non-commercial research only")  # the named one
    assert (req["price"]["amount"], req["price"]["currency"], req["voting_days"]) == (
        60_000,
        "EUR",
        7,
    )
    opened = coop.call("steward", "POST", f"/requests/{rid}/open").json()
    assert (opened["state"], opened["eligible"]) == ("open", 5)

    # members vote: a browser session needs its CSRF token on a change; tokens need none
    ballot = f"/api/v1/me/votes/{rid}"
    refused = coop.browser.put(ballot, json={"choice": "yes"})
    assert "X-CSRF-Token" in _is_problem(refused, 403)["detail"]
    voted = coop.browser.put(ballot, json={"choice": "yes"}, headers={"X-CSRF-Token": coop.csrf})
    assert voted.status_code == 200 and voted.json()["choice"] == "yes", voted.text
    for name in OTHERS:
        choice = "no" if name == OTHERS[-1] else "yes"
        r = coop.call(name, "PUT", f"/me/votes/{rid}", json={"choice": choice})
        assert (r.status_code, r.json()["request"], r.json()["choice"]) == (200, rid, choice)
    mine = coop.browser.get("/api/v1/me/requests").json()["items"]
    weighed = next(m for m in mine if m["request"]["id"] == rid)
    assert weighed["ballot"]["choice"] == "yes" and weighed["can_vote"] is True
    assert weighed["request"]["tally"]["voters"] == 5

    # the steward closes the vote and delivers: once, whatever the retries
    closed = coop.call("steward", "POST", f"/requests/{rid}/close", json={"early_reason": "all in"})
    assert closed.json()["state"] == "passed" and closed.json()["tally"]["yes"] == 4
    deliver = f"/requests/{rid}/deliver"
    missing = _is_problem(coop.call("steward", "POST", deliver), 428)
    assert missing["errors"] == [{"field": "Idempotency-Key", "detail": "required"}]
    assert _count(coop, Release) == 0  # a refused delivery built nothing
    key = {"Idempotency-Key": "deliver-once-7"}
    first = coop.call("steward", "POST", deliver, headers=key)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    paid = first.json()
    assert (paid["state"], paid["payment"]["price"], paid["payment"]["currency"]) == (
        "paid",
        60_000,
        "EUR",
    )
    # no votes leave their voter out (the default rule): four members paid
    assert paid["payment"]["members_paid"] == 4
    again = coop.call("steward", "POST", deliver, headers=key)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json() == paid
    other = coop.call("steward", "POST", deliver, headers=key, json={"release": "again"})
    bad = _is_problem(other, 400)
    assert bad["errors"] == [{"field": "Idempotency-Key", "detail": "used for a different request"}]
    assert _count(coop, LedgerTransaction, LedgerTransaction.request_id == rid) == 1
    assert _count(coop, Release) == 1
    assert len(_audited(coop, "request.pay", rid)) == 1
    assert governance.verify_ledger(coop.home, STEWARD).ok
    ledger = coop.call("auditor", "GET", "/ledger/verify").json()
    assert (ledger["ok"], ledger["problems"]) == (True, [])

    # the buyer fetches the release and downloads every file through its link
    got = coop.call("Lab", "GET", f"/requests/{rid}/release")
    assert got.status_code == 200, got.text
    delivery, links = got.json()["delivery"], got.json()["links"]
    assert (delivery["request"], delivery["release"]) == (rid, paid["release"])
    files = {f["name"]: f for f in delivery["files"]}
    assert set(files) == {link["name"] for link in links} >= {"data.csv", "manifest.json"}
    downloaded = {}
    for link in links:
        r = coop.download("Lab", link["url"])
        assert r.status_code == 200, (link["name"], r.text[:200])
        digest = hashlib.sha256(r.content).hexdigest()
        assert digest == link["sha256"] == files[link["name"]]["sha256"], link["name"]
        assert len(r.content) == link["bytes"] == files[link["name"]]["bytes"]
        downloaded[link["name"]] = r.content
    for name, digest in delivery["manifest"]["files"].items():
        assert hashlib.sha256(downloaded[name]).hexdigest() == digest, name
    assert yaml.safe_load(downloaded["manifest.json"])["merkle_root"] == delivery["merkle_root"]
    sums = dict(line.split()[::-1] for line in downloaded["SHA256SUMS"].decode().splitlines())
    assert all(sums[n] == hashlib.sha256(downloaded[n]).hexdigest() for n in sums)
    rows = list(csv.DictReader(io.StringIO(downloaded["data.csv"].decode())))
    assert len(rows) == 7 and {"plays", "listeners"} <= set(rows[0])
    assert len({r["weekday"] for r in rows}) == 7  # the seven public keys, each once
    downloads = _audited(coop, "release.download", rid)
    assert len(downloads) == len(links) and {e.actor for e in downloads} == {"buyer:Lab"}

    # the members see it: included (or not), paid, budget spent
    released = coop.browser.get("/api/v1/me/releases").json()["items"]
    assert [(r["id"], r["request"], r["epsilon"]) for r in released] == [
        (paid["release"], rid, "0.5")
    ]
    statement = coop.browser.get("/api/v1/me/statement").json()
    assert statement == members.member_statement(coop.home, STEWARD, BROWSER).model_dump(
        mode="json"
    )
    assert [line["memo"] for line in statement["lines"]] == [f"sale of request {rid[:12]}"]
    assert statement["totals"][0]["amount"] > 0
    voted_no = coop.call(OTHERS[-1], "GET", "/me/releases").json()["items"]
    assert voted_no == []  # left out of the release, so nothing spent and nothing paid
    budget = coop.browser.get("/api/v1/me/budget").json()["items"]
    assert [(b["purpose"], b["spent"]) for b in budget if b["purpose"] == "research"] == [
        ("research", "0.5")
    ]
    _nothing_personal(coop)


def _nothing_personal(coop: Coop) -> None:
    """Nothing a buyer or an auditor received names a member, holds a listen (an artist,
    track or album of theirs, an address, a track URI) or any token's secret."""
    for path in ("/audit/entries?limit=200", "/ledger", "/requests", "/audit/verify"):
        assert coop.call("auditor", "GET", path).status_code == 200, path
    assert coop.call("Lab", "GET", "/requests").status_code == 200
    personal = {part for name in MEMBERS for part in name.split()}
    for name in MEMBERS:
        seen = data.insights(coop.home, STEWARD, name, Period())
        for ranked in (seen.top_artists, seen.top_tracks, seen.top_albums):
            personal |= {r.name for r in ranked}
    personal |= set(coop.secrets.values()) | {"spotify:track:", "198.51.100.", "ip_addr"}
    assert len(coop.seen) > 10
    for body in coop.seen:
        text = body.decode("utf-8", "replace")
        leaked = sorted(p for p in personal if p in text)
        assert leaked == [], (leaked, text[:300])


# --- a spec as an object or as text: one spec ---------------------------------------------

LAPLACE_SPEC = WEEKDAY_SPEC.replace(
    "{epsilon: 0.5, delta: 1.0e-6}", "{epsilon: 0.5, noise: laplace}"
)


def test_a_spec_object_is_the_same_spec_as_its_text(module_coop: Coop) -> None:
    as_text = module_coop.call("Lab", "POST", "/specs/check", json={"spec": LAPLACE_SPEC})
    as_object = module_coop.call(
        "Lab", "POST", "/specs/check", json={"spec": yaml.safe_load(LAPLACE_SPEC)}
    )
    assert as_text.status_code == 200, as_text.text
    assert as_object.json() == as_text.json()
    assert as_text.json()["delta"] == 0 and as_text.json()["members_included"] == 5
    submitted = module_coop.call(
        "Lab", "POST", "/requests", json={"spec": yaml.safe_load(LAPLACE_SPEC), **REQUEST}
    )
    assert submitted.status_code == 201, submitted.text
    planned = module_coop.call("Lab", "GET", f"/requests/{submitted.json()['id']}/plan")
    assert planned.json() == as_text.json()  # the object stored is the spec checked


def test_a_gaussian_spec_object_is_accepted(module_coop: Coop) -> None:
    spec = yaml.safe_load(WEEKDAY_SPEC)
    assert spec["privacy"]["delta"] == 1e-6
    as_object = module_coop.call("Lab", "POST", "/specs/check", json={"spec": spec})
    assert as_object.status_code == 200, as_object.text
    as_text = module_coop.call("Lab", "POST", "/specs/check", json={"spec": WEEKDAY_SPEC})
    assert as_object.json() == as_text.json()


# --- problems name the field at fault -------------------------------------------------------


def _bounds(spec: str, value: str) -> str:
    return spec.replace("max_partitions: 7", f"max_partitions: {value}")


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        (
            {"spec": _bounds(WEEKDAY_SPEC, "-1"), **REQUEST},
            "spec.bounds.max_partitions",
            "must be a whole number from 1 to 10,000",
        ),
        (
            {
                "spec": yaml.safe_load(_bounds(LAPLACE_SPEC, "0")),
                **REQUEST,
            },
            "spec.bounds.max_partitions",
            "must be a whole number from 1 to 10,000",
        ),
        ({"spec": WEEKDAY_SPEC, **REQUEST, "price": -5}, "price", None),
        ({"spec": WEEKDAY_SPEC, **REQUEST, "currency": "EURO"}, "currency", None),
        ({"spec": WEEKDAY_SPEC, **REQUEST, "surprise": 1}, "surprise", None),
        ({k: v for k, v in REQUEST.items() if k != "licence"} | {"spec": "x: 1"}, "licence", None),
    ],
    ids=["spec text", "spec object", "price", "currency", "unknown field", "missing licence"],
)
def test_a_request_that_cannot_be_used_is_a_problem_naming_its_field(
    module_coop: Coop, body: dict[str, Any], field: str, detail: str | None
) -> None:
    before = _count(module_coop, DataRequest)
    r = module_coop.call("Lab", "POST", "/requests", json=body)
    problem = _is_problem(r, 400)
    assert problem["type"] == "urn:tunetrust:problem:invalid-request"
    fields = {e["field"]: e["detail"] for e in problem["errors"]}
    assert field in fields, problem
    if detail is not None:
        assert fields[field] == detail
        assert problem["detail"] == f"release spec, bounds.max_partitions: {detail}"
    else:
        assert field in problem["detail"]
    assert _count(module_coop, DataRequest) == before


JSON = {"Content-Type": "application/json"}


def test_a_spec_check_names_the_field_at_fault(module_coop: Coop) -> None:
    wrong = WEEKDAY_SPEC.replace("group_by: [weekday]", "group_by: [birthday]")
    r = module_coop.call("Lab", "POST", "/specs/check", json={"spec": wrong})
    problem = _is_problem(r, 400)
    assert [e["field"] for e in problem["errors"]] == ["spec.group_by"], problem
    broken = module_coop.call("Lab", "POST", "/specs/check", json={"spec": "purpose: ["})
    assert _is_problem(broken, 400)["detail"] == "spec: not valid YAML or JSON (ParserError)"
    not_json = module_coop.call("Lab", "POST", "/specs/check", content=b"{", headers=JSON)
    assert _is_problem(not_json, 400)["errors"] == [{"field": "(body)", "detail": "not valid JSON"}]


def test_a_spec_of_the_wrong_type_names_the_field_spec(module_coop: Coop) -> None:
    r = module_coop.call("Lab", "POST", "/specs/check", json={"spec": 5})
    assert {e["field"] for e in _is_problem(r, 400)["errors"]} == {"spec"}


# --- idempotency: one effect per key ----------------------------------------------------------


def test_submitting_twice_with_one_key_makes_one_draft(module_coop: Coop) -> None:
    c = module_coop
    key = {"Idempotency-Key": "submit-2024-a"}
    body = {"spec": WEEKDAY_SPEC, **REQUEST, "price": 12_345}
    before = _count(c, DataRequest)
    first = c.call("Lab", "POST", "/requests", json=body, headers=key)
    second = c.call("Lab", "POST", "/requests", json=body, headers=key)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["location"] == first.headers["location"]
    assert first.headers["location"].endswith(f"/api/v1/requests/{first.json()['id']}")
    assert second.json() == first.json() and first.json()["price"]["amount"] == 12_345
    assert _count(c, DataRequest) == before + 1
    changed = c.call("Lab", "POST", "/requests", json=body | {"price": 1}, headers=key)
    assert _is_problem(changed, 400)["errors"][0]["field"] == "Idempotency-Key"
    # a refusal is an answer too: the same bad request with its key gets the same problem
    bad = {"spec": _bounds(WEEKDAY_SPEC, "-1"), **REQUEST}
    refusals = [
        c.call("Lab", "POST", "/requests", json=bad, headers={"Idempotency-Key": "bad-1"})
        for _ in range(2)
    ]
    assert [r.status_code for r in refusals] == [400, 400]
    assert refusals[1].headers["idempotent-replayed"] == "true"
    assert refusals[1].headers["content-type"] == PROBLEM
    assert refusals[0].json() == refusals[1].json()
    assert _count(c, DataRequest) == before + 1


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_two_deliveries_at_once_with_one_key_have_one_effect(
    tmp_path: Path, db_url: str | None
) -> None:
    coop = build(tmp_path, database_url=db_url)
    try:
        rid = _passed(coop)
        barrier = threading.Barrier(2)
        answers: list[Any] = []
        headers = {
            "Authorization": f"Bearer {coop.secrets['steward']}",
            "Idempotency-Key": "both-at-once",
        }

        def send() -> None:
            with TestClient(coop.site.app, base_url="https://localhost") as client:
                barrier.wait(timeout=30)
                answers.append(client.post(f"/api/v1/requests/{rid}/deliver", headers=headers))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(answers) == 2
        fresh = [
            r for r in answers if r.status_code == 200 and "idempotent-replayed" not in r.headers
        ]
        assert len(fresh) == 1 and fresh[0].status_code == 200, [r.text for r in answers]
        paid = fresh[0].json()
        assert paid["state"] == "paid" and paid["payment"]["members_paid"] == 5
        (other,) = [r for r in answers if r is not fresh[0]]
        if other.status_code == 409:
            assert other.headers["retry-after"] == "1"
            assert "still being served" in _is_problem(other, 409)["detail"]
        else:
            assert other.headers["idempotent-replayed"] == "true" and other.json() == paid
        # the retry the 409 asks for gets the first answer
        retry = coop.call("steward", "POST", f"/requests/{rid}/deliver", headers=headers)
        assert retry.headers["idempotent-replayed"] == "true" and retry.json() == paid
        assert _count(coop, LedgerTransaction, LedgerTransaction.request_id == rid) == 1
        assert _count(coop, Release) == 1
        assert _count(coop, BudgetSpend) == 5  # one spend per included member, once
        assert len(_audited(coop, "request.pay", rid)) == 1
        assert len(_audited(coop, "request.claim", rid)) == 1
        assert governance.verify_ledger(coop.home, STEWARD).ok
        assert audit_service.verify_chain(coop.home, STEWARD).ok
    finally:
        coop.site.close()


# --- a cooperative shared by the tests that only read (or add what they count) ----------


@pytest.fixture(scope="module")
def module_coop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coop]:
    c = build(tmp_path_factory.mktemp("api"))
    rid = _passed(c)
    r = c.call("steward", "POST", f"/requests/{rid}/deliver", headers={"Idempotency-Key": "m"})
    assert r.status_code == 200, r.text
    yield c
    c.site.close()


def test_pages_walk_every_item_exactly_once(module_coop: Coop) -> None:
    c = module_coop
    governance.add_buyer(c.home, STEWARD, "Pager", "pager@example.invalid", "DK")
    c.secrets["Pager"] = issue_token(c.home, STEWARD, kind="buyer", holder="Pager").token
    made = []
    for price in range(1_000, 6_000, 1_000):
        r = c.call(
            "Pager", "POST", "/requests", json={"spec": WEEKDAY_SPEC, **REQUEST, "price": price}
        )
        made.append(r.json()["id"])
    walked: list[str] = []
    pages = []
    cursor = None
    while True:
        query = "/requests?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = c.call("Pager", "GET", query).json()
        pages.append(len(page["items"]))
        walked += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == [2, 2, 1]
    assert walked == made[::-1]  # newest first, each exactly once
    everyone = c.call("steward", "GET", "/requests?limit=200").json()
    assert everyone["next"] is None and set(made) <= {i["id"] for i in everyone["items"]}
    for bad in ("zzz", "!!", "eDox", "bzotMQ", "bzoxYQ", "a" * 65):
        r = c.call("Pager", "GET", f"/requests?limit=2&cursor={bad}")
        assert [e["field"] for e in _is_problem(r, 400)["errors"]] == ["cursor"], bad
    for limit in ("0", "201", "two"):
        r = c.call("Pager", "GET", f"/requests?limit={limit}")
        assert [e["field"] for e in _is_problem(r, 400)["errors"]] == ["limit"], limit


def test_the_audit_log_pages_in_order(module_coop: Coop) -> None:
    seqs: list[int] = []
    cursor: str | None = ""
    while cursor is not None:
        page = module_coop.call("auditor", "GET", f"/audit/entries?limit=7{cursor}").json()
        seqs += [e["seq"] for e in page["items"]]
        cursor = f"&cursor={page['next']}" if page["next"] else None
    head = module_coop.call("auditor", "GET", "/audit/head").json()
    assert seqs == list(range(1, head["seq"] + 1))


# --- a member's own things ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "period", "tz"),
    [
        ("", Period(), "UTC"),
        (
            "?period=year&year=2023&tz=Europe/Stockholm",
            Period.parse(None, None, 2023),
            "Europe/Stockholm",
        ),
        (
            "?period=custom&from=2020-01-01&to=2022-06-30",
            Period.parse("2020-01-01", "2022-06-30", None),
            "UTC",
        ),
    ],
    ids=["all time", "a year in a zone", "from-to"],
)
def test_my_insights_are_the_cli_json(
    module_coop: Coop, query: str, period: Period, tz: str
) -> None:
    """What ``tunetrust insights --json`` prints for the member (less its schema_version)."""
    seen = data.insights(module_coop.home, STEWARD, BROWSER, period, min_seconds=30, top=10, tz=tz)
    expected = to_json("insights", seen)
    expected.pop("schema_version")
    by_session = module_coop.browser.get(f"/api/v1/me/insights{query}")
    by_token = module_coop.call(BROWSER, "GET", f"/me/insights{query}")
    assert by_session.status_code == 200, by_session.text
    assert by_session.json() == by_token.json() == expected
    assert expected["listens"] > 0 and expected["tz"] == tz


def test_my_consent_changes_through_the_api(module_coop: Coop) -> None:
    c, name = module_coop, OTHERS[0]
    shown = c.call(name, "GET", "/me/consent").json()
    assert shown["in_force"] == {"research": True}  # purposes never decided are not in force
    assert shown["purposes"] == [
        "research",
        "ai-training",
        "commercial-analytics",
        "member-insights",
    ]
    granted = c.call(name, "PUT", "/me/consent/ai-training", json={"granted": True})
    assert granted.json() == {
        "member": name,
        "purpose": "ai-training",
        "granted": True,
        "changed": True,
    }
    again = c.call(name, "PUT", "/me/consent/ai-training", json={"granted": True})
    assert again.json()["changed"] is False
    withdrawn = c.call(name, "PUT", "/me/consent/ai-training", json={"granted": False})
    assert withdrawn.json()["changed"] is True
    after = c.call(name, "GET", "/me/consent").json()
    assert after["in_force"]["ai-training"] is False and after["in_force"]["research"] is True
    assert [(h["purpose"], h["granted"]) for h in after["history"]] == [
        ("research", True),
        ("ai-training", True),
        ("ai-training", False),
    ]
    assert {h["by"] for h in after["history"]} == {after["history"][0]["by"]}  # as themselves
    assert after["history"][0]["by"].startswith("member:")  # by pseudonym, not name
    assert after == members.consent_history(c.home, STEWARD, name).model_dump(mode="json")
    unknown = c.call(name, "PUT", "/me/consent/marketing", json={"granted": True})
    assert "no purpose 'marketing'" in _is_problem(unknown, 404)["detail"]


def test_my_statement_and_releases_after_a_delivery(module_coop: Coop) -> None:
    c = module_coop
    (rel,) = c.call(BROWSER, "GET", "/me/releases").json()["items"]
    assert (rel["purpose"], rel["epsilon"], rel["buyer"]) == ("research", "0.5", "Lab")
    statement = c.call(BROWSER, "GET", "/me/statement").json()
    assert statement == members.member_statement(c.home, STEWARD, BROWSER).model_dump(mode="json")
    (line,) = statement["lines"]
    assert (
        line["amount"] == rel["payout"] and line["memo"] == f"sale of request {rel['request'][:12]}"
    )
    assert line["amount"]["amount"] > 0 and line["amount"]["currency"] == "EUR"


# --- a crash is a problem too -----------------------------------------------------------


def test_a_crash_in_a_route_is_a_problem_that_says_nothing_of_it(
    module_coop: Coop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{BROWSER} at 198.51.100.7")

    monkeypatch.setattr(governance, "rules", crash)
    headers = {"Authorization": f"Bearer {module_coop.secrets['auditor']}"}
    with TestClient(
        module_coop.site.app, base_url="https://localhost", raise_server_exceptions=False
    ) as client:
        r = client.get("/api/v1/rules", headers=headers)
    problem = _is_problem(r, 500)
    assert problem["type"] == "urn:tunetrust:problem:server-error"
    assert BROWSER not in r.text and "198.51.100.7" not in r.text


# --- tokens -----------------------------------------------------------------------------------


def test_a_revoked_token_stops_at_once(module_coop: Coop) -> None:
    c = module_coop
    before = len(audit_service.entries(c.home, STEWARD))
    made = c.call("Lab", "POST", "/tokens", json={"kind": "buyer", "holder": "Lab", "label": "ci"})
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["info"]["id"]
    c.secrets["Lab ci"] = secret
    assert c.call("Lab ci", "GET", "/me").json()["token"] == token_id
    listed = {t["id"]: t for t in c.call("Lab", "GET", "/tokens").json()["items"]}
    assert listed[token_id]["label"] == "ci" and listed[token_id]["revoked"] is None
    revoked = c.call("Lab", "POST", f"/tokens/{token_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is not None
    stopped = c.call("Lab ci", "GET", "/me")
    assert "revoked" in _is_problem(stopped, 401)["detail"]
    assert stopped.headers["www-authenticate"] == 'Bearer realm="tunetrust"'
    # a member's personal token, revoked by the service: stops at once too
    name = OTHERS[1]
    issued = issue_token(c.home, Actor.member(name), kind="member", holder=name)
    c.secrets["personal"] = issued.token
    assert c.call("personal", "GET", "/me/consent").json()["member"] == name
    revoke_token(c.home, Actor.member(name), issued.info.id)
    _is_problem(c.call("personal", "GET", "/me/consent"), 401)
    newer = audit_service.entries(c.home, STEWARD)[before:]
    assert [e.action for e in newer if e.action.startswith("token.")] == [
        "token.issue",
        "token.revoke",
        "token.issue",
        "token.revoke",
    ]
    assert [e.actor for e in newer if e.action == "token.revoke"][0] == "buyer:Lab"
    assert all(name not in e.actor + e.subject for e in newer)  # the member by pseudonym


def test_a_token_secret_is_shown_once(module_coop: Coop) -> None:
    c = module_coop
    made = c.call("Lab", "POST", "/tokens", json={"kind": "buyer", "holder": "Lab"}).json()
    for path in ("/tokens", "/me"):
        assert made["token"] not in c.call("Lab", "GET", path).text
    everyone = c.call("steward", "GET", "/tokens?limit=200")
    assert all(secret not in everyone.text for secret in c.secrets.values())
    holders = {t["holder"] for t in everyone.json()["items"] if t["kind"] == "member"}
    assert holders == {"a member"}  # the console is pseudonymous
    created = datetime.fromisoformat(made["info"]["created"])
    expires = datetime.fromisoformat(made["info"]["expires"])
    # the default life of a token (90 days), but never past the token that made it
    assert timedelta(days=89) < expires - created <= timedelta(days=90)
