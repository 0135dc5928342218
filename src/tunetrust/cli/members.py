"""Commands about members: records, rights, consent, keys, the audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tunetrust.cli._app import (
    _open,
    _print_json,
    audit_app,
    consent_app,
    err,
    key_app,
    member_app,
    out,
)


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


@member_app.command("show")
def member_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a member: joined, settings, consents in force, contributions, listens."""
    from dataclasses import asdict

    from tunetrust.coop.profile import show_member

    with _open(ctx) as home:
        view = show_member(home, name)
    if as_json:
        _print_json({**asdict(view), "joined": view.joined.isoformat()})
        return
    from tunetrust.cli.render import print_member

    print_member(out, view)


@member_app.command("export")
def member_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    out_path: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
) -> None:
    """Export everything held about a member (GDPR access and portability)."""
    from tunetrust.coop.rights import export_member

    with _open(ctx) as home:
        report = export_member(home, name, out_path)
    out.print(f"[green]Wrote[/] {report.path} ({len(report.files)} files, sha256 {report.sha256})")


@member_app.command("erase")
def member_erase(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a member: listens, vault, data key, consents, name (GDPR erasure)."""
    from tunetrust.coop.rights import erase_member

    if not yes and not typer.confirm(f"Erase {name} and all their data? This cannot be undone"):
        raise typer.Exit(1)
    with _open(ctx) as home:
        report = erase_member(home, name)
    out.print(
        f"[green]Erased[/] {escape(name)}: {report.listens:,} listens, "
        f"{report.contributions} contributions, {report.consents} consent records; "
        "their data key is destroyed"
    )


@member_app.command("statement")
def member_statement(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The member.")]
) -> None:
    """A member's payouts, line by line."""
    from collections import Counter

    from tunetrust.coop.ledger import format_amount, statement
    from tunetrust.coop.members import get_member

    with _open(ctx) as home:
        lines = statement(home, f"member:{get_member(home, name).pseudonym}")
    table = Table("when", "what", "amount")
    totals: Counter[str] = Counter()
    for at, memo, currency, amount in lines:  # amounts in each currency's minor unit
        table.add_row(f"{at:%Y-%m-%d}", escape(memo), format_amount(amount, currency))
        totals[currency] += amount
    out.print(table)
    for currency, amount in sorted(totals.items()):  # never added across currencies
        out.print(f"total: {format_amount(amount, currency)}", highlight=False)


@consent_app.command("grant")
def consent_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="research, ai-training, commercial-analytics…")],
) -> None:
    """Record a member's consent to a purpose."""
    _decide(ctx, name, purpose, granted=True)


@consent_app.command("withdraw")
def consent_withdraw(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="The purpose.")],
) -> None:
    """Record that a member withdraws consent to a purpose."""
    _decide(ctx, name, purpose, granted=False)


def _decide(ctx: typer.Context, name: str, purpose: str, *, granted: bool) -> None:
    from tunetrust.coop.consent import decide

    with _open(ctx) as home:
        changed = decide(home, name, purpose, granted=granted)
    word = "granted" if granted else "withdrawn"
    out.print(
        f"Consent to {purpose} {word}" if changed else f"Consent to {purpose} was already {word}"
    )


@consent_app.command("show")
def consent_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The member.")]
) -> None:
    """Show a member's consents in force and their full history."""
    from tunetrust.coop.consent import history

    with _open(ctx) as home:
        rows = history(home, name)
        purposes = home.settings.purposes
    from tunetrust.cli.render import print_consents

    print_consents(out, purposes, rows)


@key_app.command("rotate")
def key_rotate(ctx: typer.Context) -> None:
    """Rewrap every member key under a new master key (data is not re-encrypted)."""
    import os

    from tunetrust.coop.keyring import rotate_master_key
    from tunetrust.store.keys import decode_key

    env_new = os.environ.get("TUNETRUST_NEW_MASTER_KEY")
    new_key = decode_key(env_new, "TUNETRUST_NEW_MASTER_KEY") if env_new else None
    with _open(ctx) as home:
        count = rotate_master_key(home, actor=home.settings.actor, new_key=new_key)
        where = (
            "TUNETRUST_NEW_MASTER_KEY (now set TUNETRUST_MASTER_KEY to it)"
            if new_key
            else (str(home.settings.key_file))
        )
    out.print(f"[green]Rotated[/]: {count} keys rewrapped; the new master key is in {where}")


@key_app.command("new")
def key_new() -> None:
    """Print a fresh random master key (for TUNETRUST_MASTER_KEY set-ups)."""
    from tunetrust.store.keys import encode_key, new_key

    sys.stdout.write(encode_key(new_key()) + "\n")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    head: Annotated[
        str | None, typer.Option("--head", help="A head hash anchored elsewhere to check against.")
    ] = None,
) -> None:
    """Recompute the audit chain; exit 1 naming the first bad entry if it does not hold."""
    from tunetrust.coop.audit import verify_home

    with _open(ctx) as home:
        verdict = verify_home(home, anchor=head)
    if not verdict.ok:
        err.print(f"[red]audit chain broken[/]: {escape(verdict.problem or '')}")
        raise typer.Exit(1)
    out.print(f"[green]audit chain holds[/]: {verdict.entries} entries, head {verdict.head}")


@audit_app.command("head")
def audit_head(ctx: typer.Context) -> None:
    """Print the newest entry's hash, for anchoring outside the cooperative."""
    from tunetrust.coop.audit import head

    with _open(ctx) as home, home.sessions() as s:
        _, h = head(s)
    sys.stdout.write(h + "\n")


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    member: Annotated[
        str | None,
        typer.Option(
            "--member", help="Only entries about this member (as subject, actor or in the payload)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List audit entries (members appear by pseudonym)."""
    from tunetrust.coop.audit import about, entries
    from tunetrust.coop.members import get_member

    with _open(ctx) as home:
        pseudonym = get_member(home, member).pseudonym if member else None
        with home.sessions() as s:
            rows = about(s, pseudonym) if pseudonym else entries(s)
    if as_json:
        _print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "entry_hash": e.entry_hash,
                }
                for e in rows
            ]
        )
        return
    from tunetrust.cli.render import print_audit

    print_audit(out, rows)
