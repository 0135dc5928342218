"""The story and its shareable image: every number is an insights figure, the image is a
PNG of its size with no name or id on it, an empty member is told to import first, and
the story page reads well in Chromium at phone and desktop widths."""

from __future__ import annotations

import calendar
import json
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tunetrust import Home, Settings, add_member, get_member, import_export, init_home
from tunetrust.insights.share import SHAPES, font_files, image_svg, share_image
from tunetrust.insights.stats import Period
from tunetrust.insights.story import Figure, Source, Story, story
from tunetrust.services import data
from tunetrust.services.models import Actor
from tunetrust.services.outputs import to_json
from tunetrust.store.events import EVENTS_SCHEMA
from tunetrust.web.app import create_app
from tunetrust.web.security import COOKIE

from .browser import axe_problems, chromium, layout_problems, screens
from .factories import export_zip
from .web_support import free_port, run_cli, served, session_secret

NAME = "Zebulon Quux-Story"  # a name no synthetic artist or track has
TZ = "Europe/Berlin"


@dataclass
class Coop:
    home: Home
    root: Path
    name: str


@pytest.fixture(scope="module")
def coop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coop]:
    root = tmp_path_factory.mktemp("story")
    home = init_home(Settings(home=root / "home"))
    add_member(home, NAME)
    import_export(home, NAME, export_zip(root, "extended-c", 6_000, 11, years=3))
    add_member(home, "nobody")
    try:
        yield Coop(home, root, NAME)
    finally:
        home.close()


def _last_year(coop: Coop) -> int:
    m = get_member(coop.home, coop.name)
    last = coop.home.events.read(m.pseudonym, m.events_file)["ts"].to_pylist()
    return max(last).year


# --- every number of every sentence is a figure of `tunetrust insights --json` ----------


def _at(data: Any, path: str) -> Any:
    """A dotted path of the insights JSON; ``*`` sums over a list (written apart from
    the module's own reading, on purpose)."""
    parts = path.split(".")
    if parts[0] == "*":
        return sum(_at(item, ".".join(parts[1:])) if parts[1:] else item for item in data)
    here = data[int(parts[0])] if isinstance(data, list) else data[parts[0]]
    return _at(here, ".".join(parts[1:])) if parts[1:] else here


class InsightsJson:
    """``tunetrust insights --json`` for each period a figure names: the story's own
    period from the command line itself (a new process), the others through the same
    service call and serialiser the command uses (``emit`` prints ``to_json``)."""

    def __init__(self, coop: Coop, main: tuple[str | None, str | None]) -> None:
        self.coop, self.main, self.seen = coop, main, {}

    def of(self, src: Source) -> Any:
        key = (src.start, src.end)
        if key not in self.seen:
            if key == self.main:
                args = ["insights", "--member", self.coop.name, "--tz", TZ, "--json"]
                args += [
                    x for k, v in (("--from", src.start), ("--to", src.end)) if v for x in (k, v)
                ]
                done = run_cli(self.coop.home, *args)
                assert done.returncode == 0, done.stderr
                self.seen[key] = json.loads(done.stdout)
            else:
                period = Period.parse(src.start, src.end, None)
                got = data.insights(self.coop.home, Actor.member(NAME), NAME, period, tz=TZ)
                self.seen[key] = json.loads(json.dumps(to_json("insights", got)))
        return _at(self.seen[key], src.path)


NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _number(text: str) -> float:
    found = NUMBER.search(text)
    assert found, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


def _check_text(f: Figure) -> None:
    """The words say the value: rounded as written, never another number."""
    v = f.value
    if f.unit in ("hours", "days"):
        unit = 3_600_000 if f.unit == "hours" else 86_400_000
        shown = _number(f.text)
        assert abs(shown - float(v) / unit) <= (0.05 if "." in f.text else 0.5), f
    elif f.unit in ("percent", "change"):
        assert f.text.endswith(" %") and abs(_number(f.text) - abs(float(v)) * 100) <= 0.5, f
    elif f.unit == "count":
        assert _number(f.text) == v, f
    elif f.unit in ("name", "year"):
        assert f.text == str(v), f
    elif f.unit == "date":
        d = date.fromisoformat(str(v)[:10])
        assert f.text == f"{d.day} {calendar.month_name[d.month]} {d.year}", f
    elif f.unit == "month":
        year, month = str(v).split("-")
        assert f.text in (
            calendar.month_name[int(month)],
            f"{calendar.month_name[int(month)]} {year}",
        )
    elif f.unit == "clock":
        assert f.text == f"{int(v):02d}:00", f
    else:
        raise AssertionError(f"unknown unit {f.unit}")


def _check_value(f: Figure, insights: InsightsJson) -> None:
    """The value is the insights' figure (or sum, or share, or change) it names."""
    if not f.of:  # a constant of a rule: a mark or an hour of the clock
        assert f.unit in ("percent", "clock") and f.key.startswith("trait."), f
        return
    values = [insights.of(s) for s in f.of]
    want: Any = values[0] if len(values) == 1 else sum(values)
    if f.per:
        want = want / sum(insights.of(s) for s in f.per)
    if f.unit == "change":
        want -= 1
    if isinstance(want, float) or isinstance(f.value, float):
        assert math.isclose(float(f.value), float(want), rel_tol=1e-9), (f, want)
    else:
        assert f.value == want, (f, want)


def _check_story(told: Story, insights: InsightsJson) -> int:
    """Every sentence: its parts make it, its digits are all in figures, each figure's
    words and value are right; the number of figures checked."""
    checked = 0
    for card in told.cards:
        figures = {f.key: f for f in card.figures}
        assert not re.search(r"\d", card.title), card.title
        for line in card.lines:
            assert "".join(p.text for p in line.parts) == line.text
            for p in line.parts:
                if p.figure is None:
                    assert not re.search(r"\d", p.text), f"a number outside a figure: {line.text}"
                else:
                    assert figures[p.figure].text == p.text, line.text
        for f in card.figures:
            _check_text(f)
            _check_value(f, insights)
            checked += 1
    return checked


@pytest.mark.parametrize("which", ["year", "custom", "all"])
def test_every_number_in_the_story_is_a_figure_of_insights_json(coop: Coop, which: str) -> None:
    year = _last_year(coop)
    args = {
        "year": ["--year", str(year - 1)],
        "custom": ["--from", f"{year - 2}-11-15", "--to", f"{year - 1}-02-10"],
        "all": ["--from", "2000-01-01"],
    }[which]
    done = run_cli(coop.home, "insights", "--member", NAME, "--tz", TZ, "--story", "--json", *args)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    told = data.story(coop.home, Actor.member(NAME), NAME, Period.parse(*_period_args(args)), tz=TZ)
    assert printed == json.loads(json.dumps(to_json("insights-story", told)))  # the CLI's JSON
    assert not told.empty and told.cards
    keys = [c.key for c in told.cards]
    checked = _check_story(told, InsightsJson(coop, (told.start, told.end)))
    assert checked > 20
    if which == "year":  # a whole year: every part of the story is told
        assert keys == ["time", "favourites", "tops", "compare", "discovery", "personality"]
        assert told.cards[2].title == "Your song of each month"
        assert len(told.cards[2].lines) == 12
    if which == "custom":  # months across two years are named with their year
        months = [f for f in told.cards[2].figures if f.unit == "month"]
        assert [m.text for m in months][:2] == [f"November {year - 2}", f"December {year - 2}"]
        assert told.cards[3].title == "Against the period before"
    if which == "all":  # more than 13 months: a song a year
        assert told.cards[2].title == "Your song of each year"


def _period_args(args: list[str]) -> tuple[str | None, str | None, int | None]:
    got = dict(zip(args[::2], args[1::2], strict=True))
    year = got.get("--year")
    return got.get("--from"), got.get("--to"), int(year) if year else None


def test_the_story_defaults_to_the_year_of_the_latest_listen(coop: Coop) -> None:
    told = data.story(coop.home, Actor.member(NAME), NAME, tz=TZ)
    year = str(_last_year(coop))
    assert (told.period, told.start, told.end) == (year, f"{year}-01-01", f"{year}-12-31")
    text = run_cli(coop.home, "insights", "--member", NAME, "--tz", TZ, "--story")
    assert text.returncode == 0, text.stderr
    assert f"In {year} you spent" in text.stdout and "Your listening personality" in text.stdout


def test_a_period_without_listens_names_the_years_that_have_some(coop: Coop) -> None:
    told = data.story(coop.home, Actor.member(NAME), NAME, Period.parse(None, None, 2001))
    assert told.empty and [c.key for c in told.cards] == ["nothing"]
    assert told.cards[0].lines[0].text == "You have no listening in 2001."
    _check_story(told, InsightsJson(coop, ("2001-01-01", "2001-12-31")))


# --- the listening personality ------------------------------------------------------


def _listens(hours: list[tuple[date, int]], *, artists: int = 9) -> pa.Table:
    """Four-minute listens at the given (UTC) days and hours, spread over ``artists``;
    each artist heard once in 2022 first, so none is new in 2023."""
    known = [(date(2022, 6, 1), 12)] * artists
    rows = [
        {
            "ts": datetime(d.year, d.month, d.day, h, 0, tzinfo=UTC),
            "ms_played": 4 * 60_000,
            "kind": "track",
            "track_name": f"Song {n % 7}",
            "artist_name": f"Artist {n % artists}",
            "shuffle": False,
            "skipped": False,
            "source": "extended",
            "contribution": "c",
        }
        for n, (d, h) in enumerate(known + hours)
    ]
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


@pytest.mark.parametrize(
    ("hour", "weekday_only", "label"),
    [(23, True, "Night owl"), (7, True, "Early bird"), (14, False, "Weekend listener")],
)
def test_the_personality_is_the_habit_that_passes_its_mark_by_most(
    hour: int, weekday_only: bool, label: str
) -> None:
    days = [date(2023, 3, d) for d in range(1, 32)]
    if weekday_only:
        plays = [(d, hour) for d in days if d.weekday() < 5]
    else:  # most listening on Saturdays and Sundays (at three hours a day: the clock
        # counts listens that overlap once, so the same play thrice is once), a little on
        # weekdays
        plays = [(d, hour + k) for d in days if d.weekday() >= 5 for k in range(3)]
        plays += [(d, hour) for d in days[:3]]
    told = story(_listens(plays), Period.parse(None, None, 2023))
    assert told.personality == label
    line = told.cards[-1].lines[0].text
    assert line.startswith(f"{label}: ") and "(the mark is" in line
    held = next(t for t in told.traits if t.label == label)
    assert held.holds and float(held.measured.value) >= float(held.mark.value)


def test_no_habit_past_its_mark_is_a_steady_listener() -> None:
    # every hour of every day alike: nothing stands out
    days = [date(2023, 5, d) for d in range(1, 29)]
    hours = [(d, h) for d in days for h in range(24)]
    told = story(_listens(hours, artists=24), Period.parse(None, None, 2023))
    assert told.personality is None
    assert told.cards[-1].lines[0].text.startswith("Steady listener")
    assert not any(t.holds for t in told.traits)


# --- an empty member ---------------------------------------------------------------


def test_a_member_with_no_listens_is_told_to_import_first(coop: Coop) -> None:
    told = data.story(coop.home, Actor.member("nobody"), "nobody")
    assert told.empty and [c.title for c in told.cards] == ["Import your export first"]
    shown = run_cli(coop.home, "insights", "--member", "nobody", "--story")
    assert shown.returncode == 0
    assert "Import your export first" in shown.stdout
    assert "tunetrust import EXPORT.zip --member nobody" in shown.stdout
    image = coop.root / "nobody.png"
    refused = run_cli(coop.home, "insights", "--member", "nobody", "--image", str(image))
    assert refused.returncode == 1 and not image.exists()
    assert "import your export first" in refused.stderr
    with pytest.raises(Exception, match="import your export first"):
        share_image(told)


# --- the image -----------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's signature and IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize("shape", ["tall", "square"])
def test_the_image_is_a_png_of_its_size_made_the_same_each_time(coop: Coop, shape: str) -> None:
    told = data.story(coop.home, Actor.member(NAME), NAME, tz=TZ)
    picture = share_image(told, shape=shape)
    assert _png_size(picture.png) == SHAPES[shape] == (picture.width, picture.height)
    assert picture.png[-12:-4] == b"\x00\x00\x00\x00IEND"  # the end chunk
    if font_files():  # the same fonts from their files: the same bytes
        assert share_image(told, shape=shape).png == picture.png
    hours = told.figure("hours")
    assert hours is not None and hours.text.split()[0] in picture.svg
    assert "Top artist: " in picture.alt
    assert f"Listening personality: {told.personality or 'Steady listener'}" in picture.alt


def test_the_command_line_writes_the_image_for_its_owner_only(coop: Coop) -> None:
    out = coop.root / "shared" / "my-year.png"
    done = run_cli(
        coop.home,
        "insights",
        "--member",
        NAME,
        "--image",
        str(out),
        "--shape",
        "square",
        "--hide-artist",
    )
    assert done.returncode == 0, done.stderr
    assert _png_size(out.read_bytes()) == (1080, 1080)
    assert out.stat().st_mode & 0o777 == 0o600
    assert "Image written" in done.stdout


def test_the_image_holds_no_name_or_id_and_hides_what_the_member_hides(coop: Coop) -> None:
    me = get_member(coop.home, NAME)
    told = data.story(coop.home, Actor.member(NAME), NAME, tz=TZ)
    contributions = [c.id for c in data.list_contributions(coop.home, Actor.member(NAME), NAME)]
    secret = [NAME, NAME.split()[0], me.pseudonym, *contributions]  # (ids are 32 hex digits)
    story_json = json.dumps(to_json("insights-story", told))
    artist, track = told.figure("top_artist"), told.figure("top_track")
    assert artist is not None and track is not None
    for shape in SHAPES:
        svg, alt = image_svg(told, shape=shape)
        picture = share_image(told, shape=shape)
        for text in (svg, alt, story_json, picture.png.decode("latin-1")):
            for s in secret:
                assert s not in text, f"{s!r} is on the {shape} image or in the story"
        assert artist.text in svg  # shown unless the member hides it
        hidden, said = image_svg(told, shape=shape, show_artist=False, show_track=False)
        for name in (artist.text, track.text):
            assert name not in hidden and name not in said


def test_names_are_escaped_and_fitted(coop: Coop) -> None:
    days = [date(2023, 3, d) for d in range(1, 20)]
    table = _listens([(d, 12) for d in days])
    long = "<script>&" + "W" * 200
    table = table.set_column(
        table.schema.get_field_index("artist_name"),
        "artist_name",
        pa.array([long] * table.num_rows),
    )
    svg, _ = image_svg(story(table, Period.parse(None, None, 2023)))
    assert "<script>" not in svg and "&lt;script&gt;&amp;" in svg and "…" in svg
    assert "W" * 60 not in svg  # cut to the image's width


# --- the web page ------------------------------------------------------------------------


def test_the_story_page_shows_the_story_json_numbers_and_the_images(coop: Coop) -> None:
    app = create_app(coop.home.settings, worker=False, home=coop.home)
    client = TestClient(app, base_url="https://localhost")
    client.cookies.set(COOKIE, session_secret(coop.home, NAME))
    page = client.get("/insights/story", params={"tz": TZ})
    assert page.status_code == 200
    story_json = client.get("/insights/story.json", params={"tz": TZ}).json()
    values = {f["key"]: f["value"] for c in story_json["cards"] for f in c["figures"]}
    shown = re.findall(r'<data value="([^"]*)" data-figure="([^"]+)">', page.text)
    assert len(shown) > 20
    for value, key in shown:
        assert value == str(values[key]).replace("&", "&amp;"), key
    assert 'aria-current="page">My story' in page.text
    for shape, size in SHAPES.items():
        link = f"/insights/story/image.png?tz={TZ.replace('/', '%2F')}&amp;shape={shape}"
        assert link in page.text
        image = client.get(link.replace("&amp;", "&"))
        assert image.headers["content-type"] == "image/png"
        assert _png_size(image.content) == size
    hidden = client.get("/insights/story", params={"hide": ["artist", "track"]})
    assert "hide=artist&amp;hide=track" in hidden.text
    nobody = TestClient(app, base_url="https://localhost")
    nobody.cookies.set(COOKIE, session_secret(coop.home, "nobody"))
    empty = nobody.get("/insights/story")
    assert empty.status_code == 200 and "Import your export first" in empty.text
    assert "<img" not in empty.text
    assert nobody.get("/insights/story/image.png").status_code == 400


@pytest.mark.slow  # a server and a browser: about half a minute
def test_the_story_page_in_chromium_at_phone_and_desktop_widths(coop: Coop, tmp_path: Path) -> None:
    shots = screens("story")
    port = free_port()
    origin = f"http://localhost:{port}"
    problems: list[str] = []
    with (
        chromium(modules=("axe_playwright_python",)) as browser,
        served(coop.home.settings.home, port, tmp_path / "server.log", "--origin", origin),
    ):
        for who, path in (
            (NAME, "/insights/story?tz=Europe%2FBerlin"),
            ("nobody", "/insights/story"),
        ):
            for width, height in ((360, 740), (390, 844), (1280, 800)):
                context = browser.new_context(
                    base_url=origin, viewport={"width": width, "height": height}
                )
                context.add_cookies(
                    [
                        {
                            "name": COOKIE,
                            "value": session_secret(coop.home, who),
                            "url": origin,
                            "httpOnly": True,
                            "secure": True,
                            "sameSite": "Strict",
                        }
                    ]
                )
                page = context.new_page()
                errors: list[Any] = []  # console messages

                def log(message: Any, errors: list[Any] = errors) -> None:
                    errors.append(message)

                page.on("console", log)
                page.goto(path)
                page.wait_for_load_state("load")
                where = f"{who} at {width} px"
                problems += [f"{where}: {p}" for p in layout_problems(page) + axe_problems(page)]
                problems.extend(f"{where}: console: {m.text}" for m in errors if m.type == "error")
                slug = "story" if who == NAME else "story-empty"
                page.screenshot(path=shots / f"{slug}-{width}.png", full_page=True)
                if who == NAME:
                    # keyboard: skip link, then the first card of "In this story" by Enter
                    page.keyboard.press("Tab")
                    assert page.evaluate("document.activeElement.textContent") == (
                        "Skip to content"
                    )
                    link = page.get_by_role("link", name="Time with music")
                    link.focus()
                    page.keyboard.press("Enter")
                    page.wait_for_url("**#card-time")
                    images = page.locator("#share img")
                    assert images.count() == 2
                    for n in range(2):
                        images.nth(n).scroll_into_view_if_needed()
                        got = images.nth(n).evaluate(
                            "i => i.complete ? i.naturalWidth : new Promise(done => {"
                            " i.onload = () => done(i.naturalWidth); i.onerror = () => done(-1); })"
                        )
                        assert got == 1080, got
                else:
                    assert page.get_by_role("heading", name="Import your export first").is_visible()
                context.close()
    assert not problems, "\n".join(problems)
