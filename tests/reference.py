"""An independent, plain-Python reading of the rules in docs/events.md.

Nothing here imports the code under test: source rows are read the way the docs
describe the export files, and deduplication follows the numbered rules of
docs/events.md one by one, with Python sets instead of Arrow kernels. Tests compare
what the importer stored with what this module computes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

SEP = "\x1f"
SHIFT_MS = 1_000  # docs/events.md, rule 2: a re-export may move a play's end by 1 s
# docs/events.md, "Skips": Spotify's end reasons that mean a skip (our own copy, on purpose)
SKIP_REASONS = frozenset({"fwdbtn", "backbtn"})

Listen = dict[str, Any]

_NAME_PAIRS = (
    ("artist_name", "track_name"),
    ("show_name", "episode_name"),
    ("audiobook_title", "audiobook_chapter_title"),
)
_URIS = ("track_uri", "episode_uri", "audiobook_chapter_uri")


def identity(r: Listen) -> str:
    """What was played: a name pair (case-insensitive), else a URI, else nothing."""
    for a, b in _NAME_PAIRS:
        if r.get(a) is not None and r.get(b) is not None:
            return f"{r[a].lower()}{SEP}{r[b].lower()}"
    for u in _URIS:
        if r.get(u) is not None:
            return str(r[u])
    return ""


def fine(r: Listen) -> tuple[int, int, str]:
    """End second, length, identity."""
    return (r["ts"] // 1_000, r["ms_played"], identity(r))


def coarse(r: Listen) -> tuple[int, int, str]:
    """End minute, length, identity."""
    return (r["ts"] // 60_000, r["ms_played"], identity(r))


def _first_each(rows: Iterable[Listen], key: Any) -> list[Listen]:
    seen: set[Any] = set()
    out = []
    for r in rows:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def merge(existing: Sequence[Listen], incoming: Sequence[Listen]) -> list[Listen]:
    """The member's plays after an import, by rules 1 to 4 of docs/events.md."""
    old_ext = [r for r in existing if r["source"] == "extended"]
    old_acc = [r for r in existing if r["source"] == "account"]
    # rule 1: repeated inside one export, the first row counts
    new_ext = _first_each((r for r in incoming if r["source"] == "extended"), fine)
    new_acc = _first_each((r for r in incoming if r["source"] == "account"), coarse)
    # rule 2: an extended play already stored: same item and length, ends at most 1 s apart
    ends: dict[tuple[int, str], list[int]] = {}
    for r in old_ext:
        ends.setdefault((r["ms_played"], identity(r)), []).append(r["ts"])
    fresh_ext = [
        r
        for r in new_ext
        if not any(
            abs(r["ts"] - t) <= SHIFT_MS for t in ends.get((r["ms_played"], identity(r)), [])
        )
    ]
    # rule 3: account plays covered by any extended play (stored or in this import),
    # or already stored
    ext_minutes = {coarse(r) for r in old_ext + new_ext}
    acc_minutes = {coarse(r) for r in old_acc}
    fresh_acc = [
        r for r in new_acc if coarse(r) not in ext_minutes and coarse(r) not in acc_minutes
    ]
    # rule 4: stored account plays that a new extended play covers are replaced
    new_minutes = {coarse(r) for r in fresh_ext}
    kept_acc = [r for r in old_acc if coarse(r) not in new_minutes]
    return old_ext + kept_acc + fresh_ext + fresh_acc


def skipped(flag: bool | None, reason_end: str | None) -> bool | None:
    """The stored ``skipped``: the export's flag, else whether the reason means a skip."""
    if flag is not None:
        return flag
    if reason_end is None:
        return None
    return reason_end in SKIP_REASONS


def multiset(rows: Iterable[Listen], fields: Sequence[str]) -> Counter[tuple[Any, ...]]:
    """Rows as a multiset of the given fields."""
    return Counter(tuple(r.get(f) for f in fields) for r in rows)


# --- source rows, read as docs/formats.md describes them ------------------------------


def _iso_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) * 1000


def _minute_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()) * 1000


def listens_from_source(
    files: dict[str, list[dict[str, Any]]], *, keep_incognito: bool = False
) -> list[Listen]:
    """The listens an export holds, from its parsed JSON files (name → rows).

    Audio files before video files (rule 5), each in name order; incognito plays
    dropped unless the member opted in.
    """
    out: list[Listen] = []
    ordered = sorted(files, key=lambda n: ("video" in n.lower(), n))
    for name in ordered:
        for row in files[name]:
            if "ts" in row:
                if row.get("incognito_mode") and not keep_incognito:
                    continue
                out.append(
                    {
                        "ts": _iso_ms(row["ts"]),
                        "ms_played": row["ms_played"],
                        "artist_name": row.get("master_metadata_album_artist_name"),
                        "track_name": row.get("master_metadata_track_name"),
                        "show_name": row.get("episode_show_name"),
                        "episode_name": row.get("episode_name"),
                        "audiobook_title": row.get("audiobook_title"),
                        "audiobook_chapter_title": row.get("audiobook_chapter_title"),
                        "track_uri": row.get("spotify_track_uri"),
                        "episode_uri": row.get("spotify_episode_uri"),
                        "audiobook_chapter_uri": row.get("audiobook_chapter_uri"),
                        "reason_end": row.get("reason_end"),
                        "skipped": skipped(row.get("skipped"), row.get("reason_end")),
                        "source": "extended",
                    }
                )
            else:
                out.append(
                    {
                        "ts": _minute_ms(row["endTime"]),
                        "ms_played": row["msPlayed"],
                        "artist_name": row.get("artistName"),
                        "track_name": row.get("trackName"),
                        "show_name": row.get("podcastName"),
                        "episode_name": row.get("episodeName"),
                        "audiobook_title": row.get("audiobookName"),
                        "audiobook_chapter_title": row.get("chapterName"),
                        "reason_end": None,
                        "skipped": None,
                        "source": "account",
                    }
                )
    return out


def totals(rows: Iterable[Listen]) -> tuple[int, int]:
    """Play count and total milliseconds."""
    rows = list(rows)
    return len(rows), sum(r["ms_played"] for r in rows)
