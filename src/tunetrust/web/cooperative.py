"""Me and my cooperative, as the signed-in member.

``/insights/cooperative`` shows the member's listening beside the cooperative's newest
member-insights releases (differentially private, built for members), or a sentence
saying the comparison needs their consent or has not been published yet;
``/insights/cooperative.json`` is ``tunetrust insights --cooperative --json``. Neither
names another member: the cooperative's side is noisy counts of members per hours
bucket, artist and track.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tunetrust.web.app import ACCESS, page
from tunetrust.web.security import MemberVisit

router = APIRouter()
ACCESS.update(
    {
        "GET /insights/cooperative": "member",
        "GET /insights/cooperative.json": "member",
    }
)


@router.get("/insights/cooperative")
def cooperative_page(request: Request, v: MemberVisit) -> Response:
    """My listening beside the cooperative's: hours, top artist's rank, top tracks."""
    from tunetrust.services import data

    compared = data.cooperative(v.home, v.actor, v.name)
    return page(request, "cooperative.html", nav="cooperative", c=compared)


@router.get("/insights/cooperative.json")
def cooperative_json(v: MemberVisit) -> Response:
    """The same comparison as ``tunetrust insights --cooperative --json``."""
    from tunetrust.services import data
    from tunetrust.services.outputs import to_json

    return JSONResponse(to_json("insights-cooperative", data.cooperative(v.home, v.actor, v.name)))
