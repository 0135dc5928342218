"""The members' pages, through the real app: a real SQLite home, passkeys from a software
authenticator, no mocks. Each page acts as the signed-in member; another member's
things answer 404; the numbers shown are the service's numbers."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories import consenting_members, export_zip, lab_request, passed_request
from tests.softauthn import SoftAuthenticator
from tunetrust.coop import accounts
from tunetrust.coop import audit as audit_log
from tunetrust.insights.stats import Period
from tunetrust.releases import manifest
from tunetrust.releases.build import release_files
from tunetrust.services import data, governance, members, releases
from tunetrust.services.models import Actor
from tunetrust.services.outputs import to_json
from tunetrust.settings import Settings
from tunetrust.store.home import Home, init_home
from tunetrust.web.app import ACCESS, create_app
from tunetrust.web.security import COOKIE

ORIGIN = "https://localhost"
STEWARD = Actor.steward()


class Coop:
    """A home, its web app, and a way to sign new members in."""

    def __init__(self, home: Home, root: Path) -> None:
        self.home, self.root = home, root
        self.app = create_app(home.settings, worker=False, home=home)

    def join(self, name: str, *, passkey: bool = False) -> TestClient:
        """A client signed in as a new member ``name``: by an invitation and a passkey, or
        (faster: no recovery codes to hash) admitted by the steward with a session opened
        in the session store as a sign-in would."""
        if not passkey:
            member_id = members_row_id(self.home, members.join(self.home, STEWARD, name).name)
            with self.home.transaction() as s:
                _, secret = accounts.open_session(s, member_id)
            client = TestClient(self.app, base_url=ORIGIN)
            client.cookies.set(COOKIE, secret)
            return client
        link = members.invite(self.home, STEWARD, days=3).link.removeprefix(ORIGIN)
        client = TestClient(self.app, base_url=ORIGIN)
        csrf = re.search(r'data-csrf="([^"]+)"', client.get(link).text)
        assert csrf
        headers = {"X-CSRF-Token": csrf.group(1)}
        options = client.post(f"{link}/options", json={"name": name}, headers=headers)
        key = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
        done = client.post(f"{link}/finish", json=key.register(options.json()), headers=headers)
        assert done.status_code == 200, done.text
        assert client.get("/welcome").status_code == 200
        return client

    def upload(self, name: str, listens: int = 2000, seed: int = 1) -> str:
        """Import a synthetic export for ``name`` as themselves; the contribution's id."""
        path = export_zip(self.root, "extended-c", listens, seed)
        return data.import_contribution(self.home, Actor.member(name), name, [path]).contribution


def members_row_id(home: Home, name: str) -> int:
    from tunetrust.coop.members import get_member

    return get_member(home, name).id


@pytest.fixture
def coop(tmp_path: Path) -> Iterator[Coop]:
    home = init_home(Settings(home=tmp_path / "home", web_origin=ORIGIN))
    yield Coop(home, tmp_path)
    home.close()


@pytest.fixture
def alice(coop: Coop) -> TestClient:
    """Alice, signed in, with one upload."""
    client = coop.join("alice")
    coop.upload("alice")
    return client


def csrf_of(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


class _Data(HTMLParser):
    """The ``<data value data-field>`` elements of a page: field path → value."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "data" and a.get("data-field"):
            field = str(a["data-field"])
            assert field not in self.found, f"{field} shown twice"
            self.found[field] = str(a["value"])


def shown_numbers(html: str) -> dict[str, str]:
    parser = _Data()
    parser.feed(html)
    return parser.found


def numbers_of(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a JSON value, by its dotted path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers_of(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers_of(v, f"{path}.{i}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, value


def assert_clean_page(html: str) -> None:
    """What the CSP and WCAG rules ask of every page here."""
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert html.count("<h1") == 1
    for table in re.finditer(r"<table", html):
        assert html.rfind('<div class="table-wrap"', 0, table.start()) > html.rfind(
            "</table>", 0, table.start()
        ), "a table outside a table-wrap"


# --- every page -------------------------------------------------------------------------


def test_every_page_renders_for_a_member_signed_in_with_a_passkey(coop: Coop) -> None:
    alice = coop.join("alice", passkey=True)
    coop.upload("alice")
    contribution = data.list_contributions(coop.home, Actor.member("alice"), "alice")[0]
    home = alice.get("/")
    assert home.status_code == 200 and f"/contributions/{contribution.id}" in home.text
    pages = {
        f"/contributions/{contribution.id}": ["We kept", "private-session plays", "quality score"],
        "/insights": ["Listening time", "Top artists by hours", "Time zone"],
        "/consent": ["research", "Allow research", "You have not decided"],
        "/votes": ["No request is open for voting now"],
        "/money": ["No payouts yet", "ε 3", "You have not been in a release yet"],
        "/rights": ["Download my data", "type your member name: alice"],
    }
    for path, facts in pages.items():
        r = alice.get(path)
        assert r.status_code == 200, path
        for fact in facts:
            assert fact in r.text, (path, fact)
        assert_clean_page(r.text)
        assert 'aria-current="page"' in r.text, path
    assert set(ACCESS) >= {
        "GET /contributions/{contribution_id}",
        "GET /insights.json",
        "POST /rights/erase",
    }


def test_a_signed_out_visitor_is_sent_to_sign_in(coop: Coop) -> None:
    client = TestClient(coop.app, base_url=ORIGIN)
    for path in ("/insights", "/consent", "/votes", "/money", "/rights"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/signin"), path


def test_the_contribution_report_in_plain_words(coop: Coop, alice: TestClient) -> None:
    cid = data.list_contributions(coop.home, Actor.member("alice"), "alice")[0].id
    report = data.contribution_report(coop.home, Actor.member("alice"), cid)
    html = unescape(alice.get(f"/contributions/{cid}").text)
    assert f"We kept <strong>{report.listens_added:,}</strong> new plays" in html
    assert f"{report.dropped['incognito']:,} private-session plays" in html
    for check in report.checks:
        assert check.message in html
    assert f"{report.quality_score:.3f}" in html


# --- insights ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "period", "tz"),
    [
        ("", Period(), "UTC"),
        (
            "?period=year&year=2023&tz=America/New_York",
            Period.parse(None, None, 2023),
            "America/New_York",
        ),
        (
            "?period=custom&from=2022-03-01&to=2024-06-30&tz=Asia/Tokyo",
            Period.parse("2022-03-01", "2024-06-30", None),
            "Asia/Tokyo",
        ),
    ],
)
def test_insights_show_the_numbers_of_insights_json(
    coop: Coop, alice: TestClient, query: str, period: Period, tz: str
) -> None:
    expected = to_json(
        "insights", data.insights(coop.home, Actor.member("alice"), "alice", period, tz=tz)
    )
    page = alice.get(f"/insights{query}")
    assert page.status_code == 200
    shown = shown_numbers(page.text)
    numbers = dict(numbers_of(expected))
    numbers.pop("schema_version")
    assert len(numbers) > 200  # the clock alone is 168
    assert set(shown) == set(numbers), "numbers missing from the page, or extra ones"
    for field, value in numbers.items():
        assert float(shown[field]) == value, field
    for ranked in expected["top_artists"] + expected["top_tracks"]:
        assert ranked["name"] in page.text
    as_json = alice.get(f"/insights.json{query}")
    assert as_json.status_code == 200 and as_json.json() == expected
    assert "<svg" in page.text and "style=" not in page.text


def test_insights_refuse_a_bad_period_with_the_form_shown_again(alice: TestClient) -> None:
    r = alice.get("/insights?period=custom&from=2024-05-01&to=2024-01-01")
    assert r.status_code == 400 and "starts" in r.text and 'name="tz"' in r.text
    r = alice.get("/insights?period=year&year=")
    assert r.status_code == 400 and "choose a year" in r.text
    assert alice.get("/insights?tz=Not/AZone").status_code == 400
    assert alice.get("/insights.json?tz=Not/AZone").status_code == 400


def test_a_member_without_plays_is_sent_to_the_guide(coop: Coop) -> None:
    bob = coop.join("bob")
    r = bob.get("/insights")
    assert r.status_code == 200
    assert "Import your export first" in r.text and 'href="/guide"' in r.text
    assert "Top artists" not in r.text


def test_a_member_whose_stored_file_holds_no_listen_is_sent_to_the_guide(coop: Coop) -> None:
    """An events file with no listen left in it: no empty dashboard either."""
    from sqlalchemy import update

    from tunetrust.coop.members import get_member
    from tunetrust.store.events import EVENTS_SCHEMA
    from tunetrust.store.models import Member

    carol = coop.join("carol")
    m = get_member(coop.home, "carol")
    coop.home.events.stage(m.pseudonym, "none.parquet", EVENTS_SCHEMA.empty_table())
    coop.home.events.publish(m.pseudonym, "none.parquet")
    with coop.home.transaction() as s:
        s.execute(update(Member).where(Member.id == m.id).values(events_file="none.parquet"))
    r = carol.get("/insights?period=year&year=2023")
    assert r.status_code == 200
    assert "Import your export first" in r.text and "<svg" not in r.text
    assert "None" not in r.text


# --- consent ----------------------------------------------------------------------------


def test_a_consent_change_gives_a_receipt_only_its_member_can_open(
    coop: Coop, alice: TestClient
) -> None:
    r = alice.post(
        "/consent",
        data={"csrf": csrf_of(alice, "/consent"), "purpose": "research", "decision": "grant"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/consent/receipts/")
    seq = int(r.headers["location"].rsplit("/", 1)[1])
    receipt = alice.get(r.headers["location"])
    assert receipt.status_code == 200
    with coop.home.sessions() as s:
        entry = next(e for e in audit_log.entries(s) if e.seq == seq)
    assert entry.action == "consent.grant" and entry.entry_hash in receipt.text
    assert entry.actor in receipt.text and "research" in receipt.text
    assert members.member_profile(coop.home, Actor.member("alice"), "alice").consents == {
        "research": True
    }
    page = alice.get("/consent")
    assert "You allow this now." in page.text and f"/consent/receipts/{seq}" in page.text
    bob = coop.join("bob")
    assert bob.get(f"/consent/receipts/{seq}").status_code == 404
    assert bob.get("/consent/receipts/1").status_code == 404  # not a consent entry
    assert bob.get("/consent/receipts/99999").status_code == 404
    # a withdrawal: a new receipt
    r = alice.post(
        "/consent",
        data={"csrf": csrf_of(alice, "/consent"), "purpose": "research", "decision": "withdraw"},
        follow_redirects=False,
    )
    assert int(r.headers["location"].rsplit("/", 1)[1]) > seq
    assert "consent withdrawn" in alice.get(r.headers["location"]).text
    bad = alice.post(
        "/consent", data={"csrf": csrf_of(alice), "purpose": "spying", "decision": "grant"}
    )
    assert bad.status_code == 400


# --- votes ------------------------------------------------------------------------------


def test_voting_changing_a_vote_and_the_ballot_receipt(coop: Coop, alice: TestClient) -> None:
    members.set_consent(coop.home, Actor.member("alice"), "alice", "research", granted=True)
    others = consenting_members(coop.home, coop.root, 2, listens=200)
    bob = coop.join("bob")  # joins before the vote opens, never consents
    rid = lab_request(coop.home, 100_000)
    listing = alice.get("/votes").text
    assert "Lab (Sweden)" in listing and f"/votes/{rid}" in listing
    page = alice.get(f"/votes/{rid}").text
    assert "1,000.00 EUR" in page and "research-only" not in page  # the licence in words
    assert "Use for non-commercial research only" in page and "estimate" in page
    mine = governance.request_for_member(coop.home, Actor.member("alice"), "alice", rid)
    assert mine.eligible and mine.epsilon_cost == "0.5" and mine.estimated_share is not None
    assert mine.estimated_share.text in page and "ε 0.5" in page
    assert "weekday" in page or "day of the week" in page

    for choice in ("yes", "no"):
        r = alice.post(
            f"/votes/{rid}", data={"csrf": csrf_of(alice), "choice": choice}, follow_redirects=False
        )
        assert (r.status_code, r.headers["location"]) == (303, f"/votes/{rid}")
    ballot = governance.my_ballot(coop.home, Actor.member("alice"), "alice", rid)
    assert ballot is not None and ballot.choice == "no"
    with coop.home.sessions() as s:
        entry = next(e for e in audit_log.entries(s) if e.seq == ballot.seq)
    assert entry.action == "vote.cast" and entry.entry_hash == ballot.receipt
    page = alice.get(f"/votes/{rid}").text
    assert ballot.receipt in page and "Your ballot: <strong>no</strong>" in page
    assert "Change my vote" in page

    # the count anyone sees, the steward too, names no one and no ballot
    seen = orjson.dumps(
        [
            to_json("request", governance.show_request(coop.home, STEWARD, rid)),
            governance.tally(coop.home, STEWARD, rid).model_dump(),
            [to_json("request", r) for r in governance.list_requests(coop.home, STEWARD)],
        ]
    ).decode()
    pseudonyms = [coop_pseudonym(coop, n) for n in ["alice", *others]]
    for who in ["alice", *others, *pseudonyms]:
        assert who not in seen
    assert governance.tally(coop.home, STEWARD, rid).no == 1

    # bob may not vote, and is told why
    page = bob.get(f"/votes/{rid}").text
    assert "You cannot vote on this request: you had not consented to research" in page
    assert 'name="choice"' not in page
    refused = bob.post(f"/votes/{rid}", data={"csrf": csrf_of(bob), "choice": "yes"})
    assert refused.status_code == 409
    assert governance.my_ballot(coop.home, Actor.member("bob"), "bob", rid) is None
    assert bob.get("/votes/0000000000").status_code == 404


def coop_pseudonym(coop: Coop, name: str) -> str:
    from tunetrust.coop.members import get_member

    return get_member(coop.home, name).pseudonym


# --- money, releases and proofs ---------------------------------------------------------


def test_money_after_a_delivery_shows_the_payout_and_the_proof_verifies(
    coop: Coop, alice: TestClient
) -> None:
    members.set_consent(coop.home, Actor.member("alice"), "alice", "research", granted=True)
    others = consenting_members(coop.home, coop.root, 2, listens=200)
    rid = passed_request(coop.home, ["alice", *others], price=90_000)
    delivered = governance.deliver(coop.home, STEWARD, rid)
    assert delivered.state == "paid" and delivered.release
    statement = members.member_statement(coop.home, Actor.member("alice"), "alice")
    page = alice.get("/money").text
    assert statement.totals and statement.totals[0].text in page
    assert f"/releases/{delivered.release}/proof.json" in page and "ε 0.5" in page
    mine = releases.member_releases(coop.home, Actor.member("alice"), "alice")
    assert [r.id for r in mine] == [delivered.release]
    assert mine[0].payout == statement.totals[0] and mine[0].buyer == "Lab"

    got = alice.get(f"/releases/{delivered.release}/proof.json")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    body = got.json()
    root = manifest.read_manifest(release_files(coop.home, delivered.release))["merkle_root"]
    proof = manifest.Proof(
        included=body["included"],
        salt=body["salt"],
        leaf=body["leaf"],
        index=body["index"],
        count=body["count"],
        path=body["path"],
    )
    assert body["merkle_root"] == root
    assert manifest.check_proof(root, proof, coop_pseudonym(coop, "alice"))

    bob = coop.join("bob")  # in no release
    assert bob.get(f"/releases/{delivered.release}/proof.json").status_code == 404
    assert bob.get("/releases/nope/proof.json").status_code == 404
    assert "No payouts yet" in bob.get("/money").text
    # the vote, decided, is listed with the member's ballot
    assert "yes" in alice.get("/votes").text


# --- rights -----------------------------------------------------------------------------


def test_export_downloads_a_zip_of_everything(coop: Coop, alice: TestClient) -> None:
    r = alice.post("/rights/export", data={"csrf": csrf_of(alice, "/rights")})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
    assert any(n.lower().startswith("readme") for n in names) and len(names) > 3


def test_erasure_needs_the_typed_name_then_signs_out(coop: Coop, alice: TestClient) -> None:
    token = csrf_of(alice, "/rights")
    wrong = alice.post("/rights/erase", data={"csrf": token, "confirm": "Alice "})
    assert wrong.status_code == 400 and "Nothing was erased" in wrong.text
    assert members.member_profile(coop.home, STEWARD, "alice").listens > 0
    done = alice.post("/rights/erase", data={"csrf": token, "confirm": "alice"})
    assert done.status_code == 200 and "Erasure receipt" in done.text
    assert "Sign out" not in done.text
    assert_clean_page(done.text)
    gone = alice.get("/", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/signin")


# --- what no member can do --------------------------------------------------------------


def test_member_a_gets_404_for_member_b_s_things(coop: Coop, alice: TestClient) -> None:
    bob = coop.join("bob")
    cid = data.list_contributions(coop.home, Actor.member("alice"), "alice")[0].id
    assert alice.get(f"/contributions/{cid}").status_code == 200
    for path in (f"/contributions/{cid}", f"/contributions/{cid[:8]}", "/contributions/abcdef12"):
        r = bob.get(path)
        assert r.status_code == 404 and "there is nothing here" in r.text, path


def test_every_post_without_csrf_is_refused(coop: Coop, alice: TestClient) -> None:
    posts = {
        "/consent": {"purpose": "research", "decision": "grant"},
        "/votes/0123456789abcdef": {"choice": "yes"},
        "/rights/export": {},
        "/rights/erase": {"confirm": "alice"},
    }
    assert {f"POST {p}" for p in posts if "votes" not in p} <= set(ACCESS)
    for path, form in posts.items():
        for sent in (form, {**form, "csrf": "not-the-token"}):
            r = alice.post(path, data=sent)
            assert r.status_code == 403, path
    assert members.member_profile(coop.home, STEWARD, "alice").consents == {}
    # a stranger with a session's own token is asked to sign in before any field is read
    stranger = TestClient(coop.app, base_url=ORIGIN)
    found = re.search(r'(?:data-csrf|name="csrf" value)="([^"]+)"', stranger.get("/signin").text)
    assert found
    token = found.group(1)
    for path in posts:
        r = stranger.post(path, data={"csrf": token})
        assert r.status_code == 401, path


def test_insights_are_kept_per_stored_file_and_never_stale(coop: Coop, alice: TestClient) -> None:
    before = alice.get("/insights.json").json()
    assert alice.get("/insights.json").json() == before  # the second view: from memory
    coop.upload("alice", listens=1500, seed=9)  # a new export: a new events file
    after = alice.get("/insights.json").json()
    expected = to_json(
        "insights", data.insights(coop.home, Actor.member("alice"), "alice", Period())
    )
    assert after == expected and after["plays"] > before["plays"]


def test_a_personal_api_token_is_made_shown_once_used_and_revoked(coop: Coop) -> None:
    alice, bob = coop.join("alice"), coop.join("bob")
    csrf = csrf_of(alice, "/account")
    made = alice.post(
        "/account/tokens",
        data={"csrf": csrf, "label": "my dashboard", "days": "7", "scope": ["me:read"]},
    )
    assert made.status_code == 200, made.text
    secret = re.search(r'<code class="secret">(tt_[\w-]+)</code>', made.text)
    assert secret, "the new token is shown"
    assert_clean_page(made.text)
    page = alice.get("/account").text
    assert secret.group(1) not in page, "shown once: not on the page again"
    assert "my dashboard" in page and "me:read" in page
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    api = TestClient(coop.app, base_url=ORIGIN)  # no cookie: the token alone
    consents = api.get("/api/v1/me/consent", headers=bearer)
    assert consents.status_code == 200 and consents.json()["member"] == "alice"
    # narrowed to me:read: it cannot vote or change consent
    refused = api.put("/api/v1/me/consent/research", json={"granted": True}, headers=bearer)
    assert refused.status_code == 403 and "consent:write" in refused.json()["detail"]
    (token_id,) = re.findall(r'action="/account/tokens/(\w+)/revoke"', page)
    # bob cannot revoke alice's token: not found, and it still works
    other = bob.post(f"/account/tokens/{token_id}/revoke", data={"csrf": csrf_of(bob, "/account")})
    assert other.status_code == 404
    assert api.get("/api/v1/me/consent", headers=bearer).status_code == 200
    gone = alice.post(
        f"/account/tokens/{token_id}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert api.get("/api/v1/me/consent", headers=bearer).status_code == 401
    assert "revoked" in alice.get("/account").text


def test_a_personal_token_needs_a_fresh_sign_in(coop: Coop) -> None:
    alice = coop.join("alice")
    csrf = csrf_of(alice, "/account")
    with coop.home.transaction() as s:  # the session opened an hour ago
        s.execute(
            text("UPDATE web_sessions SET created_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=1)},
        )
    stale = alice.post("/account/tokens", data={"csrf": csrf, "label": "x", "days": "7"})
    assert stale.status_code == 403 and "tt_" not in stale.text
