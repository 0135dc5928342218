"""Commands that keep the whole home safe: backup and restore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tunetrust.cli._app import _open, _settings, app, out

PASSPHRASE_ENV = "TUNETRUST_BACKUP_PASSPHRASE"


def _passphrase(*, confirm: bool) -> str:
    """From the environment (for scripts), else asked for without echo."""
    from tunetrust.coop.backup import check_passphrase

    given = os.environ.get(PASSPHRASE_ENV)
    if given is None:
        given = typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)
    return check_passphrase(given) if confirm else given


@app.command("backup")
def backup(
    ctx: typer.Context,
    out_path: Annotated[Path, typer.Option("--out", help="The backup file to write.")],
    files_only: Annotated[
        bool,
        typer.Option(
            "--files-only",
            help="Leave the database out (a PostgreSQL one: back it up with pg_dump).",
        ),
    ] = False,
) -> None:
    """Back up the whole home (database, stores, master key), encrypted with a passphrase."""
    from tunetrust.coop.backup import backup_home

    passphrase = _passphrase(confirm=True)
    with _open(ctx) as home:
        report = backup_home(home, out_path, passphrase, files_only=files_only)
    out.print(
        f"[green]Backed up[/] {report.files} files to {report.path} "
        f"({report.bytes:,} bytes, sha256 {report.sha256})",
        soft_wrap=True,  # hashes stay whole, for copying
    )
    if report.audit_head:
        seq, head = report.audit_head
        out.print(f"audit head in the backup: entry {seq}, {head}", soft_wrap=True)
    else:
        out.print("[yellow]The database is not in this backup[/]: keep your pg_dump beside it")
    if not report.key_included:
        out.print(
            "[yellow]The master key is not in this backup[/] (it comes from "
            "TUNETRUST_MASTER_KEY): keep it safe apart; without it no vault file can be read"
        )
    out.print("Keep the passphrase apart from the backup: without it the backup cannot be read")


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Argument(help="A file written by tunetrust backup.")],
) -> None:
    """Restore a backup into a new or empty home folder (--home), verifying it first."""
    from tunetrust.coop.backup import restore_home

    passphrase = _passphrase(confirm=False)
    report = restore_home(_settings(ctx), backup_file, passphrase)
    out.print(
        f"[green]Restored[/] {report.files} files into {report.home} (backup of {report.created})"
    )
    if report.audit_head:
        seq, head = report.audit_head
        out.print(f"audit chain holds: {seq} entries, head {head}", soft_wrap=True)
    else:
        out.print(
            "[yellow]No database in this backup[/]: restore your pg_dump and open the home "
            "with --database-url"
        )
    if not report.key_included:
        out.print(
            "[yellow]No master key in this backup[/]: set TUNETRUST_MASTER_KEY to the key "
            "you kept" + (" (the one set now opens the home)" if report.key_checked else "")
        )
