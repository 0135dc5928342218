"""The HTML report: one self-contained, offline file (inline CSS and SVG, no scripts)."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tunetrust.insights import charts
from tunetrust.insights.stats import Insights


def new_artists(i: Insights) -> dict[str, int]:
    """Month → how many artists were heard for the first time that month."""
    return {m["month"]: m["new_artists"] for m in i.new_artists_per_month}


def figures(i: Insights) -> dict[str, Markup]:
    """The report's four charts as inline SVG (the HTML report and the web app's page)."""
    new = new_artists(i)
    return {
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
    drawn = figures(i)
    return env.get_template("report.html.j2").render(
        i=i,
        member=member,
        figures=drawn,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
