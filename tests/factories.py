"""Builders for test inputs: synthetic exports, hand-made zips and rows."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.store.home import Home


def export_zip(
    tmp: Path, variant: str, listens: int = 300, seed: int = 1, years: int | None = None
) -> Path:
    """A synthetic export of ``variant`` written to a zip; returns its path."""
    out = tmp / f"{variant}-{listens}-{seed}-{years}.zip"
    write_zip(render(synthesize(variant, listens, seed, years=years), variant), out)
    return out


def zip_of(tmp: Path, files: dict[str, bytes], name: str = "export.zip") -> Path:
    """A zip holding exactly ``files``."""
    out = tmp / name
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    return out


def extended_row(variant: str = "c", **overrides: Any) -> dict[str, Any]:
    """One extended-history row of generation ``variant`` (a, b or c)."""
    row: dict[str, Any] = {"ts": "2021-03-04T05:06:07Z"}
    if variant != "c":
        row["username"] = "someone"
    row.update(
        platform="android" if variant == "c" else "Android OS 10 API 29 (Google, Pixel 4)",
        ms_played=200_000,
        conn_country="SE",
    )
    if variant == "c":
        row["ip_addr"] = "198.51.100.1"
    else:
        row["ip_addr_decrypted"] = "203.0.113.1"
        row["user_agent_decrypted"] = "unknown"
    if variant == "a":
        row.update(city="x", region="y", metro_code="1", longitude=1.0, latitude=2.0)
    row.update(
        master_metadata_track_name="Song",
        master_metadata_album_artist_name="Artist",
        master_metadata_album_album_name="Album",
    )
    if variant != "a":
        row["spotify_track_uri"] = "spotify:track:0000000000000000000001"
    row.update(episode_name=None, episode_show_name=None)
    if variant != "a":
        row["spotify_episode_uri"] = None
    if variant == "c":
        row.update(
            audiobook_title=None,
            audiobook_uri=None,
            audiobook_chapter_uri=None,
            audiobook_chapter_title=None,
        )
    row.update(
        reason_start="trackdone",
        reason_end="trackdone",
        shuffle=False,
        skipped=None,
        offline=False,
        offline_timestamp=0,
        incognito_mode=False,
    )
    row.update(overrides)
    return row


def json_bytes(rows: Any) -> bytes:
    """Rows as the service writes them."""
    return orjson.dumps(rows)


def zip_with_bytes(tmp: Path, name: str, data: bytes) -> Path:
    """A zip with a single entry of arbitrary bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    out = tmp / "export.zip"
    out.write_bytes(buf.getvalue())
    return out


def fabricated_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """A naive forgery: uniform times of day, whole-second lengths, random reasons."""
    import random

    rnd = random.Random(seed)  # test data only; never used for privacy noise
    reasons = [
        "trackdone",
        "fwdbtn",
        "backbtn",
        "clickrow",
        "playbtn",
        "appload",
        "remote",
        "endplay",
        "logout",
    ]
    start = 1_640_995_200  # 2022-01-01
    rows = []
    for t in sorted(rnd.randrange(start, start + 2 * 365 * 86_400) for _ in range(n)):
        k = rnd.randrange(200)
        rows.append(
            extended_row(
                "c",
                ts=datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                ms_played=rnd.randrange(30, 300) * 1000,
                master_metadata_track_name=f"Track {k}",
                master_metadata_album_artist_name=f"Artist {k % 40}",
                spotify_track_uri=f"spotify:track:{k:022d}",
                reason_start=rnd.choice(reasons),
                reason_end=rnd.choice(reasons),
                skipped=rnd.random() < 0.5,
                shuffle=rnd.random() < 0.5,
            )
        )
    return rows


# --- a cooperative through the service API -----------------------------------------------

WEEKDAY_SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30}
group_by: [weekday]
metrics: [plays, listeners]
bounds: {max_partitions: 7, max_plays_per_partition: 20, max_minutes_per_play: 8}
privacy: {epsilon: 0.5, delta: 1.0e-6}
keys: public
"""
"""A small release spec on public keys (the seven weekdays): cheap to build."""


def consenting_members(home: Home, root: Path, count: int, listens: int = 200) -> list[str]:
    """``count`` members m0, m1 …, each importing a synthetic export and consenting to
    research, as themselves; their names."""
    from tunetrust.services import members
    from tunetrust.services.data import import_contribution
    from tunetrust.services.models import Actor

    names = [f"m{i}" for i in range(count)]
    for i, name in enumerate(names):
        members.join(home, Actor.steward(), name)
        me = Actor.member(name)
        import_contribution(home, me, name, [export_zip(root, "extended-c", listens, i + 1)])
        members.set_consent(home, me, name, "research", granted=True)
    return names


def lab_request(home: Home, price: int, spec: str = WEEKDAY_SPEC, *, opened: bool = True) -> str:
    """Buyer 'Lab' (added if new) proposes ``spec``; the vote opens unless ``opened`` is
    False (a draft); the request's id."""
    from tunetrust.errors import ConflictError
    from tunetrust.services import governance
    from tunetrust.services.models import Actor

    steward = Actor.steward()
    try:
        governance.add_buyer(home, steward, "Lab", "lab@example.invalid", "SE")
    except ConflictError:
        pass  # Lab is a buyer already
    req = governance.create_request(
        home,
        Actor.buyer("Lab"),
        buyer="Lab",
        spec_text=spec,
        price=price,
        currency="EUR",
        licence="research-only",
    )
    if opened:
        governance.open_request(home, steward, req.id)
    return req.id


def passed_request(home: Home, voters: list[str], price: int, spec: str = WEEKDAY_SPEC) -> str:
    """A buyer 'Lab' proposes ``spec``; the vote opens, every voter says yes, it closes
    passed; the request's id."""
    from tunetrust.services import governance
    from tunetrust.services.models import Actor

    request_id = lab_request(home, price, spec)
    for name in voters:
        governance.vote(home, Actor.member(name), name, request_id, "yes")
    assert governance.close_request(home, Actor.steward(), request_id).state == "passed"
    return request_id


def stored_listens(home: Home, member: str) -> Any:
    """A member's stored listens (an Arrow table) without the per-home contribution id,
    in a fixed order: comparable between two homes that imported the same export."""
    from tunetrust.coop.members import get_member

    m = get_member(home, member)
    table = home.events.read(m.pseudonym, m.events_file).drop(["contribution"])
    return table.sort_by([(c, "ascending") for c in table.column_names])
