"""Tokens over HTTP cannot be turned into more than their holder was given, and what a
review found broken stays mended: a narrow token widening itself (an empty scope list),
outliving itself, an old browser session minting a lasting token, a steward's token
opening a member's data, request ids probed by prefix, a number too large for JSON, an
idempotency key of a long holder name on PostgreSQL, a key left running by a dead
process, a member's tokens kept after erasure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.factories import lab_request
from tests.web_support import ORIGIN, Site, site
from tunetrust.coop import accounts, idempotency
from tunetrust.coop.members import get_member
from tunetrust.errors import InputError
from tunetrust.services import governance, members
from tunetrust.services.models import Actor
from tunetrust.services.tokens import issue_token
from tunetrust.store.home import Home
from tunetrust.store.models import ApiToken, IdempotencyKey, WebSession
from tunetrust.web.security import COOKIE

STEWARD = Actor.steward()
PROBLEM = "application/problem+json"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Site]:
    s = site(tmp_path)
    members.join(s.home, STEWARD, "alice")
    yield s
    s.close()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _made(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    info: dict[str, Any] = r.json()["info"]
    return info


@pytest.mark.parametrize(
    ("kind", "holder", "narrow", "wider"),
    [
        ("member", "alice", ["me:read", "tokens"], "votes:write"),
        ("buyer", "Lab", ["requests:read", "tokens"], "requests:write"),
    ],
)
def test_a_narrow_token_makes_tokens_no_wider_than_itself(
    web: Site, kind: str, holder: str, narrow: list[str], wider: str
) -> None:
    if kind == "buyer":
        governance.add_buyer(web.home, STEWARD, "Lab", "lab@example.invalid", "SE")
    secret = issue_token(web.home, STEWARD, kind=kind, holder=holder, scopes=narrow).token
    c = web.client()
    body = {"kind": kind, "holder": holder}
    # no scopes, or an empty list: the maker's own (an empty list once meant "all")
    assert sorted(
        _made(c.post("/api/v1/tokens", json=body, headers=_bearer(secret)))["scopes"]
    ) == sorted(narrow)
    empty = c.post("/api/v1/tokens", json=body | {"scopes": []}, headers=_bearer(secret))
    assert sorted(_made(empty)["scopes"]) == sorted(narrow)
    one = c.post("/api/v1/tokens", json=body | {"scopes": [narrow[0]]}, headers=_bearer(secret))
    assert _made(one)["scopes"] == [narrow[0]]
    refused = c.post("/api/v1/tokens", json=body | {"scopes": [wider]}, headers=_bearer(secret))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert wider in refused.json()["detail"]
    # without "tokens" it can neither make nor revoke
    read_only = issue_token(web.home, STEWARD, kind=kind, holder=holder, scopes=narrow[:1]).token
    assert c.post("/api/v1/tokens", json=body, headers=_bearer(read_only)).status_code == 403
    victim = issue_token(web.home, STEWARD, kind=kind, holder=holder).info.id
    revoke = c.post(f"/api/v1/tokens/{victim}/revoke", headers=_bearer(read_only))
    assert revoke.status_code == 403


def test_a_token_cannot_outlive_the_one_that_makes_it(web: Site) -> None:
    short = issue_token(web.home, STEWARD, kind="member", holder="alice", days=2).token
    c = web.client()
    body = {"kind": "member", "holder": "alice"}
    long = c.post("/api/v1/tokens", json=body | {"days": 365}, headers=_bearer(short))
    assert long.status_code == 400 and long.json()["errors"][0]["field"] == "days"
    ok = c.post("/api/v1/tokens", json=body | {"days": 1}, headers=_bearer(short))
    left = datetime.fromisoformat(_made(ok)["expires"]) - datetime.now(UTC)
    assert timedelta(hours=23) < left <= timedelta(days=1)


def _session(web: Site, name: str, *, opened_ago: timedelta) -> tuple[TestClient, str]:
    with web.home.transaction() as s:
        view, secret = accounts.open_session(s, get_member(web.home, name).id)
        s.execute(
            update(WebSession)
            .where(WebSession.id == view.id)
            .values(created_at=datetime.now(UTC) - opened_ago)
        )
    c = TestClient(web.app, base_url=ORIGIN)
    c.cookies.set(COOKIE, secret)
    return c, view.csrf


def test_an_old_browser_session_cannot_mint_a_lasting_token(web: Site) -> None:
    body = {"kind": "member", "holder": "alice", "days": 365}
    old, csrf = _session(web, "alice", opened_ago=timedelta(hours=6))
    assert old.get("/api/v1/me/consent").status_code == 200  # it still reads
    stale = old.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert stale.status_code == 403 and "recent sign-in" in stale.json()["detail"]
    fresh, csrf = _session(web, "alice", opened_ago=timedelta(minutes=1))
    made = fresh.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert _made(made)["kind"] == "member"


def test_a_steward_token_cannot_open_a_member_s_data(web: Site) -> None:
    steward = issue_token(web.home, STEWARD, kind="steward", holder="Ada").token
    c = web.client()
    r = c.post(
        "/api/v1/tokens", json={"kind": "member", "holder": "alice"}, headers=_bearer(steward)
    )
    assert r.status_code == 403 and "made by the member" in r.json()["detail"]
    assert c.get("/api/v1/me/insights", headers=_bearer(steward)).status_code == 403
    with web.home.sessions() as s:
        assert s.query(ApiToken).filter(ApiToken.kind == "member").count() == 0


@pytest.mark.parametrize("holder", ["member:abc", "   ", "a\nb"])
def test_a_staff_name_that_could_pass_for_another_in_the_audit_log_is_refused(
    web: Site, holder: str
) -> None:
    with pytest.raises(InputError, match="without ':'"):
        issue_token(web.home, STEWARD, kind="steward", holder=holder)


def test_another_buyer_s_request_is_told_apart_from_no_request_by_nothing(web: Site) -> None:
    rid = lab_request(web.home, 5_000, opened=False)
    governance.add_buyer(web.home, STEWARD, "Other", "o@example.invalid", "SE")
    other = issue_token(web.home, STEWARD, kind="buyer", holder="Other").token
    c = web.client()
    theirs = c.get(f"/api/v1/requests/{rid}", headers=_bearer(other))
    nothing = c.get(f"/api/v1/requests/{'0' * 32}", headers=_bearer(other))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["detail"].replace(rid, "X") == nothing.json()["detail"].replace(
        "0" * 32, "X"
    )
    for path in (
        f"/requests/{rid[:6]}",
        f"/requests/{rid[:6]}/plan",
        f"/requests/{rid[:6]}/release",
    ):
        prefix = c.get(f"/api/v1{path}", headers=_bearer(other))
        assert prefix.status_code == 400, path  # whole ids only: no probing by prefix
        assert prefix.json()["errors"][0]["field"] == "request_id"


def test_a_number_too_large_for_json_is_a_problem_naming_the_spec(web: Site) -> None:
    governance.add_buyer(web.home, STEWARD, "Lab", "lab@example.invalid", "SE")
    lab = issue_token(web.home, STEWARD, kind="buyer", holder="Lab").token
    r = web.client().post(
        "/api/v1/specs/check",
        content=b'{"spec": {"purpose": "research", "privacy": {"epsilon": 1e400}}}',
        headers=_bearer(lab) | {"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["spec"]


def test_a_long_holder_s_idempotency_key_is_kept(coop: Home) -> None:
    principal = "steward:" + "S" * 200  # the longest a name may be
    key, print_ = "k" * idempotency.MAX_KEY, idempotency.fingerprint("POST", "/x", b"{}")
    assert idempotency.claim(coop, principal, key, print_) is None
    idempotency.finish(coop, principal, key, 200, {"ok": True})
    replay = idempotency.claim(coop, principal, key, print_)
    assert replay is not None and replay.status == 200 and replay.body == {"ok": True}


def test_a_key_left_running_by_a_dead_process_is_freed(coop: Home) -> None:
    print_ = idempotency.fingerprint("POST", "/x", b"{}")
    assert idempotency.claim(coop, "buyer:1", "k", print_) is None  # and the process died
    with pytest.raises(idempotency.KeyInUse, match="still being served"):
        idempotency.claim(coop, "buyer:1", "k", print_)
    with coop.transaction() as s:
        s.execute(
            update(IdempotencyKey).values(
                created_at=datetime.now(UTC) - idempotency.ABANDONED - timedelta(minutes=1)
            )
        )
    with pytest.raises(idempotency.KeyInUse, match="cut off"):
        idempotency.claim(coop, "buyer:1", "k", print_)
    assert idempotency.claim(coop, "buyer:1", "k", print_) is None  # the retry runs it


def test_erasure_deletes_a_member_s_tokens(web: Site) -> None:
    secret = issue_token(web.home, STEWARD, kind="member", holder="alice").token
    c = web.client()
    assert c.get("/api/v1/me/consent", headers=_bearer(secret)).status_code == 200
    members.erase(web.home, STEWARD, "alice")
    assert c.get("/api/v1/me/consent", headers=_bearer(secret)).status_code == 401
    with web.home.sessions() as s:
        assert s.query(ApiToken).count() == 0
