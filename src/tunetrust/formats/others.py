"""Exports of services this version cannot import yet, recognised by their file names.

Only names are looked at (never content), and only to tell a member which service's
export they gave, instead of a bare "no listening history found". A service moves
from here to the parser registry when its parser is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# (service as people call it, a pattern that some file path of its export matches)
_SIGNATURES: Sequence[tuple[str, re.Pattern[str]]] = [
    (
        "Apple Music (Apple's data and privacy export)",
        re.compile(r"Apple Media Services|Apple[ _]Music[ _-].*\.(csv|json)$", re.I),
    ),
    (
        "YouTube or YouTube Music (Google Takeout)",
        re.compile(r"(^|/)Takeout/|YouTube( and YouTube Music)?/history/", re.I),
    ),
    ("Last.fm (a scrobble export)", re.compile(r"last\.?fm|scrobbles", re.I)),
    ("Deezer", re.compile(r"deezer", re.I)),
    ("Amazon Music", re.compile(r"Amazon[ ._-]?Music", re.I)),
    ("TIDAL", re.compile(r"(^|/)tidal", re.I)),
]


def other_service(paths: Sequence[str]) -> str | None:
    """The service whose export these file paths look like, if any we know of."""
    for service, pattern in _SIGNATURES:
        if any(pattern.search(p) for p in paths):
            return service
    return None
