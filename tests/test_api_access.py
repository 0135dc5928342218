"""Who may call each route of ``/api/v1``: every route × every kind of caller.

``web.api.API_ACCESS`` says which kinds of caller each route admits and the scope each
needs; the matrix reads the routes from the app's real OpenAPI document, computes the
answer each caller should get from that table, and calls the route with real ids from a
small cooperative (members with imported listens, buyer Lab's delivered request). The
signed download links are tested on their own: the link is the permission.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    WEEKDAY_SPEC,
    consenting_members,
    export_zip,
    lab_request,
    passed_request,
)
from tests.web_support import ORIGIN, Site, form, site
from tunetrust.coop import tokens
from tunetrust.services import audit as audit_service
from tunetrust.services import governance, releases
from tunetrust.services import members as member_service
from tunetrust.services.data import import_contribution
from tunetrust.services.models import Actor
from tunetrust.services.tokens import issue_token, revoke_token
from tunetrust.store.models import ApiToken
from tunetrust.web import api
from tunetrust.web.api import API_ACCESS, create_api

STEWARD = Actor.steward()
PROBLEM = "application/problem+json"
CHALLENGE = 'Bearer realm="tunetrust"'
MEMBER, OTHER_MEMBER = "Annika Lindqvist", "Bertil Ekdahl"


@dataclass
class Caller:
    """One way of calling the API: a kind, its scopes, and what it sends."""

    label: str
    kind: str | None  # None: no valid credentials (anonymous, revoked, expired)
    scopes: frozenset[str]
    client: TestClient
    token: str | None = None
    csrf: str | None = None  # a browser session's token, sent on state changes

    def headers(self, method: str) -> dict[str, str]:
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.csrf and method != "GET":
            sent["X-CSRF-Token"] = self.csrf
        return sent


@dataclass
class Coop:
    """The cooperative every matrix cell calls, with the real ids it uses."""

    site: Site
    delivered: str  # Lab's request, delivered: its release can be read and downloaded
    release: str
    passed: str  # Lab's request, passed: the steward's delivery in the matrix
    draft: str  # a draft: the steward opens it
    closing: str  # open: the steward closes it
    voting: str  # open: the members vote on it
    invitation: str
    spare_token: str  # the member's own personal token, revoked in the matrix
    callers: dict[str, Caller] = field(default_factory=dict)


# the API's document, read before any home exists (it needs none) to list the routes
DOC = create_api(None).openapi()  # type: ignore[arg-type]
ROUTES = sorted(f"{m.upper()} {p}" for p, item in DOC["paths"].items() for m in item)
PUBLIC = {"GET /downloads/{request_id}/{name}"}  # a signed link is the permission
BY = "buyer:Lab"  # whom a link in these tests was given to
CALLERS = [
    "anonymous",
    "member",
    "other member",
    "steward",
    "auditor",
    "buyer",
    "other buyer",
    "revoked token",
    "expired token",
    "scoped token",
]


def _member_with_data(s: Site, root: Path, name: str, seed: int) -> TestClient:
    """A person who joins through the web app (a passkey) and imports an export."""
    client, _ = s.join(name)
    me = Actor.member(name)
    import_contribution(s.home, me, name, [export_zip(root, "extended-c", 150, seed)])
    member_service.set_consent(s.home, me, name, "research", granted=True)
    return client


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coop]:
    root = tmp_path_factory.mktemp("api-access")
    s = site(root)
    home = s.home
    browser = _member_with_data(s, root, MEMBER, 11)
    _member_with_data(s, root, OTHER_MEMBER, 12)
    voters = [MEMBER, OTHER_MEMBER, *consenting_members(home, root, 3, listens=150)]
    delivered = passed_request(home, voters, 40_000)
    release = governance.deliver(home, STEWARD, delivered).release
    assert release is not None
    passed = passed_request(home, voters, 30_000)
    draft = lab_request(home, 10_000, opened=False)
    closing = lab_request(home, 10_000)
    voting = lab_request(home, 10_000)
    governance.add_buyer(home, STEWARD, "Other Lab", "other@example.invalid", "NO")

    def token(kind: str, holder: str, scopes: list[str] | None = None) -> tuple[str, str]:
        issued = issue_token(home, STEWARD, kind=kind, holder=holder, scopes=scopes)
        return issued.token, issued.info.id

    revoked, revoked_id = token("buyer", "Lab")
    revoke_token(home, STEWARD, revoked_id)
    expired, expired_id = token("buyer", "Lab")
    with home.transaction() as db:
        row = db.get(ApiToken, expired_id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    spare = issue_token(home, Actor.member(MEMBER), kind="member", holder=MEMBER).info.id

    anon = s.client()  # every token caller sends from this one cookie-less client
    full = {kind: frozenset(scopes) for kind, scopes in tokens.SCOPES.items()}

    def bearer(label: str, kind: str, holder: str, scopes: list[str] | None = None) -> Caller:
        granted = frozenset(scopes) if scopes else full[kind]
        return Caller(label, kind, granted, anon, token(kind, holder, scopes)[0])

    session = Caller("member", "member", full["member"], browser, None, form(browser, "/"))
    callers = {
        "anonymous": Caller("anonymous", None, frozenset(), anon),
        "member": session,  # signed in with a passkey: the browser's session
        "other member": bearer("other member", "member", OTHER_MEMBER),  # a personal token
        "steward": bearer("steward", "steward", "Sam"),
        "auditor": bearer("auditor", "auditor", "Aud"),
        "buyer": bearer("buyer", "buyer", "Lab"),
        "other buyer": bearer("other buyer", "buyer", "Other Lab"),
        "revoked token": Caller("revoked token", None, frozenset(), anon, revoked),
        "expired token": Caller("expired token", None, frozenset(), anon, expired),
        "scoped token": bearer("scoped token", "buyer", "Lab", ["requests:read"]),
    }
    assert list(callers) == CALLERS
    invitation = member_service.invite(home, STEWARD).id
    yield Coop(s, delivered, release, passed, draft, closing, voting, invitation, spare, callers)
    s.close()


# --- what each cell should answer --------------------------------------------------------

# the kind of object a caller reaches through someone else's id: not found, never shown
NOT_THEIRS = {
    ("other buyer", "GET /requests/{request_id}"),
    ("other buyer", "GET /requests/{request_id}/plan"),
    ("other buyer", "GET /requests/{request_id}/release"),
    # the spare token is the member's own
    ("other member", "POST /tokens/{token_id}/revoke"),
    ("buyer", "POST /tokens/{token_id}/revoke"),
    ("other buyer", "POST /tokens/{token_id}/revoke"),
    ("scoped token", "POST /tokens/{token_id}/revoke"),
}


def _success(route: str) -> int:
    method, path = route.split(" ", 1)
    answers = DOC["paths"][path][method.lower()]["responses"]
    return min(int(s) for s in answers if s.startswith("2"))


def expected(caller: Caller, route: str) -> int:
    """The status ``caller`` should get on ``route``, from API_ACCESS alone (and whose
    object the path names). A signed link works for anyone, token or none."""
    if route in PUBLIC:
        return 200
    if caller.kind is None:
        return 401
    needed = API_ACCESS[route].get(caller.kind)
    if needed is None or needed not in caller.scopes:
        return 403
    if (caller.label, route) in NOT_THEIRS:
        return 404
    return _success(route)


def _path(coop: Coop, route: str) -> str:
    """The route's path with real ids."""
    ids = {
        "release_id": coop.release,
        "invitation_id": coop.invitation,
        "token_id": coop.spare_token,
        "purpose": "research",
    }
    by_route = {
        "/requests/{request_id}/open": coop.draft,
        "/requests/{request_id}/close": coop.closing,
        "/requests/{request_id}/deliver": coop.passed,
        "/me/votes/{request_id}": coop.voting,
    }
    path = route.split(" ", 1)[1]
    ids["request_id"] = by_route.get(path, coop.delivered)
    if route in PUBLIC:
        ids["name"] = "data.csv"
        later = int(time.time()) + 60
        sig = api._signature(coop.site.home, coop.delivered, "data.csv", later, BY)
        path += "?" + urlencode({"expires": later, "by": BY, "signature": sig})
    return "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def _body(caller: Caller, route: str) -> dict[str, Any] | None:
    """A body the route can use, written for this caller (a token of their own kind)."""
    own = {"member": "member", "buyer": "buyer"}.get(caller.kind or "", "auditor")
    holder = _holder(caller) if caller.kind == "buyer" else "Aud"
    bodies: dict[str, dict[str, Any]] = {
        "POST /specs/check": {"spec": WEEKDAY_SPEC},
        "POST /requests": {
            "spec": WEEKDAY_SPEC,
            "price": 5_000,
            "currency": "EUR",
            "licence": "research-only",
        },
        "POST /requests/{request_id}/close": {"early_reason": "the matrix closes it"},
        "POST /invitations": {"days": 2},
        "POST /tokens": {"kind": own, "holder": holder, "label": "matrix", "days": 1},
        "PUT /me/consent/{purpose}": {"granted": True},
        "PUT /me/votes/{request_id}": {"choice": "yes"},
    }
    return bodies.get(route)


def _call(coop: Coop, caller: Caller, route: str) -> Any:
    method = route.split(" ", 1)[0]
    headers = caller.headers(method)
    if route.endswith("/deliver"):
        headers["Idempotency-Key"] = f"matrix-{caller.label}"
    return caller.client.request(
        method, _path(coop, route), headers=headers, json=_body(caller, route)
    )


# --- what an admitted caller is shown: the object asked for, with its real values ------


def _holder(caller: Caller) -> str:
    return {"buyer": "Lab", "scoped token": "Lab", "other buyer": "Other Lab"}.get(
        caller.label, {"steward": "Sam", "auditor": "Aud"}.get(caller.label, "")
    )


def _delivery(coop: Coop) -> dict[str, Any]:
    return releases.delivery(coop.site.home, STEWARD, coop.delivered).model_dump(mode="json")


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(body) == {"items", "next"}
    items: list[dict[str, Any]] = body["items"]
    return items


def _me(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert body["kind"] == caller.kind and sorted(body["scopes"]) == sorted(caller.scopes)
    assert body["name"] == (None if caller.kind == "member" else _holder(caller))
    assert body["via"] == ("session" if caller.csrf else "token")


def _plan(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert body["purpose"] == "research" and body["epsilon_per_member"] == "0.5"
    assert body["members_included"] == 5 and body["outcome"]["keys_declared"] == 7


def _request_shown(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert (body["id"], body["buyer"], body["state"]) == (coop.delivered, "Lab", "paid")
    assert body["price"]["amount"] == 40_000 and body["release"] == coop.release


def _requests(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    buyers = {item["buyer"] for item in _items(body)}
    if caller.kind == "buyer":  # their own only (Other Lab's may not be proposed yet)
        assert buyers <= {_holder(caller)} and (buyers or caller.label == "other buyer")
    else:
        assert "Lab" in buyers


def _release(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    delivery = body["delivery"]
    assert (delivery["request"], delivery["release"]) == (coop.delivered, coop.release)
    assert [f["name"] for f in delivery["files"]] == [link["name"] for link in body["links"]]


def _submitted(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert (body["buyer"], body["state"], body["purpose"]) == (_holder(caller), "draft", "research")


def _token_issued(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert body["token"].startswith("tt_") and body["info"]["label"] == "matrix"
    assert body["info"]["kind"] == {"steward": "auditor"}.get(caller.label, caller.kind)


def _tokens(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    kinds = {item["kind"] for item in _items(body)}
    assert kinds <= ({caller.kind} if caller.kind != "steward" else set(api.KINDS)), kinds
    if caller.label == "member":
        assert coop.spare_token in {item["id"] for item in body["items"]}


def _revoked(coop: Coop, caller: Caller, body: dict[str, Any]) -> None:
    assert body["id"] == coop.spare_token and body["revoked"] is not None


def _ok(condition: Any, body: Any) -> None:
    assert condition, str(body)[:500]


SHOWN: dict[str, Any] = {
    "GET /me": _me,
    "POST /specs/check": _plan,
    "GET /requests/{request_id}/plan": _plan,
    "GET /requests": _requests,
    "GET /requests/{request_id}": _request_shown,
    "GET /requests/{request_id}/release": _release,
    "POST /requests": _submitted,
    "POST /requests/{request_id}/open": lambda c, w, b: _ok(
        (b["id"], b["state"], b["eligible"]) == (c.draft, "open", 5), b
    ),
    "POST /requests/{request_id}/close": lambda c, w, b: _ok(
        (b["id"], b["early_reason"]) == (c.closing, "the matrix closes it"), b
    ),
    "POST /requests/{request_id}/deliver": lambda c, w, b: _ok(
        (b["id"], b["state"], b["payment"]["price"]) == (c.passed, "paid", 30_000), b
    ),
    "GET /members": lambda c, w, b: _ok(len(_items(b)) == 5, b),
    "GET /jobs": lambda c, w, b: _ok(isinstance(_items(b), list), b),
    "POST /invitations": lambda c, w, b: _ok(
        b["link"].startswith(f"{ORIGIN}/") and not b["reusable"], b
    ),
    "POST /invitations/{invitation_id}/close": lambda c, w, b: _ok(b == {"id": c.invitation}, b),
    "GET /tokens": _tokens,
    "POST /tokens": _token_issued,
    "POST /tokens/{token_id}/revoke": _revoked,
    "GET /audit/head": lambda c, w, b: _ok(b["seq"] > 10 and len(b["entry_hash"]) == 64, b),
    "GET /audit/verify": lambda c, w, b: _ok((b["ok"] and b["entries"] > 10), b),
    "GET /audit/entries": lambda c, w, b: _ok(
        [e["seq"] for e in _items(b)] == list(range(1, len(b["items"]) + 1)), b
    ),
    "GET /releases/{release_id}/manifest": lambda c, w, b: _ok(b["id"] == c.release, b),
    "GET /releases/{release_id}/verify": lambda c, w, b: _ok(
        (b["release"], b["ok"], b["problems"]) == (c.release, True, []), b
    ),
    "GET /ledger": lambda c, w, b: _ok(any(x["account"] == "treasury" for x in _items(b)), b),
    "GET /ledger/verify": lambda c, w, b: _ok((b["ok"] and not b["problems"]), b),
    "GET /rules": lambda c, w, b: _ok(b["rules"]["min_members"] == 2 and b["history"], b),
    "GET /me/insights": lambda c, w, b: _ok(  # all time: titled by the data's own days
        (b["period"], b["tz"], b["listens"])
        == (f"{b['first_listen'][:10]} – {b['last_listen'][:10]}", "UTC", 150),
        b,
    ),
    "GET /me/consent": lambda c, w, b: _ok(b["in_force"]["research"] is True, b),
    "PUT /me/consent/{purpose}": lambda c, w, b: _ok(
        (b["purpose"], b["granted"], b["changed"]) == ("research", True, False), b
    ),
    "GET /me/requests": lambda c, w, b: _ok(c.voting in {x["request"]["id"] for x in _items(b)}, b),
    "PUT /me/votes/{request_id}": lambda c, w, b: _ok(
        (b["request"], b["choice"]) == (c.voting, "yes"), b
    ),
    "GET /me/statement": lambda c, w, b: _ok([t["currency"] for t in b["totals"]] == ["EUR"], b),
    "GET /me/budget": lambda c, w, b: _ok("research" in {x["purpose"] for x in _items(b)}, b),
    "GET /me/releases": lambda c, w, b: _ok(c.release in {x["id"] for x in _items(b)}, b),
}


def test_every_route_has_an_access_entry_and_every_entry_a_route() -> None:
    assert len(ROUTES) > 30, ROUTES
    assert set(ROUTES) - set(API_ACCESS) == set(), "routes without an entry in API_ACCESS"
    assert set(API_ACCESS) - set(ROUTES) == set(), "API_ACCESS entries without a route"
    assert set(SHOWN) == set(ROUTES) - PUBLIC, "a route without a check of what it shows"
    for route, kinds in API_ACCESS.items():
        if route in PUBLIC:
            assert kinds == {"link": "a signed link"}
            continue
        assert kinds, route
        for kind, scope in kinds.items():
            assert scope in tokens.SCOPES[kind], (route, kind, scope)


def test_the_live_app_serves_the_same_document(coop: Coop) -> None:
    served = coop.callers["anonymous"].client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert {f"{m.upper()} {p}" for p, i in served.json()["paths"].items() for m in i} == set(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("who", CALLERS)
def test_matrix(coop: Coop, who: str, route: str) -> None:
    caller = coop.callers[who]
    want = expected(caller, route)
    r = _call(coop, caller, route)
    assert r.status_code == want, (who, route, r.status_code, r.text[:300])
    if want >= 400:
        assert r.headers["content-type"] == PROBLEM, (who, route)
        problem = r.json()
        assert problem["status"] == want and problem["type"].startswith("urn:tunetrust:problem:")
        assert problem["detail"]
    if want == 401:
        assert r.headers["www-authenticate"] == CHALLENGE
        assert problem["type"] == "urn:tunetrust:problem:unauthenticated"
    else:
        assert "www-authenticate" not in r.headers
    if want == 403:
        assert problem["type"] == "urn:tunetrust:problem:forbidden"
        if caller.kind not in API_ACCESS[route]:
            assert f"you are signed in as a {caller.kind}" in problem["detail"]
        else:
            assert "lacks the scope" in problem["detail"]
    if route in PUBLIC:  # the file itself, as the delivery lists it
        (listed,) = [f for f in _delivery(coop)["files"] if f["name"] == "data.csv"]
        assert hashlib.sha256(r.content).hexdigest() == listed["sha256"]
        assert r.headers["content-type"].startswith("text/csv")
    elif want < 300:
        assert r.headers["content-type"] == "application/json"
        SHOWN[route](coop, caller, r.json())  # the object asked for is the one shown


def test_other_buyer_never_sees_labs_request_or_release(coop: Coop) -> None:
    other = coop.callers["other buyer"]
    for path in ("", "/plan", "/release"):
        r = other.client.get(
            f"/api/v1/requests/{coop.delivered}{path}", headers=other.headers("GET")
        )
        assert r.status_code == 404, (path, r.text[:200])
        assert r.json()["type"] == "urn:tunetrust:problem:not-found"
    listed = other.client.get("/api/v1/requests", headers=other.headers("GET")).json()
    assert all(item["buyer"] == "Other Lab" for item in listed["items"])
    assert coop.delivered not in {item["id"] for item in listed["items"]}
    lab = coop.callers["buyer"]
    mine = lab.client.get("/api/v1/requests?limit=200", headers=lab.headers("GET")).json()
    assert coop.delivered in {item["id"] for item in mine["items"]}
    assert {item["buyer"] for item in mine["items"]} == {"Lab"}


def test_a_member_session_state_change_needs_its_csrf_token(coop: Coop) -> None:
    member = coop.callers["member"]
    body = {"granted": True}
    bare = member.client.put("/api/v1/me/consent/research", json=body)
    assert bare.status_code == 403 and bare.headers["content-type"] == PROBLEM
    assert "X-CSRF-Token" in bare.json()["detail"]
    wrong = member.client.put(
        "/api/v1/me/consent/research", json=body, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status_code == 403
    right = member.client.put(
        "/api/v1/me/consent/research", json=body, headers={"X-CSRF-Token": member.csrf or ""}
    )
    assert right.status_code == 200 and right.json()["purpose"] == "research"
    assert member.client.get("/api/v1/me").json()["via"] == "session"  # a read needs none


# --- signed download links ---------------------------------------------------------------


def _links(coop: Coop) -> list[dict[str, Any]]:
    lab = coop.callers["buyer"]
    r = lab.client.get(f"/api/v1/requests/{coop.delivered}/release", headers=lab.headers("GET"))
    assert r.status_code == 200, r.text
    links: list[dict[str, Any]] = r.json()["links"]
    assert {link["name"] for link in links} >= {"data.csv", "manifest.json"}
    return links


def _served_path(url: str) -> str:
    """A link's path and query, as the test client (on the link's origin) asks for it."""
    assert url.startswith(f"{ORIGIN}/api/v1/downloads/"), url
    return url.removeprefix(ORIGIN)


def test_a_valid_link_works_as_given_without_a_token(coop: Coop) -> None:
    anon = coop.site.client()
    listed = {f["name"]: f for f in _delivery(coop)["files"]}
    for link in _links(coop):
        assert link["url"].startswith(f"{ORIGIN}/api/v1/downloads/{coop.delivered}/")
        r = anon.get(_served_path(link["url"]))
        assert r.status_code == 200, (link["name"], r.text[:200])
        assert hashlib.sha256(r.content).hexdigest() == link["sha256"]
        assert link["sha256"] == listed[link["name"]]["sha256"]
        assert len(r.content) == link["bytes"]
        assert r.headers["content-disposition"] == f'attachment; filename="{link["name"]}"'
        left = datetime.fromisoformat(link["expires"]) - datetime.now(UTC)
        assert timedelta(0) < left <= timedelta(seconds=api.LINK_SECONDS)
        assert "www-authenticate" not in r.headers


def test_a_tampered_or_expired_link_is_refused(coop: Coop) -> None:
    anon = coop.site.client()
    link = next(x for x in _links(coop) if x["name"] == "data.csv")
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["url"]).query).items()}
    base = f"/api/v1/downloads/{coop.delivered}"
    signature, expires, by = query["signature"], int(query["expires"]), query["by"]
    assert by == BY  # given to the buyer who asked
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    past = int(time.time()) - 1

    def q(when: int = expires, sig: str = signature, to: str = by) -> str:
        return "?" + urlencode({"expires": when, "by": to, "signature": sig})

    refused = {
        "signature tampered": f"{base}/data.csv" + q(sig=flipped),
        "expires moved": f"{base}/data.csv" + q(when=expires + 3600),
        "given to someone else": f"{base}/data.csv" + q(to="auditor:Aud"),
        "another file": f"{base}/data.parquet" + q(),
        "another request": f"/api/v1/downloads/{coop.passed}/data.csv" + q(),
        "expired, signed": f"{base}/data.csv"
        + q(when=past, sig=api._signature(coop.site.home, coop.delivered, "data.csv", past, by)),
    }
    for why, path in refused.items():
        r = anon.get(path)
        assert r.status_code == 403, (why, r.status_code)
        assert r.headers["content-type"] == PROBLEM
        said = "has expired" if why.startswith("expired") else "is not valid"
        assert f"this download link {said}" in r.json()["detail"], (why, r.json())
        assert set(r.json()) == {"type", "title", "status", "detail"}  # no file, a problem


def test_a_signed_name_outside_the_release_is_not_found(coop: Coop) -> None:
    anon = coop.site.client()
    later = int(time.time()) + 60

    def signed(request_id: str, name: str) -> Any:
        sig = api._signature(coop.site.home, request_id, name, later, BY)
        query = urlencode({"expires": later, "by": BY, "signature": sig})
        return anon.get(f"/api/v1/downloads/{request_id}/{name}?{query}")

    for name in ("members.csv", "master.key", "data.csv.bak", "SHA256SUMS.sig"):
        r = signed(coop.delivered, name)
        assert r.status_code == 404, (name, r.status_code, r.text[:200])
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == f"no file {name!r} in this release"
    missing = signed("0" * 32, "data.csv")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    draft = signed(coop.draft, "data.csv")  # signed, but nothing delivered to download
    assert draft.status_code == 409 and "once it is delivered" in draft.json()["detail"]


def test_a_link_without_its_query_is_a_problem(coop: Coop) -> None:
    r = coop.site.client().get(f"/api/v1/downloads/{coop.delivered}/data.csv")
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert {e["field"] for e in r.json()["errors"]} == {"expires", "by", "signature"}


def test_a_download_is_audited_as_whoever_got_the_link(coop: Coop) -> None:
    auditor = coop.callers["auditor"]
    r = auditor.client.get(
        f"/api/v1/requests/{coop.delivered}/release", headers=auditor.headers("GET")
    )
    link = next(x for x in r.json()["links"] if x["name"] == "schema.json")
    assert coop.site.client().get(_served_path(link["url"])).status_code == 200
    entries = audit_service.entries(coop.site.home, STEWARD)
    last = [e for e in entries if e.action == "release.download"][-1]
    assert last.subject == coop.delivered
    assert last.actor == "auditor:Aud"


# --- scopes bound what a token can do, including the tokens it makes ---------------------

NARROW = [("buyer", "Lab", ["requests:read"]), ("member", OTHER_MEMBER, ["me:read"])]


@pytest.mark.parametrize(("kind", "holder", "scopes"), NARROW)
def test_a_narrow_token_cannot_make_a_wider_one(
    coop: Coop, kind: str, holder: str, scopes: list[str]
) -> None:
    narrow = issue_token(coop.site.home, STEWARD, kind=kind, holder=holder, scopes=scopes)
    client = coop.site.client()
    auth = {"Authorization": f"Bearer {narrow.token}"}
    r = client.post("/api/v1/tokens", headers=auth, json={"kind": kind, "holder": holder})
    if r.status_code == 201:
        assert set(r.json()["info"]["scopes"]) <= set(scopes), r.json()["info"]
    else:
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(("kind", "holder", "scopes"), NARROW)
def test_a_read_only_token_cannot_revoke(
    coop: Coop, kind: str, holder: str, scopes: list[str]
) -> None:
    home = coop.site.home
    narrow = issue_token(home, STEWARD, kind=kind, holder=holder, scopes=scopes)
    victim = issue_token(home, STEWARD, kind=kind, holder=holder).info.id
    r = coop.site.client().post(
        f"/api/v1/tokens/{victim}/revoke", headers={"Authorization": f"Bearer {narrow.token}"}
    )
    assert r.status_code == 403, r.text
