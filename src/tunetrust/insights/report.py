"""The HTML report: one self-contained, offline file (inline CSS and SVG, no scripts)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tunetrust.insights import charts, display
from tunetrust.insights.stats import FAVOURITE_MS, FAVOURITE_PLAYS, Insights


def chart_css() -> str:
    """The charts' stylesheet (``templates/charts.css``): the report inlines it, the web
    app serves it."""
    return (files("tunetrust.insights") / "templates" / "charts.css").read_text("utf-8")


def new_artists(i: Insights) -> dict[str, int]:
    """Month → how many artists were heard for the first time that month."""
    return {m["month"]: m["new_artists"] for m in i.new_artists_per_month}


def month_axis(months: list[str]) -> list[str]:
    """Labels under a chart of months: month names within one year, else the years.

    One year (or less) reads ``Jan Feb …``, with the year at its first month and at each
    January; longer spans read the year under each January (and the first month).
    """
    years = {m[:4] for m in months}
    if len(months) <= 12 and len(years) == 1:
        return [display.month(m, year=False) for m in months]
    if len(months) <= 12:
        return [display.month(m, year=i == 0 or m.endswith("-01")) for i, m in enumerate(months)]
    return [m[:4] if i == 0 or m.endswith("-01") else "" for i, m in enumerate(months)]


def _hours(value: float) -> str:
    return display.hours(value * display.HOUR_MS)


def figures(i: Insights) -> dict[str, Markup]:
    """The report's charts as inline SVG (the HTML report and the web app's page)."""
    months = [m["month"] for m in i.per_month]
    axis = month_axis(months)
    drawn = {
        "months": charts.columns(
            [(display.month(m["month"]), m["ms"] / display.HOUR_MS) for m in i.per_month],
            f"Listening hours per month, {i.period}",
            axis=axis,
            describe=_hours,
        ),
        "clock": charts.heatmap(i.clock_ms, f"Listening clock ({i.tz}), {i.period}"),
        "artists": charts.bars(
            [(a.name, a.ms / display.HOUR_MS) for a in i.top_artists],
            "Top artists by hours",
            describe=_hours,
        ),
    }
    if i.discovery_from is not None:
        new = new_artists(i)
        found = [m for m in months if m >= i.discovery_from[:7]]
        drawn["discovery"] = charts.columns(
            [(display.month(m), float(new.get(m, 0))) for m in found],
            "New artists per month",
            unit="artists",
            axis=month_axis(found),
            integer=True,
            describe=lambda v: display.count(int(v)),
            empty="No new artists in this period",
        )
    return drawn


def favourite() -> dict[str, int]:
    """What makes a forgotten favourite (``stats.FAVOURITE_*``), for the pages to say."""
    return {"plays": FAVOURITE_PLAYS, "ms": FAVOURITE_MS}


def filters() -> dict[str, Any]:
    """The formatters the report's and the web page's templates use (``insights.display``)."""
    return {
        "count": display.count,
        "hours": display.hours,
        "pct": display.percent,
        "platform": display.platform,
        "days": display.days,
        "month": display.month,
    }


def render_html(insights: Insights, *, member: str) -> str:
    """The report as one HTML document (a page that says to import first, when empty)."""
    env = Environment(
        loader=PackageLoader("tunetrust.insights", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters())
    i = insights
    return env.get_template("report.html.j2").render(
        i=i,
        member=member,
        empty=i.history_first_day is None,
        figures=figures(i) if i.history_first_day is not None else {},
        new=new_artists(i),
        favourite=favourite(),
        chart_css=Markup(chart_css()),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
