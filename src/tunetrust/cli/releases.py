"""Commands for differentially private releases and privacy budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tunetrust.cli._app import (
    _open,
    budget_app,
    err,
    out,
    release_app,
)
from tunetrust.cli._service import emit, steward

JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print as JSON (docs/schemas/).")]

SpecPath = Annotated[Path, typer.Argument(help="A release spec, YAML or JSON.")]


@release_app.command("plan")
def release_plan(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: JSON_OPTION = False,
) -> None:
    """Check a spec: who would be included, the cost, the expected keys and accuracy.

    Computes nothing on the data and spends nothing; says so when the release is
    expected to be empty (which `release build` then refuses).
    """
    from tunetrust.releases.spec import read_spec_text
    from tunetrust.services.releases import plan as plan_release

    text = read_spec_text(spec_path)
    with _open(ctx) as home:
        plan = plan_release(
            home, steward(home), text, source=spec_path.name
        )  # shown, not refused, here
    if as_json:
        emit("release-plan", plan)
        return
    from tunetrust.cli.render import print_plan

    print_plan(out, plan.model_dump())


@release_app.command("build")
def release_build(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the release and its manifest as JSON.")
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Build even when `release plan` expects no key to be released "
            "(spends everyone's ε for what may be no data).",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the release id (for scripts).")
    ] = False,
) -> None:
    """Build a release: bounded aggregates, OpenDP noise, files, manifest; spends budget.

    Refuses a release expected to be empty unless --allow-empty.
    """
    from tunetrust.releases.spec import read_spec_text
    from tunetrust.services.releases import build_release

    text = read_spec_text(spec_path)
    with _open(ctx) as home:
        built = build_release(
            home, steward(home), text, allow_empty=allow_empty, source=spec_path.name
        )
    if quiet:
        out.print(built.id, highlight=False)
        return
    if as_json:
        emit("release-build", built)
        return
    out.print(
        f"[green]Release {built.id}[/]: {built.rows:,} rows from "
        f"{built.members_included} members, in {built.path}"
    )


@release_app.command("member-insights")
def release_member_insights(
    ctx: typer.Context,
    month: Annotated[
        str | None, typer.Option("--month", help="The month, YYYY-MM (default: this month, UTC).")
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty", help="Build a part even when its plan expects no key released."
        ),
    ] = False,
    as_json: JSON_OPTION = False,
) -> None:
    """Build the month's member-insights releases (hours, artists, tracks) for the members
    who consented; spends their member-insights budget, no vote (docs/insights.md)."""
    from datetime import UTC, datetime

    from tunetrust.services.releases import build_member_insights

    with _open(ctx) as home:
        built = build_member_insights(
            home,
            steward(home),
            month or datetime.now(UTC).strftime("%Y-%m"),
            allow_empty=allow_empty,
        )
    if as_json:
        emit("release-member-insights", built)
        return
    for part in built:
        if part.release is None:
            out.print(f"{part.part}: skipped, {escape(part.skipped or '')}", soft_wrap=True)
        else:
            out.print(
                f"[green]{part.part}[/]: release {part.release} from "
                f"{part.members_included} members"
            )


@release_app.command("show")
def release_show(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release id.")]
) -> None:
    """Print a release's manifest (JSON, with the output's schema_version added)."""
    from tunetrust.services.releases import show_manifest

    with _open(ctx) as home:
        manifest = show_manifest(home, steward(home), release_id)
    emit("release-show", manifest)


@release_app.command("verify")
def release_verify(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release id.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Check a release's files against its manifest and SHA256SUMS, and the manifest
    against the database and audit log; exit 1 naming a mismatch."""
    from tunetrust.services.releases import verify

    with _open(ctx) as home:
        check = verify(home, steward(home), release_id)
    if as_json:
        emit("release-verify", check)
    if not check.ok:
        if not as_json:
            err.print(f"[red]release does not verify[/]: {escape('; '.join(check.problems))}")
        raise typer.Exit(1)
    if as_json:
        return
    out.print("[green]every file matches its recorded SHA-256[/]")


@release_app.command("inclusion")
def release_inclusion(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release id.")],
    member: Annotated[str, typer.Option("--member", help="Whose inclusion to prove.")],
) -> None:
    """A member's proof of inclusion, checkable against the Merkle root (empty if not included)."""
    from tunetrust.services.releases import inclusion

    with _open(ctx) as home:
        proof = inclusion(home, steward(home), release_id, member)
    # "checks" is false when not included: there is no proof of non-inclusion (manifest.py)
    emit("release-inclusion", proof)


@budget_app.command("show")
def budget_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: JSON_OPTION = False,
) -> None:
    """A member's privacy budget this year: cap, spent and remaining, per purpose."""
    from tunetrust.services.members import budget_lines

    with _open(ctx) as home:
        rows = budget_lines(home, steward(home), name)
    if as_json:
        emit("budget-show", rows)
        return
    from tunetrust.cli.render import print_budget

    print_budget(out, rows)


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="The purpose.")],
    cap: Annotated[float, typer.Option("--cap", help="The member's own yearly ε cap.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Lower a member's own yearly ε cap for a purpose (never above the cooperative's)."""
    from tunetrust.services.members import lower_budget_cap

    with _open(ctx) as home:
        line = lower_budget_cap(home, steward(home), name, purpose, cap)
    if as_json:
        emit("budget-set", line)
        return
    out.print(f"ε cap for {purpose}: {line.cap}")
