"""The canonical shape every parser produces: one row per play, before de-identification.

Parsers copy only fields TuneTrust may keep, plus two that de-identification turns
into something coarser and then drops: ``platform_raw`` (may name a device model)
and ``incognito``. IP addresses, user agents, geo fields and offline timestamps are
never copied out of the export at all.
"""

from __future__ import annotations

import pyarrow as pa

KINDS = ("music", "podcast", "audiobook", "video", "unknown")

CONTENT_FIELDS = (
    pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("ms_played", pa.int64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("track_name", pa.string()),
    pa.field("artist_name", pa.string()),
    pa.field("album_name", pa.string()),
    pa.field("track_uri", pa.string()),
    pa.field("episode_name", pa.string()),
    pa.field("show_name", pa.string()),
    pa.field("episode_uri", pa.string()),
    pa.field("audiobook_title", pa.string()),
    pa.field("audiobook_uri", pa.string()),
    pa.field("audiobook_chapter_title", pa.string()),
    pa.field("audiobook_chapter_uri", pa.string()),
    pa.field("reason_start", pa.string()),
    pa.field("reason_end", pa.string()),
    pa.field("shuffle", pa.bool_()),
    pa.field("skipped", pa.bool_()),
    pa.field("offline", pa.bool_()),
)
"""What was played, when, for how long and how: shared by parsed and stored listens."""

PARSED_SCHEMA = pa.schema(
    [
        *CONTENT_FIELDS,
        pa.field("conn_country", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("platform_raw", pa.string()),
        pa.field("incognito", pa.bool_()),
    ]
)
"""Columns of a parsed listen. ``source`` is ``extended`` (the whole history, to the
second for Spotify) or ``account`` (a recent summary, to the minute for Spotify, no URIs);
each service's resolution of each is in its parser's facts. ``skipped`` is filled from
the service's skip reasons where the export has no flag (``formats.normalise``)."""
