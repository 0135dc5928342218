"""Shared pieces of the command line: the Typer apps, options, and output helpers.

Importing the command line stays light (Typer, Rich, orjson; bench/startup.py times
it): each command imports the library it calls inside its body, so ``--help`` loads
none of pydantic, SQLAlchemy, pyarrow, DuckDB or OpenDP, and a command loads only
what its library call needs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tunetrust.errors import ExportError, TuneTrustError

if TYPE_CHECKING:
    from rich.progress import Progress

    from tunetrust.settings import Settings

app = typer.Typer(
    help="TuneTrust: a privacy-first data cooperative for listening histories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print personal values
    add_completion=False,
)
member_app = typer.Typer(help="Members and their rights.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent per purpose, with history.", no_args_is_help=True)
key_app = typer.Typer(help="The cooperative master key.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
contribution_app = typer.Typer(help="Contributions and their reports.", no_args_is_help=True)
release_app = typer.Typer(help="Differentially private data products.", no_args_is_help=True)
budget_app = typer.Typer(help="Members' privacy budgets.", no_args_is_help=True)
buyer_app = typer.Typer(help="Organisations that request data products.", no_args_is_help=True)
request_app = typer.Typer(help="Data requests: proposal, vote, delivery.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(member_app, name="member")
app.add_typer(consent_app, name="consent")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.add_typer(contribution_app, name="contribution")
app.add_typer(release_app, name="release")
app.add_typer(budget_app, name="budget")
app.add_typer(buyer_app, name="buyer")
app.add_typer(request_app, name="request")
app.add_typer(ledger_app, name="ledger")

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
            help="Cooperative home folder (default: TUNETRUST_HOME, else a per-user data folder).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="TUNETRUST_DATABASE_URL",
            help="Metadata database URL (default: SQLite in the home).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """TuneTrust: a privacy-first data cooperative for listening histories."""
    from tunetrust.settings import Settings  # pydantic: only once a command runs

    ctx.obj = Settings.from_env(home=home, database_url=database_url)


def _open(ctx: typer.Context) -> Any:
    from contextlib import closing

    from tunetrust.store.home import open_home

    return closing(open_home(_settings(ctx)))


def _progress() -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def error_dict(exc: TuneTrustError) -> dict[str, Any]:
    """An error as JSON for ``--json`` callers: its kind, message and, for exports, where."""
    body: dict[str, Any] = {"type": type(exc).__name__, "status": exc.status, "message": str(exc)}
    if isinstance(exc, ExportError):
        body |= {"file": exc.file, "row": exc.row, "problem": exc.problem, "hint": exc.hint}
    return body


def program() -> str:
    """How to call this program again from the current shell, for "next step" hints."""
    invoked = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if invoked is None or invoked.name != "tunetrust":
        return "tunetrust"  # python -m tunetrust, or embedded
    found = shutil.which("tunetrust")
    if found and Path(found).resolve() == invoked:
        return "tunetrust"  # on PATH: the bare name works
    try:
        return str(invoked.relative_to(Path.cwd()))  # e.g. .venv/bin/tunetrust
    except ValueError:
        return str(invoked)


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
