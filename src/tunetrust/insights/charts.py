"""Small SVG charts, drawn server-side: no JavaScript, no network, nothing to load."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_INK = "#1f2933"
_MUTED = "#7b8794"
_ACCENT = "#0f766e"
_GRID = "#e4e7eb"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hours(ms: int | float) -> str:
    """Milliseconds as hours, the unit people think of listening in."""
    h = ms / 3_600_000
    return f"{h:,.0f} h" if h >= 10 else f"{h:,.1f} h"


def percent(share: float | None) -> str:
    """A share as a whole percentage, or a dash when it is unknown."""
    return "—" if share is None else f"{share * 100:.0f} %"


def _svg(width: int, height: int, body: str, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def columns(points: Sequence[tuple[str, float]], label: str, unit: str = "h") -> Markup:
    """Vertical bars, one per point (e.g. listening hours per month)."""
    width, height, left, bottom, top = 720, 270, 48, 40, 24
    if not points:
        return _svg(
            width,
            80,
            f'<text x="10" y="45" fill="{_MUTED}">No listening in this period</text>',
            label,
        )
    peak = max(v for _, v in points) or 1.0
    inner_w, inner_h = width - left - 8, height - bottom - top
    step = inner_w / len(points)
    parts = []
    for frac in (0.25, 0.5, 0.75, 1.0):
        y = top + inner_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_MUTED}">{peak * frac:,.0f}</text>'
        )
    every = max(1, len(points) // 12)
    for i, (name, value) in enumerate(points):
        h = inner_h * value / peak
        x = left + i * step
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{top + inner_h - h:.1f}" '
            f'width="{max(step * 0.8, 1):.1f}" height="{h:.1f}" fill="{_ACCENT}" rx="1">'
            f"<title>{escape(name)}: {value:,.1f} {unit}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle" font-size="11" fill="{_MUTED}">'
                f"{escape(name)}</text>"
            )
    parts.append(
        f'<text x="{left - 6}" y="12" text-anchor="end" font-size="11" '
        f'fill="{_MUTED}">{unit}</text>'
    )
    return _svg(width, height, "".join(parts), label)


def heatmap(clock_ms: Sequence[Sequence[int]], label: str) -> Markup:
    """The listening clock: weekday rows × hour columns, darker is more listening."""
    cell, left, top = 26, 40, 20
    width, height = left + 24 * cell + 4, top + 7 * cell + 4
    peak = max((v for row in clock_ms for v in row), default=0) or 1
    parts = []
    for hour in range(0, 24, 3):
        parts.append(
            f'<text x="{left + hour * cell + cell / 2}" y="14" font-size="11" '
            f'text-anchor="middle" fill="{_MUTED}">{hour:02d}</text>'
        )
    for d, row in enumerate(clock_ms):
        parts.append(
            f'<text x="{left - 6}" y="{top + d * cell + cell * 0.65:.1f}" '
            f'font-size="11" text-anchor="end" fill="{_MUTED}">{DAYS[d]}</text>'
        )
        for hour, value in enumerate(row):
            strength = value / peak
            parts.append(
                f'<rect x="{left + hour * cell + 1}" y="{top + d * cell + 1}" width="{cell - 2}" '
                f'height="{cell - 2}" rx="3" fill="{_ACCENT}" '
                f'fill-opacity="{0.06 + 0.94 * strength:.3f}">'
                f"<title>{DAYS[d]} {hour:02d}:00 – {hours(value)}</title></rect>"
            )
    return _svg(width, height, "".join(parts), label)


def bars(items: Sequence[tuple[str, float]], label: str, unit: str = "h") -> Markup:
    """Horizontal bars with names (e.g. top artists by hours)."""
    row, left, width = 26, 190, 720
    height = max(row * len(items) + 8, 40)
    if not items:
        return _svg(width, 40, f'<text x="10" y="25" fill="{_MUTED}">Nothing yet</text>', label)
    peak = max(v for _, v in items) or 1.0
    parts = []
    for i, (name, value) in enumerate(items):
        y = 4 + i * row
        w = (width - left - 80) * value / peak
        short = name if len(name) <= 28 else name[:27] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="13" '
            f'fill="{_INK}">{escape(short)}<title>{escape(name)}</title></text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row - 8}" '
            f'rx="3" fill="{_ACCENT}"/>'
        )
        parts.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 17}" font-size="12" '
            f'fill="{_MUTED}">{value:,.1f} {unit}</text>'
        )
    return _svg(width, height, "".join(parts), label)
