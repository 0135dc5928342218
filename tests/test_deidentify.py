"""De-identification at the door: families, and no personal value anywhere in the home."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunetrust import Settings, add_member, import_export, init_home
from tunetrust.ingest.deidentify import PLATFORM_FAMILIES, platform_family

from .factories import extended_row, json_bytes


@pytest.mark.parametrize(
    ("raw", "family"),
    [
        ("Android OS 10 API 29 (Google, Pixel 4)", "android"),
        ("android", "android"),
        ("iOS 14.4 (iPhone12,1)", "ios"),
        ("ios", "ios"),
        ("Windows 10 (10.0.19042; x64)", "desktop"),
        ("OS X 10.15.7 [x86 8]", "desktop"),
        ("osx", "desktop"),
        ("linux", "desktop"),
        ("WebPlayer (websocket RFC6455)", "web"),
        ("web_player", "web"),
        ("Partner sonos_ceiling Sonos;Beam;;", "speaker"),
        ("sonos", "speaker"),
        ("Partner android_tv Sony;BRAVIA 4K;;", "tv"),
        ("android_tv", "tv"),
        ("Partner android_auto Google;Android Auto;;", "car"),
        ("android_auto", "car"),
        ("", "other"),
        (None, "other"),
        ("PlayStation 4", "other"),
    ],
)
def test_platform_family(raw: str | None, family: str) -> None:
    assert platform_family(raw) == family
    assert family in PLATFORM_FAMILIES


# distinctive tokens: long enough never to occur by chance in a file of the home
token = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=14, max_size=24).map(
    lambda s: "PII" + s
)


@st.composite
def personal_rows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str]]:
    """Extended rows of a random generation whose personal fields hold random tokens."""
    generation = draw(st.sampled_from("abc"))
    n = draw(st.integers(1, 6))
    username = draw(token)  # one account per export
    secrets: list[str] = [username]
    rows = []
    for i in range(n):
        row = extended_row(generation, ts=f"2021-03-04T05:06:{i:02d}Z", ms_played=1000 + i)
        values = {k: draw(token) for k in ("ip", "ua", "city", "region", "metro", "device")}
        if generation != "c":
            row["username"] = username
            row["ip_addr_decrypted"] = values["ip"]
            row["user_agent_decrypted"] = values["ua"]
        else:
            row["ip_addr"] = values["ip"]
        if generation == "a":
            row.update(city=values["city"], region=values["region"], metro_code=values["metro"])
        row["platform"] = f"Android OS 9 API 28 (samsung, {values['device']})"
        row["offline_timestamp"] = draw(st.integers(10**12, 2 * 10**12))
        secrets += values.values()
        if draw(st.booleans()):
            # an incognito play: everything about it is personal, titles included
            title = draw(token)
            row.update(
                incognito_mode=True,
                master_metadata_track_name=title,
                spotify_track_uri=f"spotify:track:{title}",
            )
            secrets.append(title)
        rows.append(row)
    return rows, secrets


def _home_texts(home: Path) -> list[bytes]:
    """Every file of the home as bytes; Parquet decoded so compression cannot hide a value."""
    blobs = []
    for path in home.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            blobs.append(repr(table.to_pylist()).encode())
        else:
            blobs.append(path.read_bytes())
    return blobs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(personal_rows())
def test_no_personal_value_reaches_the_home(case: tuple[list[dict[str, Any]], list[str]]) -> None:
    rows, secrets = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = init_home(Settings(home=root / "home"))
        add_member(home, "m")
        export = root / "endsong_0.json"
        export.write_bytes(json_bytes(rows))
        # userdata gives the username again, as a separate file
        userdata = root / "Userdata.json"
        userdata.write_bytes(json_bytes({"username": secrets[0], "email": "e@example.invalid"}))
        summary = import_export(home, "m", [export, userdata])
        home.close()
        blobs = _home_texts(root / "home")
        assert blobs, "the home holds files"
        for secret in secrets:
            for blob in blobs:
                assert secret.encode() not in blob
        # offline timestamps (exact epoch values) are not kept either
        for row in rows:
            for blob in blobs:
                assert str(row["offline_timestamp"]).encode() not in blob
        assert summary.listens_added == sum(1 for r in rows if not r["incognito_mode"])
