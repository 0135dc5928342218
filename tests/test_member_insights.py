"""Me and my cooperative: figures from member-insights releases only, checked against
their manifests, a reference computed from the stored listens, consent and budgets."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tunetrust import Home, Settings, add_member, get_member, import_export, init_home
from tunetrust.coop.consent import decide
from tunetrust.releases import member_insights as mi
from tunetrust.releases.manifest import read_manifest
from tunetrust.services import data, members
from tunetrust.services.models import Actor
from tunetrust.services.outputs import to_json
from tunetrust.store.models import BudgetSpend, Release
from tunetrust.web.app import create_app
from tunetrust.web.security import COOKIE

from .browser import axe_problems, chromium, layout_problems, screens
from .factories import export_zip
from .web_support import TUNETRUST, clean_env, free_port, run_cli, served, session_secret

MONTH = "2024-03"
CONSENTING = ["Ada Quux-Coop", "Bo Quux-Coop", "Cy Quux-Coop", "Di Quux-Coop", "Ed Quux-Coop"]
REFUSING = "Nell Quux-Coop"  # consents to research, not to member-insights
# nothing sampled, no pre-threshold: the released numbers are the plain counts
UNSAMPLED = {p: mi.Part(0.05, max_partitions=10_000, min_listeners=1) for p in mi.PARTS}


@dataclass
class Coop:
    home: Home
    root: Path
    built: list[mi.Outcome]


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coop]:
    root = tmp_path_factory.mktemp("coop-insights")
    home = init_home(Settings(home=root / "home"))
    for i, name in enumerate([*CONSENTING, REFUSING]):
        add_member(home, name)
        import_export(home, name, export_zip(root, "extended-c", 600, 40 + i, years=1))
        decide(home, name, "research", granted=True)
        if name != REFUSING:
            decide(home, name, "member-insights", granted=True)
    assert data.cooperative(home, Actor.steward(), CONSENTING[0]).state == "not-published"
    built = mi.build_month(home, MONTH, allow_empty=True, parts=UNSAMPLED, _noise=False)
    try:
        yield Coop(home, root, built)
    finally:
        home.close()


def _reference(home: Home) -> dict[str, dict[str, object]]:
    """Per consenting member, from their stored listens: ms, and artists and tracks heard."""
    first, last = mi.month_period(MONTH)
    out: dict[str, dict[str, object]] = {}
    for name in CONSENTING:
        m = get_member(home, name)
        rows = [
            r
            for r in home.events.read(m.pseudonym, m.events_file).to_pylist()
            if r["kind"] == "music" and r["ms_played"] >= 30_000 and first <= r["ts"].date() <= last
        ]
        by_artist: Counter[str] = Counter()
        for r in rows:
            if r["artist_name"] is not None:
                by_artist[r["artist_name"]] += r["ms_played"]
        top = min(by_artist, key=lambda a: (-by_artist[a], a)) if by_artist else None
        out[name] = {
            "ms": sum(r["ms_played"] for r in rows),
            "artists": set(by_artist),
            "tracks": {
                f"{r['artist_name']} — {r['track_name']}"
                for r in rows
                if r["artist_name"] is not None and r["track_name"] is not None
            },
            "top": top,
        }
    return out


def test_the_releases_are_member_insights_spent_from_exactly_the_consenting(coop: Coop) -> None:
    home = coop.home
    ids = {get_member(home, n).id for n in CONSENTING}
    assert [o.part for o in coop.built] == list(mi.PARTS)
    with home.sessions() as s:
        for outcome in coop.built:
            assert outcome.release is not None and outcome.members_included == len(CONSENTING)
            row = s.get(Release, outcome.release)
            assert row is not None and row.purpose == "member-insights"
            doc = read_manifest(home.releases.scope(outcome.release))
            assert doc["accounting"] == {
                "purpose": "member-insights",
                "year": doc["accounting"]["year"],
                "epsilon_per_member": "0.05",
            }
            assert doc["spec_parsed"]["period"] == ["2024-03-01", "2024-03-31"]
            spends = s.scalars(select(BudgetSpend).where(BudgetSpend.release_id == row.id)).all()
            assert {b.member_id for b in spends} == ids
            assert all(b.purpose == "member-insights" and b.micro_epsilon == 50_000 for b in spends)
    steward = Actor.steward()
    untouched = {b.purpose: b for b in members.budget_lines(home, steward, REFUSING)}
    assert str(untouched["member-insights"].spent) in ("0", "0.0", "0.000000")
    spent = {b.purpose: b for b in members.budget_lines(home, steward, CONSENTING[0])}
    assert str(spent["member-insights"].spent) == "0.15"


def test_without_noise_the_figures_equal_a_reference_from_the_listens(coop: Coop) -> None:
    ref = _reference(coop.home)
    buckets = (0, 1, 2, 5, 10, 20, 40, 80, 160)

    def bucket(ms: object) -> int:
        return max(b for b in buckets if int(str(ms)) >= b * 3_600_000)

    listened = [n for n in CONSENTING if int(str(ref[n]["ms"])) > 0]
    assert len(listened) >= 3
    artists: Counter[str] = Counter(a for n in CONSENTING for a in ref[n]["artists"])  # type: ignore[attr-defined]
    tracks: Counter[str] = Counter(t for n in CONSENTING for t in ref[n]["tracks"])  # type: ignore[attr-defined]
    for name in listened:
        c = data.cooperative(coop.home, Actor.member(name), name)
        assert c.state == "ready" and c.month == MONTH and c.hours and c.artist
        mine = bucket(ref[name]["ms"])
        assert c.hours.my_bucket.from_hours == mine
        assert c.hours.my_hours == round(int(str(ref[name]["ms"])) / 3_600_000, 1)
        assert c.hours.members_counted == len(listened)
        more = sum(1 for n in listened if bucket(ref[n]["ms"]) > mine)
        same = sum(1 for n in listened if bucket(ref[n]["ms"]) == mine)
        assert c.hours.share_more == more / len(listened)
        assert c.hours.share_same == same / len(listened)
        top = str(ref[name]["top"])
        assert c.artist.name == top and c.artist.listeners == artists[top]
        assert c.artist.rank == 1 + sum(1 for n in artists.values() if n > artists[top])
        assert c.artist.artists_released == len(artists)
        want = sorted(tracks, key=lambda t: (-tracks[t], t))[:10]
        assert [t.track for t in c.top_tracks] == want
        assert [t.listeners for t in c.top_tracks] == [tracks[t] for t in want]


def _others(home: Home, name: str) -> list[str]:
    """Every other member's name and pseudonym: none may appear in what ``name`` sees."""
    return [
        v for n in [*CONSENTING, REFUSING] if n != name for v in (n, get_member(home, n).pseudonym)
    ]


def test_a_member_who_did_not_consent_is_told_so_and_sees_no_figures(coop: Coop) -> None:
    c = data.cooperative(coop.home, Actor.member(REFUSING), REFUSING)
    assert c.state == "needs-consent" and "consent" in c.message
    assert c.hours is None and c.artist is None and not c.top_tracks
    text = json.dumps(to_json("insights-cooperative", c))
    assert not any(o in text for o in _others(coop.home, REFUSING))


def test_the_cli_prints_the_comparison_and_names_no_other_member(coop: Coop) -> None:
    name = CONSENTING[0]
    shown = run_cli(coop.home, "insights", "--member", name, "--cooperative", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["state"] == "ready" and doc["hours"]["release"] == coop.built[0].release
    assert doc == to_json(
        "insights-cooperative", data.cooperative(coop.home, Actor.steward(), name)
    )
    words = run_cli(coop.home, "insights", "--member", name, "--cooperative")
    assert words.returncode == 0 and "of the cooperative's members" in words.stdout
    for out in (shown.stdout, words.stdout):
        assert not any(o in out for o in _others(coop.home, name))
    refused = run_cli(coop.home, "insights", "--member", REFUSING, "--cooperative")
    assert refused.returncode == 0 and "needs your consent" in refused.stdout


def test_the_steward_command_builds_with_noise_and_skips_what_would_be_empty(
    tmp_path: Path,
) -> None:
    home = init_home(Settings(home=tmp_path / "home"))
    for i in range(3):
        add_member(home, f"m{i}")
        import_export(home, f"m{i}", export_zip(tmp_path, "extended-c", 200, 70 + i, years=1))
        decide(home, f"m{i}", "member-insights", granted=i < 2)
    home.close()
    run = subprocess.run(
        [str(TUNETRUST), "--home", str(tmp_path / "home"), "release", "member-insights",
         "--month", MONTH, "--json"],
        env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    parts = {p["part"]: p for p in json.loads(run.stdout)["items"]}
    assert parts["hours"]["release"] and parts["hours"]["members_included"] == 2
    # two members cannot fill a private list: planned empty, skipped, nothing spent
    assert parts["artists"]["release"] is None and "members" in parts["artists"]["skipped"]
    assert parts["tracks"]["release"] is None
    doc = read_manifest(Path(tmp_path / "home" / "releases" / parts["hours"]["release"]))
    assert doc["privacy"]["noise"]["noise"] == "laplace"
    assert doc["accounting"]["epsilon_per_member"] == "0.1"


def test_the_page_renders_for_a_consenting_and_a_refusing_member(coop: Coop) -> None:
    app = create_app(coop.home.settings, worker=False, home=coop.home)
    for name in (CONSENTING[0], REFUSING):
        client = TestClient(app, base_url="https://localhost")
        client.cookies.set(COOKIE, session_secret(coop.home, name))
        page = client.get("/insights/cooperative")
        assert page.status_code == 200
        assert 'aria-current="page">Me &amp; my cooperative' in page.text
        as_json = client.get("/insights/cooperative.json")
        assert as_json.json() == to_json(
            "insights-cooperative", data.cooperative(coop.home, Actor.member(name), name)
        )
        for text in (page.text, as_json.text):
            assert not any(o in text for o in _others(coop.home, name))
        if name == REFUSING:
            assert "Your consent is needed" in page.text and "<table" not in page.text
        else:
            assert "(you)" in page.text and "top tracks" in page.text


@pytest.mark.slow  # a server and a browser
def test_the_page_in_chromium_at_phone_and_desktop_widths(coop: Coop, tmp_path: Path) -> None:
    """No layout problem (tests/browser.py: sideways scroll, charts off screen), no serious
    axe-core finding, no console error, at 360, 390 and 1280 px, for a consenting and a
    refusing member; screenshots kept in build/screenshots/cooperative/."""
    shots = screens("cooperative")
    port = free_port()
    origin = f"http://localhost:{port}"
    problems: list[str] = []

    def log(message: Any) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    with (
        chromium(modules=("axe_playwright_python",)) as browser,
        served(coop.home.settings.home, port, tmp_path / "server.log", "--origin", origin),
    ):
        for who, slug in ((CONSENTING[0], "cooperative"), (REFUSING, "cooperative-refused")):
            for width, height in ((360, 740), (390, 844), (1280, 800)):
                context = browser.new_context(
                    base_url=origin, viewport={"width": width, "height": height}
                )
                cookie = {"name": COOKIE, "value": session_secret(coop.home, who), "url": origin}
                context.add_cookies([{**cookie, "httpOnly": True, "secure": True}])
                page = context.new_page()
                page.on("console", log)
                page.goto("/insights/cooperative")
                page.wait_for_load_state("load")
                where = f"{slug} at {width} px"
                problems += [f"{where}: {p}" for p in layout_problems(page) + axe_problems(page)]
                text = page.inner_text("main")
                if who == REFUSING:
                    assert "Your consent is needed" in text
                else:
                    assert "(you)" in text
                page.screenshot(path=shots / f"{slug}-{width}.png", full_page=True)
                context.close()
    assert not problems, problems
