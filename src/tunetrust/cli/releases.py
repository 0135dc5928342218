"""Commands for differentially private releases and privacy budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tunetrust.cli._app import (
    _open,
    _print_json,
    budget_app,
    err,
    out,
    release_app,
)

SpecPath = Annotated[Path, typer.Argument(help="A release spec, YAML or JSON.")]


@release_app.command("plan")
def release_plan(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Check a spec: who would be included, the cost, the expected keys and accuracy.

    Computes nothing on the data and spends nothing; says so when the release is
    expected to be empty (which `release build` then refuses).
    """
    from tunetrust.releases.build import plan_release
    from tunetrust.releases.spec import load_spec

    spec = load_spec(spec_path)
    with _open(ctx) as home:
        plan = plan_release(home, spec, allow_empty=True)  # shown, not refused, here
    if as_json:
        _print_json(plan.to_dict())
        return
    from tunetrust.cli.render import print_plan

    print_plan(out, plan.to_dict())


@release_app.command("build")
def release_build(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print id and path as JSON.")] = False,
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
    from tunetrust.releases.build import build_release
    from tunetrust.releases.spec import load_spec

    spec = load_spec(spec_path)
    with _open(ctx) as home:
        built = build_release(home, spec, allow_empty=allow_empty)
    if quiet:
        out.print(built.id, highlight=False)
        return
    if as_json:
        _print_json(
            {
                "id": built.id,
                "path": str(built.path),
                "rows": built.manifest["rows"],
                "members_included": built.members_included,
                "merkle_root": built.manifest["merkle_root"],
            }
        )
        return
    out.print(
        f"[green]Release {built.id}[/]: {built.manifest['rows']:,} rows from "
        f"{built.members_included} members, in {built.path}"
    )


@release_app.command("show")
def release_show(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release id.")]
) -> None:
    """Print a release's manifest."""
    from tunetrust.releases.build import release_folder
    from tunetrust.releases.manifest import read_manifest

    with _open(ctx) as home:
        folder = release_folder(home, release_id)
    _print_json(read_manifest(folder))


@release_app.command("verify")
def release_verify(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release id.")]
) -> None:
    """Check a release's files against its manifest and SHA256SUMS, and the manifest
    against the database and audit log; exit 1 naming a mismatch."""
    from tunetrust.releases.build import verify_release

    with _open(ctx) as home:
        problems = verify_release(home, release_id)
    if problems:
        err.print(f"[red]release does not verify[/]: {escape('; '.join(problems))}")
        raise typer.Exit(1)
    out.print("[green]every file matches its recorded SHA-256[/]")


@release_app.command("inclusion")
def release_inclusion(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release id.")],
    member: Annotated[str, typer.Option("--member", help="Whose inclusion to prove.")],
) -> None:
    """A member's proof of inclusion, checkable against the Merkle root (empty if not included)."""
    from dataclasses import asdict

    from tunetrust.releases.build import inclusion
    from tunetrust.releases.manifest import check_proof

    with _open(ctx) as home:
        proof, root = inclusion(home, release_id, member)
    # "checks" is false when not included: there is no proof of non-inclusion (manifest.py)
    _print_json({"merkle_root": root, "checks": check_proof(root, proof), **asdict(proof)})


@budget_app.command("show")
def budget_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The member.")]
) -> None:
    """A member's privacy budget this year: cap, spent and remaining, per purpose."""
    from tunetrust.coop.budget import budget_report

    with _open(ctx) as home:
        rows = budget_report(home, name)
    from tunetrust.cli.render import print_budget

    print_budget(out, rows)


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="The purpose.")],
    cap: Annotated[float, typer.Option("--cap", help="The member's own yearly ε cap.")],
) -> None:
    """Lower a member's own yearly ε cap for a purpose (never above the cooperative's)."""
    from tunetrust.coop.budget import set_member_cap

    with _open(ctx) as home:
        value = set_member_cap(home, name, purpose, cap)
    out.print(f"ε cap for {purpose}: {value}")
