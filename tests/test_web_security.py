"""The web app under attack: who may use each route, CSRF, other members' URLs, uploads.

Every route and the roles allowed on it are listed in ``web.app.ACCESS``; these tests
read the app's real route list, so a new route without an entry fails here.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import export_zip, lab_request
from tests.softauthn import SoftAuthenticator
from tests.web_support import ORIGIN, Site, csrf_of, form, site
from tunetrust.coop import accounts, audit
from tunetrust.coop.jobs import uploads
from tunetrust.errors import ConflictError
from tunetrust.settings import ImportLimits
from tunetrust.store.models import Job, Member, RecoveryCode, WebSession
from tunetrust.web.app import ACCESS
from tunetrust.web.security import CSP, HEADERS

FILLERS = {"token": "x" * 43, "job_id": "0" * 32, "request_id": "0" * 32}


def _routes(s: Site) -> set[str]:
    """The app's real routes, as its OpenAPI document lists them (every route is in it)."""
    paths = s.app.openapi()["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


def _path(route: str) -> str:
    path = route.split(" ", 1)[1]
    return re.sub(r"\{(\w+)\}", lambda m: FILLERS.get(m.group(1), "0" * 32), path)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Site]:
    s = site(tmp_path)
    yield s
    s.close()


def test_every_route_has_an_access_rule_and_every_rule_a_route(web: Site) -> None:
    routes = _routes(web)
    assert routes, "the app has no routes"
    assert routes - set(ACCESS) == set(), "routes without an entry in web.app.ACCESS"
    assert set(ACCESS) - routes == set(), "entries in ACCESS for routes that do not exist"
    # members; buyers, auditors (and stewards), stewards, any token session (web/console.py)
    assert set(ACCESS.values()) <= {"anyone", "member", "buyer", "auditor", "steward", "staff"}


def test_member_routes_turn_away_anyone_not_signed_in(web: Site) -> None:
    """Members' pages send a visitor to /signin; the portal's and the console's (signed
    in with an API token) to /staff/signin; a POST without a session is refused."""
    c = web.client()
    token = csrf_of(c.get("/signin").text)  # a real anonymous session, with its token
    for route, role in sorted(ACCESS.items()):
        if role == "anyone":
            continue
        signin = "/signin" if role == "member" else "/staff/signin"
        method, path = route.split(" ", 1)[0], _path(route)
        if method == "GET" and path.endswith(".json"):
            assert c.get(path).status_code == 401, route  # scripts get a status, not a page
        elif method == "GET":
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"] == signin, route
        else:
            r = c.post(path, headers={"X-CSRF-Token": token}, data={"csrf": token})
            assert r.status_code == 401, (route, r.status_code)


def test_every_post_without_the_csrf_token_is_refused(web: Site) -> None:
    c, _ = web.join("alice")
    for route in sorted(r for r in ACCESS if r.startswith("POST ")):
        path = _path(route)
        for attempt in (
            c.post(path),
            c.post(path, data={"csrf": "forged"}),
            c.post(path, headers={"X-CSRF-Token": "forged"}),
        ):
            assert attempt.status_code == 403, (route, attempt.status_code)
            assert "reload the page" in attempt.text


def test_a_new_session_id_at_sign_in_and_the_old_one_is_gone(web: Site) -> None:
    _, key = web.join("alice")
    c = web.client()
    token = csrf_of(c.get("/signin").text)
    before = c.cookies.get("tunetrust_session")  # the anonymous session of this browser
    options = c.post("/signin/options", headers={"X-CSRF-Token": token})
    done = c.post(
        "/signin/finish", json=key.sign_in(options.json()), headers={"X-CSRF-Token": token}
    )
    assert done.status_code == 200, done.text
    after = c.cookies.get("tunetrust_session")
    assert before and after and before != after
    with web.home.sessions() as s:
        assert accounts.find_session(s, before) is None  # fixation: the old id opens nothing
        signed = accounts.find_session(s, after)
        assert signed is not None and signed.member_id is not None
    stale = web.client()
    stale.cookies.set("tunetrust_session", before)
    assert stale.get("/").status_code == 303  # a planted cookie is not signed in


def test_headers_on_pages_errors_and_static_files(web: Site) -> None:
    c = web.client()
    for path in ("/signin", "/guide", "/no-such-page", "/static/app.css", "/join/" + "x" * 43):
        r = c.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        for name, value in HEADERS.items():
            assert r.headers[name] == value, (path, name)
    assert "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP
    cookie = c.get("/signin").headers.get("set-cookie", "") or web.client().get(
        "/signin"
    ).headers.get("set-cookie", "")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie


def test_signing_in_is_rate_limited_per_source(web: Site) -> None:
    c, _ = web.join("alice")
    with web.home.transaction() as s:
        member_id = s.scalars(select(Member.id)).one()
        code = accounts.new_recovery_codes(s, member_id, accounts.make_recovery_codes(web.home))[0]
    stranger = web.client()
    token = csrf_of(stranger.get("/signin").text)
    for _ in range(accounts.ATTEMPTS):
        r = stranger.post("/signin/recovery", data={"csrf": token, "name": "alice", "code": "no"})
        assert r.status_code == 400
    r = stranger.post("/signin/recovery", data={"csrf": token, "name": "alice", "code": code})
    assert r.status_code == 403 and "too many failed sign-ins" in r.text
    # the right code was not spent by the refused attempt
    with web.home.sessions() as s:
        assert accounts.recovery_codes_left(s, member_id) == accounts.RECOVERY_CODES


def test_an_invitation_works_once(web: Site) -> None:
    from tests.softauthn import SoftAuthenticator
    from tunetrust.services.members import invite
    from tunetrust.services.models import Actor

    path = invite(web.home, Actor.steward()).link.removeprefix(ORIGIN)
    first, second = web.client(), web.client()
    t1, t2 = csrf_of(first.get(path).text), csrf_of(second.get(path).text)
    key1, key2 = SoftAuthenticator(ORIGIN, "localhost"), SoftAuthenticator(ORIGIN, "localhost")
    o1 = first.post(f"{path}/options", json={"name": "ann"}, headers={"X-CSRF-Token": t1})
    o2 = second.post(f"{path}/options", json={"name": "bob"}, headers={"X-CSRF-Token": t2})
    ok = first.post(f"{path}/finish", json=key1.register(o1.json()), headers={"X-CSRF-Token": t1})
    assert ok.status_code == 200
    late = second.post(
        f"{path}/finish", json=key2.register(o2.json()), headers={"X-CSRF-Token": t2}
    )
    assert late.status_code == 409 and "used already" in late.text
    assert second.get(path).status_code == 409


# --- uploads ---------------------------------------------------------------------------


def _multipart(name: str, data: bytes, boundary: str = "tunetrust-test-boundary") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="export"; filename="{name}"\r\n'
            f"Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _nothing_stored(s: Site) -> None:
    with s.home.sessions() as db:
        assert db.query(Job).count() == 0
    assert uploads(s.home).list() == []
    leftovers = list((s.home.settings.home / "uploads").rglob("*"))
    assert [p for p in leftovers if p.is_file()] == []


def test_an_oversized_upload_is_refused_mid_stream_and_nothing_is_stored(tmp_path: Path) -> None:
    s = site(tmp_path, limits=ImportLimits(max_total_bytes=256 * 1024))
    try:
        c, _ = s.join("alice")
        token = csrf_of(c.get("/upload").text)
        big = io.BytesIO()
        with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("Streaming_History_Audio_2024.json", b"[" + b" " * 600_000 + b"]")
        body = _multipart("my_data.zip", big.getvalue())
        sent = 0

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must bite mid-stream
            nonlocal sent
            for i in range(0, len(body), 32 * 1024):
                sent += 1
                yield body[i : i + 32 * 1024]

        r = c.post(
            f"/upload?csrf={token}",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=tunetrust-test-boundary"},
        )
        assert r.status_code == 413, r.text
        assert "my_data.zip: larger than the 256 KiB an export may be" in r.text
        _nothing_stored(s)
        # with the length declared, refused before the body is read
        r = c.post(
            f"/upload?csrf={token}",
            files={"export": ("my_data.zip", big.getvalue(), "application/zip")},
        )
        assert r.status_code == 413
        _nothing_stored(s)
    finally:
        s.close()


def test_a_zip_bomb_upload_is_refused_with_the_file_named_and_nothing_stored(
    web: Site,
) -> None:
    c, _ = web.join("alice")
    token = csrf_of(c.get("/upload").text)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("Streaming_History_Audio_2024.json", b"\0" * (40 * 2**20))
    r = c.post(
        f"/upload?csrf={token}", files={"export": ("bomb.zip", bomb.getvalue(), "application/zip")}
    )
    assert r.status_code == 422, r.text
    assert "Streaming_History_Audio_2024.json" in r.text and "zip bomb" in r.text
    _nothing_stored(web)


def test_a_member_gets_404_for_another_members_job(tmp_path: Path) -> None:
    s = site(tmp_path)
    try:
        with s.worker():
            bob, _ = s.join("bob")
            alice, _ = s.join("alice")
            token = csrf_of(bob.get("/upload").text)
            z = export_zip(tmp_path, "extended-c", listens=500)
            r = bob.post(
                f"/upload?csrf={token}",
                files={"export": ("export.zip", z.read_bytes(), "application/zip")},
            )
            assert r.status_code == 303
            job = r.headers["location"]
            assert s.wait(bob, job)["state"] == "done"
            assert bob.get(job).status_code == 200
            for path in (job, f"{job}.json"):
                r = alice.get(path)
                assert r.status_code == 404, path
                assert "bob" not in r.text
    finally:
        s.close()


def test_no_personal_value_reaches_the_server_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s = site(tmp_path)
    try:
        with s.worker():
            c, _ = s.join("zelda-private-name")
            token = csrf_of(c.get("/upload").text)
            broken = io.BytesIO()
            with zipfile.ZipFile(broken, "w") as zf:
                zf.writestr("Streaming_History_Audio_2024.json", b'[{"ts": "2024-01-0')
            r = c.post(
                f"/upload?csrf={token}",
                files={"export": ("zelda-secret-file.zip", broken.getvalue(), "application/zip")},
            )
            job = r.headers["location"]
            assert s.wait(c, job)["state"] == "failed"
            invitation = s.clients[0].cookies.get("tunetrust_session") or ""
    finally:
        s.close()
    # the server's records (the test client's own httpx lines show the URLs it asked for)
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "GET /jobs/{job_id}.json 200" in logged  # the access log names route patterns
    for secret in ("zelda-private-name", "zelda-secret-file", invitation):
        assert secret and secret not in logged, secret
    assert not re.search(r"/join/[^{]", logged), "an invitation link reached the log"


def test_join_upload_sign_in_and_erasure_on_each_database(
    tmp_path: Path, db_url: str | None
) -> None:
    """The member's path through the app on SQLite and on PostgreSQL."""
    from tunetrust.services import members
    from tunetrust.services.models import Actor

    s = site(tmp_path, database_url=db_url)
    try:
        with s.worker():
            c, key = s.join("alice")
            token = csrf_of(c.get("/upload").text)
            z = export_zip(tmp_path, "extended-c", listens=800)
            r = c.post(
                f"/upload?csrf={token}",
                files={"export": ("export.zip", z.read_bytes(), "application/zip")},
            )
            ended = s.wait(c, r.headers["location"])
        assert ended["state"] == "done" and ended["contribution"], ended
        profile = members.member_profile(s.home, Actor.member("alice"), "alice")
        assert profile.contributions == 1 and profile.listens > 0
        assert c.post("/signout", data={"csrf": form(c, "/")}).status_code == 303
        assert c.get("/").status_code == 303  # signed out on the server
        again, done = s.sign_in(key)
        assert done.status_code == 200 and again.get("/").status_code == 200
        # the audit log names the member (by pseudonym) for what they did in the app
        with s.home.sessions() as db:
            pseudonym = db.scalars(
                __import__("sqlalchemy").select(
                    __import__("tunetrust").store.models.Member.pseudonym
                )
            ).one()
            actors = {
                e.actor
                for e in audit.entries(db)
                if e.action.startswith(("import", "member.passkey"))
            }
        assert actors == {audit.member_actor(pseudonym)}, actors
        members.erase(s.home, Actor.member("alice"), "alice")
        assert again.get("/").status_code == 303  # the session died with the account
        _, refused = s.sign_in(key)
        assert refused.status_code == 400 and "not registered" in refused.text
    finally:
        s.close()


def test_a_recovery_code_signs_in_once(web: Site) -> None:
    c, _ = web.join("alice")
    welcome = c.get("/welcome").text
    codes = re.findall(r"<code>([a-z0-9-]+)</code>", welcome)
    assert len(codes) == accounts.RECOVERY_CODES
    assert "<code>" not in c.get("/welcome").text  # shown once
    for attempt, expected in ((codes[3], 303), (codes[3], 400), (codes[3].upper(), 400)):
        b = web.client()
        token = csrf_of(b.get("/signin").text)
        r = b.post("/signin/recovery", data={"csrf": token, "name": "alice", "code": attempt})
        assert r.status_code == expected, attempt
        if expected == 303:
            assert r.headers["location"] == "/account" and b.get("/").status_code == 200
    with web.home.sessions() as s:
        member_id = s.scalars(select(Member.id)).one()
        assert accounts.recovery_codes_left(s, member_id) == accounts.RECOVERY_CODES - 1
        stored = s.scalars(select(RecoveryCode.code_hash)).all()
    assert all(h.startswith("$argon2id$") for h in stored)
    assert not any(code in h for h in stored for code in codes)


def test_open_admission_admits_anyone_until_the_steward_closes_it(web: Site) -> None:
    from tunetrust.services.members import close_invitation, invite
    from tunetrust.services.models import Actor

    opened = invite(web.home, Actor.steward(), open_admission=True)
    path = opened.link.removeprefix(ORIGIN)
    for name in ("ann", "bob"):  # the same link, two people
        c = web.client()
        token = csrf_of(c.get(path).text)
        key = SoftAuthenticator(ORIGIN, "localhost")
        o = c.post(f"{path}/options", json={"name": name}, headers={"X-CSRF-Token": token})
        done = c.post(
            f"{path}/finish", json=key.register(o.json()), headers={"X-CSRF-Token": token}
        )
        assert done.status_code == 200, done.text
        assert name in c.get("/").text
    # a third join from the same place the same day: one person, one membership
    c = web.client()
    token = csrf_of(c.get(path).text)
    o = c.post(f"{path}/options", json={"name": "cy"}, headers={"X-CSRF-Token": token})
    assert o.status_code == 409 and "one person, one membership" in o.text
    assert web.join("cy")[0].get("/").status_code == 200  # an invitation of one's own works
    close_invitation(web.home, Actor.steward(), opened.id)
    late = web.client().get(path)
    assert late.status_code == 409 and "ask the steward for a new one" in late.text
    with pytest.raises(ConflictError):  # an open link cannot enrol one member
        invite(web.home, Actor.steward(), member="ann", open_admission=True)


# --- found in review -------------------------------------------------------------------


def test_recovery_codes_never_rest_readable_in_the_database(web: Site) -> None:
    c, _ = web.join("alice")
    with web.home.sessions() as s:
        states = repr([row.state for row in s.scalars(select(WebSession))])
    codes = re.findall(r"<code>([a-z0-9-]+)</code>", c.get("/welcome").text)
    assert len(codes) == accounts.RECOVERY_CODES
    assert not any(code in states for code in codes)  # sealed under the cookie's key
    # new codes are shown in the answer itself and kept nowhere
    r = c.post("/account/recovery-codes", data={"csrf": form(c, "/account")})
    fresh = re.findall(r"<code>([a-z0-9-]+)</code>", r.text)
    with web.home.sessions() as s:
        states = repr([row.state for row in s.scalars(select(WebSession))])
    assert len(fresh) == accounts.RECOVERY_CODES and not any(f in states for f in fresh)


def test_one_sign_in_challenge_signs_in_once(web: Site) -> None:
    _, key = web.join("alice")
    c = web.client()
    token = csrf_of(c.get("/signin").text)
    options = c.post("/signin/options", headers={"X-CSRF-Token": token}).json()
    assertion = key.sign_in(options)
    first = c.post("/signin/finish", json=assertion, headers={"X-CSRF-Token": token})
    assert first.status_code == 200
    again = c.post("/signin/finish", json=assertion, headers={"X-CSRF-Token": token})
    assert again.status_code in (403, 409)  # the challenge was taken with the first


def test_the_export_leaves_no_copy_on_disk(web: Site, tmp_path: Path) -> None:
    c, _ = web.join("alice")
    r = c.post("/rights/export", data={"csrf": form(c, "/rights")})
    assert r.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(r.content)).testzip() is None
    left = [p for p in (web.home.settings.home / "exports").rglob("*") if p.is_file()]
    assert left == []


def test_ids_in_urls_are_whole_ids_not_patterns(web: Site) -> None:
    c, _ = web.join("alice")
    draft = lab_request(web.home, 1000, opened=False)
    token = form(c, "/votes")
    for path in ("/contributions/______", "/contributions/%25%25%25%25%25%25", "/votes/______"):
        assert c.get(path).status_code == 404, path
    # a draft is nothing here, for a vote as for the page
    assert c.get(f"/votes/{draft}").status_code == 404
    r = c.post(f"/votes/{draft}", data={"csrf": token, "choice": "yes"})
    assert r.status_code == 404 and "draft" not in r.text


def test_bodies_are_bounded_and_malformed_uploads_refused(web: Site) -> None:
    c, _ = web.join("alice")
    token = form(c, "/upload")
    big = c.post(
        "/signin/options",
        content=b"{" + b" " * 100_000 + b"}",
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    up = form(c, "/upload")
    r = c.post(
        f"/upload?csrf={up}",
        content=b"--b\r\nnot a part header at all",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-security-policy"] == CSP
    _nothing_stored(web)


def test_trying_names_through_an_invitation_is_rate_limited(web: Site) -> None:
    from tunetrust.services.members import invite
    from tunetrust.services.models import Actor

    web.join("alice")
    path = invite(web.home, Actor.steward(), open_admission=True).link.removeprefix(ORIGIN)
    c = web.client()
    token = csrf_of(c.get(path).text)
    answers = [
        c.post(f"{path}/options", json={"name": "alice"}, headers={"X-CSRF-Token": token})
        for _ in range(accounts.ATTEMPTS + 1)
    ]
    assert [a.status_code for a in answers[:-1]] == [409] * accounts.ATTEMPTS
    assert answers[-1].status_code == 403


def test_a_failed_join_leaves_the_link_usable_and_no_member_behind(web: Site) -> None:
    from tunetrust.coop.members import list_members
    from tunetrust.services.members import invite
    from tunetrust.services.models import Actor

    web.join("alice")
    # the credential the browser made is stored already when the join finishes
    bob_key = SoftAuthenticator(ORIGIN, "localhost")
    path2 = invite(web.home, Actor.steward()).link.removeprefix(ORIGIN)
    c2 = web.client()
    t2 = {"X-CSRF-Token": csrf_of(c2.get(path2).text)}
    o2 = c2.post(f"{path2}/options", json={"name": "bob"}, headers=t2).json()
    reg = bob_key.register(o2)
    with web.home.transaction() as s:  # someone registered this credential meanwhile
        alice_id = s.scalars(select(Member.id)).first()
        assert alice_id is not None
        accounts.add_passkey(s, alice_id, reg["id"], b"key", 0)
    refused = c2.post(f"{path2}/finish", json=reg, headers=t2)
    assert refused.status_code == 409 and "registered here already" in refused.text
    assert "bob" not in [m.name for m in list_members(web.home)]
    assert c2.get(path2).status_code == 200  # the link still works


def test_an_old_session_cannot_add_a_way_in(web: Site) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    c, _ = web.join("alice")
    token = form(c, "/account")
    with web.home.transaction() as s:  # signed in 20 minutes ago
        s.execute(update(WebSession).values(created_at=datetime.now(UTC) - timedelta(minutes=20)))
    for r in (
        c.post("/account/recovery-codes", data={"csrf": token}),
        c.post("/account/passkey/options", headers={"X-CSRF-Token": token}),
    ):
        assert r.status_code == 403 and "sign in again" in r.text
    assert c.get("/account").status_code == 200  # still signed in for everything else


def test_a_killed_servers_export_copies_are_removed_at_start(web: Site) -> None:
    import os

    from tunetrust.web.pages import EXPORTS, sweep_exports

    root = web.home.settings.home / EXPORTS
    for name in ("left-by-a-killed-server", "under-way-elsewhere"):
        (root / name).mkdir(parents=True)
        (root / name / "export.zip").write_bytes(b"decrypted listening history")
    old = time.time() - 3600
    os.utime(root / "left-by-a-killed-server", (old, old))
    with TestClient(web.app, base_url=ORIGIN):  # the app's start runs the sweep
        pass
    assert sorted(p.name for p in root.iterdir()) == ["under-way-elsewhere"]
    assert sweep_exports(web.home, older_than=0) == 1 and list(root.iterdir()) == []


def test_adding_a_passkey_registered_already_is_refused(web: Site) -> None:
    c, _ = web.join("alice")
    _, bob_key = web.join("bob")
    token = form(c, "/account")
    options = c.post("/account/passkey/options", headers={"X-CSRF-Token": token}).json()
    bobs = bob_key.register(options)  # a credential, then stored for bob before alice finishes
    with web.home.transaction() as s:
        bob_id = s.scalars(select(Member.id).order_by(Member.id.desc())).first()
        assert bob_id is not None
        accounts.add_passkey(s, bob_id, bobs["id"], b"key", 0)
    r = c.post("/account/passkey/finish", json=bobs, headers={"X-CSRF-Token": token})
    assert r.status_code == 409 and "registered here already" in r.text
    with web.home.sessions() as s:
        assert len(accounts.member_passkeys(s, bob_id)) == 2  # bob's own and the one stored


def test_the_open_admission_limit_holds_at_the_finish_too(web: Site) -> None:
    """Three people start joining from one place at once: the limit is checked again when
    the member is made, in the same transaction, so the third is refused there."""
    from tunetrust.services.members import invite
    from tunetrust.services.models import Actor

    path = invite(web.home, Actor.steward(), open_admission=True).link.removeprefix(ORIGIN)
    started = []
    for name in ("ann", "bob", "cy"):
        c = web.client()
        token = csrf_of(c.get(path).text)
        key = SoftAuthenticator(ORIGIN, "localhost")
        o = c.post(f"{path}/options", json={"name": name}, headers={"X-CSRF-Token": token})
        assert o.status_code == 200, o.text  # nobody has joined yet
        started.append((c, token, key, o.json()))
    codes = [
        c.post(f"{path}/finish", json=key.register(o), headers={"X-CSRF-Token": token}).status_code
        for c, token, key, o in started
    ]
    assert codes == [200, 200, 409]
    from tunetrust.coop.members import list_members

    assert sorted(m.name or "" for m in list_members(web.home)) == ["ann", "bob"]
