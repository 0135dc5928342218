"""The buyer portal and the steward's console in a real browser (Debian's Chromium).

The real server runs as a subprocess (``tunetrust serve``) over a home prepared with the
library (three members who allow research, buyer Lab, a steward's token). A buyer signs
in with their token, checks a spec (the live check, then the Check button) and proposes
it; the steward signs in with theirs, makes an invitation, opens the buyer's request,
closes it early with a reason once two members voted (by the library, as members would
in their app) and delivers it with a double click; the buyer downloads every file and
checks its SHA-256 against the one listed, and the buyer's API client
(``examples/buyer.py --request ID``) fetches and verifies the same release. On every
page, at 1280 px and at 390 px: no console or script error, no sideways scrolling, no
serious or critical axe-core finding (run at 390 px), and screenshots (under
``$TUNETRUST_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tunetrust.services import governance
from tunetrust.services import tokens as token_service
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import Home, init_home

from .browser import chromium
from .factories import WEEKDAY_SPEC, consenting_members
from .test_web_browser import Device, _device, screens_folder
from .web_support import clean_env, free_port, served

STEWARD = Actor.steward()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "buyer.py"
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@dataclass
class Server:
    """The running app, its origin, the home it serves, and the tokens handed out."""

    home: Home
    origin: str
    screens: Path
    members: list[str]
    buyer: str
    steward: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("staff-web")
    port = free_port()
    origin = f"http://localhost:{port}"
    home = init_home(Settings(home=root / "home", web_origin=origin))
    names = consenting_members(home, root, 3)
    buyer = governance.add_buyer(home, STEWARD, "Lab", "lab@example.invalid", "SE").token
    steward = token_service.issue_token(home, STEWARD, kind="steward", holder="Ada").token
    try:
        log = root / "server.log"
        with served(home.settings.home, port, log, "--origin", origin, "--no-worker"):
            screens = screens_folder(tmp_path_factory)
            yield Server(home, origin, screens, names, buyer, steward)
    finally:
        home.close()


def look(d: Device, slug: str) -> None:
    """Every page's checks, at both widths: no sideways scrolling, no console error, axe
    (at 390 px), a screenshot of each."""
    from axe_playwright_python.sync_playwright import Axe

    page = d.page
    page.wait_for_load_state("load")
    where = f"{d.name} {slug} ({page.url.split('/', 3)[-1]})"
    for size in (WIDE, NARROW):
        page.set_viewport_size(size)
        wide, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if wide > window:
            d.problems.append(f"{where}: scrolls sideways at {window} px ({wide} px)")
        d.shots += 1
        shot = d.screens / f"{d.name}-{d.shots:02d}-{slug}-{size['width']}.png"
        page.screenshot(path=shot, full_page=True)
    for v in Axe().run(page).response["violations"]:
        if v["impact"] in ("serious", "critical"):
            at = [n["target"] for n in v["nodes"]][:4]
            d.problems.append(f"{where}: axe {v['impact']} {v['id']} ({v['help']}) at {at}")
    page.set_viewport_size(WIDE)
    d.problems.extend(f"{where}: console: {e}" for e in d.errors)
    d.errors.clear()


def sign_in(d: Device, secret: str, start: str) -> None:
    """Sign in at /staff/signin with an API token."""
    d.page.goto("/staff/signin")
    look(d, "signin")
    d.page.get_by_label("API token").fill(secret)
    d.page.get_by_role("button", name="Sign in").click()
    d.page.wait_for_url(f"**{start}")


@pytest.fixture
def people(server: Server) -> Iterator[tuple[Device, Device, list[str]]]:
    problems: list[str] = []
    with chromium(modules=("axe_playwright_python",)) as browser:
        # the member test's devices: a context per person, console errors collected
        buyer = _device(browser, server, "buyer", problems, viewport=WIDE)  # type: ignore[arg-type]
        steward = _device(browser, server, "steward", problems, viewport=WIDE)  # type: ignore[arg-type]
        yield buyer, steward, problems
        if problems:
            print("\n".join(problems))


@pytest.mark.slow  # a server and a browser: about half a minute
def test_a_buyer_proposes_the_steward_delivers_and_the_buyer_downloads(
    people: tuple[Device, Device, list[str]], server: Server, tmp_path: Path
) -> None:
    started = time.perf_counter()
    buyer, steward, problems = people
    bp, sp = buyer.page, steward.page

    # 1. the buyer signs in with their token, checks the spec as it is typed, then on the server
    sign_in(buyer, server.buyer, "/buyer")
    look(buyer, "portal-empty")
    bp.get_by_label("Release spec (YAML or JSON)").fill(WEEKDAY_SPEC)
    bp.get_by_label("Price offered, in minor units").fill("10000")
    live = bp.locator("#live-check")
    live.filter(has_text="3 members would be included").wait_for()
    bp.get_by_role("button", name="Check the spec").click()
    bp.get_by_role("heading", name="The spec checks out").wait_for()
    assert bp.get_by_label("Release spec (YAML or JSON)").input_value() == WEEKDAY_SPEC
    look(buyer, "portal-checked")
    bp.get_by_role("button", name="Propose the request").click()
    bp.wait_for_url("**/buyer/requests/*")
    request = bp.url.rsplit("/", 1)[-1]
    assert bp.get_by_text("a draft: the steward has not opened the vote yet").is_visible()
    look(buyer, "request-draft")

    # 2. the steward signs in, makes an invitation, opens the request
    sign_in(steward, server.steward, "/console")
    look(steward, "overview")
    nav = sp.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Invitations").click()
    sp.wait_for_url("**/console/invitations")
    look(steward, "invitations")
    sp.get_by_label("One person, once").check()
    sp.get_by_role("button", name="Make the link").click()
    link = sp.locator("#invitation-link")
    link.wait_for()
    assert f"{server.origin}/join/" in link.inner_text()
    look(steward, "invitation-made")
    nav.get_by_role("link", name="Requests").click()
    sp.wait_for_url("**/console/requests")
    look(steward, "requests")
    sp.get_by_role("link", name=f"research request {request[:8]}").click()
    sp.wait_for_url(f"**/console/requests/{request}")
    look(steward, "request-draft")
    sp.get_by_role("button", name="Open the vote").click()
    sp.get_by_text("open: members are voting").wait_for()
    look(steward, "request-open")

    # two of the three members vote yes in their app; the steward closes early, with why
    for name in server.members[:2]:
        governance.vote(server.home, Actor.member(name), name, request, "yes")
    sp.reload()
    sp.get_by_label("Why close it now").fill("Two thirds have voted; the buyer's deadline.")
    sp.get_by_role("button", name="Close the vote now").click()
    sp.get_by_text("passed: it will be built and delivered").wait_for()
    assert sp.get_by_text("Two thirds have voted; the buyer's deadline.").is_visible()
    look(steward, "request-passed")

    # delivered with a double click: one build, one payment
    sp.get_by_role("button", name="Build and deliver").dblclick()
    sp.get_by_text("delivered and paid").wait_for()
    check = governance.verify_ledger(server.home, STEWARD)
    assert check.ok and check.transactions == 1, check
    look(steward, "request-paid")
    sp.get_by_role("link", name="Manifest of release").click()
    sp.wait_for_url("**/console/releases/*")
    assert sp.get_by_text("Its files match the manifest").is_visible()
    look(steward, "release")
    for label, slug in (
        ("Members", "members"),
        ("Rules", "rules"),
        ("Audit", "audit"),
        ("Ledger", "ledger"),
        ("Jobs", "jobs"),
        ("Tokens", "tokens"),
        ("Overview", "overview"),
    ):
        nav.get_by_role("link", name=label, exact=True).click()
        sp.wait_for_url("**/console" + ("" if slug == "overview" else f"/{slug}"))
        look(steward, slug)
    sp.get_by_role("button", name="Sign out Ada").click()
    sp.wait_for_url("**/staff/signin")

    # 3. the buyer downloads every file and checks it against the digest listed
    bp.reload()
    bp.get_by_role("heading", name="Your data").wait_for()
    look(buyer, "request-delivered")
    files = bp.get_by_role("list", name="The release’s files").get_by_role("listitem")
    listed = {
        f.get_by_role("heading").inner_text(): f.locator("code.hash").inner_text()
        for f in files.all()
    }
    assert {"data.csv", "data.parquet", "manifest.json", "SHA256SUMS"} <= listed.keys()
    for name, digest in listed.items():
        with bp.expect_download() as got:
            bp.get_by_role("link", name=f"Download {name}", exact=True).click()
        data = Path(got.value.path()).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    look(buyer, "request-downloaded")
    took = time.perf_counter() - started
    print(f"\nstaff journey: {took:.1f} s; screenshots in {server.screens}")
    assert not problems, "\n".join(problems)

    # 4. the buyer's API client fetches the same release and verifies it on its own
    out = tmp_path / "release"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", server.origin, "--request", request]
        + ["--out", str(out), "--wait", "30"],
        env=clean_env() | {"TUNETRUST_TOKEN": server.buyer},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert written == listed
