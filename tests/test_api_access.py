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
from urllib.parse import parse_qs, urlsplit

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
from tunetrust.services import governance
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
    scopes: frozenset[str] = frozenset()
    client: TestClient | None = None
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

    anon = s.client()
    scopes = api.tokens.SCOPES
    callers = {
        "anonymous": Caller("anonymous", None, client=anon),
        "member": Caller(
            "member",
            "member",
            frozenset(scopes["member"]),
            client=browser,
            csrf=form(browser, "/"),
        ),
        "other member": Caller(
            "other member",
            "member",
            frozenset(scopes["member"]),
            token=token("member", OTHER_MEMBER)[0],
        ),
        "steward": Caller(
            "steward", "steward", frozenset(scopes["steward"]), token=token("steward", "Sam")[0]
        ),
        "auditor": Caller(
            "auditor", "auditor", frozenset(scopes["auditor"]), token=token("auditor", "Aud")[0]
        ),
        "buyer": Caller(
            "buyer", "buyer", frozenset(scopes["buyer"]), token=token("buyer", "Lab")[0]
        ),
        "other buyer": Caller(
            "other buyer",
            "buyer",
            frozenset(scopes["buyer"]),
            token=token("buyer", "Other Lab")[0],
        ),
        "revoked token": Caller("revoked token", None, token=revoked),
        "expired token": Caller("expired token", None, token=expired),
        "scoped token": Caller(
            "scoped token",
            "buyer",
            frozenset({"requests:read"}),
            token=token("buyer", "Lab", ["requests:read"])[0],
        ),
    }
    for c in callers.values():
        c.client = c.client or anon
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
    object the path names)."""
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
    return "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def _body(caller: Caller, route: str) -> dict[str, Any] | None:
    """A body the route can use, written for this caller (a token of their own kind)."""
    own = {"member": "member", "buyer": "buyer"}.get(caller.kind or "", "auditor")
    holder = _holder(caller) if caller.kind == "buyer" else "Aud"
    return {
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
    }.get(route)


def _call(coop: Coop, caller: Caller, route: str) -> Any:
    method = route.split(" ", 1)[0]
    headers = caller.headers(method)
    if route.endswith("/deliver"):
        headers["Idempotency-Key"] = f"matrix-{caller.label}"
    assert caller.client is not None
    return caller.client.request(
        method, _path(coop, route), headers=headers, json=_body(caller, route)
    )


# --- what an admitted caller is shown: the object asked for, with its real values ------


def _holder(caller: Caller) -> str:
    return {"buyer": "Lab", "scoped token": "Lab", "other buyer": "Other Lab"}.get(
        caller.label, {"steward": "Sam", "auditor": "Aud"}.get(caller.label, "")
    )


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
    "GET /me/insights": lambda c, w, b: _ok(
        (b["period"], b["tz"], b["listens"]) == ("the beginning – today", "UTC", 150), b
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
            assert scope in api.tokens.SCOPES[kind], (route, kind, scope)


def test_the_live_app_serves_the_same_document(coop: Coop) -> None:
    served = coop.callers["anonymous"].client.get("/api/v1/openapi.json")  # type: ignore[union-attr]
    assert served.status_code == 200
    assert {f"{m.upper()} {p}" for p, i in served.json()["paths"].items() for m in i} == set(ROUTES)


@pytest.mark.parametrize("route", sorted(set(ROUTES) - PUBLIC))
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
    if want < 300:
        assert r.headers["content-type"] == "application/json"
        SHOWN[route](coop, caller, r.json())  # the object asked for is the one shown


def test_other_buyer_never_sees_labs_request_or_release(coop: Coop) -> None:
    other = coop.callers["other buyer"]
    assert other.client is not None
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
    assert lab.client is not None
    mine = lab.client.get("/api/v1/requests?limit=200", headers=lab.headers("GET")).json()
    assert coop.delivered in {item["id"] for item in mine["items"]}
    assert {item["buyer"] for item in mine["items"]} == {"Lab"}


def test_a_member_session_state_change_needs_its_csrf_token(coop: Coop) -> None:
    member = coop.callers["member"]
    assert member.client is not None
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
    assert lab.client is not None
    r = lab.client.get(f"/api/v1/requests/{coop.delivered}/release", headers=lab.headers("GET"))
    assert r.status_code == 200, r.text
    links: list[dict[str, Any]] = r.json()["links"]
    assert {link["name"] for link in links} >= {"data.csv", "manifest.json"}
    return links


def _served_path(url: str) -> str:
    """A link's path under the API (see the xfail below: links miss the mount prefix)."""
    parts = urlsplit(url)
    tail = parts.path.split("/downloads/", 1)[1]
    return f"/api/v1/downloads/{tail}?{parts.query}"


@pytest.mark.xfail(
    strict=True,
    reason="web/api.py request_release builds links from request.base_url, which under the "
    "/api/v1 mount is the outer app's root: links read https://localhost/downloads/… (404)",
)
def test_a_download_link_works_as_given(coop: Coop) -> None:
    link = _links(coop)[0]
    assert link["url"].startswith(f"{ORIGIN}/api/v1/downloads/{coop.delivered}/")
    r = coop.site.client().get(link["url"].removeprefix(ORIGIN))
    assert r.status_code == 200


def test_a_valid_link_works_without_a_token(coop: Coop) -> None:
    anon = coop.site.client()
    for link in _links(coop):
        r = anon.get(_served_path(link["url"]))
        assert r.status_code == 200, (link["name"], r.text[:200])
        assert hashlib.sha256(r.content).hexdigest() == link["sha256"]
        assert len(r.content) == link["bytes"]
        assert r.headers["content-disposition"] == f'attachment; filename="{link["name"]}"'
        assert link["expires"] - time.time() <= api.LINK_SECONDS


def test_a_tampered_or_expired_link_is_refused(coop: Coop) -> None:
    anon = coop.site.client()
    link = next(x for x in _links(coop) if x["name"] == "data.csv")
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["url"]).query).items()}
    base = f"/api/v1/downloads/{coop.delivered}"
    signature, expires = query["signature"], int(query["expires"])
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    past = int(time.time()) - 1
    refused = {
        "signature tampered": f"{base}/data.csv?expires={expires}&signature={flipped}",
        "expires moved": f"{base}/data.csv?expires={expires + 3600}&signature={signature}",
        "another file": f"{base}/data.parquet?expires={expires}&signature={signature}",
        "another request": f"/api/v1/downloads/{coop.passed}/data.csv"
        f"?expires={expires}&signature={signature}",
        "expired, signed": f"{base}/data.csv?expires={past}"
        f"&signature={api._signature(coop.site.home, coop.delivered, 'data.csv', past)}",
    }
    for why, path in refused.items():
        r = anon.get(path)
        assert r.status_code == 403, (why, r.status_code)
        assert r.headers["content-type"] == PROBLEM
        assert "not valid or has expired" in r.json()["detail"], why
        assert set(r.json()) == {"type", "title", "status", "detail"}  # no file, a problem


def test_a_signed_name_outside_the_release_is_not_found(coop: Coop) -> None:
    anon = coop.site.client()
    later = int(time.time()) + 60
    for name in ("members.csv", "master.key", "..", "data.csv.bak"):
        sig = api._signature(coop.site.home, coop.delivered, name, later)
        r = anon.get(f"/api/v1/downloads/{coop.delivered}/{name}?expires={later}&signature={sig}")
        assert r.status_code == 404, (name, r.status_code, r.text[:200])
        assert r.headers["content-type"] == PROBLEM
    sig = api._signature(coop.site.home, coop.passed, "data.csv", later)
    r = anon.get(f"/api/v1/downloads/{coop.passed}/data.csv?expires={later}&signature={sig}")
    # a signed link to a request not (yet) delivered in the matrix: nothing to download
    assert r.status_code in (404, 409) or r.content


def test_a_link_without_its_query_is_a_problem(coop: Coop) -> None:
    r = coop.site.client().get(f"/api/v1/downloads/{coop.delivered}/data.csv")
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert {e["field"] for e in r.json()["errors"]} == {"expires", "signature"}
