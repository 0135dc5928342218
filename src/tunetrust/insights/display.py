"""How the insights read: one formatter for every number, time, share and name.

The terminal (``cli/render.py``), the HTML report and the web app's page all format
through these functions, so a count reads ``12,345`` and a time ``1,234 h`` wherever it
appears. Plain Python only: the command line imports this without loading a chart.
"""

from __future__ import annotations

import math

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# the platform families kept at de-identification (ingest/deidentify.py) as people name
# them; desktop apps are one family there (the operating system is not kept)
PLATFORMS = {
    "android": "Android",
    "ios": "iOS",
    "desktop": "Desktop app (Windows, macOS, Linux)",
    "web": "Web player",
    "speaker": "Speakers",
    "tv": "TV",
    "car": "Car",
    "other": "Other devices",
}

HOUR_MS = 3_600_000
NBSP = "\u00a0"  # between a number and its unit: "12 h" never breaks into two lines


def count(n: int) -> str:
    """A whole number with thousands separators: ``12,345``."""
    return f"{n:,}"


def number(value: float, step: float = 1.0) -> str:
    """A number with thousands separators and as many decimals as ``step`` needs."""
    decimals = 0 if step >= 1 else min(6, math.ceil(-math.log10(step) - 1e-9))
    return f"{value:,.{decimals}f}"


def hours(ms: int | float) -> str:
    """A listening time: minutes under an hour, then hours (``45 min``, ``2.5 h``, ``1,234 h``)."""
    if ms <= 0:
        return f"0{NBSP}h"
    if ms < 60_000:
        return f"<{NBSP}1{NBSP}min"
    if ms < HOUR_MS:
        return f"{round(ms / 60_000)}{NBSP}min"
    h = ms / HOUR_MS
    return f"{h:,.0f}{NBSP}h" if h >= 10 else f"{h:,.1f}{NBSP}h"


def percent(share: float | None) -> str:
    """A share as a whole percentage, or a dash when it is unknown."""
    return "—" if share is None else f"{share * 100:.0f}{NBSP}%"


def platform(family: str) -> str:
    """A platform family's name as people write it (``ios`` → ``iOS``)."""
    return PLATFORMS.get(family, family.capitalize())


def days(n: int) -> str:
    """A number of days: ``1 day``, ``12 days``."""
    return f"{count(n)}{NBSP}day" if n == 1 else f"{count(n)}{NBSP}days"


def month(key: str, *, year: bool = True) -> str:
    """``2024-03`` as ``Mar 2024`` (or ``Mar``)."""
    y, m = key.split("-")
    return f"{MONTHS[int(m) - 1]} {y}" if year else MONTHS[int(m) - 1]
