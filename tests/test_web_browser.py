"""A member's whole journey through the web app in a real browser (Debian's Chromium).

The real server runs as a subprocess (``tunetrust serve``) over a home prepared with the
library; Playwright drives Chromium. One member uses two devices at once: a desktop
(1280×800) holding their passkey (a CDP virtual authenticator) and a phone (390×844,
touch) signed in with a recovery code; each page the member reaches on one is opened on
the other too. The steward's side of a sale (a buyer's request opened, closed and
delivered) is played with the library between the member's steps, as the command line
would. On every page, on both devices: no console or script error (a CSP refusal is
one), no sideways scrolling, no serious or critical axe-core finding, and a full-page
screenshot (under ``$TUNETRUST_SCREENSHOTS`` when set, else pytest's temporary folder).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tunetrust.services import governance, members
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import Home, init_home

from .browser import chromium
from .factories import consenting_members, export_zip, lab_request
from .web_support import TUNETRUST, clean_env, free_port, served

NAME = "Robin"
PRICE = 10_000  # cents


def screens_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: TUNETRUST_SCREENSHOTS, else a temporary folder."""
    shots = os.environ.get("TUNETRUST_SCREENSHOTS")
    screens = Path(shots) if shots else tmp_path_factory.mktemp("screens")
    screens.mkdir(parents=True, exist_ok=True)
    return screens


@dataclass
class Server:
    """The running app, its origin, and the home it serves (open here too: the steward)."""

    home: Home
    origin: str
    screens: Path
    others: list[str]  # members who consent to research, so a release has enough people


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(modules=("axe_playwright_python",)) as b:
        yield b


@pytest.fixture(scope="module")
def server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web")
    port = free_port()
    origin = f"http://localhost:{port}"  # WebAuthn refuses an IP address as the site
    home = init_home(Settings(home=root / "home", web_origin=origin))
    others = consenting_members(home, root, 2)
    try:
        with served(home.settings.home, port, root / "server.log", "--origin", origin):
            yield Server(home, origin, screens_folder(tmp_path_factory), others)
    finally:
        home.close()


@dataclass
class Device:
    """One browser (its own cookies) the member uses, and what each page got wrong."""

    page: Any
    name: str
    screens: Path
    problems: list[str]
    errors: list[str] = field(default_factory=list)
    shots: int = 0

    def check(self, slug: str) -> None:
        """Every page's checks: no console error, no sideways scrolling, axe, a screenshot."""
        from axe_playwright_python.sync_playwright import Axe

        page = self.page
        page.wait_for_load_state("load")
        where = f"{self.name} {slug} ({page.url.split('/', 3)[-1]})"
        wide, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if wide > window:
            self.problems.append(f"{where}: scrolls sideways ({wide} px in {window} px)")
        for v in Axe().run(page).response["violations"]:
            if v["impact"] in ("serious", "critical"):
                at = [n["target"] for n in v["nodes"]][:4]
                self.problems.append(f"{where}: axe {v['impact']} {v['id']} ({v['help']}) at {at}")
        self.shots += 1
        page.screenshot(
            path=self.screens / f"{self.name}-{self.shots:02d}-{slug}.png", full_page=True
        )
        self.problems.extend(f"{where}: console: {e}" for e in self.errors)
        self.errors.clear()

    def open(self, path: str, slug: str) -> None:
        """Go to ``path`` (a path or the other device's URL) and check the page."""
        self.page.goto(path)
        self.check(slug)


def _device(browser: Any, server: Server, name: str, problems: list[str], **options: Any) -> Device:
    context = browser.new_context(base_url=server.origin, **options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    d = Device(page, name, server.screens, problems)

    def console(m: Any) -> None:
        if m.type == "error":
            d.errors.append(f"{m.text} [{m.location.get('url', '')}]")

    page.on("console", console)
    page.on("pageerror", lambda e: d.errors.append(f"script error: {e}"))
    return d


def _passkey(device: Device) -> None:
    """A platform authenticator that always says yes (verified user, resident keys)."""
    cdp = device.page.context.new_cdp_session(device.page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


@pytest.fixture
def devices(browser: Any, server: Server) -> Iterator[tuple[Device, Device, list[str]]]:
    problems: list[str] = []
    desktop = _device(browser, server, "desktop", problems, viewport={"width": 1280, "height": 800})
    phone = _device(
        browser,
        server,
        "phone",
        problems,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    _passkey(desktop)
    yield desktop, phone, problems
    if problems:  # shown with a failure that stopped the journey before its last check
        print("\n".join(problems))
    for d in (desktop, phone):
        d.page.context.close()


def _field(data: Any, path: str) -> Any:
    """``top_artists.0.ms`` of the insights JSON."""
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _cli_insights(server: Server, name: str) -> dict[str, Any]:
    """What ``tunetrust insights --json`` prints for the member."""
    done = subprocess.run(
        [str(TUNETRUST), "--home", str(server.home.settings.home), "insights"]
        + ["--member", name, "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow  # a server, a browser, an import and a sale: about a minute
def test_a_member_walks_the_whole_site_on_a_desktop_and_a_phone(
    devices: tuple[Device, Device, list[str]], server: Server, tmp_path: Path
) -> None:
    started = time.perf_counter()
    desktop, phone, problems = devices
    home, steward, me = server.home, Actor.steward(), Actor.member(NAME)
    dp, pp = desktop.page, phone.page

    # 1. join on the desktop: a name, a passkey, eight recovery codes
    link = members.invite(home, steward).link
    phone.open(link, "join")  # (only looked at: the link works once)
    desktop.open(link, "join")
    dp.get_by_label("Your member name").fill(NAME)
    dp.get_by_role("button", name="Create my passkey").click()
    dp.wait_for_url("**/welcome")
    assert dp.get_by_role("heading", name=f"Welcome, {NAME}").is_visible()
    codes = dp.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 8
    desktop.check("welcome")

    # ... and on the phone with a recovery code
    phone.open("/signin", "signin")
    pp.get_by_role("textbox", name="Member name").fill(NAME)
    pp.get_by_role("textbox", name="Recovery code").fill(codes[0].strip())
    pp.get_by_role("button", name="Sign in with the code").tap()
    pp.wait_for_url("**/account")
    assert pp.get_by_text("7 unused recovery codes left").is_visible()
    phone.check("account")
    desktop.open("/account", "account")
    phone.open("/", "home-empty")

    # 2. upload the export on the phone, follow the import, read the report
    nav = pp.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Upload").tap()
    pp.wait_for_url("**/upload")
    phone.check("upload")
    pp.get_by_label("Export zip file").set_input_files(
        export_zip(tmp_path, "extended-c", listens=3000, seed=7, years=1)
    )
    pp.get_by_role("button", name="Upload and import").tap()
    pp.wait_for_url("**/jobs/*")
    phone.check("job")
    ended = pp.get_by_role("heading", name="Done").or_(
        pp.get_by_role("heading", name="It did not work")
    )
    ended.wait_for(timeout=90_000)  # the page polls, and reloads itself when the job ends
    phone.check("job-done")
    report = pp.get_by_role("link", name="See what we kept and dropped")
    assert report.is_visible(), pp.locator("#job").inner_text()
    desktop.open(pp.url, "job-done")
    desktop.open("/upload", "upload")  # now with the upload listed
    report.tap()
    pp.wait_for_url("**/contributions/*")
    assert pp.get_by_role("heading", name="What we kept").is_visible()
    phone.check("contribution")
    desktop.open(pp.url, "contribution")
    desktop.open("/", "home")
    phone.open("/", "home")

    # 3. insights: every number on the page is the command line's
    dp.get_by_role("navigation", name="Main").get_by_role("link", name="My insights").click()
    dp.wait_for_url("**/insights")
    desktop.check("insights")
    phone.open("/insights", "insights")
    cli = _cli_insights(server, NAME)
    shown = dp.locator("data[data-field]").evaluate_all(
        "els => els.map(e => [e.dataset.field, e.value])"
    )
    assert {"plays", "total_ms", "distinct_artists", "top_artists.0.ms"} <= dict(shown).keys()
    wrong = [
        (path, value, _field(cli, path))
        for path, value in shown
        if not math.isclose(float(value), float(_field(cli, path)), rel_tol=1e-9)
    ]
    assert not wrong, wrong[:10]
    top = dp.get_by_role("region", name="Top artists by hours", exact=True)
    assert top.get_by_role("rowheader").first.inner_text() == cli["top_artists"][0]["name"]

    # 4. consent: allow research, see the receipt
    phone.open("/consent", "consent")
    dp.goto("/consent")
    dp.get_by_role("button", name="Allow research").click()
    dp.wait_for_url("**/consent/receipts/*")
    assert dp.get_by_text("Recorded: you allowed research").is_visible()
    desktop.check("consent-receipt")
    phone.open(dp.url, "consent-receipt")
    desktop.open("/consent", "consent-allowed")
    assert dp.get_by_text("You allow this now.").is_visible()

    # 5. a buyer asks; the vote opens (steward); the member votes yes on the phone
    request = lab_request(home, PRICE)
    phone.open("/votes", "votes-open")
    pp.get_by_role("link", name=f"Read and vote on the request from Lab ({request[:8]})").tap()
    pp.wait_for_url(f"**/votes/{request}")
    phone.check("vote")
    pp.get_by_label("Yes, sell it").check()
    pp.get_by_role("button", name="Cast my vote").tap()
    pp.get_by_text("Your ballot: yes").wait_for()  # (back on the same address)
    ballot = governance.my_ballot(home, me, NAME, request)
    assert ballot is not None and ballot.choice == "yes"
    assert pp.get_by_text(ballot.receipt).is_visible()
    phone.check("vote-cast")
    desktop.open(pp.url, "vote-cast")

    # the others vote too; the steward closes, delivers, and the sale is paid
    for other in server.others:
        governance.vote(home, Actor.member(other), other, request, "yes")
    assert governance.close_request(home, steward, request).state == "passed"
    governance.deliver(home, steward, request)
    desktop.open("/votes", "votes-decided")
    statement = members.member_statement(home, me, NAME)
    assert statement.totals and statement.totals[0].amount > 0
    for d in (desktop, phone):
        d.open("/money", "money")
        for total in statement.totals:
            assert d.page.get_by_text(total.text).first.is_visible()
    with dp.expect_download() as got:
        dp.get_by_role("link", name="Download my proof of inclusion", exact=False).click()
    proof = json.loads(Path(got.value.path()).read_text("utf-8"))
    assert proof["included"] is True

    # 6. rights: download everything, then erase on the phone
    desktop.open("/rights", "rights")
    with dp.expect_download() as got:
        dp.get_by_role("button", name="Download my data").click()
    with zipfile.ZipFile(got.value.path()) as zf:
        assert zf.testzip() is None
        held = {Path(n).name: n for n in zf.namelist()}
        assert {"member.json", "consents.json", "votes.json", "payouts.json"} <= held.keys()
        rows = zf.read(held["listens.csv"]).decode("utf-8").splitlines()
    kept = members.member_profile(home, me, NAME).listens
    assert kept > 2_900 and len(rows) == 1 + kept  # a header, then every play kept

    phone.open("/rights", "rights")
    pp.get_by_label("To confirm, type your member name").fill("Robyn")
    pp.get_by_role("button", name="Erase me for good").tap()
    assert pp.get_by_role("alert").inner_text().startswith("Nothing was erased")
    # a refused form answers 400, which the browser logs: expected here, and only that
    refused = [e for e in phone.errors if "status of 400" in e and "/rights/erase" in e]
    assert refused, phone.errors
    phone.errors[:] = [e for e in phone.errors if e not in refused]
    phone.check("erase-refused")
    pp.get_by_label("To confirm, type your member name").fill(NAME)
    pp.get_by_role("button", name="Erase me for good").tap()
    pp.get_by_role("heading", name="You have been erased").wait_for()
    phone.check("goodbye")

    # signed out everywhere; the passkey no longer signs in
    dp.goto("/")
    assert dp.url.endswith("/signin")
    dp.get_by_role("button", name="Sign in with a passkey").click()
    status = dp.locator("#signin-status")
    status.filter(has_text="That did not work").wait_for()
    assert "not registered" in status.inner_text()
    # the refused finish is a 4xx the browser logs: expected here, and only that
    refused = [e for e in desktop.errors if "status of 4" in e and "/signin/finish" in e]
    assert refused, desktop.errors
    desktop.errors[:] = [e for e in desktop.errors if e not in refused]
    desktop.check("signin-refused")
    pp.goto("/")
    assert pp.url.endswith("/signin")

    print(f"\njourney: {time.perf_counter() - started:.1f} s; screenshots in {server.screens}")
    assert not problems, "\n".join(problems)
