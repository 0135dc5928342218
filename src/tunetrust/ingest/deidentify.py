"""De-identification at the door: what leaves a parsed table for the events store.

Kept coarse: connection country, platform *family*. Dropped: the raw platform
string (it can name a device model), incognito plays (unless the member opted in)
and the incognito flag itself. Usernames, IPs, user agents, geo fields and offline
timestamps are never parsed in the first place (see listens.py).
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.store.events import EVENTS_SCHEMA

PLATFORM_FAMILIES = ("android", "ios", "desktop", "web", "speaker", "tv", "car", "other")

# first match wins: a TV or car running Android is a TV or a car, not a phone
_FAMILY_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"android[ _]?auto|carplay|\bcar\b|automotive|tesla|_car\b"), "car"),
    (re.compile(r"tv\b|_tv|tvos|apple tv|fire ?tv|roku|tizen|webos|chromecast|bravia"), "tv"),
    (re.compile(r"sonos|speaker|echo|alexa|google home|nest|bose|cast|partner"), "speaker"),
    (re.compile(r"ios|iphone|ipad|ipod|watchos"), "ios"),
    (re.compile(r"android|wear ?os"), "android"),
    (re.compile(r"web ?player|web_player|websocket|browser|\bweb\b"), "web"),
    (re.compile(r"windows|os ?x|macos|mac os|linux|desktop"), "desktop"),
)


def platform_family(raw: str | None) -> str:
    """The coarse family of a platform string (``other`` when unknown)."""
    if not raw:
        return "other"
    text = raw.lower()
    for pattern, family in _FAMILY_RULES:
        if pattern.search(text):
            return family
    return "other"


def platform_families(raw: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Families of a column of raw platform strings, mapping each distinct string once."""
    encoded = (
        raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    ).dictionary_encode()
    families = pa.array([platform_family(v) for v in encoded.dictionary.to_pylist()], pa.string())
    if not len(families):  # account data has no platform at all: it stays null
        return pa.nulls(len(encoded), pa.string())
    return pc.take(families, encoded.indices)


def deidentify(
    parsed: pa.Table, *, keep_incognito: bool, contribution: str
) -> tuple[pa.Table, dict[str, int]]:
    """The events-store rows of ``parsed`` and the count of plays dropped, by reason."""
    dropped: dict[str, int] = {}
    incognito = pc.fill_null(parsed["incognito"], False)
    if not keep_incognito:
        n = pc.sum(incognito).as_py() or 0
        if n:
            dropped["incognito"] = n
            parsed = parsed.filter(pc.invert(incognito))
    n = parsed.num_rows
    platform = platform_families(parsed["platform_raw"])
    columns = {
        **{name: parsed[name] for name in parsed.column_names},
        "country": parsed["conn_country"],
        "platform": platform,
        "contribution": pa.array([contribution] * n, pa.string()),
    }
    table = pa.table({f.name: columns[f.name] for f in EVENTS_SCHEMA}, schema=EVENTS_SCHEMA)
    return table, dropped
