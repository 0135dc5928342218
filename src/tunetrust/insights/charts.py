"""Small SVG charts, drawn server-side: no JavaScript, no network, nothing to load.

Each chart is drawn twice, for a wide and a narrow box (``chart-wide``,
``chart-narrow``); ``charts.css`` shows one by the width of the screen, so text keeps
its size on a phone instead of shrinking with a wide drawing or scrolling sideways.
Colours come from classes (``bar``, ``grid``, ``tick``, ``name``, ``cell``) that
``charts.css`` colours for light and dark schemes and for print; the ``fill``
attributes are the light scheme, for an SVG read without the stylesheet.

Value axes use nice ticks (Heckbert's loose labelling, steps of 1, 2 or 5 × 10ⁿ):
the axis runs from 0 to the first tick at or above the peak, and bars and gridlines
are drawn on that one scale, so a bar of 2 ends exactly on the "2" line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from tunetrust.insights import display

_INK = "#1f2933"
_MUTED = "#52606d"
_ACCENT = "#0f766e"
_GRID = "#d9dee4"
DAYS = display.DAYS
hours, percent = display.hours, display.percent  # the one formatter, where callers look


def nice(x: float, *, rounded: bool) -> float:
    """Heckbert's nice number near ``x`` (> 0): 1, 2 or 5 × 10ⁿ (rounded, or at least x)."""
    exponent = math.floor(math.log10(x))
    f = x / 10**exponent
    if rounded:
        n = 1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10
    else:
        n = 1 if f <= 1 else 2 if f <= 2 else 5 if f <= 5 else 10
    return float(n * 10.0**exponent)


def ticks(peak: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Nice tick values from 0 to the first tick at or above ``peak`` (about ``count``)."""
    if not peak > 0:
        return [0.0, 1.0]
    step = nice(nice(peak, rounded=False) / (count - 1), rounded=True)
    if integer:
        step = max(step, 1.0)
    top = math.ceil(peak / step - 1e-9)
    return [round(i * step, 12) for i in range(top + 1)]


_NARROW_CHARS = frozenset("iIjl.,:;'|! ")
_SEMI_CHARS = frozenset("frt()[]-/")
_WIDE_CHARS = frozenset("mwMW@%")


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """A generous estimate of ``text``'s width in px at font ``size``: at least what DejaVu
    Sans (Debian's default, one of the widest sans-serif faces) needs; bold is wider.
    One estimate for the charts and the story's image (insights/share.py)."""
    em = 0.0
    for c in text:
        if c in _NARROW_CHARS:
            em += 0.32
        elif c in _SEMI_CHARS:
            em += 0.42
        elif c in _WIDE_CHARS or ord(c) > 0x2E80:  # and CJK and other wide scripts
            em += 1.0
        elif c.isupper():
            em += 0.79
        else:
            em += 0.65
    return em * size * (1.08 if bold else 1.0)


def fit(text: str, width: float, size: float, *, bold: bool = False) -> str:
    """``text`` cut with an ellipsis to fit ``width`` px at font ``size``."""
    if text_width(text, size, bold=bold) <= width:
        return text
    while text and text_width(text + "…", size, bold=bold) > width:
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(frozen=True)
class _Box:
    """One drawing size: the viewBox width, and its font size."""

    name: str
    width: int
    font: int


_WIDE = _Box("wide", 720, 12)
_NARROW = _Box("narrow", 340, 11)


def _svg(box: _Box, height: float, body: str, label: str) -> str:
    return (
        f'<svg class="chart chart-{box.name}" viewBox="0 0 {box.width} {height:.0f}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _both(draw: Callable[[_Box], str]) -> Markup:
    return Markup(draw(_WIDE) + draw(_NARROW))


def _empty(box: _Box, text: str, label: str) -> str:
    body = f'<text class="tick" x="10" y="30" font-size="{box.font + 2}" fill="{_MUTED}">'
    return _svg(box, 48, body + f"{escape(text)}</text>", label)


def columns(
    points: Sequence[tuple[str, float]],
    label: str,
    *,
    unit: str = "h",
    axis: Sequence[str] | None = None,
    integer: bool = False,
    describe: Callable[[float], str] | None = None,
    empty: str = "No listening in this period",
) -> Markup:
    """Vertical bars, one per point (e.g. hours per month), on a nice value axis.

    ``axis`` labels the points under the bars ("" for none); labels that would touch go
    in two rows or are left out (``_axis_rows``), none is cut off at an edge.
    ``describe`` writes a value for the bar's tooltip.
    """
    axis = list(axis) if axis is not None else [name for name, _ in points]
    say = describe or (lambda v: f"{display.number(v, 0.1)} {unit}")

    def draw(box: _Box) -> str:
        if not points:
            return _empty(box, empty, label)
        font = box.font
        marks = ticks(max(v for _, v in points), integer=integer)
        step, top_value = (marks[1] if len(marks) > 1 else 1.0), marks[-1]
        texts = [display.number(t, step) for t in marks]
        left = max(text_width(t, font) for t in texts) + 8
        top, right, inner_h = 22, 2, (214 if box is _WIDE else 164)
        slot = (box.width - left - right) / len(points)
        rows = _axis_rows(axis, [left + (i + 0.5) * slot for i in range(len(points))], box)
        height = top + inner_h + 8 + (font + 4) * max((r for _, _, r in rows), default=1)
        parts = []
        for value, text in zip(marks, texts, strict=True):
            y = top + inner_h * (1 - value / top_value)
            parts.append(
                f'<line class="grid" x1="{left:.1f}" x2="{box.width - right}" '
                f'y1="{y:.2f}" y2="{y:.2f}" stroke="{_GRID}"/>'
                f'<text class="tick" x="{left - 5:.1f}" y="{y + font * 0.35:.2f}" '
                f'text-anchor="end" font-size="{font}" fill="{_MUTED}">{text}</text>'
            )
        for i, (name, value) in enumerate(points):
            h = inner_h * value / top_value
            x = left + i * slot
            gap = min(slot * 0.15, 3) if slot > 3 else 0
            parts.append(
                f'<rect class="bar" x="{x + gap:.2f}" y="{top + inner_h - h:.2f}" '
                f'width="{max(slot - 2 * gap, 0.8):.2f}" height="{h:.2f}" fill="{_ACCENT}">'
                f"<title>{escape(name)}: {escape(say(value))}</title></rect>"
            )
        for tag, centre, row in rows:
            parts.append(
                f'<text class="tick x-label" x="{centre:.1f}" '
                f'y="{top + inner_h + 4 + (font + 4) * row:.1f}" text-anchor="middle" '
                f'font-size="{font}" fill="{_MUTED}">{escape(tag)}</text>'
            )
        parts.append(
            f'<text class="tick" x="0" y="{font}" font-size="{font}" '
            f'fill="{_MUTED}">{escape(unit)}</text>'
        )
        return _svg(box, height, "".join(parts), label)

    return _both(draw)


def _axis_rows(
    tags: Sequence[str], centres: Sequence[float], box: _Box
) -> list[tuple[str, float, int]]:
    """Where the labels under columns go: (text, centre, row 1 or 2).

    All in one row when none would touch; else, when every column has a label (a year of
    months on a phone), alternately in two rows if that makes room for all; else in one
    row, leaving out, left to right, each label that would touch the one before (the
    years of a long span).
    """
    font = box.font
    placed = []
    for tag, centre in zip(tags, centres, strict=True):
        if tag:
            half = text_width(tag, font) / 2
            placed.append((tag, min(max(centre, half), box.width - half), half))

    def fits(labels: list[tuple[str, float, float]]) -> bool:
        return all(a[1] + a[2] + 4 <= b[1] - b[2] for a, b in zip(labels, labels[1:], strict=False))

    if fits(placed):
        return [(tag, centre, 1) for tag, centre, _ in placed]
    if len(placed) == len(tags) and fits(placed[::2]) and fits(placed[1::2]):
        return [(tag, centre, 1 + i % 2) for i, (tag, centre, _) in enumerate(placed)]
    kept, end = [], -math.inf
    for tag, centre, half in placed:
        if centre - half >= end + 4:
            kept.append((tag, centre, 1))
            end = centre + half
    return kept


def heatmap(clock_ms: Sequence[Sequence[int]], label: str) -> Markup:
    """The listening clock: weekday rows × hour columns, darker is more listening."""
    peak = max((v for row in clock_ms for v in row), default=0) or 1

    def draw(box: _Box) -> str:
        font, left, top = box.font, 40, 22
        cell_w = (box.width - left - 2) / 24
        cell_h = cell_w if box is _WIDE else 18.0
        height = top + 7 * cell_h + 2
        parts = []
        for hour in range(0, 24, 3):
            parts.append(
                f'<text class="tick" x="{left + (hour + 0.5) * cell_w:.1f}" y="{font + 4}" '
                f'font-size="{font}" text-anchor="middle" fill="{_MUTED}">{hour:02d}</text>'
            )
        for d, row in enumerate(clock_ms):
            y = top + (d + 0.5) * cell_h + font * 0.35
            parts.append(
                f'<text class="tick" x="{left - 6}" y="{y:.1f}" font-size="{font}" '
                f'text-anchor="end" fill="{_MUTED}">{DAYS[d]}</text>'
            )
            for hour, value in enumerate(row):
                strength = value / peak
                parts.append(
                    f'<rect class="cell" x="{left + hour * cell_w + 1:.1f}" '
                    f'y="{top + d * cell_h + 1:.1f}" width="{cell_w - 2:.1f}" '
                    f'height="{cell_h - 2:.1f}" rx="2" fill="{_ACCENT}" '
                    f'fill-opacity="{0.06 + 0.94 * strength:.3f}">'
                    f"<title>{DAYS[d]} {hour:02d}:00 – {display.hours(value)}</title></rect>"
                )
        return _svg(box, height, "".join(parts), label)

    return _both(draw)


def bars(
    items: Sequence[tuple[str, float]],
    label: str,
    *,
    describe: Callable[[float], str] | None = None,
) -> Markup:
    """Horizontal bars with names (e.g. top artists by hours), longest first.

    Wide: the name left of its bar. Narrow: the name above its bar, so a phone shows
    long names whole. Names too long for their room end in "…" (the full name is the
    tooltip); the value is written after the bar.
    """
    say = describe or (lambda v: display.number(v, 0.1))

    def draw(box: _Box) -> str:
        if not items:
            return _empty(box, "Nothing yet", label)
        font = box.font + 1
        peak = max(v for _, v in items) or 1.0
        values = [say(v) for _, v in items]
        room = max(text_width(t, font) for t in values) + 10
        wide = box is _WIDE
        left = 200 if wide else 0
        row = 28 if wide else 44
        parts = []
        for i, ((name, value), text) in enumerate(zip(items, values, strict=True)):
            y = 4 + i * row
            w = max((box.width - left - room) * value / peak, 1.0)
            bar_y = y + 6 if wide else y + font + 8
            if wide:
                short = fit(name, left - 12, font)
                name_at = f'x="{left - 8}" y="{y + 6 + font * 0.85:.1f}" text-anchor="end"'
            else:
                short = fit(name, box.width - 2, font)
                name_at = f'x="0" y="{y + font}"'
            parts.append(
                f'<text class="name" {name_at} font-size="{font}" fill="{_INK}">'
                f"{escape(short)}<title>{escape(name)}</title></text>"
                f'<rect class="bar" x="{left}" y="{bar_y:.1f}" width="{w:.1f}" '
                f'height="{row - 12 if wide else 14}" rx="2" fill="{_ACCENT}"/>'
                f'<text class="tick" x="{left + w + 6:.1f}" '
                f'y="{bar_y + (row - 12 if wide else 14) / 2 + font * 0.35:.1f}" '
                f'font-size="{font - 1}" fill="{_MUTED}">{escape(text)}</text>'
            )
        return _svg(box, row * len(items) + 8, "".join(parts), label)

    return _both(draw)
