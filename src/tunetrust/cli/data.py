"""Commands for the data itself: init, import, synth, demo, insights, contributions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunetrust.cli._app import (
    _open,
    _progress,
    _settings,
    app,
    contribution_app,
    error_dict,
    out,
    program,
)
from tunetrust.cli._service import emit, steward

JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print as JSON (docs/schemas/).")]


@app.command()
def init(ctx: typer.Context) -> None:
    """Create a cooperative home: metadata database, folders and a master key."""
    from tunetrust.store.home import init_home

    settings = _settings(ctx)
    init_home(settings).close()
    key = "from TUNETRUST_MASTER_KEY" if settings.master_key else f"in {settings.key_file} (0600)"
    out.print(f"[green]Cooperative ready[/] in {settings.home} — master key {key}")
    keep = "TUNETRUST_MASTER_KEY" if settings.master_key else str(settings.key_file)
    out.print(
        f"[yellow]Back up {keep}[/] and keep it apart from the home: without it no vault "
        "file can be read (tunetrust backup writes an encrypted copy of the whole home)",
        soft_wrap=True,  # one line, however long the path
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="A zip, a folder, or one or more JSON files.")
    ],
    member: Annotated[str, typer.Option("--member", help="Whose export this is.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    full_report: Annotated[
        bool, typer.Option("--report", help="Print every file, count and check.")
    ] = False,
) -> None:
    """Import a member's own export: checked, de-identified, deduplicated, stored."""
    from tunetrust.cli.render import print_import
    from tunetrust.errors import TuneTrustError
    from tunetrust.ingest.pipeline import ContributionRejected
    from tunetrust.services.data import import_contribution

    try:
        with _open(ctx) as home, _progress() as progress:
            task = progress.add_task("reading", total=None)

            def report(name: str, done: int, total: int) -> None:
                progress.update(
                    task, description=name.rsplit("/", 1)[-1] or "done", completed=done, total=total
                )

            summary = import_contribution(home, steward(home), member, paths, progress=report)
    except ContributionRejected as rejected:
        # the report is the useful part: show it, then fail with the one-line error
        if as_json:
            emit("import", rejected.summary)
        else:
            print_import(out, rejected.summary, report=full_report, program=program())
        raise
    except TuneTrustError as exc:
        if as_json:  # scripts read stdout: the refusal is there too, then the red line
            from tunetrust.services.outputs import Refusal

            emit("import-refused", Refusal.model_validate({"error": error_dict(exc)}))
        raise
    if as_json:
        emit("import", summary)
        return
    print_import(out, summary, report=full_report, program=program())


@app.command()
def synth(
    variant: Annotated[
        str,
        typer.Option(
            help="account, account-legacy, extended-a, extended-b, extended-b2 or extended-c."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    listens: Annotated[int, typer.Option(help="How many plays the history holds.")] = 5000,
    seed: Annotated[int, typer.Option(help="Which synthetic person (same seed, same data).")] = 1,
    years: Annotated[
        int | None, typer.Option(help="Span of the history in years (default: the variant's).")
    ] = None,
    crossfade: Annotated[
        bool, typer.Option(help="Finished plays overlap the next by 3-5 s, as on phones.")
    ] = False,
) -> None:
    """Write a synthetic export (no real person's data) for tests and demos."""
    from tunetrust.formats.spotify.synth import VARIANTS, write_export

    if variant not in VARIANTS:
        raise typer.BadParameter(f"choose one of {', '.join(VARIANTS)}", param_hint="--variant")
    if listens < 0:
        raise typer.BadParameter("must be at least 0", param_hint="--listens")
    try:
        result = write_export(variant, listens, seed, out_path, years, crossfade=crossfade)
    except ValueError as exc:  # the generator's own refusals say what to change
        raise typer.BadParameter(str(exc)) from None
    out.print(
        f"[green]Wrote[/] {result.path}: {variant}, {result.listens:,} plays "
        f"({result.incognito:,} incognito) in {len(result.files)} files"
    )


@app.command()
def demo(
    ctx: typer.Context,
    listens: Annotated[int, typer.Option(help="Plays in each demo member's history.")] = 2_000,
) -> None:
    """The main job: a synthetic cooperative through its whole lifecycle (empty home)."""
    from tunetrust.cli.demo import run_demo

    run_demo(_settings(ctx), out, listens=listens, program=program())


@app.command()
def insights(
    ctx: typer.Context,
    member: Annotated[str, typer.Option("--member", help="Whose listening.")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    year: Annotated[int | None, typer.Option("--year", help="One calendar year.")] = None,
    min_seconds: Annotated[int, typer.Option(help="A play counts from this many seconds.")] = 30,
    top: Annotated[int, typer.Option("--top", help="Length of top lists.")] = 10,
    tz: Annotated[str, typer.Option("--tz", help="Time zone for days and hours.")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    story: Annotated[
        bool,
        typer.Option(
            "--story",
            help="Tell the period as a story: cards of plain sentences (with no period "
            "given, the calendar year of the latest listen).",
        ),
    ] = False,
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Also write the story as a shareable PNG (implies --story)."),
    ] = None,
    shape: Annotated[
        str, typer.Option("--shape", help="The image: tall (1080×1920) or square (1080×1080).")
    ] = "tall",
    hide_artist: Annotated[
        bool, typer.Option("--hide-artist", help="Leave the top artist's name off the image.")
    ] = False,
    hide_track: Annotated[
        bool, typer.Option("--hide-track", help="Leave the top song's name off the image.")
    ] = False,
    cooperative: Annotated[
        bool,
        typer.Option(
            "--cooperative",
            help="Compare the member's listening with the cooperative's newest "
            "member-insights releases (needs their consent to member-insights).",
        ),
    ] = False,
) -> None:
    """A member's listening: totals, top lists, clock, habits, discovery; or its story."""
    from tunetrust.insights.stats import Period

    if cooperative:
        if story or image is not None or html is not None:
            raise typer.BadParameter("--cooperative stands alone: leave out --story and --html")
        _cooperative(ctx, member, as_json)
        return

    if story or image is not None:
        if html is not None:
            raise typer.BadParameter("--html writes the full report: leave out --story")
        told = None if start is None and end is None and year is None else (start, end, year)
        _story(ctx, member, told, tz, min_seconds, as_json, image, shape, hide_artist, hide_track)
        return
    from tunetrust.services.data import insights as member_insights

    period = Period.parse(start, end, year)
    with _open(ctx) as home:
        result = member_insights(
            home, steward(home), member, period, min_seconds=min_seconds, top=top, tz=tz
        )
    if html is not None:
        from tunetrust.insights.report import render_html
        from tunetrust.store import private

        html.parent.mkdir(parents=True, exist_ok=True)
        # a person's listening: readable by its owner only, from the first byte
        private.create(html).write_text(render_html(result, member=member), encoding="utf-8")
    if as_json:
        emit("insights", result)
        return
    from tunetrust.cli.render import print_insights

    print_insights(out, result, member=member)
    if html is not None:
        out.print(f"[green]Report written[/] to {html}")


def _cooperative(ctx: typer.Context, member: str, as_json: bool) -> None:
    """``insights --cooperative``: the member beside the cooperative, as sentences or JSON."""
    from tunetrust.services.data import cooperative

    with _open(ctx) as home:
        result = cooperative(home, steward(home), member)
    if as_json:
        emit("insights-cooperative", result)
        return
    from tunetrust.cli.render import print_cooperative

    print_cooperative(out, result)


def _story(
    ctx: typer.Context,
    member: str,
    told: tuple[str | None, str | None, int | None] | None,
    tz: str,
    min_seconds: int,
    as_json: bool,
    image: Path | None,
    shape: str,
    hide_artist: bool,
    hide_track: bool,
) -> None:
    """``insights --story``: the story as sentences or JSON, and its image if asked."""
    from tunetrust.insights.stats import Period
    from tunetrust.services.data import story

    period = Period.parse(*told) if told else None
    with _open(ctx) as home:
        result = story(home, steward(home), member, period, min_seconds=min_seconds, tz=tz)
    if image is not None:
        from tunetrust.insights.share import share_image
        from tunetrust.store import private

        picture = share_image(
            result, shape=shape, show_artist=not hide_artist, show_track=not hide_track
        )
        image.parent.mkdir(parents=True, exist_ok=True)
        private.create(image).write_bytes(picture.png)  # personal until the member shares it
    if as_json:
        emit("insights-story", result)
        return
    from tunetrust.cli.render import print_story

    print_story(out, result, member=member, program=program())
    if image is not None:
        out.print(f"[green]Image written[/] to {image} ({picture.width}×{picture.height})")


@contribution_app.command("show")
def contribution_show(
    ctx: typer.Context,
    contribution_id: Annotated[str, typer.Argument(help="The contribution id.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Show a contribution's report: checks, verdict, quality score."""
    from tunetrust.services.data import contribution_report

    with _open(ctx) as home:
        report = contribution_report(home, steward(home), contribution_id)
    if as_json:
        emit("contribution-show", report)
        return
    from tunetrust.cli.render import print_report

    print_report(out, report.to_dict())


@contribution_app.command("list")
def contribution_list(
    ctx: typer.Context,
    member: Annotated[str | None, typer.Option("--member", help="Only this member's.")] = None,
    as_json: JSON_OPTION = False,
) -> None:
    """List contributions: when, whose, verdict, listens added, quality score."""
    from tunetrust.cli.render import print_contributions
    from tunetrust.services.data import list_contributions

    with _open(ctx) as home:
        rows = list_contributions(home, steward(home), member)
    if as_json:
        emit("contribution-list", rows)
        return
    print_contributions(out, rows)


@contribution_app.command("disputes")
def contribution_disputes(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Imports held for the steward: whose account or plays they are, and both sides."""
    from tunetrust.cli.render import print_disputes
    from tunetrust.services.data import disputes

    with _open(ctx) as home:
        rows = disputes(home, steward(home))
    if as_json:
        emit("contribution-disputes", rows)
        return
    print_disputes(out, rows)


@contribution_app.command("decide")
def contribution_decide(
    ctx: typer.Context,
    contribution_id: Annotated[str, typer.Argument(help="The held contribution's id.")],
    decided_for: Annotated[
        str,
        typer.Option(
            "--for",
            help="claimant: the held import's member owns the data (the holder's copies "
            "are revoked, the export imported); holder: the held import is rejected.",
        ),
    ],
    as_json: JSON_OPTION = False,
) -> None:
    """Decide a dispute, for the member whose import was held or for the one holding it."""
    from tunetrust.services.data import decide_dispute

    with _open(ctx) as home:
        done = decide_dispute(home, steward(home), contribution_id, decided_for=decided_for)
    if as_json:
        emit("contribution-decide", done)
        return
    if done.decided_for == "holder":
        out.print(f"Decided for the holder: contribution {done.contribution} rejected.")
        return
    out.print(
        f"Decided for the claimant: {len(done.revoked)} of the holder's contribution(s) "
        f"revoked, {done.listens_removed:,} listens removed from theirs."
    )
    if done.imported is not None:
        from tunetrust.cli.render import print_import

        print_import(out, done.imported, program=program())


@app.command()
def doctor(
    ctx: typer.Context,
    rebuild_events: Annotated[
        bool,
        typer.Option(
            "--rebuild-events",
            help="Re-derive every member's listens from the raw exports in their vaults "
            "(repairs stores written by 0.1.0's dedup fault; see CHANGELOG.md).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Check and repair the home: settle what a killed process left; rebuild listens."""
    from tunetrust.cli.render import print_rebuild
    from tunetrust.services.data import rebuild_events as rebuild
    from tunetrust.services.data import settle

    with _open(ctx) as home:
        fixed = settle(home, steward(home))  # what a killed writer left (reads never do)
        if not rebuild_events:
            if as_json:
                emit("doctor", fixed)
            else:
                n = fixed.files_settled
                out.print(f"[green]Home is consistent[/] ({n} leftover file(s) settled).")
                for rid in fixed.deliveries_finished:
                    out.print(f"Finished the delivery of request {rid} a killed process left.")
            return
        with _progress() as progress:
            task = progress.add_task("rebuilding members' listens", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = rebuild(home, steward(home), dry_run=dry_run, progress=report)
    if as_json:
        emit("doctor-rebuild", result)
        return
    print_rebuild(out, result)
