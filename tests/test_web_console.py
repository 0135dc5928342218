"""The buyer portal and the steward's console through the real app: tokens signed in at
/staff/signin, every page as its token's holder, forms with their CSRF and idempotency
keys, and what each kind of token may not see."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import WEEKDAY_SPEC, consenting_members, lab_request
from tests.test_web_pages import assert_clean_page
from tests.web_support import Site, csrf_of, site
from tunetrust.coop import accounts
from tunetrust.services import governance, releases
from tunetrust.services import tokens as token_service
from tunetrust.services.models import Actor
from tunetrust.store.home import Home
from tunetrust.store.models import WebSession
from tunetrust.web.app import ACCESS
from tunetrust.web.security import COOKIE

STEWARD = Actor.steward()
STAFF_ROLES = {"steward", "auditor", "buyer", "staff"}
FILLERS = {
    "request_id": "0" * 32,
    "release_id": "0" * 32,
    "contribution_id": "0" * 32,
    "token_id": "0" * 12,
    "name": "x",
}


@dataclass
class Coop:
    """A site with three consenting members, buyer Lab and a token of each kind."""

    site: Site
    steward: str
    auditor: str
    lab: str
    members: list[str]

    @property
    def home(self) -> Home:
        return self.site.home

    def signed_in(self, secret: str) -> TestClient:
        """A new browser signed in with ``secret`` at /staff/signin."""
        c = self.site.client()
        token = csrf_of(c.get("/staff/signin").text)
        r = c.post("/staff/signin", data={"csrf": token, "token": secret})
        assert r.status_code == 303, r.text
        return c


def _coop(tmp: Path) -> Coop:
    s = site(tmp)
    names = consenting_members(s.home, tmp, 3)
    lab = governance.add_buyer(s.home, STEWARD, "Lab", "lab@example.invalid", "SE").token
    steward = token_service.issue_token(s.home, STEWARD, kind="steward", holder="Ada").token
    auditor = token_service.issue_token(s.home, STEWARD, kind="auditor", holder="Audra").token
    return Coop(s, steward, auditor, lab, names)


@pytest.fixture
def coop(tmp_path: Path) -> Iterator[Coop]:
    c = _coop(tmp_path)
    yield c
    c.site.close()


@pytest.fixture(scope="module")
def sold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Coop, str]]:
    """A cooperative (read only here) where Lab's request was voted, delivered and paid."""
    c = _coop(tmp_path_factory.mktemp("sold"))
    request = lab_request(c.home, 10_000)
    for name in c.members:
        governance.vote(c.home, Actor.member(name), name, request, "yes")
    governance.close_request(c.home, STEWARD, request)
    governance.deliver(c.home, STEWARD, request)
    yield c, request
    c.site.close()


def _path(route: str, **known: str) -> str:
    path = route.split(" ", 1)[1]
    return re.sub(r"\{(\w+)\}", lambda m: known.get(m.group(1), FILLERS[m.group(1)]), path)


def _form(c: TestClient, page: str, action: str) -> dict[str, str]:
    """The hidden fields (csrf, key) of the form posting to ``action`` on ``page``."""
    html = c.get(page).text
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form))


# --- signing in ---------------------------------------------------------------------------


def test_each_kind_of_token_signs_in_to_its_own_start_with_a_new_session(coop: Coop) -> None:
    for secret, start in (
        (coop.steward, "/console"),
        (coop.auditor, "/console"),
        (coop.lab, "/buyer"),
    ):
        c = coop.site.client()
        token = csrf_of(c.get("/staff/signin").text)
        before = c.cookies.get(COOKIE)
        r = c.post("/staff/signin", data={"csrf": token, "token": secret})
        assert (r.status_code, r.headers["location"]) == (303, start)
        after = c.cookies.get(COOKIE)
        assert before and after and before != after
        with coop.home.sessions() as s:
            assert accounts.find_session(s, before) is None  # no fixation
        assert c.get(start).status_code == 200
        assert c.get("/staff/signin").headers["location"] == start  # signed in already
        signout = {"csrf": csrf_of(c.get(start).text)}
        assert c.post("/staff/signout", data=signout).headers["location"] == "/staff/signin"
        assert c.get(start).headers["location"] == "/staff/signin"


def test_a_member_token_is_sent_to_the_members_sign_in_and_guesses_are_rate_limited(
    coop: Coop,
) -> None:
    personal = token_service.issue_token(coop.home, STEWARD, kind="member", holder="m0").token
    c = coop.site.client()
    token = csrf_of(c.get("/staff/signin").text)
    r = c.post("/staff/signin", data={"csrf": token, "token": personal})
    assert r.status_code == 400 and "member’s personal token" in r.text
    assert 'href="/signin"' in r.text
    for _ in range(accounts.ATTEMPTS):
        r = c.post("/staff/signin", data={"csrf": token, "token": "tt_" + "x" * 43})
        assert r.status_code == 400 and "unknown, expired or revoked" in r.text
    r = c.post("/staff/signin", data={"csrf": token, "token": coop.steward})
    assert r.status_code == 403 and "too many failed sign-ins" in r.text
    with coop.home.sessions() as s:  # the right token did not sign in past the limit
        assert s.scalars(select(WebSession).where(WebSession.token_id.is_not(None))).all() == []


def test_a_revoked_tokens_session_ends(coop: Coop) -> None:
    lab = coop.signed_in(coop.lab)
    assert lab.get("/buyer").status_code == 200
    found = token_service.list_tokens(coop.home, Actor.buyer("Lab"))
    token_service.revoke_token(coop.home, STEWARD, found[0].id)
    assert lab.get("/buyer").headers["location"] == "/staff/signin"
    token = csrf_of(lab.get("/staff/signin").text)
    again = lab.post("/staff/signin", data={"csrf": token, "token": coop.lab})
    assert again.status_code == 400


def test_revoking_a_token_from_the_console_ends_its_sessions(coop: Coop) -> None:
    ada, audra = coop.signed_in(coop.steward), coop.signed_in(coop.auditor)
    auditor = next(t for t in token_service.list_tokens(coop.home, STEWARD) if t.kind == "auditor")
    hidden = _form(ada, "/console/tokens", f"/console/tokens/{auditor.id}/revoke")
    r = ada.post(f"/console/tokens/{auditor.id}/revoke", data=hidden)
    assert r.headers["location"] == "/console/tokens"
    assert re.search(rf"<code>{auditor.id}</code>.*?<td>revoked ", ada.get("/console/tokens").text)
    assert audra.get("/console").headers["location"] == "/staff/signin"


# --- who sees what -----------------------------------------------------------------------


def test_every_console_page_renders_for_the_steward_and_read_only_for_the_auditor(
    sold: tuple[Coop, str],
) -> None:
    coop, request = sold
    release = governance.show_request(coop.home, STEWARD, request).release
    assert release is not None
    ada, audra = coop.signed_in(coop.steward), coop.signed_in(coop.auditor)
    facts = {
        "/console": ["Waiting for you", "Audit chain", "3 members"],
        "/console/invitations": ["Make a link", "Close a link"],
        "/console/members": ["Pseudonym", "accepted 1"],
        "/console/requests": [request[:8], "paid", f"/console/releases/{release}"],
        f"/console/requests/{request}": ["delivered and paid", "Rules frozen", "Quorum"],
        f"/console/releases/{release}": ["Its files match", "data.csv", "Merkle root"],
        "/console/rules": ["In force", "Every decision", "the default rules"],
        "/console/audit": ["All ", "entries chain", "seq "],
        "/console/ledger": ["All 1 transactions balance", "treasury", "10.00 EUR"],
        "/console/jobs": ["Import jobs"],
        "/console/tokens": ["Make a token", "Audra", "Revoke"],
    }
    assert {f"GET {p}" for p in ("/console", "/console/jobs")} <= set(ACCESS)
    for path, expected in facts.items():
        r = ada.get(path)
        assert r.status_code == 200, (path, r.text)
        for fact in expected:
            assert fact in r.text, (path, fact)
        assert_clean_page(r.text)
        assert 'aria-current="page"' in r.text, path
        for name in coop.members:  # the console is pseudonymous
            assert f">{name}<" not in r.text, (path, name)
    for route, role in ACCESS.items():
        if not route.startswith("GET /console"):
            continue
        path = _path(route, request_id=request, release_id=release)
        r = audra.get(path)
        if role == "steward":
            assert r.status_code == 403 and "you are signed in as an auditor" in r.text, path
            assert "/staff/signout" in r.text  # the staff menu, on the refusal too
        else:
            assert r.status_code == 200, path
            assert re.findall(r'<form[^>]*action="([^"]+)"', r.text) == ["/staff/signout"], path
            assert "/console/tokens" not in r.text and "/console/members" not in r.text


def test_a_buyer_sees_only_their_own_requests_and_no_console_page(
    sold: tuple[Coop, str],
) -> None:
    coop, request = sold
    other = governance.add_buyer(coop.home, STEWARD, "Other", "o@example.invalid", "DE")
    stranger, lab = coop.signed_in(other.token), coop.signed_in(coop.lab)
    assert request[:8] in lab.get("/buyer").text
    page = stranger.get("/buyer")
    assert page.status_code == 200 and request[:8] not in page.text
    for path in (
        f"/buyer/requests/{request}",
        f"/buyer/requests/{request}/files/data.csv",
        f"/buyer/requests/{request[:8]}",
    ):
        assert stranger.get(path).status_code == 404, path
    assert lab.get(f"/buyer/requests/{request[:8]}").status_code == 404  # whole ids only
    for route, role in ACCESS.items():
        if role in ("steward", "auditor") and route.startswith("GET "):
            r = lab.get(_path(route))
            assert r.status_code == 403 and "you are signed in as a buyer" in r.text, route
    ada = coop.signed_in(coop.steward)
    assert ada.get("/buyer").status_code == 403  # the portal is the buyer's own


def test_staff_routes_turn_away_members_and_every_staff_post_needs_its_csrf_token(
    coop: Coop,
) -> None:
    member = coop.site.client()
    with coop.home.transaction() as s:  # m0 signed in to the members' app
        from tunetrust.coop.members import get_member

        _, secret = accounts.open_session(s, get_member(coop.home, "m0").id)
    member.cookies.set(COOKIE, secret)
    assert member.get("/money").status_code == 200
    ada = coop.signed_in(coop.steward)
    staff_posts = [r for r, role in ACCESS.items() if role in STAFF_ROLES and r[:4] == "POST"]
    assert len(staff_posts) >= 10
    for route, role in ACCESS.items():
        if role not in STAFF_ROLES:
            continue
        path = _path(route)
        if route.startswith("GET "):
            r = member.get(path)
            assert (r.status_code, r.headers.get("location")) == (303, "/staff/signin"), route
            continue
        token = csrf_of(member.get("/money").text)
        assert member.post(path, data={"csrf": token}).status_code == 401, route
        for attempt in (ada.post(path), ada.post(path, data={"csrf": "forged"})):
            assert attempt.status_code == 403 and "reload the page" in attempt.text, route


def test_a_buyer_token_without_a_scope_cannot_use_its_pages(sold: tuple[Coop, str]) -> None:
    coop, request = sold
    reader = token_service.issue_token(
        coop.home, STEWARD, kind="buyer", holder="Lab", scopes=["requests:read"]
    ).token
    c = coop.signed_in(reader)
    assert c.get(f"/buyer/requests/{request}").status_code == 200
    r = c.get(f"/buyer/requests/{request}/files/data.csv")
    assert r.status_code == 403 and "releases:read" in r.text
    r = c.post("/buyer/check", data={"csrf": csrf_of(c.get("/buyer").text), "spec": WEEKDAY_SPEC})
    assert r.status_code == 403 and "requests:write" in r.text


# --- the steward's forms -----------------------------------------------------------------


def test_the_steward_invites_opens_closes_early_and_delivers_once(coop: Coop) -> None:
    ada = coop.signed_in(coop.steward)
    # invitations: a one-time link, an open admission closed by its id
    hidden = _form(ada, "/console/invitations", "/console/invitations")
    one = ada.post("/console/invitations", data=hidden | {"kind": "one-time", "days": "3"})
    assert one.status_code == 200 and "One-time invitation link" in one.text
    assert re.search(r"https://localhost/join/[\w-]{20,}", one.text)
    opened = ada.post("/console/invitations", data=hidden | {"kind": "open", "days": "7"})
    link = re.search(r"https://localhost(/join/[\w-]+)", opened.text)
    ident = re.search(r"Its id \(to close it\)</dt><dd><code>(\w+)</code>", opened.text)
    assert link and ident
    assert coop.site.client().get(link.group(1)).status_code == 200
    bad = ada.post("/console/invitations", data=hidden | {"kind": "open", "days": "99"})
    assert bad.status_code == 400 and "1 to 30 days" in bad.text
    closed = ada.post("/console/invitations/close", data=hidden | {"invitation": ident.group(1)})
    assert closed.status_code == 200 and "no longer works" in closed.text
    assert coop.site.client().get(link.group(1)).status_code == 409

    # Lab's draft: opened, two of three vote, closed early with a reason, delivered
    request = lab_request(coop.home, 10_000, opened=False)
    page = f"/console/requests/{request}"
    assert "Open the vote" in ada.get(page).text and "Privacy and accuracy" in ada.get(page).text
    r = ada.post(f"{page}/open", data=_form(ada, page, f"{page}/open"))
    assert r.headers["location"] == page
    assert governance.show_request(coop.home, STEWARD, request).state == "open"
    for name in coop.members[:2]:
        governance.vote(coop.home, Actor.member(name), name, request, "yes")
    close = _form(ada, page, f"{page}/close")
    assert "Close the vote now" in ada.get(page).text
    refused = ada.post(f"{page}/close", data=close)  # early, without a reason
    assert refused.status_code == 409 and "record why" in refused.text
    r = ada.post(f"{page}/close", data=close | {"reason": "two thirds voted; buyer's deadline"})
    assert r.headers["location"] == page
    shown = governance.show_request(coop.home, STEWARD, request)
    assert shown.state == "passed" and shown.early_reason == "two thirds voted; buyer's deadline"
    assert "Closed early because" in ada.get(page).text

    deliver = _form(ada, page, f"{page}/deliver")
    answers: list[int] = []

    def send() -> None:  # two browsers (one session) sending the same form at once
        c = TestClient(coop.site.app, base_url="https://localhost", follow_redirects=False)
        c.cookies.set(COOKIE, ada.cookies.get(COOKIE) or "")
        r = c.post(f"{page}/deliver", data=deliver)
        answers.append(r.status_code)
        assert r.headers["location"] == page
        c.close()

    both = [threading.Thread(target=send) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    again = ada.post(f"{page}/deliver", data=deliver)  # and once more, later
    assert answers == [303, 303] and again.headers["location"] == page
    assert governance.show_request(coop.home, STEWARD, request).state == "paid"
    check = governance.verify_ledger(coop.home, STEWARD)
    assert check.ok and check.transactions == 1  # one payment
    assert "delivered and paid" in ada.get(page).text
    ledger = ada.get("/console/ledger").text
    assert "All 1 transactions balance" in ledger


def test_the_steward_makes_and_revokes_tokens(coop: Coop) -> None:
    ada = coop.signed_in(coop.steward)
    hidden = _form(ada, "/console/tokens", "/console/tokens")
    made = ada.post(
        "/console/tokens",
        data=hidden | {"kind": "buyer", "holder": "Lab", "scopes": ["requests:read"], "days": "5"},
    )
    assert made.status_code == 200 and "not shown again" in made.text
    secret = re.search(r'<pre class="copy" id="token-secret">(tt_[\w-]+)</pre>', made.text)
    assert secret is not None
    lab = coop.signed_in(secret.group(1))
    assert lab.get("/buyer").status_code == 200
    unknown = ada.post("/console/tokens", data=hidden | {"kind": "buyer", "holder": "Nobody"})
    assert unknown.status_code == 404 and "Make a token" in unknown.text
    wrong = ada.post(
        "/console/tokens", data=hidden | {"kind": "auditor", "holder": "A", "scopes": ["steward"]}
    )
    assert wrong.status_code == 400 and "not one a auditor token can have" in wrong.text


# --- the buyer portal --------------------------------------------------------------------


def test_a_buyer_checks_and_proposes_a_spec_and_a_bad_one_names_its_field(coop: Coop) -> None:
    lab = coop.signed_in(coop.lab)
    hidden = _form(lab, "/buyer", "/buyer/requests")
    typed = hidden | {"price": "25000", "currency": "EUR", "licence": "research-only"}
    bad_spec = WEEKDAY_SPEC.replace("max_partitions: 7", "max_partitions: 0")
    r = lab.post("/buyer/check", data=typed | {"spec": bad_spec})
    assert r.status_code == 400 and "<code>spec.bounds.max_partitions</code>" in r.text
    assert 'aria-invalid="true"' in r.text and "max_partitions: 0" in r.text  # kept as typed
    r = lab.post("/buyer/check", data=typed | {"spec": WEEKDAY_SPEC.replace("plays,", "plyas,")})
    assert r.status_code == 400 and "spec.metrics" in r.text
    r = lab.post("/buyer/check", data=typed | {"spec": WEEKDAY_SPEC})
    assert r.status_code == 200 and "The spec checks out" in r.text
    plan = releases.preview(coop.home, Actor.buyer("Lab"), WEEKDAY_SPEC)
    assert f"<dt>Members included</dt><dd>{plan.members_included}" in r.text
    assert f"ε {plan.epsilon_per_member}" in r.text and plan.outcome["statement"] in r.text
    for metric, a in plan.outcome["accuracy"].items():
        assert f'<th scope="row">{metric}</th><td class="num">{a["half_width"]:,}' in r.text

    r = lab.post("/buyer/requests", data=typed | {"spec": bad_spec})
    assert r.status_code == 400 and "spec.bounds.max_partitions" in r.text
    r = lab.post("/buyer/requests", data=typed | {"spec": WEEKDAY_SPEC, "price": "lots"})
    assert r.status_code == 400 and "<code>price</code>" in r.text
    # the service names the request's own fields as such, not as paths in the spec
    r = lab.post("/buyer/requests", data=typed | {"spec": WEEKDAY_SPEC, "currency": "XXX"})
    assert r.status_code == 400 and "<code>currency</code>" in r.text
    assert "spec.currency" not in r.text
    assert governance.list_requests(coop.home, STEWARD) == []
    first = lab.post("/buyer/requests", data=typed | {"spec": WEEKDAY_SPEC})
    second = lab.post("/buyer/requests", data=typed | {"spec": WEEKDAY_SPEC})  # sent twice
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    [made] = governance.list_requests(coop.home, STEWARD)
    assert made.state == "draft" and made.buyer == "Lab" and made.price.amount == 25_000
    assert first.headers["location"] == f"/buyer/requests/{made.id}"
    page = lab.get(f"/buyer/requests/{made.id}")
    assert (
        page.status_code == 200 and "a draft" in page.text and "What it would release" in page.text
    )
    assert_clean_page(page.text)
    assert made.id[:8] in lab.get("/buyer").text


def test_a_buyer_downloads_each_delivered_file_with_the_digest_shown(
    sold: tuple[Coop, str],
) -> None:
    coop, request = sold
    lab = coop.signed_in(coop.lab)
    page = lab.get(f"/buyer/requests/{request}")
    assert page.status_code == 200 and "delivered and paid" in page.text
    assert_clean_page(page.text)
    listed = dict(re.findall(r'<code class="hash" data-file="([^"]+)">(\w{64})</code>', page.text))
    assert {"data.csv", "manifest.json", "SHA256SUMS"} <= listed.keys()
    for name, digest in listed.items():
        r = lab.get(f"/buyer/requests/{request}/files/{name}")
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"https://localhost/api/v1/downloads/{request}/")
        got = lab.get(r.headers["location"])
        assert got.status_code == 200, name
        assert hashlib.sha256(got.content).hexdigest() == digest, name
    assert lab.get(f"/buyer/requests/{request}/files/nothing.csv").status_code == 404


def test_the_steward_decides_a_dispute_in_the_console(coop: Coop, tmp_path: Path) -> None:
    """m0's export again for a newcomer is held; the console shows both sides by
    pseudonym, and one decision (sent twice) decides it once."""
    from tunetrust.coop.members import get_member
    from tunetrust.services import data, members

    from .factories import export_zip

    members.join(coop.home, STEWARD, "newcomer")
    again = export_zip(tmp_path, "extended-c", 2_000, 1)
    members.join(coop.home, STEWARD, "first")
    data.import_contribution(coop.home, Actor.member("first"), "first", [again])
    held = data.import_contribution(coop.home, Actor.member("newcomer"), "newcomer", [again])
    assert held.verdict == "disputed"
    ada = coop.signed_in(coop.steward)
    page = ada.get("/console/disputes")
    assert page.status_code == 200 and held.contribution[:12] in page.text
    assert get_member(coop.home, "first").pseudonym in page.text
    assert get_member(coop.home, "newcomer").pseudonym in page.text
    assert ">newcomer<" not in page.text and ">first<" not in page.text
    assert_clean_page(page.text)
    action = f"/console/disputes/{held.contribution}/decide"
    form = _form(ada, "/console/disputes", action) | {"decided_for": "claimant"}
    answers = [ada.post(action, data=form, follow_redirects=False) for _ in range(2)]
    assert [a.status_code for a in answers] == [303, 303]
    assert data.disputes(coop.home, STEWARD) == []
    assert "No open disputes" in ada.get("/console/disputes").text
    newcomer = data.list_contributions(coop.home, STEWARD, "newcomer")
    assert [c.verdict for c in newcomer] == ["resolved", "accepted"]  # imported once
    assert [c.verdict for c in data.list_contributions(coop.home, STEWARD, "first")] == ["revoked"]
