"""The web app's insights page in a real browser (Debian's Chromium, Playwright).

The real server (``tunetrust serve``) over a home with two members, signed in by a
session opened in the session store as a sign-in would: one with 60,000 listens over 8
years, one with none. At 360 and 390 px (phones) and 1280 px, light and dark: no
console error (a CSP refusal is one), no sideways scrolling, every chart and its text
inside the window at a legible size, every month of a year's chart labelled on screen,
no serious or critical axe-core finding, and a full-page screenshot kept in
``build/screenshots/web-insights/`` (or ``$TUNETRUST_SCREENSHOTS/web-insights/``).
Printing leaves out the menus and the period form. The dark scheme is the whole app's,
so the other members' pages are checked with axe in it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tunetrust.insights import display
from tunetrust.services import data, members
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import init_home
from tunetrust.web.security import COOKIE

from .browser import (
    axe_problems,
    chromium,
    layout_problems,
    month_labels,
    screens,
    unseparated_numbers,
)
from .factories import export_zip
from .web_support import free_port, served, session_secret

pytestmark = pytest.mark.slow  # a server, a browser and an import: about a minute

LISTENS = 60_000
WIDTHS = (360, 390, 1280)
YEAR = "/insights?period=year&year=2023&tz=Europe/Berlin"


@dataclass(frozen=True)
class Site:
    origin: str
    cookies: dict[str, str]  # member → session cookie
    shots: Path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(modules=("axe_playwright_python",)) as b:
        yield b


@pytest.fixture(scope="module")
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web-insights")
    port = free_port()
    origin = f"http://localhost:{port}"
    home = init_home(Settings(home=root / "home", web_origin=origin))
    try:
        cookies = {}
        for name in ("many", "nobody"):
            members.join(home, Actor.steward(), name)
            cookies[name] = session_secret(home, name)
        export = export_zip(root, "extended-c", LISTENS, seed=4, years=8)
        data.import_contribution(home, Actor.member("many"), "many", [export])
        with served(home.settings.home, port, root / "server.log", "--origin", origin):
            yield Site(origin, cookies, screens("web-insights"))
    finally:
        home.close()


def _page(
    browser: Any, site: Site, member: str, path: str, width: int, scheme: str = "light"
) -> tuple[Any, list[str]]:
    context = browser.new_context(
        base_url=site.origin, viewport={"width": width, "height": 800}, color_scheme=scheme
    )
    context.add_cookies([{"name": COOKIE, "value": site.cookies[member], "url": site.origin}])
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    return page, problems


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_a_year_fits_every_screen(browser: Any, site: Site, width: int, scheme: str) -> None:
    page, problems = _page(browser, site, "many", YEAR, width, scheme)
    problems += layout_problems(page) + axe_problems(page)
    months = "section[aria-labelledby=h-months] svg.chart"
    labels = month_labels(page, months)
    assert [text for text, _, _ in labels] == list(display.MONTHS)
    assert all(0 <= left and right <= width for _, left, right in labels), labels
    assert page.locator("h1").inner_text() == "My listening, 2023"
    drawing = "narrow" if width < 640 else "wide"
    assert page.locator(f"{months}.chart-{drawing}").is_visible()
    assert not page.locator(f"{months}:not(.chart-{drawing})").is_visible()
    page.screenshot(path=site.shots / f"year-{width}-{scheme}.png", full_page=True)
    page.context.close()
    assert problems == []


@pytest.mark.parametrize("width", WIDTHS)
def test_all_time_fits_every_screen(browser: Any, site: Site, width: int) -> None:
    page, problems = _page(browser, site, "many", "/insights?tz=Europe/Berlin", width)
    problems += layout_problems(page) + axe_problems(page)
    title = page.locator("h1").inner_text()
    assert "today" not in title and "beginning" not in title and " – 20" in title, title
    figures = " ".join(page.locator("data, td.num").all_text_contents())
    assert unseparated_numbers(figures) == []  # "54,386 plays", never "54386"
    page.screenshot(path=site.shots / f"all-time-{width}.png", full_page=True)
    page.context.close()
    assert problems == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_an_empty_member_is_told_to_import_first(
    browser: Any, site: Site, width: int, scheme: str
) -> None:
    page, problems = _page(browser, site, "nobody", YEAR, width, scheme)
    problems += layout_problems(page) + axe_problems(page)
    assert page.get_by_role("heading", name="Import your export first").is_visible()
    assert page.get_by_role("link", name="upload it").is_visible()
    assert page.locator("svg.chart").count() == 0
    assert "None" not in page.locator("main").inner_text()
    page.screenshot(path=site.shots / f"empty-{width}-{scheme}.png", full_page=True)
    page.context.close()
    assert problems == []


def test_printing_leaves_out_menus_and_the_form(browser: Any, site: Site) -> None:
    page, problems = _page(browser, site, "many", YEAR, 390, "dark")
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="Main").is_visible()
    assert not page.locator("form[action='/insights']").is_visible()
    assert not page.get_by_role("link", name="Download these numbers as JSON").is_visible()
    assert page.locator("section[aria-labelledby=h-months] svg.chart-wide").is_visible()
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
        "rgb(255, 255, 255)"
    )
    page.pdf(path=str(site.shots / "year-print.pdf"), format="A4")
    page.context.close()
    assert problems == []


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/guide",
        "/upload",
        "/insights/story",
        "/insights/cooperative",
        "/consent",
        "/votes",
        "/money",
        "/rights",
        "/account",
    ],
)
def test_the_dark_scheme_keeps_every_members_page_readable(
    browser: Any, site: Site, path: str
) -> None:
    page, problems = _page(browser, site, "many", path, 390, "dark")
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
        "rgb(21, 24, 29)"
    )
    problems += layout_problems(page) + axe_problems(page)
    page.context.close()
    assert problems == []
