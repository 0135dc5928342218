"""The member's insights pages and share images for a member of 500,000 listens.

Issue 18 asks for the report, the story and the cards of a 500,000-listen member and of
an empty member, at 360, 390 and 1280 px: the other browser tests use smaller members
(60,000 and 6,000 listens) to check every detail fast; this one checks, once, that the
largest history the benchmarks measure still fits every screen (longer numbers, more
years, more names) with no serious axe-core finding, and keeps the screenshots and the
two images in ``build/screenshots/at-scale/`` (or ``$TUNETRUST_SCREENSHOTS/at-scale/``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tunetrust.services import data, members
from tunetrust.services.models import Actor
from tunetrust.settings import Settings
from tunetrust.store.home import init_home
from tunetrust.web.security import COOKIE

from .browser import axe_problems, chromium, layout_problems, screens
from .factories import export_zip
from .web_support import free_port, served, session_secret

pytestmark = pytest.mark.slow  # a 500,000-listen import, a server and a browser

LISTENS = 500_000
WIDTHS = (360, 390, 1280)
PAGES = {
    "report-all": "/insights?tz=Europe/Berlin",
    "report-year": "/insights?period=year&year=2023&tz=Europe/Berlin",
    "story": "/insights/story?tz=Europe/Berlin",
}


@dataclass(frozen=True)
class Site:
    origin: str
    cookies: dict[str, str]  # member → session cookie
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("at-scale")
    port = free_port()
    origin = f"http://localhost:{port}"
    home = init_home(Settings(home=root / "home", web_origin=origin))
    try:
        cookies = {}
        for name in ("many", "nobody"):
            members.join(home, Actor.steward(), name)
            cookies[name] = session_secret(home, name)
        export = export_zip(root, "extended-c", LISTENS, seed=8, years=15)
        summary = data.import_contribution(home, Actor.member("many"), "many", [export])
        assert summary.listens_total > 450_000
        with served(home.settings.home, port, root / "server.log", "--origin", origin):
            yield Site(origin, cookies, screens("at-scale"))
    finally:
        home.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(modules=("axe_playwright_python",)) as b:
        yield b


@pytest.mark.parametrize("member", ["many", "nobody"])
@pytest.mark.parametrize("page_name", sorted(PAGES))
def test_every_page_fits_every_screen(
    browser: Any, site: Site, member: str, page_name: str
) -> None:
    problems: list[str] = []

    def log(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    for width in WIDTHS:
        viewport = {"width": width, "height": 800}
        context = browser.new_context(base_url=site.origin, viewport=viewport)
        context.add_cookies([{"name": COOKIE, "value": site.cookies[member], "url": site.origin}])
        page = context.new_page()
        page.on("console", log)
        response = page.goto(PAGES[page_name])
        assert response is not None and response.status == 200, PAGES[page_name]
        where = f"{page_name} of {member} at {width} px"
        problems += [f"{where}: {p}" for p in layout_problems(page) + axe_problems(page)]
        text = page.inner_text("main")
        if member == "nobody":
            assert "import your export first" in text.lower(), where
        page.screenshot(path=site.shots / f"{page_name}-{member}-{width}.png", full_page=True)
        context.close()
    assert problems == []


@pytest.mark.parametrize(("shape", "size"), [("tall", (1080, 1920)), ("square", (1080, 1080))])
def test_the_share_images_of_a_long_history(
    browser: Any, site: Site, shape: str, size: tuple[int, int]
) -> None:
    context = browser.new_context(base_url=site.origin)
    context.add_cookies([{"name": COOKIE, "value": site.cookies["many"], "url": site.origin}])
    got = context.request.get(f"/insights/story/image.png?shape={shape}")
    assert got.status == 200 and got.headers["content-type"] == "image/png"
    png = got.body()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == size
    (site.shots / f"image-{shape}.png").write_bytes(png)
    context.close()
