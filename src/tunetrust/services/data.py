"""Data use cases: import an export, read contributions, personal insights, repair.

An import's report is ingest's frozen :class:`~tunetrust.ingest.pipeline.ImportSummary`
and insights are the frozen :class:`~tunetrust.insights.stats.Insights` (their story the
frozen :class:`~tunetrust.insights.story.Story`): typed and JSON-ready already, so the
service hands them on rather than copying them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from tunetrust.coop import audit, contributions
from tunetrust.coop.governance import iso_time
from tunetrust.insights.stats import Insights, Period, member_insights
from tunetrust.insights.story import Story, member_story
from tunetrust.services._access import acting, for_member, steward_only
from tunetrust.services.models import (
    Actor,
    ContributionInfo,
    MemberRebuildInfo,
    Rebuilt,
    Settled,
)
from tunetrust.store.home import Home

if TYPE_CHECKING:  # imported where used: the insights command should not load them all
    from tunetrust.ingest.disputes import Decision, Dispute
    from tunetrust.ingest.pipeline import ImportSummary
    from tunetrust.insights.cooperative import Comparison

Progress = Callable[[str, int, int], None]  # (what, done, total) while reading an export


def import_contribution(
    home: Home,
    actor: Actor,
    member: str,
    paths: list[Path],
    *,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a member's own export: checked, de-identified, deduplicated, stored.

    A rejected export raises :class:`~tunetrust.ingest.pipeline.ContributionRejected`,
    which carries the report (the member reads why).
    """
    from tunetrust.ingest import pipeline

    for_member(actor, member, "import a member's export")
    with acting(home, actor):
        return pipeline.import_export(home, member, paths, progress=progress)


def contribution_report(home: Home, actor: Actor, contribution_id: str) -> ImportSummary:
    """One contribution's report as it was recorded at import."""
    from tunetrust.ingest.pipeline import ImportSummary

    row = contributions.get_contribution(home, contribution_id)
    name = contributions.owner_name(home, row.id)
    if actor.kind != "steward":
        for_member(actor, name or "", "read another member's contribution")
    return TypeAdapter(ImportSummary).validate_python(row.summary)


def list_contributions(
    home: Home, actor: Actor, member: str | None = None
) -> list[ContributionInfo]:
    """Contributions, oldest first; a member sees their own."""
    if member is None:
        steward_only(actor, "list every member's contributions")
    else:
        for_member(actor, member, "list a member's contributions")
    return [
        ContributionInfo(
            id=r.id,
            member=r.member,
            at=iso_time(r.at) or "",
            verdict=r.verdict,
            listens_added=r.listens_added,
            quality_score=r.quality_score,
        )
        for r in contributions.list_contributions(home, member)
    ]


def insights(home: Home, actor: Actor, member: str, period: Period, **options: Any) -> Insights:
    """A member's listening in a period: totals, top lists, clock, habits, discovery."""
    for_member(actor, member, "see a member's insights")
    return member_insights(home, member, period, **options)


def story(
    home: Home, actor: Actor, member: str, period: Period | None = None, **options: Any
) -> Story:
    """A member's period told in cards of plain sentences, every number with its source
    (default: the calendar year of their latest listen); no listens: a card that says so."""
    for_member(actor, member, "see a member's insights")
    return member_story(home, member, period, **options)


def cooperative(home: Home, actor: Actor, member: str) -> Comparison:
    """The member's listening beside the cooperative's, from the newest member-insights
    releases only (never other members' listens); without consent, a sentence saying so."""
    from tunetrust.insights import cooperative as coop_insights
    from tunetrust.releases import member_insights as published

    for_member(actor, member, "see a member's insights")
    parts = {
        name: coop_insights.Released(
            part=p.part,
            release=p.release,
            month=p.month,
            period_from=p.period[0],
            period_to=p.period[1],
            rows=p.rows,
        )
        for name, p in published.latest(home).items()
    }
    return coop_insights.compare(home, member, parts)


def settle(home: Home, actor: Actor) -> Settled:
    """Settle what a killed writer left: files staged or not yet removed, and deliveries
    stopped between their recorded steps (finished from the step recorded)."""
    from tunetrust.services import sale

    steward_only(actor, "repair the home")
    files = home.recover()
    with acting(home, actor):
        finished = sale.resume_deliveries(home)
    return Settled(files_settled=files, deliveries_finished=finished)


def rebuild_events(
    home: Home,
    actor: Actor,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Rebuilt:
    """Re-derive every member's listens from their vault (``doctor --rebuild-events``)."""
    from tunetrust.ingest import rebuild

    steward_only(actor, "rebuild members' listens")
    with acting(home, actor):
        r = rebuild.rebuild_events(
            home, actor=audit.actor(home), dry_run=dry_run, progress=progress
        )
    return Rebuilt(
        dry_run=r.dry_run,
        changed=r.changed,
        members=[MemberRebuildInfo.model_validate(asdict(m)) for m in r.members],
    )


def disputes(home: Home, actor: Actor) -> list[Dispute]:
    """Imports held because their account or plays are another member's, oldest first:
    both sides by pseudonym, with what the steward weighs (docs/contributions.md)."""
    from tunetrust.ingest import disputes as held

    steward_only(actor, "see the cooperative's disputes")
    return held.list_disputes(home)


def decide_dispute(home: Home, actor: Actor, contribution_id: str, *, decided_for: str) -> Decision:
    """Decide a dispute for the ``claimant`` (the holder's copies are revoked and the held
    export imported) or the ``holder`` (the held import is rejected)."""
    from tunetrust.ingest import disputes as held

    steward_only(actor, "decide a dispute")
    with acting(home, actor):
        return held.decide(home, contribution_id, decided_for=decided_for, actor=audit.actor(home))
