"""What a signed-in member sees and does: every page acts as that member, never as the steward.

Each handler makes service calls as ``visit.actor`` (the signed-in member), so the
service layer's checks apply (a member acts for themselves only) and every audit entry
names the member by pseudonym. A URL that names another member's thing answers 404,
with the same words whether the thing is someone else's or does not exist at all.

Pages: home, guide, a contribution's report, insights (and their JSON), consent with
a receipt per decision, votes with the member's own ballot and receipt, money and
privacy (statement, budget, releases, proofs of inclusion), and the member's rights
(export, erasure).
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from tunetrust.errors import InputError, NotFoundError
from tunetrust.insights import display, report
from tunetrust.store.home import Home
from tunetrust.web.app import ACCESS, page, templates
from tunetrust.web.security import MemberPost, MemberVisit, Visit

router = APIRouter()
ACCESS.update(
    {
        "GET /": "member",
        "GET /guide": "anyone",
        "GET /contributions/{contribution_id}": "member",
        "GET /insights": "member",
        "GET /insights.json": "member",
        "GET /insights/charts.css": "anyone",
        "GET /consent": "member",
        "POST /consent": "member",
        "GET /consent/receipts/{seq}": "member",
        "GET /votes": "member",
        "GET /votes/{request_id}": "member",
        "POST /votes/{request_id}": "member",
        "GET /money": "member",
        "GET /releases/{release_id}/proof.json": "member",
        "GET /rights": "member",
        "POST /rights/export": "member",
        "POST /rights/erase": "member",
    }
)
NOTHING = "there is nothing here"


# what a consent purpose lets the cooperative do, in a sentence; a purpose added by
# the settings and not listed here is shown by its name alone
PURPOSES = {
    "research": "Aggregate, noisy statistics for non-commercial research (universities, "
    "public bodies), published only as findings about many people.",
    "ai-training": "Aggregate, noisy statistics used to train or evaluate AI models, with "
    "no attempt to re-identify anyone.",
    "commercial-analytics": "Aggregate, noisy statistics for a company's internal "
    "analytics (labels, venues, services); no resale.",
    "member-insights": "Aggregate, noisy statistics the cooperative publishes to its own "
    "members only, so each can compare their listening with everyone's; never sold.",
}


def _when(at: str | None) -> str:
    """An ISO time as a person reads it: 2024-11-30 14:05 UTC."""
    return f"{at[:16].replace('T', ' ')} UTC" if at else "—"


def _country(code: str | None) -> str:
    """A country's name from its ISO 3166-1 code."""
    import iso3166

    found = iso3166.countries_by_alpha2.get(code or "")
    return str(found.name) if found else (code or "unknown")


# the helpers the templates here use, registered once
templates.env.globals.update(when=_when, country=_country, **report.filters())


WHOLE_ID = re.compile(r"[0-9a-f]{32}")


def _whole(identifier: str) -> str:
    """Pages name things by their whole id: no prefixes, no patterns (the command line
    takes prefixes; here they would tell a member about ids that are not theirs)."""
    if not WHOLE_ID.fullmatch(identifier):
        raise NotFoundError(NOTHING)
    return identifier


@contextmanager
def _not_found() -> Iterator[None]:
    """A thing that does not exist reads like someone else's: both are 'nothing here'."""
    try:
        yield
    except NotFoundError:
        raise NotFoundError(NOTHING) from None


@router.get("/")
def homepage(request: Request, v: MemberVisit) -> Response:
    """The member's home: where they stand, and what to do next."""
    from tunetrust.services import data, members

    profile = members.member_profile(v.home, v.actor, v.name)
    contributions = data.list_contributions(v.home, v.actor, v.name)
    return page(request, "home.html", nav="home", profile=profile, contributions=contributions)


@router.get("/guide")
def guide(request: Request) -> Response:
    """How to request the export from the streaming service, and what we keep and drop."""
    from tunetrust.formats import registry

    services = [p.facts for p in registry() if p.facts.export_steps]
    return page(request, "guide.html", nav="guide", services=services)


# --- contributions and insights --------------------------------------------------------


@router.get("/contributions/{contribution_id}")
def contribution(request: Request, contribution_id: str, v: MemberVisit) -> Response:
    """One upload's report in plain words: what was kept and dropped, each check, the score."""
    from tunetrust.ingest.quality import QUALITY_WEIGHTS
    from tunetrust.services import data

    with _not_found():
        report = data.contribution_report(v.home, v.actor, _whole(contribution_id))
    uploaded = next(
        (
            c.at
            for c in data.list_contributions(v.home, v.actor, v.name)
            if c.id == report.contribution
        ),
        None,
    )
    return page(
        request,
        "contribution.html",
        nav="home",
        r=report,
        uploaded=uploaded,
        weights=QUALITY_WEIGHTS,
    )


@cache
def time_zones() -> list[str]:
    """IANA time zones a member can choose for days and hours."""
    from zoneinfo import available_timezones

    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"the {what} date must look like 2024-03-31") from None


def period_of(kind: str, year: str | None, start: str | None, end: str | None) -> Any:
    """The period the picker chose: all time, one calendar year, or from–to."""
    from tunetrust.insights.stats import Period

    if kind == "year":
        if not year or not year.strip().isdigit() or not 1900 <= int(year) <= 9999:
            raise InputError("choose a year, such as 2024")
        y = int(year)
        return Period(date(y, 1, 1), date(y, 12, 31))
    if kind == "custom":
        return Period(_day(start, "from"), _day(end, "to"))
    if kind != "all":
        raise InputError("choose all time, a year, or dates from and to")
    return Period()


Text = Annotated[str | None, Query(max_length=40)]


INSIGHTS_CACHED = 256  # member views kept in memory (each a few kB)
_cache: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_cache_lock = threading.Lock()


def _insights(v: Visit, kind: str, year: Text, start: Text, end: Text, tz: str) -> Any:
    """The member's insights, computed once per stored file, period, zone and day.

    A member's listens change only when an import (or an erasure) replaces their events
    file, whose name is in the key: a new file is a new key, so nothing stale is shown.
    The day is in the key because "all time" and open-ended periods end today.
    """
    from tunetrust.services import data

    assert v.member is not None
    key = (v.member.pseudonym, v.member.events_file, kind, year, start, end, tz, date.today())
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    computed = data.insights(v.home, v.actor, v.name, period_of(kind, year, start, end), tz=tz)
    with _cache_lock:
        _cache[key] = computed
        while len(_cache) > INSIGHTS_CACHED:
            _cache.popitem(last=False)
    return computed


@dataclass(frozen=True)
class Chosen:
    """The period and zone the member picked (the insights page's GET form)."""

    period: str
    year: str | None
    start: str | None
    end: str | None
    tz: str


def _chosen(
    period: Annotated[str, Query(max_length=10)] = "all",
    year: Text = None,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> Chosen:
    return Chosen(period, year, start, end, tz)


ChosenPeriod = Annotated[Chosen, Depends(_chosen)]


@router.get("/insights")
def insights(request: Request, v: MemberVisit, q: ChosenPeriod) -> Response:
    """My listening: every number of ``tunetrust insights``, the charts, a period picker."""
    period, year, start, end, tz = q.period, q.year, q.start, q.end, q.tz
    chosen = {"period": period, "year": year or "", "from": start or "", "to": end or "", "tz": tz}
    context: dict[str, Any] = {"nav": "insights", "chosen": chosen, "zones": time_zones()}
    assert v.member is not None
    if v.member.events_file is None:  # nothing stored yet (no need to count the listens)
        return page(request, "insights.html", empty=True, **context)
    try:
        i = _insights(v, period, year, start, end, tz)
    except InputError as problem:  # the form is shown again, with what to change
        return page(request, "insights.html", status=400, problem=str(problem), **context)
    if i.history_first_day is None:  # a stored file with no listen left in it
        return page(request, "insights.html", empty=True, **context)
    return page(
        request,
        "insights.html",
        i=i,
        figures=report.figures(i),
        new=report.new_artists(i),
        favourite=report.favourite(),
        days_of_week=display.DAYS,
        json_link="/insights.json" + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )


@router.get("/insights/charts.css")
def charts_css() -> Response:
    """The charts' stylesheet, shared with the HTML report (``insights/templates``)."""
    return Response(report.chart_css(), media_type="text/css")


@router.get("/insights.json")
def insights_json(v: MemberVisit, q: ChosenPeriod) -> Response:
    """The same numbers as ``tunetrust insights --json``."""
    from tunetrust.services.outputs import to_json

    return JSONResponse(to_json("insights", _insights(v, q.period, q.year, q.start, q.end, q.tz)))


# --- consent ---------------------------------------------------------------------------


@router.get("/consent")
def consentpage(request: Request, v: MemberVisit) -> Response:
    """Grant or withdraw per purpose; every decision with its receipt."""
    from tunetrust.services import governance, members

    history = members.consent_history(v.home, v.actor, v.name)
    receipts = governance.consent_receipts(v.home, v.actor, v.name)
    # each decision wrote one row and one audit entry, in the same order
    rows = list(zip(history.history, _padded(receipts, history.history), strict=True))
    return page(
        request,
        "consent.html",
        nav="consent",
        history=history,
        rows=list(reversed(rows)),
        explain=PURPOSES,
    )


def _padded(receipts: list[Any], records: list[Any]) -> list[Any]:
    """Receipts matched to records when they line up one to one, else none (never a wrong one)."""
    if len(receipts) == len(records) and all(
        r.purpose == c.purpose and r.granted == c.granted
        for r, c in zip(receipts, records, strict=True)
    ):
        return receipts
    return [None] * len(records)


@router.post("/consent")
def consent_change(
    request: Request,
    v: MemberPost,
    purpose: Annotated[str, Form(max_length=64)],
    decision: Annotated[str, Form(max_length=16)],
) -> Response:
    """Record the decision, then show its receipt."""
    from tunetrust.services import governance, members

    if decision not in ("grant", "withdraw"):
        raise InputError("choose to grant or to withdraw consent")
    change = members.set_consent(v.home, v.actor, v.name, purpose, granted=decision == "grant")
    if not change.changed:
        return RedirectResponse("/consent", status_code=303)
    newest = [
        r for r in governance.consent_receipts(v.home, v.actor, v.name) if r.purpose == purpose
    ][-1]
    return RedirectResponse(f"/consent/receipts/{newest.seq}", status_code=303)


@router.get("/consent/receipts/{seq}")
def consent_receipt(request: Request, seq: int, v: MemberVisit) -> Response:
    """The audit entry that recorded one of my consent decisions."""
    from tunetrust.services import governance

    with _not_found():
        receipt = governance.consent_receipt(v.home, v.actor, v.name, seq)
    return page(request, "receipt.html", nav="consent", receipt=receipt, explain=PURPOSES)


# --- votes -----------------------------------------------------------------------------


@router.get("/votes")
def votes(request: Request, v: MemberVisit) -> Response:
    """Requests put to a vote: open ones first, then those decided."""
    from tunetrust.services import governance

    found = governance.requests_for_member(v.home, v.actor, v.name)
    open_now = [r for r in found if r.request.state == "open"]
    decided = [r for r in found if r.request.state != "open"]
    return page(request, "votes.html", nav="votes", open_now=open_now, decided=decided)


@router.get("/votes/{request_id}")
def votepage(request: Request, request_id: str, v: MemberVisit) -> Response:
    """One request explained, the live tally, my ballot and its receipt."""
    from tunetrust.services import governance

    with _not_found():
        r = governance.request_for_member(v.home, v.actor, v.name, _whole(request_id))
    return page(request, "vote.html", nav="votes", r=r, explain=PURPOSES)


@router.post("/votes/{request_id}")
def vote_cast(
    request: Request,
    request_id: str,
    v: MemberPost,
    choice: Annotated[str, Form(max_length=8)],
) -> Response:
    """Cast or change my vote, then show it with its receipt."""
    from tunetrust.services import governance

    with _not_found():
        shown = governance.request_for_member(v.home, v.actor, v.name, _whole(request_id))
        cast = governance.vote(v.home, v.actor, v.name, shown.request.id, choice)
    return RedirectResponse(f"/votes/{cast.request}", status_code=303)


# --- money and privacy -----------------------------------------------------------------


@router.get("/money")
def money(request: Request, v: MemberVisit) -> Response:
    """My payouts, my privacy budget per purpose, the releases I was in."""
    from tunetrust.services import members, releases

    return page(
        request,
        "money.html",
        nav="money",
        statement=members.member_statement(v.home, v.actor, v.name),
        budget=members.budget_lines(v.home, v.actor, v.name),
        releases=releases.member_releases(v.home, v.actor, v.name),
    )


@router.get("/releases/{release_id}/proof.json")
def proof(release_id: str, v: MemberVisit) -> Response:
    """My proof of inclusion in a release I was in, to keep and check (404 for any other)."""
    from tunetrust.services import releases
    from tunetrust.services.outputs import to_json

    mine = {r.id for r in releases.member_releases(v.home, v.actor, v.name)}
    if release_id not in mine:
        raise NotFoundError(NOTHING)
    found = releases.inclusion(v.home, v.actor, release_id, v.name)
    if not found.included:  # pragma: no cover - charged members are in the tree
        raise NotFoundError(NOTHING)
    return JSONResponse(
        to_json("release-inclusion", found),
        headers={"Content-Disposition": f'attachment; filename="proof-{release_id[:12]}.json"'},
    )


# --- rights ----------------------------------------------------------------------------


@router.get("/rights")
def rights(request: Request, v: MemberVisit) -> Response:
    """Download everything held about me; erase it all."""
    return page(request, "rights.html", nav="rights")


EXPORTS = "exports"  # below the home: an export's private folder, gone before it is sent


def sweep_exports(home: Home, *, older_than: float = 600) -> int:
    """Folders a server killed mid-export left (each a decrypted copy): removed at start.

    Younger ones may be another server's export under way, a second or two long."""
    cutoff = time.time() - older_than
    left = [f for f in (home.settings.home / EXPORTS).glob("*") if f.stat().st_mtime < cutoff]
    for folder in left:
        shutil.rmtree(folder, ignore_errors=True)
    return len(left)


@router.post("/rights/export")
def export(request: Request, v: MemberPost) -> Response:
    """Everything held about me, as one zip.

    It is written to a private folder in the home, opened, and its folder removed before
    the first byte is sent: a download cut short leaves no decrypted copy behind.
    """
    from tunetrust.services import members
    from tunetrust.store import private

    folder = v.home.settings.home / EXPORTS / secrets.token_hex(16)
    private.mkdir(folder)
    try:
        receipt = members.export_data(v.home, v.actor, v.name, folder / "export.zip")
        handle = Path(receipt.path).open("rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(1 << 16):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="tunetrust-my-data.zip"'},
    )


@router.post("/rights/erase")
def erase(
    request: Request,
    v: MemberPost,
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Erase me, once I have typed my member name; then say goodbye with the receipt."""
    from tunetrust.services import members

    if confirm != v.name:
        return page(
            request,
            "rights.html",
            status=400,
            nav="rights",
            problem="Nothing was erased: type your member name exactly as it is shown to confirm.",
        )
    assert v.member is not None
    receipt = members.erase(v.home, v.actor, v.name)
    with _cache_lock:  # nothing of theirs stays in this process's memory either
        for key in [k for k in _cache if k[0] == v.member.pseudonym]:
            del _cache[key]
    # signed out now (the session went with the member): the page shows no menu
    return page(request, "goodbye.html", member=None, receipt=receipt)


__all__ = ["router"]
