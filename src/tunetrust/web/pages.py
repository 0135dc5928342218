"""What a signed-in member sees and does: every page acts as that member, never as the steward.

Each handler makes service calls as ``visit.actor`` (the signed-in member), so the
service layer's checks apply (a member acts for themselves only) and every audit entry
names the member by pseudonym. A URL that names another member's thing answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tunetrust.web.app import ACCESS, page
from tunetrust.web.security import MemberVisit

router = APIRouter()
ACCESS.update(
    {
        "GET /": "member",
        "GET /guide": "anyone",
    }
)


@router.get("/")
def home_page(request: Request, v: MemberVisit) -> Response:
    """The member's home: where they stand, and what to do next."""
    from tunetrust.services import members

    profile = members.member_profile(v.home, v.actor, v.name)
    return page(request, "home.html", nav="home", profile=profile)


@router.get("/guide")
def guide(request: Request) -> Response:
    """How to request the export from the streaming service, and what we keep and drop."""
    return page(request, "guide.html", nav="guide")


__all__ = ["router"]
