"""The HTML report: one self-contained, offline file (inline CSS and SVG, no scripts)."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from tunetrust.insights import charts
from tunetrust.insights.stats import Insights


def render_html(insights: Insights, *, member: str) -> str:
    """The report as one HTML document."""
    env = Environment(
        loader=PackageLoader("tunetrust.insights", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hours"] = charts.hours
    env.filters["pct"] = charts.percent
    i = insights
    new = {m["month"]: m["new_artists"] for m in i.new_artists_per_month}
    figures = {
        "months": charts.columns(
            [(m["month"], m["ms"] / 3_600_000) for m in i.per_month],
            f"Listening hours per month, {i.period}",
        ),
        "clock": charts.heatmap(i.clock_ms, f"Listening clock ({i.tz}), {i.period}"),
        "artists": charts.bars(
            [(a.name, a.ms / 3_600_000) for a in i.top_artists], "Top artists by hours"
        ),
        "discovery": charts.columns(
            [(m["month"], float(new.get(m["month"], 0))) for m in i.per_month],
            "New artists per month",
            unit="artists",
        ),
    }
    return env.get_template("report.html.j2").render(
        i=i,
        member=member,
        figures=figures,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
