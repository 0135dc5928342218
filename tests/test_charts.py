"""The report's charts and formatters: nice axes, one scale, names that fit, one formatter."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunetrust.insights import charts, display, report

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("peak", "integer", "expected"),
    [
        (65, False, [0, 20, 40, 60, 80]),  # was gridlines at 16, 33, 49, 65
        (2, False, [0, 0.5, 1, 1.5, 2]),
        (1, False, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (7.3, False, [0, 2, 4, 6, 8]),
        (100, False, [0, 20, 40, 60, 80, 100]),
        (1234, False, [0, 500, 1000, 1500]),
        (0.03, False, [0, 0.01, 0.02, 0.03]),
        (3, True, [0, 1, 2, 3]),
        (1, True, [0, 1]),
        (0, False, [0, 1]),
    ],
)
def test_ticks_are_nice(peak: float, integer: bool, expected: list[float]) -> None:
    assert charts.ticks(peak, integer=integer) == pytest.approx(expected)


@given(st.floats(min_value=1e-3, max_value=1e7, allow_nan=False))
def test_ticks_cover_the_peak_in_one_nice_step(peak: float) -> None:
    marks = charts.ticks(peak)
    step = marks[1] - marks[0]
    # the first tick at or above the peak (a rounding error of a billionth aside)
    assert marks[0] == 0 and marks[-1] >= peak * (1 - 1e-9) and peak > marks[-2]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1, 2, 5)
    assert 3 <= len(marks) <= 7
    assert all(b - a == pytest.approx(step) for a, b in zip(marks, marks[1:], strict=False))


def _drawings(markup: str) -> dict[str, ET.Element]:
    """The wide and narrow drawing of a chart, parsed."""
    root = ET.fromstring(f"<div>{markup}</div>")
    return {svg.get("class", "").split("-")[-1]: svg for svg in root.iter(f"{SVG}svg")}


@pytest.mark.parametrize("drawing", ["wide", "narrow"])
def test_bars_and_gridlines_share_one_scale(drawing: str) -> None:
    svg = _drawings(str(charts.columns([("a", 2.0), ("b", 1.0), ("c", 0.25)], "x")))[drawing]
    lines = {
        t.text: float(t.get("y", 0))
        for t in svg.iter(f"{SVG}text")
        if re.fullmatch(r"[\d.,]+", t.text or "")
    }
    grid = [float(line.get("y1", 0)) for line in svg.iter(f"{SVG}line")]
    assert list(lines) == ["0.0", "0.5", "1.0", "1.5", "2.0"]  # one step, one precision
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    zero, two = grid[0], grid[-1]
    for bar, value in zip(bars, (2.0, 1.0, 0.25), strict=True):
        top, bottom = float(bar.get("y", 0)), float(bar.get("y", 0)) + float(bar.get("height", 0))
        assert bottom == pytest.approx(zero, abs=0.01)
        assert top == pytest.approx(zero + (two - zero) * value / 2, abs=0.01)
    assert float(bars[0].get("y", 0)) == pytest.approx(grid[-1], abs=0.01)  # 2 on the "2" line
    assert float(bars[1].get("y", 0)) == pytest.approx(grid[2], abs=0.01)  # 1 on the "1" line


def _axis_labels(svg: ET.Element) -> list[tuple[str, float, float, float]]:
    """The labels under a chart's columns: text, left, right, row (y); none may touch
    another of its row or leave the drawing."""
    width = float(svg.get("viewBox", "").split()[2])
    out = []
    for t in svg.iter(f"{SVG}text"):
        if "x-label" in t.get("class", ""):
            half = charts.text_width(t.text or "", float(t.get("font-size", 0))) / 2
            x = float(t.get("x", 0))
            out.append((t.text or "", x - half, x + half, float(t.get("y", 0))))
    for row in {y for *_, y in out}:
        spans = [(left, right) for _, left, right, y in out if y == row]
        assert spans == sorted(spans)
        assert all(a[1] + 4 <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "touch"
    assert all(0 <= left and right <= width for _, left, right, _ in out)
    return out


def test_a_year_of_months_is_labelled_by_month_names_that_all_fit() -> None:
    months = [f"2023-{m:02d}" for m in range(1, 13)]
    axis = report.month_axis(months)
    assert axis == list(display.MONTHS)
    points = [(m, 10.0 + i) for i, m in enumerate(months)]
    drawings = _drawings(str(charts.columns(points, "x", axis=axis)))
    wide, narrow = _axis_labels(drawings["wide"]), _axis_labels(drawings["narrow"])
    assert [t for t, *_ in wide] == [t for t, *_ in narrow] == list(display.MONTHS)
    assert len({y for *_, y in wide}) == 1  # one row where there is room
    assert len({y for *_, y in narrow}) == 2  # two alternating rows on a phone


def test_long_spans_are_labelled_by_year_without_overlap() -> None:
    months = [f"{y}-{m:02d}" for y in range(2009, 2025) for m in range(1, 13)][10:]
    axis = report.month_axis(months)
    assert axis[0] == "2009" and axis[2] == "2010" and axis[1] == ""
    for svg in _drawings(str(charts.columns([(m, 1.0) for m in months], "x", axis=axis))).values():
        labels = _axis_labels(svg)
        assert len(labels) >= 4 and len({y for *_, y in labels}) == 1
    assert report.month_axis(["2023-11", "2023-12", "2024-01"]) == ["Nov 2023", "Dec", "Jan 2024"]


@pytest.mark.parametrize("drawing", ["wide", "narrow"])
def test_bar_names_fit_their_room(drawing: str) -> None:
    long = "The Extraordinarily Long-Named Orchestra of Somewhere Far Away (Live)"
    svg = _drawings(str(charts.bars([(long, 5.0), ("W" * 40, 2.0), ("Ab", 1.0)], "x")))[drawing]
    names = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "name"]
    width = float(svg.get("viewBox", "").split()[2])
    for t in names:
        size, x = float(t.get("font-size", 0)), float(t.get("x", 0))
        shown = t.text or ""
        extent = charts.text_width(shown, size)
        left, right = (x - extent, x) if t.get("text-anchor") == "end" else (x, x + extent)
        assert left >= 0 and right <= width, shown
        assert t.find(f"{SVG}title") is not None  # the whole name on hover
    assert names[2].text == "Ab" and names[0].text.endswith("…")


def test_charts_say_when_there_is_nothing() -> None:
    assert "No listening in this period" in charts.columns([], "x")
    assert "Nothing yet" in charts.bars([], "x")


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda: display.count(1234567), "1,234,567"),
        (lambda: display.number(1500, 500), "1,500"),
        (lambda: display.number(0.5, 0.5), "0.5"),
        (lambda: display.number(0.25, 0.05), "0.25"),
        (lambda: display.hours(0), "0\u00a0h"),
        (lambda: display.hours(20_000), "<\u00a01\u00a0min"),
        (lambda: display.hours(45 * 60_000), "45\u00a0min"),
        (lambda: display.hours(5_400_000), "1.5\u00a0h"),
        (lambda: display.hours(4_442_400_000), "1,234\u00a0h"),
        (lambda: display.percent(0.123), "12\u00a0%"),
        (lambda: display.percent(None), "—"),
        (lambda: display.days(1), "1\u00a0day"),
        (lambda: display.days(1200), "1,200\u00a0days"),
        (lambda: display.platform("ios"), "iOS"),
        (lambda: display.platform("android"), "Android"),
        (lambda: display.platform("web"), "Web player"),
        (lambda: display.platform("desktop"), "Desktop app (Windows, macOS, Linux)"),
        (lambda: display.month("2024-03"), "Mar 2024"),
    ],
)
def test_one_formatter(call: object, text: str) -> None:
    assert call() == text  # type: ignore[operator]


def test_every_platform_family_has_a_name() -> None:
    from tunetrust.ingest.deidentify import PLATFORM_FAMILIES

    assert set(display.PLATFORMS) == set(PLATFORM_FAMILIES)
