"""Synthetic exports, faithful to every Spotify variant, deterministic by seed.

Everyone's music comes from one world, built once from a fixed seed: 4,000 artists
with 1 to 3 albums of 6 to 12 tracks each (a track has one URI and one length for
everyone), 60 podcast shows of 20 episodes and 20 audiobooks of 12 chapters. A seed
makes one synthetic person: their artists (one per 150 plays, 30 to 3,000), 85 % drawn
by world popularity (Zipf, so the most popular artists are shared by many people) and
15 % niche ones drawn evenly from the long tail (past the 1,000 most popular); their
own Zipf taste over those artists; 6 shows and 3 audiobooks drawn by popularity too;
devices, a home country, and a listening history in sessions with daily and weekly
rhythms, skips, shuffle and reasons. As in reality, two people can play the same track
in full within minutes of each other (docs/contributions.md: how rarely that reaches
``copied_data``).

:func:`render` writes that history as any variant's zip, so tests can import the
same listening as account data *and* extended history. Personal fields carry fake
values (documentation IP ranges, made-up places). Nothing here is real data.
"""

from __future__ import annotations

import functools
import io
import zipfile
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tunetrust.formats.spotify.parser import SERVICE_START

VARIANTS = ("account", "account-legacy", "extended-a", "extended-b", "extended-b2", "extended-c")
"""``extended-b2`` is the 2023 to mid-2024 layout: C's file names with B's fields."""

PARSED_AS = {"extended-b2": "extended-b"}
"""Variants whose content the parser reads as another generation (the fields decide)."""

_SPANS = {  # first and last day of the history behind each variant
    "extended-a": ("2014-03-01", "2020-06-30"),
    "extended-b": ("2016-01-01", "2023-02-28"),
    "extended-b2": ("2016-01-01", "2024-03-31"),
    "extended-c": ("2016-01-01", "2024-11-15"),
    "account": ("2023-11-16", "2024-11-15"),
    "account-legacy": ("2019-07-01", "2020-06-30"),
}

_WORDS = (
    "amber velvet harbor echo lunar static neon paper glass river cinder quiet "
    "hollow golden silver wild northern electric midnight summer winter stone "
    "ember violet crimson ocean desert thunder silent broken distant fading "
    "bright empty heavy honey iron jade kinetic lucid marble nova orbit pale "
    "rapid saffron tidal umber vapor woven"
).split()

_REASONS_START = np.array(["clickrow", "playbtn", "appload", "remote", "trackdone", "fwdbtn"])
_REASONS_END_STOP = np.array(["endplay", "logout", "unexpected-exit", "remote"])
_COUNTRIES = np.array(["DE", "SE", "GB", "US", "FR", "NL", "BR", "JP", "ES", "CA"])

# (family, long platform string of A/B, short platform string of C)
_DEVICES = {
    "android": ("Android OS 10 API 29 (Google, Pixel 4)", "android"),
    "ios": ("iOS 14.4 (iPhone12,1)", "ios"),
    "windows": ("Windows 10 (10.0.19042; x64)", "windows"),
    "osx": ("OS X 10.15.7 [x86 8]", "osx"),
    "linux": ("Linux [x86-64 0]", "linux"),
    "web": ("WebPlayer (websocket RFC6455)", "web_player"),
    "speaker": ("Partner sonos_ceiling Sonos;Beam;;", "sonos"),
    "tv": ("Partner android_tv Sony;BRAVIA 4K;;", "android_tv"),
    "car": ("Partner android_auto Google;Android Auto;;", "android_auto"),
}

_PDF = b"%PDF-1.4\n% synthetic read-me placeholder\n%%EOF\n"

_ALPHABET = np.frombuffer(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8
)
_TITLES = [w.capitalize() for w in _WORDS]

_WORLD_SEED = 1_000_003  # one world for every synthetic person, in every run
_WORLD_ARTISTS = 4_000
_WORLD_SHOWS, _EPISODES_PER_SHOW = 60, 20
_WORLD_BOOKS, _CHAPTERS_PER_BOOK = 20, 12
_POPULARITY = 1.0  # Zipf exponent of world popularity, artists, shows and books alike
_NICHE = 0.15  # share of a person's artists drawn uniformly from the long tail
_TAIL_FROM = 1_000  # the long tail: world artists from this popularity rank on


@dataclass(frozen=True)
class Catalogue:
    """What the synthetic person can listen to."""

    track_name: list[str]
    track_artist: list[str]
    track_album: list[str]
    track_uri: list[str]
    track_ms: np.ndarray
    artist_first_track: np.ndarray  # index of each artist's first track
    artist_tracks: np.ndarray  # how many tracks each artist has
    episode_name: list[str]
    episode_show: list[str]
    episode_uri: list[str]
    episode_ms: np.ndarray
    chapter_title: list[str]
    chapter_book: list[str]
    chapter_uri: list[str]
    book_uri: list[str]
    chapter_ms: np.ndarray


@dataclass(frozen=True)
class History:
    """A synthetic person's plays, column by column (end time order)."""

    seed: int
    variant: str
    username: str
    catalogue: Catalogue
    end_ms: np.ndarray  # epoch ms, end of play, whole seconds
    ms_played: np.ndarray
    item_kind: np.ndarray  # 0 track, 1 episode, 2 audiobook chapter
    item: np.ndarray
    video: np.ndarray
    device: np.ndarray  # index into devices
    devices: list[str]
    country: np.ndarray  # strings
    reason_start: np.ndarray
    reason_end: np.ndarray
    shuffle: np.ndarray
    skipped: np.ndarray
    offline: np.ndarray
    incognito: np.ndarray
    offline_start_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.end_ms)


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_export` wrote."""

    path: Path
    variant: str
    listens: int  # rows in listening-history files
    incognito: int  # of which incognito plays
    files: tuple[str, ...]


def _uri(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    codes = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, 22))]
    return [prefix + c.decode() for c in codes.view("S22").ravel()]


def _names(rng: np.random.Generator, n: int, words: int) -> list[str]:
    picks = rng.integers(0, len(_WORDS), size=(n, words))
    return [" ".join(_TITLES[i] for i in row) for row in picks.tolist()]


@functools.cache
def _world() -> Catalogue:
    """Everything there is to play, the same for everyone: one URI and one length a track.

    Artists, shows and books are in order of world popularity (index 0 is the most
    played). Names come from a small word list, so they repeat as real names do; an
    artist's name takes its number where it would repeat, so artist names are unique.
    """
    rng = np.random.default_rng(_WORLD_SEED)
    seen: set[str] = set()
    artists = []
    for i, a in enumerate(_names(rng, _WORLD_ARTISTS, 2)):
        artists.append(f"{a} {i}" if i % 7 == 0 or a in seen else a)
        seen.add(a)
    album_artist = np.repeat(np.arange(_WORLD_ARTISTS), rng.integers(1, 4, size=_WORLD_ARTISTS))
    albums = _names(rng, len(album_artist), 2)
    track_album = np.repeat(np.arange(len(albums)), rng.integers(6, 13, size=len(albums)))
    track_artist = album_artist[track_album]
    n_tracks = len(track_album)
    artist_tracks = np.bincount(track_artist, minlength=_WORLD_ARTISTS)
    shows = _names(rng, _WORLD_SHOWS, 3)
    n_episodes = _WORLD_SHOWS * _EPISODES_PER_SHOW
    books = _names(rng, _WORLD_BOOKS, 3)
    book_uris = _uri(rng, "spotify:show:", _WORLD_BOOKS)
    n_chapters = _WORLD_BOOKS * _CHAPTERS_PER_BOOK
    return Catalogue(
        track_name=_names(rng, n_tracks, 2),
        track_artist=[artists[a] for a in track_artist.tolist()],
        track_album=[albums[a] for a in track_album.tolist()],
        track_uri=_uri(rng, "spotify:track:", n_tracks),
        track_ms=rng.integers(110_000, 360_000, size=n_tracks),
        artist_first_track=np.cumsum(artist_tracks) - artist_tracks,
        artist_tracks=artist_tracks,
        episode_name=[
            f"Episode {i % _EPISODES_PER_SHOW + 1}: {n}"
            for i, n in enumerate(_names(rng, n_episodes, 3))
        ],
        episode_show=[shows[i // _EPISODES_PER_SHOW] for i in range(n_episodes)],
        episode_uri=_uri(rng, "spotify:episode:", n_episodes),
        episode_ms=rng.integers(900_000, 4_800_000, size=n_episodes),
        chapter_title=[f"Chapter {i % _CHAPTERS_PER_BOOK + 1}" for i in range(n_chapters)],
        chapter_book=[books[i // _CHAPTERS_PER_BOOK] for i in range(n_chapters)],
        chapter_uri=_uri(rng, "spotify:chapter:", n_chapters),
        book_uri=[book_uris[i // _CHAPTERS_PER_BOOK] for i in range(n_chapters)],
        chapter_ms=rng.integers(600_000, 2_400_000, size=n_chapters),
    )


def _take(values: list[str], index: np.ndarray) -> list[str]:
    return [values[i] for i in index.tolist()]


def _by_popularity(rng: np.random.Generator, n_world: int, k: int) -> np.ndarray:
    """``k`` distinct items of ``n_world`` ranked by world popularity (0 the most popular).

    Each draw picks among the items left with Zipf weights (Efraimidis–Spirakis keys:
    the ``k`` smallest of exponential ÷ weight), so popular items are shared by many.
    """
    weights = 1.0 / np.arange(1, n_world + 1) ** _POPULARITY
    return np.argsort(rng.exponential(size=n_world) / weights)[:k]


def _catalogue(rng: np.random.Generator, n_plays: int) -> Catalogue:
    """A person's share of the world: their artists' tracks, their shows, their books."""
    world = _world()
    n_world = len(world.artist_tracks)
    n_artists = int(np.clip(n_plays // 150, 30, 3000))
    n_niche = round(n_artists * _NICHE)
    popular = _by_popularity(rng, n_world, n_artists - n_niche)
    tail = np.setdiff1d(np.arange(_TAIL_FROM, n_world), popular)
    niche = rng.choice(tail, size=min(n_niche, len(tail)), replace=False)
    artists = np.sort(np.concatenate([popular, niche]))
    first, count = world.artist_first_track[artists], world.artist_tracks[artists]
    starts = np.cumsum(count) - count  # where each artist's tracks begin in the person's list
    tracks = np.arange(int(count.sum())) - np.repeat(starts - first, count)
    shows = np.sort(_by_popularity(rng, _WORLD_SHOWS, 6))
    episodes = (shows[:, None] * _EPISODES_PER_SHOW + np.arange(_EPISODES_PER_SHOW)).ravel()
    books = np.sort(_by_popularity(rng, _WORLD_BOOKS, 3))
    chapters = (books[:, None] * _CHAPTERS_PER_BOOK + np.arange(_CHAPTERS_PER_BOOK)).ravel()
    return Catalogue(
        track_name=_take(world.track_name, tracks),
        track_artist=_take(world.track_artist, tracks),
        track_album=_take(world.track_album, tracks),
        track_uri=_take(world.track_uri, tracks),
        track_ms=world.track_ms[tracks],
        artist_first_track=starts,
        artist_tracks=count,
        episode_name=_take(world.episode_name, episodes),
        episode_show=_take(world.episode_show, episodes),
        episode_uri=_take(world.episode_uri, episodes),
        episode_ms=world.episode_ms[episodes],
        chapter_title=_take(world.chapter_title, chapters),
        chapter_book=_take(world.chapter_book, chapters),
        chapter_uri=_take(world.chapter_uri, chapters),
        book_uri=_take(world.book_uri, chapters),
        chapter_ms=world.chapter_ms[chapters],
    )


def _zipf(rng: np.random.Generator, n_items: int, size: int, a: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_items + 1) ** a
    order = rng.permutation(n_items)  # popularity is not catalogue order
    return np.asarray(order[rng.choice(n_items, size=size, p=weights / weights.sum())])


def synthesize(
    variant: str, listens: int, seed: int, years: int | None = None, *, crossfade: bool = False
) -> History:
    """A history of ``listens`` plays for the person ``seed``.

    It spans the variant's usual years, or the ``years`` before the variant's last day.
    With ``crossfade``, a play that follows a finished one starts 3 to 5 s before it
    ends, as on real mobile exports (crossfade, automix, logging latency).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if listens < 0:
        raise ValueError("listens must be at least 0")
    rng = np.random.default_rng(seed)
    cat = _catalogue(rng, max(listens, 1))
    first, last = (datetime.fromisoformat(d).replace(tzinfo=UTC) for d in _SPANS[variant])
    if years is not None:
        if years < 1:
            raise ValueError("years must be at least 1")
        first = last - timedelta(days=round(365.25 * years))
        if first < SERVICE_START.replace(tzinfo=UTC) + timedelta(days=1):
            most = (last - SERVICE_START.replace(tzinfo=UTC)).days // 366
            raise ValueError(
                f"a {variant} history can span at most {most} years: the service "
                f"started on {SERVICE_START:%Y-%m-%d}"
            )
    n_days = (last - first).days + 1

    # sessions: which day (weekends busier), which hour (evening peak), how long
    mean_len = 12
    lengths = np.minimum(rng.geometric(1 / mean_len, size=listens // 4 + 8), 60)
    n_sessions = int(np.searchsorted(np.cumsum(lengths), listens)) + 1
    lengths = lengths[:n_sessions]
    day_w = np.array([1.0 if (first + timedelta(d)).weekday() < 5 else 1.5 for d in range(n_days)])
    day_w *= np.linspace(0.6, 1.4, n_days)  # listening grows over the years
    hour_w = np.array(
        [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 3, 5, 4, 3, 3, 4, 4, 3, 3, 4, 5, 6, 7, 7, 6, 4, 2],
        dtype=float,
    )
    days = np.sort(rng.choice(n_days, size=n_sessions, p=day_w / day_w.sum()))
    hours = rng.choice(24, size=n_sessions, p=hour_w / hour_w.sum())
    start_s = np.sort(
        int(first.timestamp()) + days * 86_400 + hours * 3_600 + rng.integers(0, 3_600, n_sessions)
    )
    session = np.repeat(np.arange(n_sessions), lengths)[:listens]
    n = listens

    # what is played
    r = rng.random(n)
    item_kind = np.where(r < 0.09, 1, 0)
    if variant in ("extended-c", "account"):  # audiobooks exist since late 2023
        item_kind = np.where((r >= 0.09) & (r < 0.10), 2, item_kind)
    # taste: artists by Zipf popularity; a quarter known from the start, the others
    # discovered at a random moment of the history (a play only picks known artists)
    n_artists = len(cat.artist_tracks)
    artist = _zipf(rng, n_artists, n)
    span_s = max(int((last - first).total_seconds()), 1)
    discovered = int(first.timestamp()) + rng.integers(0, span_s, n_artists)
    discovered[rng.random(n_artists) < 0.25] = int(first.timestamp())
    known_early = np.flatnonzero(discovered == int(first.timestamp()))
    if len(known_early) == 0:
        known_early = np.array([0])
        discovered[0] = int(first.timestamp())
    too_early = discovered[artist] > start_s[session]
    artist[too_early] = known_early[_zipf(rng, len(known_early), int(too_early.sum()))]
    within = (rng.random(n) ** 2 * cat.artist_tracks[artist]).astype(np.int64)
    item = cat.artist_first_track[artist] + within
    item = np.where(item_kind == 1, rng.integers(0, len(cat.episode_name), n), item)
    item = np.where(item_kind == 2, rng.integers(0, len(cat.chapter_title), n), item)
    full_ms = np.select(
        [item_kind == 0, item_kind == 1],
        [
            cat.track_ms[np.minimum(item, len(cat.track_ms) - 1)],
            cat.episode_ms[np.minimum(item, len(cat.episode_ms) - 1)],
        ],
        default=cat.chapter_ms[np.minimum(item, len(cat.chapter_ms) - 1)],
    )
    skip_p = np.where(item_kind == 0, 0.22, 0.08)
    skipped = rng.random(n) < skip_p
    frac = np.where(skipped, rng.uniform(0.0, 0.45, n), 1.0)
    frac = np.where((item_kind > 0) & ~skipped, rng.uniform(0.3, 1.0, n), frac)
    ms_played = (full_ms * frac).astype(np.int64)
    ms_played = np.where(skipped & (rng.random(n) < 0.15), 0, ms_played)  # instant skips

    # when: plays follow each other inside a session
    gaps = rng.integers(0, 4_000, n)
    if crossfade:
        follows_finished = np.roll(skipped, 1) == 0
        follows_finished[:1] = False
        gaps = np.where(follows_finished, -rng.integers(3_000, 5_001, n), gaps)
    step = ms_played + gaps
    cum = np.cumsum(step)
    session_first = np.searchsorted(session, np.arange(n_sessions))
    offset = cum - (cum - step)[session_first[session]]
    # one person listens to one session at a time: a session that would start before
    # the previous one ends waits for it (plus a pause)
    duration_s = np.bincount(session, weights=step, minlength=n_sessions) // 1000
    start_s = start_s.copy()
    for k in range(1, n_sessions):
        earliest = start_s[k - 1] + duration_s[k - 1] + 60
        if start_s[k] < earliest:
            start_s[k] = earliest
    end_ms = (start_s[session] * 1000 + offset) // 1000 * 1000

    # how and where
    phone = str(rng.choice(["android", "ios"]))
    desktop = str(rng.choice(["windows", "osx", "linux"], p=[0.5, 0.4, 0.1]))
    extra = str(rng.choice(["web", "speaker", "tv", "car"]))
    devices = [phone, desktop, extra]
    session_device = rng.choice(3, size=n_sessions, p=[0.6, 0.3, 0.1])
    device = session_device[session]
    home = rng.choice(_COUNTRIES)
    country = np.where(rng.random(n_sessions) < 0.95, home, rng.choice(_COUNTRIES, n_sessions))
    country = np.where(rng.random(n_sessions) < 0.01, "ZZ", country)[session]
    shuffle = (rng.random(n_sessions) < 0.4)[session]
    offline = ((rng.random(n_sessions) < 0.05) & (session_device == 0))[session]
    incognito = (rng.random(n_sessions) < 0.01)[session]
    video = (rng.random(n) < 0.006) & (item_kind < 2)

    first_of_session = np.zeros(n, dtype=bool)
    first_of_session[session_first[session_first < n]] = True
    last_of_session = np.roll(first_of_session, -1)
    last_of_session[-1:] = True
    prev_skipped = np.roll(skipped, 1)
    reason_start = np.where(prev_skipped, "fwdbtn", "trackdone")
    reason_start = np.where(first_of_session, rng.choice(_REASONS_START[:4], n), reason_start)
    reason_end = np.where(skipped, rng.choice(["fwdbtn", "backbtn"], n, p=[0.9, 0.1]), "trackdone")
    reason_end = np.where(last_of_session & ~skipped, rng.choice(_REASONS_END_STOP, n), reason_end)

    order = np.argsort(end_ms, kind="stable")
    return History(
        seed=seed,
        variant=variant,
        username=f"synth{seed:08d}",
        catalogue=cat,
        end_ms=end_ms[order],
        ms_played=ms_played[order],
        item_kind=item_kind[order],
        item=item[order],
        video=video[order],
        device=device[order],
        devices=devices,
        country=country[order],
        reason_start=reason_start[order],
        reason_end=reason_end[order],
        shuffle=shuffle[order],
        skipped=skipped[order],
        offline=offline[order],
        incognito=incognito[order],
        offline_start_ms=(end_ms - ms_played)[order],
    )


def downloaded_again(history: History, share: float = 0.05) -> History:
    """The same account downloaded again later: ``share`` of its plays end 1 s later.

    Real exports of one account a year apart disagree like this on some plays (same
    item, same ``ms_played``); the importer must count them once (docs/events.md).
    """
    rng = np.random.default_rng(history.seed + 2)
    end_ms = history.end_ms + np.where(rng.random(len(history)) < share, 1_000, 0)
    order = np.argsort(end_ms, kind="stable")
    per_play = {
        f.name: getattr(history, f.name)[order]
        for f in fields(history)
        if isinstance(getattr(history, f.name), np.ndarray)
        and len(getattr(history, f.name)) == len(history)
    }
    per_play["end_ms"] = end_ms[order]
    return replace(history, **per_play)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _extended_rows(h: History, generation: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Rows of the extended history in the field order each generation uses."""
    cat = h.catalogue
    rows = []
    skipped_null = rng.random(len(h)) < (0.7 if generation == "a" else 0.05)
    short = generation in ("b2", "c")  # short platform names, offline_timestamp in seconds
    for i in range(len(h)):
        kind, item = int(h.item_kind[i]), int(h.item[i])
        family = h.devices[int(h.device[i])]
        long_name, short_name = _DEVICES[family]
        row: dict[str, Any] = {"ts": _iso(int(h.end_ms[i]))}
        if generation != "c":
            row["username"] = h.username
        row["platform"] = short_name if short else long_name
        row["ms_played"] = int(h.ms_played[i])
        row["conn_country"] = str(h.country[i])
        if generation == "c":
            row["ip_addr"] = f"198.51.100.{(item * 7 + i) % 250 + 1}"
        else:
            row["ip_addr_decrypted"] = f"203.0.113.{(item * 3 + i) % 250 + 1}"
            row["user_agent_decrypted"] = (
                "Mozilla/5.0 (X11; Linux x86_64) SynthBrowser/1.0" if family == "web" else "unknown"
            )
        if generation == "a":
            row["city"] = f"Synthville {h.seed % 97}"
            row["region"] = f"Synth Region {h.seed % 13}"
            row["metro_code"] = str(500 + h.seed % 300)
            row["longitude"] = round(10 + (h.seed % 1000) / 1000, 4)
            row["latitude"] = round(50 + (h.seed % 777) / 1000, 4)
        track = kind == 0
        no_meta = kind == 0 and item % 211 == 5  # some music rows arrive without metadata
        row["master_metadata_track_name"] = cat.track_name[item] if track and not no_meta else None
        row["master_metadata_album_artist_name"] = (
            cat.track_artist[item] if track and not no_meta else None
        )
        row["master_metadata_album_album_name"] = (
            cat.track_album[item] if track and not no_meta else None
        )
        if generation != "a":
            row["spotify_track_uri"] = cat.track_uri[item] if track else None
        row["episode_name"] = cat.episode_name[item] if kind == 1 else None
        row["episode_show_name"] = cat.episode_show[item] if kind == 1 else None
        if generation != "a":
            row["spotify_episode_uri"] = cat.episode_uri[item] if kind == 1 else None
        if generation == "c":
            row["audiobook_title"] = cat.chapter_book[item] if kind == 2 else None
            row["audiobook_uri"] = cat.book_uri[item] if kind == 2 else None
            row["audiobook_chapter_uri"] = cat.chapter_uri[item] if kind == 2 else None
            row["audiobook_chapter_title"] = cat.chapter_title[item] if kind == 2 else None
        row["reason_start"] = str(h.reason_start[i])
        row["reason_end"] = str(h.reason_end[i])
        row["shuffle"] = bool(h.shuffle[i])
        row["skipped"] = None if skipped_null[i] else bool(h.skipped[i])
        row["offline"] = bool(h.offline[i])
        if h.video[i]:
            row["offline_timestamp"] = None
        elif short:
            row["offline_timestamp"] = int(h.offline_start_ms[i] // 1000)
        else:
            row["offline_timestamp"] = int(h.offline_start_ms[i]) if h.offline[i] else 0
        row["incognito_mode"] = bool(h.incognito[i])
        rows.append(row)
    return rows


_Rows = list[dict[str, Any]]


def _account_rows(h: History, legacy: bool) -> tuple[_Rows, _Rows, _Rows]:
    """Music, podcast and audiobook rows of account data: the last year, no incognito plays.

    Audiobook files (``StreamingHistory_audiobook_N.json``) exist in account data since
    2023; older (legacy) account data has none.
    """
    cat = h.catalogue
    cutoff = int(h.end_ms[-1]) - 365 * 86_400_000 if len(h) else 0
    music: _Rows = []
    podcast: _Rows = []
    audiobook: _Rows = []
    for i in range(len(h)):
        if h.end_ms[i] <= cutoff or h.incognito[i] or (h.item_kind[i] == 2 and legacy):
            continue
        item = int(h.item[i])
        end = datetime.fromtimestamp(int(h.end_ms[i]) / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        if h.item_kind[i] == 2:
            book = cat.chapter_book[item]
            audiobook.append(
                {
                    "endTime": end,
                    "audiobookName": book,
                    "authorName": f"A. {book.split()[0]}",
                    "chapterName": cat.chapter_title[item],
                    "msPlayed": int(h.ms_played[i]),
                }
            )
        elif h.item_kind[i] == 1 and not legacy:
            podcast.append(
                {
                    "endTime": end,
                    "podcastName": cat.episode_show[item],
                    "episodeName": cat.episode_name[item],
                    "msPlayed": int(h.ms_played[i]),
                }
            )
        elif h.item_kind[i] == 1:
            music.append(
                {
                    "endTime": end,
                    "artistName": cat.episode_show[item],
                    "trackName": cat.episode_name[item],
                    "msPlayed": int(h.ms_played[i]),
                }
            )
        elif item % 211 != 5:  # rows without metadata are missing from account data
            music.append(
                {
                    "endTime": end,
                    "artistName": cat.track_artist[item],
                    "trackName": cat.track_name[item],
                    "msPlayed": int(h.ms_played[i]),
                }
            )
    return music, podcast, audiobook


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]


def render(history: History, variant: str) -> dict[str, bytes]:
    """The files of ``variant``'s export of ``history``: path inside the zip → bytes."""
    rng = np.random.default_rng(history.seed + 1)
    files: dict[str, bytes] = {}
    if variant in ("account", "account-legacy"):
        legacy = variant == "account-legacy"
        folder = "MyData" if legacy else "Spotify Account Data"
        music, podcast, audiobook = _account_rows(history, legacy)
        for j, chunk in enumerate(_chunks(music, 10_000)):
            name = f"StreamingHistory{j}.json" if legacy else f"StreamingHistory_music_{j}.json"
            files[f"{folder}/{name}"] = orjson.dumps(chunk, option=orjson.OPT_INDENT_2)
        if not legacy:
            for j, chunk in enumerate(_chunks(podcast, 10_000)):
                files[f"{folder}/StreamingHistory_podcast_{j}.json"] = orjson.dumps(
                    chunk, option=orjson.OPT_INDENT_2
                )
            for j, chunk in enumerate(_chunks(audiobook, 10_000) if audiobook else []):
                files[f"{folder}/StreamingHistory_audiobook_{j}.json"] = orjson.dumps(
                    chunk, option=orjson.OPT_INDENT_2
                )
        files[f"{folder}/Userdata.json"] = orjson.dumps(
            {
                "username": history.username,
                "email": f"{history.username}@example.invalid",
                "country": str(history.country[0]) if len(history) else "SE",
                "birthdate": "1990-01-01",
                "gender": "neutral",
                "postalCode": None,
                "mobileNumber": None,
                "creationTime": "2014-03-01",
            },
            option=orjson.OPT_INDENT_2,
        )
        files[f"{folder}/YourLibrary.json"] = b'{"tracks": [], "albums": [], "shows": []}'
        files[f"{folder}/Playlist1.json"] = b'{"playlists": []}'
        files[f"{folder}/SearchQueries.json"] = b"[]"
        files[f"{folder}/Inferences.json"] = b'{"inferences": ["synthetic"]}'
        files[f"{folder}/Identity.json"] = b'{"displayName": "Synthetic Person"}'
        files[f"{folder}/Read_Me_First.pdf"] = _PDF
        return files
    if variant not in ("extended-a", "extended-b", "extended-b2", "extended-c"):
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    generation = variant.removeprefix("extended-")
    rows = _extended_rows(history, generation, rng)
    audio = [r for r, v in zip(rows, history.video, strict=True) if not v]
    video = [r for r, v in zip(rows, history.video, strict=True) if v]
    if generation in ("a", "b"):
        order = rng.permutation(len(audio))  # A and B files are not sorted
        audio = [audio[i] for i in order]
        for j, chunk in enumerate(_chunks(audio, 16_000)):
            files[f"MyData/endsong_{j}.json"] = orjson.dumps(chunk)
        files["MyData/endvideo.json"] = orjson.dumps(video)
        files["MyData/ReadMeFirst_ExtendedStreamingHistory.pdf"] = _PDF
        return files
    folder = "Spotify Extended Streaming History"
    for j, chunk in enumerate(_chunks(audio, 16_000)):
        years = _year_range(chunk)
        files[f"{folder}/Streaming_History_Audio_{years}_{j}.json"] = orjson.dumps(
            chunk, option=orjson.OPT_INDENT_2
        )
    if video:
        files[f"{folder}/Streaming_History_Video_{_year_range(video)}.json"] = orjson.dumps(
            video, option=orjson.OPT_INDENT_2
        )
    files[f"{folder}/ReadMeFirst_ExtendedStreamingHistory.pdf"] = _PDF
    return files


def _year_range(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "2024"
    y1, y2 = rows[0]["ts"][:4], rows[-1]["ts"][:4]
    return y1 if y1 == y2 else f"{y1}-{y2}"


def write_zip(files: dict[str, bytes], out: Path) -> None:
    """Write rendered files as a zip, the way the service packages them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())


def write_export(
    variant: str,
    listens: int,
    seed: int,
    out: Path,
    years: int | None = None,
    *,
    crossfade: bool = False,
) -> SynthResult:
    """Synthesize a person and write their ``variant`` export to ``out`` (a zip)."""
    history = synthesize(variant, listens, seed, years, crossfade=crossfade)
    files = render(history, variant)
    write_zip(files, out)
    if variant.startswith("account"):
        music, podcast, audiobook = _account_rows(history, variant == "account-legacy")
        count, incognito = len(music) + len(podcast) + len(audiobook), 0
    else:
        count, incognito = len(history), int(history.incognito.sum())
    return SynthResult(out, variant, count, incognito, tuple(files))
