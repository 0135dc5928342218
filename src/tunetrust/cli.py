"""The ``tunetrust`` command line. Each command parses, calls one core function, renders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tunetrust.errors import TuneTrustError
from tunetrust.settings import Settings

app = typer.Typer(
    help="TuneTrust: a privacy-first data cooperative for listening histories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print personal values
    add_completion=False,
)
member_app = typer.Typer(help="Add and list members.", no_args_is_help=True)
app.add_typer(member_app, name="member")

out = Console()
err = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="TUNETRUST_HOME",
            help="Cooperative home folder [default: TUNETRUST_HOME, else a per-user data folder].",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="TUNETRUST_DATABASE_URL",
            help="Metadata database URL [default: SQLite in the home].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """TuneTrust: a privacy-first data cooperative for listening histories."""
    ctx.obj = Settings.from_env(home=home, database_url=database_url)


@app.command()
def init(ctx: typer.Context) -> None:
    """Create a cooperative home: metadata database, folders and a master key."""
    from tunetrust.store.home import init_home

    settings = _settings(ctx)
    init_home(settings).close()
    key = "from TUNETRUST_MASTER_KEY" if settings.master_key else f"in {settings.key_file} (0600)"
    out.print(f"[green]Cooperative ready[/] in {settings.home} — master key {key}")


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member's name (kept in metadata only).")],
    keep_incognito: Annotated[
        bool, typer.Option(help="Import this member's incognito-mode plays too.")
    ] = False,
) -> None:
    """Add a member; they get a random pseudonym for the events store."""
    from tunetrust.coop.members import add_member

    with _open(ctx) as home:
        member = add_member(home, name, keep_incognito=keep_incognito)
    out.print(f"[green]Added member[/] {member.name}")


@member_app.command("list")
def member_list(ctx: typer.Context) -> None:
    """List members."""
    from tunetrust.coop.members import list_members

    with _open(ctx) as home:
        members = list_members(home)
    table = Table("name", "joined", "keeps incognito plays")
    for m in members:
        table.add_row(m.name, f"{m.created_at:%Y-%m-%d}", "yes" if m.keep_incognito else "no")
    out.print(table)


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="A zip, a folder, or one or more JSON files.")
    ],
    member: Annotated[str, typer.Option("--member", help="Whose export this is.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import a member's own export: parsed, de-identified, deduplicated, stored."""
    from tunetrust.ingest.pipeline import import_export

    with _open(ctx) as home, _progress() as progress:
        task = progress.add_task("reading", total=None)

        def report(name: str, done: int, total: int) -> None:
            progress.update(
                task, description=name.rsplit("/", 1)[-1] or "done", completed=done, total=total
            )

        summary = import_export(home, member, paths, progress=report)
    if as_json:
        _print_json(summary.to_dict())
        return
    from tunetrust.render import print_import

    print_import(out, summary)


@app.command()
def synth(
    variant: Annotated[
        str, typer.Option(help="account, account-legacy, extended-a, extended-b or extended-c.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    listens: Annotated[int, typer.Option(help="How many plays the history holds.")] = 5000,
    seed: Annotated[int, typer.Option(help="Which synthetic person (same seed, same data).")] = 1,
) -> None:
    """Write a synthetic export (no real person's data) for tests and demos."""
    from tunetrust.formats.synth import VARIANTS, write_export

    if variant not in VARIANTS:
        raise typer.BadParameter(f"choose one of {', '.join(VARIANTS)}", param_hint="--variant")
    if listens < 0:
        raise typer.BadParameter("must be at least 0", param_hint="--listens")
    result = write_export(variant, listens, seed, out_path)
    out.print(
        f"[green]Wrote[/] {result.path}: {variant}, {result.listens:,} plays "
        f"({result.incognito:,} incognito) in {len(result.files)} files"
    )


@app.command()
def demo(
    ctx: typer.Context,
    listens: Annotated[int, typer.Option(help="Plays in the demo member's history.")] = 20_000,
) -> None:
    """The main job on the embedded default: a demo cooperative from synthetic exports."""
    from tunetrust.demo import run_demo

    run_demo(_settings(ctx), out, listens=listens)


def _open(ctx: typer.Context) -> Any:
    from contextlib import closing

    from tunetrust.store.home import open_home

    return closing(open_home(_settings(ctx)))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def main() -> None:
    """Entry point: one red line and exit 1 for every TuneTrust error."""
    try:
        app()
    except TuneTrustError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
