"""The HTML report in a real browser: Debian's Chromium, driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunetrust import Home, add_member, import_export
from tunetrust.insights.report import render_html
from tunetrust.insights.stats import Period, member_insights

from .browser import chromium
from .factories import export_zip

CHARTS = ("#months svg.chart", "#clock svg.chart", "#artists svg.chart", "#discovery svg.chart")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def report(home: Home, member: str, tmp_path: Path) -> Path:
    import_export(home, member, export_zip(tmp_path, "extended-c", 8_000, seed=4))
    insights = member_insights(home, member, Period.parse(None, None, 2023), tz="Europe/Berlin")
    path = tmp_path / "report.html"
    path.write_text(render_html(insights, member=member), encoding="utf-8")
    return path


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["laptop", "phone"])
def test_report_renders_offline_with_every_chart(
    browser: Any, report: Path, tmp_path: Path, width: int, height: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    assert problems == []
    assert requests == [report.as_uri()]  # nothing but the file itself: no CDN, no fonts
    for selector in CHARTS:
        chart = page.locator(selector)
        assert chart.count() == 1, selector
        assert chart.is_visible(), selector
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 50, selector
    assert page.locator("#clock svg rect").count() == 7 * 24
    assert page.locator("#months svg rect").count() == 12
    # nothing overflows the page sideways (charts scroll inside their own box on phones)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot = tmp_path / f"report-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()


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
