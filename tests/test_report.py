"""The HTML report in a real browser: Debian's Chromium, driven by Playwright.

Three reports (one year, all time, and a member with no listens) at 360 and 390 px
(phones) and 1280 px, in the light and the dark scheme: no console error, no request
but the file, no sideways scrolling, every chart and its text inside the window at a
legible size, every month of the year chart labelled on screen, no serious or critical
axe-core finding, and a full-page screenshot kept in ``build/screenshots/report/`` (or
``$TUNETRUST_SCREENSHOTS/report/``). Printing shows the wide charts and no dark colours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tunetrust import Home, Settings, add_member, import_export, init_home
from tunetrust.insights import display
from tunetrust.insights.report import render_html
from tunetrust.insights.stats import Period, member_insights

from .browser import (
    axe_problems,
    chromium,
    layout_problems,
    month_labels,
    screens,
    unseparated_numbers,
)
from .factories import export_zip

LISTENS = 60_000  # 8 years, about 20 plays a day (bench/insights.py: 500,000)
WIDTHS = (360, 390, 1280)


@dataclass(frozen=True)
class Reports:
    year: Path
    all_time: Path
    empty: Path
    shots: Path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(modules=("axe_playwright_python",)) as b:
        yield b


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    tmp = tmp_path_factory.mktemp("report")
    home = init_home(Settings(home=tmp / "home"))
    try:
        add_member(home, "many")
        add_member(home, "nobody")
        import_export(home, "many", export_zip(tmp, "extended-c", LISTENS, seed=4, years=8))
        written = {}
        for name, member, period in (
            ("year", "many", Period.parse(None, None, 2023)),
            ("all_time", "many", Period()),
            ("empty", "nobody", Period()),
        ):
            insights = member_insights(home, member, period, tz="Europe/Berlin")
            written[name] = tmp / f"{name}.html"
            written[name].write_text(render_html(insights, member=member), encoding="utf-8")
    finally:
        home.close()
    yield Reports(**written, shots=screens("report"))


def _open(browser: Any, path: Path, width: int, scheme: str = "light") -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    if requests != [path.as_uri()]:  # nothing but the file itself: no CDN, no fonts
        problems.append(f"requests: {requests}")
    return page, problems


@pytest.mark.slow  # a browser over a 60,000-listen member
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_a_years_report_fits_every_screen(
    browser: Any, reports: Reports, width: int, scheme: str
) -> None:
    """The reported defect: on a 390 px phone only January to June and the clock to 12:00
    showed, in a sideways scroll, with bar labels cut off."""
    page, problems = _open(browser, reports.year, width, scheme)
    problems += layout_problems(page) + axe_problems(page)
    labels = month_labels(page, "#months svg.chart")
    assert [text for text, _, _ in labels] == list(display.MONTHS)
    assert all(0 <= left and right <= width for _, left, right in labels), labels
    drawing = "narrow" if width < 640 else "wide"
    for chart in ("#months", "#clock", "#artists", "#discovery"):
        shown = page.locator(f"{chart} svg.chart-{drawing}")
        assert shown.is_visible(), chart
        box = shown.bounding_box()
        assert box is not None and box["width"] > 0.8 * min(width, 1000) - 60, chart
    assert page.locator(f"#clock svg.chart-{drawing} rect").count() == 7 * 24
    assert page.locator(f"#months svg.chart-{drawing} rect").count() == 12
    if scheme == "dark":
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 24, 39)"
        tick = page.locator(f"#months svg.chart-{drawing} text.tick").first
        assert tick.evaluate("e => getComputedStyle(e).fill") == "rgb(179, 189, 200)"
    page.screenshot(path=reports.shots / f"year-{width}-{scheme}.png", full_page=True)
    page.close()
    assert problems == []


@pytest.mark.slow  # a browser over a 60,000-listen member
@pytest.mark.parametrize("width", WIDTHS)
def test_an_all_time_report_fits_every_screen(browser: Any, reports: Reports, width: int) -> None:
    page, problems = _open(browser, reports.all_time, width)
    problems += layout_problems(page) + axe_problems(page)
    title = page.locator("h1").inner_text()
    assert "the beginning" not in title and "today" not in title
    assert title.startswith("Your listening, 20") and " – 20" in title
    years = [text for text, _, _ in month_labels(page, "#months svg.chart")]
    assert len(years) >= 3 and all(len(y) == 4 and y.isdigit() for y in years), years
    text = page.locator("main").inner_text()
    assert "New artists count from" in text  # the start of the history is not a discovery
    figures = " ".join(page.locator(".card b, td.n").all_inner_texts())
    assert unseparated_numbers(figures) == []  # "54,386 plays", never "54386"
    devices = page.locator("#devices td:first-child").all_inner_texts()
    assert devices and set(devices) <= set(display.PLATFORMS.values()), devices  # not "on ios"
    page.screenshot(path=reports.shots / f"all-time-{width}.png", full_page=True)
    page.close()
    assert problems == []


@pytest.mark.slow  # a browser over a 60,000-listen member
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_an_empty_report_says_to_import_first(
    browser: Any, reports: Reports, width: int, scheme: str
) -> None:
    page, problems = _open(browser, reports.empty, width, scheme)
    problems += layout_problems(page) + axe_problems(page)
    assert page.get_by_role("heading", name="Import your export first").is_visible()
    assert "tunetrust import" in page.locator("main").inner_text()
    assert page.locator("svg.chart").count() == 0
    html = reports.empty.read_text("utf-8")
    assert "None" not in html and "0 days" not in html
    page.screenshot(path=reports.shots / f"empty-{width}-{scheme}.png", full_page=True)
    page.close()
    assert problems == []


@pytest.mark.slow  # a browser over a 60,000-listen member
def test_printing_shows_the_wide_charts_in_light_colours(
    browser: Any, reports: Reports, tmp_path: Path
) -> None:
    page, problems = _open(browser, reports.year, 390, "dark")
    page.emulate_media(media="print")
    assert page.locator("#months svg.chart-wide").is_visible()
    assert not page.locator("#months svg.chart-narrow").is_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    assert page.locator("section").first.evaluate("e => getComputedStyle(e).breakInside") == (
        "avoid"
    )
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000
    page.close()
    assert problems == []


def test_report_escapes_names(home: Home, tmp_path: Path) -> None:
    from .factories import extended_row, json_bytes

    add_member(home, "x")
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_bytes(
        json_bytes(
            [extended_row("c", master_metadata_album_artist_name="<script>alert(1)</script>")]
        )
    )
    import_export(home, "x", path)
    html = render_html(member_insights(home, "x", Period()), member="<b>x</b>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>x</b>" not in html
