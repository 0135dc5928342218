"""The member's story and its shareable image, as the signed-in member.

``/insights/story`` tells a period (by default the calendar year of the member's latest
listen) in cards of plain sentences, each number marked up with its value; the page
needs no script and moves between cards by links. ``/insights/story.json`` is
``tunetrust insights --story --json``; ``/insights/story/image.png`` the shareable
image (``tall`` or ``square``; the member may leave their top artist's and song's names
off), which never carries the member's name or any id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from tunetrust.errors import InputError
from tunetrust.web.app import ACCESS, page
from tunetrust.web.pages import Text, period_of, time_zones
from tunetrust.web.security import MemberVisit, Visit

router = APIRouter()
ACCESS.update(
    {
        "GET /insights/story": "member",
        "GET /insights/story.json": "member",
        "GET /insights/story/image.png": "member",
    }
)

STORIES_CACHED = 64  # stories kept in memory (each a few kB)
_cache: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Told:
    """The period and zone the member picked; no ``period``: the latest year."""

    period: str | None
    year: str | None
    start: str | None
    end: str | None
    tz: str

    def query(self) -> dict[str, str]:
        """The picked period as query parameters (for the image's and the JSON's links)."""
        kept = {"period": self.period, "year": self.year, "from": self.start, "to": self.end}
        return {k: v for k, v in kept.items() if v} | {"tz": self.tz}


def _told(
    period: Annotated[str | None, Query(max_length=10)] = None,
    year: Text = None,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> Told:
    return Told(period, year, start, end, tz)


ToldPeriod = Annotated[Told, Depends(_told)]
Hide = Annotated[list[str] | None, Query(max_length=10)]  # artist, track: off the image


def _story(v: Visit, q: Told) -> Any:
    """The member's story, told once per stored file, period, zone and day (as insights)."""
    from tunetrust.services import data

    assert v.member is not None
    key = (v.member.pseudonym, v.member.events_file, q, date.today())
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    period = None if q.period is None else period_of(q.period, q.year, q.start, q.end)
    told = data.story(v.home, v.actor, v.name, period, tz=q.tz)
    with _cache_lock:
        _cache[key] = told
        while len(_cache) > STORIES_CACHED:
            _cache.popitem(last=False)
    return told


def _picked(q: Told, story: Any) -> dict[str, str]:
    """What the period form shows as chosen: the story's own year when none was picked."""
    kind = q.period or ("year" if story is not None and story.period.isdigit() else "all")
    year = q.year or (story.period if story is not None and story.period.isdigit() else "")
    return {"period": kind, "year": year, "from": q.start or "", "to": q.end or "", "tz": q.tz}


@router.get("/insights/story")
def story_page(request: Request, v: MemberVisit, q: ToldPeriod, hide: Hide = None) -> Response:
    """My year in music: the story's cards, a period picker, the image to share."""
    from tunetrust.insights.share import SHAPES, image_svg

    hide = hide or []

    context: dict[str, Any] = {"nav": "story", "zones": time_zones(), "query": q.query()}
    try:
        story = _story(v, q)
    except InputError as problem:  # the form is shown again, with what to change
        return page(
            request,
            "story.html",
            status=400,
            problem=str(problem),
            chosen=_picked(q, None),
            **context,
        )
    shown = {"show_artist": "artist" not in hide, "show_track": "track" not in hide}
    images = []
    if not story.empty:
        for shape, (width, height) in SHAPES.items():
            link = "/insights/story/image.png?" + urlencode(
                [*q.query().items(), ("shape", shape), *(("hide", h) for h in hide)]
            )
            _, alt = image_svg(story, shape=shape, **shown)
            images.append({"shape": shape, "link": link, "alt": alt, "size": f"{width}×{height}"})
    values = {f.key: f.value for card in story.cards for f in card.figures}
    return page(
        request,
        "story.html",
        story=story,
        values=values,
        images=images,
        hide=hide,
        chosen=_picked(q, story),
        json_link="/insights/story.json?" + urlencode(q.query()),
        **context,
    )


@router.get("/insights/story.json")
def story_json(v: MemberVisit, q: ToldPeriod) -> Response:
    """The same story as ``tunetrust insights --story --json``."""
    from tunetrust.services.outputs import to_json

    return JSONResponse(to_json("insights-story", _story(v, q)))


@router.get("/insights/story/image.png")
def story_image(
    v: MemberVisit,
    q: ToldPeriod,
    shape: Annotated[str, Query(max_length=10)] = "tall",
    hide: Hide = None,
) -> Response:
    """The story's shareable image (PNG), as ``tunetrust insights --image``."""
    from tunetrust.insights.share import share_image

    hide = hide or []
    picture = share_image(
        _story(v, q), shape=shape, show_artist="artist" not in hide, show_track="track" not in hide
    )
    named = {"Content-Disposition": f'inline; filename="my-music-{picture.shape}.png"'}
    return Response(picture.png, media_type="image/png", headers=named)
