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
    app,
    audit_app,
    consent_app,
    err,
    key_app,
    member_app,
    out,
)
from tunetrust.cli._service import emit, steward

JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print as JSON (docs/schemas/).")]
HEAD_OPTION = Annotated[
    str | None, typer.Option("--head", help="A head hash anchored elsewhere to check against.")
]
TABLE_ROWS = 200  # lists longer than this print as plain aligned lines, not a Rich table


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member's name (kept in metadata only).")],
    keep_incognito: Annotated[
        bool, typer.Option(help="Import this member's incognito-mode plays too.")
    ] = False,
    as_json: JSON_OPTION = False,
) -> None:
    """Add a member; they get a random pseudonym for the events store."""
    from tunetrust.services.members import join

    with _open(ctx) as home:
        member = join(home, steward(home), name, keep_incognito=keep_incognito)
    if as_json:
        emit("member-add", member)
        return
    out.print(f"[green]Added member[/] {member.name}")


@member_app.command("list")
def member_list(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """List members."""
    from tunetrust.services.members import list_members

    with _open(ctx) as home:
        members = list_members(home, steward(home))
    if as_json:
        emit("member-list", members)
        return
    if len(members) > TABLE_ROWS:  # a table costs ~0.5 ms a row: plain lines beyond
        width = max(len(m.name) for m in members)
        sys.stdout.write(f"{'name':<{width}}  joined      keeps incognito plays\n")
        sys.stdout.writelines(
            f"{m.name:<{width}}  {m.joined[:10]}  {'yes' if m.keep_incognito else 'no'}\n"
            for m in members
        )
        return
    table = Table("name", "joined", "keeps incognito plays")
    for m in members:
        table.add_row(m.name, m.joined[:10], "yes" if m.keep_incognito else "no")
    out.print(table)


@member_app.command("show")
def member_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Show a member: joined, settings, consents in force, contributions, listens."""
    from tunetrust.services.members import member_profile

    with _open(ctx) as home:
        view = member_profile(home, steward(home), name)
    if as_json:
        emit("member-show", view)
        return
    from tunetrust.cli.render import print_member

    print_member(out, view)


@member_app.command("export")
def member_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    out_path: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Export everything held about a member (GDPR access and portability)."""
    from tunetrust.services.members import export_data

    with _open(ctx) as home:
        report = export_data(home, steward(home), name, out_path)
    if as_json:
        emit("member-export", report)
        return
    out.print(f"[green]Wrote[/] {report.path} ({len(report.files)} files, sha256 {report.sha256})")


@member_app.command("erase")
def member_erase(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JSON_OPTION = False,
) -> None:
    """Erase a member: listens, vault, data key, consents, name (GDPR erasure)."""
    from tunetrust.services.members import erase

    if not yes and not typer.confirm(f"Erase {name} and all their data? This cannot be undone"):
        raise typer.Exit(1)
    with _open(ctx) as home:
        report = erase(home, steward(home), name)
    if as_json:
        emit("member-erase", report)
        return
    out.print(
        f"[green]Erased[/] {escape(name)}: {report.listens:,} listens, "
        f"{report.contributions} contributions, {report.consents} consent records; "
        "their data key is destroyed"
    )


@member_app.command("statement")
def member_statement(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: JSON_OPTION = False,
) -> None:
    """A member's payouts, line by line."""
    from tunetrust.services.members import member_statement as statement

    with _open(ctx) as home:
        result = statement(home, steward(home), name)
    if as_json:
        emit("member-statement", result)
        return
    table = Table("when", "what", "amount")
    for line in result.lines:
        table.add_row(line.at[:10], escape(line.memo), line.amount.text)
    out.print(table)
    for total in result.totals:  # never added across currencies
        out.print(f"total: {total.text}", highlight=False)


@consent_app.command("grant")
def consent_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="research, ai-training, commercial-analytics…")],
    as_json: JSON_OPTION = False,
) -> None:
    """Record a member's consent to a purpose."""
    _decide(ctx, name, purpose, granted=True, as_json=as_json)


@consent_app.command("withdraw")
def consent_withdraw(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="The purpose.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Record that a member withdraws consent to a purpose."""
    _decide(ctx, name, purpose, granted=False, as_json=as_json)


def _decide(ctx: typer.Context, name: str, purpose: str, *, granted: bool, as_json: bool) -> None:
    from tunetrust.services.members import set_consent

    with _open(ctx) as home:
        change = set_consent(home, steward(home), name, purpose, granted=granted)
    if as_json:
        emit("consent-change", change)
        return
    word = "granted" if granted else "withdrawn"
    out.print(
        f"Consent to {purpose} {word}"
        if change.changed
        else f"Consent to {purpose} was already {word}"
    )


@consent_app.command("show")
def consent_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Show a member's consents in force and their full history."""
    from tunetrust.services.members import consent_history

    with _open(ctx) as home:
        history = consent_history(home, steward(home), name)
    if as_json:
        emit("consent-show", history)
        return
    from tunetrust.cli.render import print_consents

    print_consents(out, history)


@key_app.command("rotate")
def key_rotate(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Rewrap every member key under a new master key (data is not re-encrypted)."""
    import os

    from tunetrust.services.audit import rotate_master_key
    from tunetrust.store.keys import decode_key

    env_new = os.environ.get("TUNETRUST_NEW_MASTER_KEY")
    new_key = decode_key(env_new, "TUNETRUST_NEW_MASTER_KEY") if env_new else None
    with _open(ctx) as home:
        done = rotate_master_key(home, steward(home), new_key=new_key)
        where = (
            "TUNETRUST_NEW_MASTER_KEY (now set TUNETRUST_MASTER_KEY to it)"
            if new_key
            else (str(home.settings.key_file))
        )
    if as_json:
        emit("key-rotate", done)
        return
    out.print(
        f"[green]Rotated[/]: {done.keys_rewrapped} keys rewrapped; the new master key is in {where}"
    )


@key_app.command("new")
def key_new() -> None:
    """Print a fresh random master key (for TUNETRUST_MASTER_KEY set-ups)."""
    from tunetrust.store.keys import encode_key, new_key

    sys.stdout.write(encode_key(new_key()) + "\n")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    head: HEAD_OPTION = None,
    as_json: JSON_OPTION = False,
) -> None:
    """Recompute the audit chain; exit 1 naming the first bad entry if it does not hold."""
    from tunetrust.services.audit import verify_chain

    with _open(ctx) as home:
        verdict = verify_chain(home, steward(home), anchor=head)
    if as_json:
        emit("audit-verify", verdict)
        if not verdict.ok:
            raise typer.Exit(1)
        return
    if not verdict.ok:
        err.print(f"[red]audit chain broken[/]: {escape(verdict.problem or '')}")
        raise typer.Exit(1)
    out.print(f"[green]audit chain holds[/]: {verdict.entries} entries, head {verdict.head}")


@audit_app.command("head")
def audit_head(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Print the newest entry's hash, for anchoring outside the cooperative."""
    from tunetrust.services.audit import head

    with _open(ctx) as home:
        newest = head(home, steward(home))
    if as_json:
        emit("audit-head", newest)
        return
    sys.stdout.write(newest.entry_hash + "\n")


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    member: Annotated[
        str | None,
        typer.Option(
            "--member", help="Only entries about this member (as subject, actor or in the payload)."
        ),
    ] = None,
    as_json: JSON_OPTION = False,
) -> None:
    """List audit entries (members appear by pseudonym)."""
    from tunetrust.services.audit import entries

    with _open(ctx) as home:
        rows = entries(home, steward(home), member=member)
    if as_json:
        emit("audit-show", rows)
        return
    from tunetrust.cli.render import print_audit

    print_audit(out, rows)


@app.command("verify")
def verify(
    ctx: typer.Context,
    head: HEAD_OPTION = None,
    as_json: JSON_OPTION = False,
) -> None:
    """Check everything: the audit chain, the ledger, and every table against the chain."""
    from tunetrust.services.audit import verify_everything

    with _open(ctx) as home:
        result = verify_everything(home, steward(home), anchor=head)
    if as_json:
        emit("verify", result)
    elif result.ok:
        rows = ", ".join(f"{n:,} {what}" for what, n in result.state.checked.items())
        out.print(
            f"[green]everything holds[/]: audit chain ({result.audit.entries} entries), "
            f"ledger ({result.ledger.transactions} transactions), and {rows} match the chain",
            highlight=False,
        )
    else:
        problems = (
            ([result.audit.problem or "audit chain broken"] if not result.audit.ok else [])
            + result.ledger.problems
            + result.state.problems
        )
        for problem in problems:
            err.print(f"[red]does not hold[/]: {escape(problem)}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)
