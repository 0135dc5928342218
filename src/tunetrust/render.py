"""Rich renderings shared by the CLI and the demo (terminal output only, no logic)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunetrust.ingest.pipeline import ImportSummary


def print_import(console: Console, s: ImportSummary) -> None:
    """An import summary: files, then what happened to the plays."""
    files = Table("file", "kind", "status", "plays", "note", title="Files in the export")
    for f in s.files:
        style = {"imported": "green", "read": "cyan"}.get(f.status, "dim")
        files.add_row(
            escape(f.name.rsplit("/", 1)[-1]),
            f.kind,
            f"[{style}]{f.status}[/]",
            "" if f.rows is None else f"{f.rows:,}",
            escape(f.reason or ""),
        )
    console.print(files)
    totals = Table(show_header=False, title=f"Import for {escape(s.member)}")
    totals.add_row("plays in the export", f"{s.listens_in_export:,}")
    totals.add_row("[green]plays added[/]", f"[green]{s.listens_added:,}[/]")
    totals.add_row("duplicates skipped", f"{s.duplicates_skipped:,}")
    for reason, n in s.duplicates.items():
        if n:
            totals.add_row(f"  {reason.replace('_', ' ')}", f"{n:,}")
    if s.account_rows_superseded:
        totals.add_row(
            "account-data plays replaced by extended history", f"{s.account_rows_superseded:,}"
        )
    for reason, n in s.dropped.items():
        totals.add_row(f"dropped for privacy: {reason}", f"{n:,}")
    totals.add_row("plays stored for this member", f"{s.listens_total:,}")
    console.print(totals)
    if s.same_export_as:
        console.print(
            f"[yellow]This export was imported before[/] (contribution {s.same_export_as})."
        )
