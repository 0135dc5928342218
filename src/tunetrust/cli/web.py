"""The web app's commands: ``invite`` (a link to join), ``serve`` and ``token`` (API tokens)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from tunetrust.cli._app import _open, _settings, app, err, out
from tunetrust.cli._service import emit, steward

JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print as JSON (docs/schemas/).")]


@app.command("invite")
def invite(
    ctx: typer.Context,
    member: Annotated[
        str | None,
        typer.Option(
            "--member",
            help="Enrol a member who exists already (added at the shell, or who lost "
            "every passkey and recovery code) instead of inviting someone new.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="How long the link works (1–30 days).")] = 7,
    open_admission: Annotated[
        bool,
        typer.Option(
            "--open",
            help="Open admission: one link anyone may use to join until it expires or is "
            "closed (tunetrust invite --close ID).",
        ),
    ] = False,
    close: Annotated[
        str | None,
        typer.Option("--close", help="Stop the link with this id working now.", show_default=False),
    ] = None,
    as_json: JSON_OPTION = False,
) -> None:
    """Make a link to join the cooperative in the web app (one-time, or open admission)."""
    from tunetrust.services import members

    with _open(ctx) as home:
        if close:
            closed = members.close_invitation(home, steward(home), close)
            if as_json:
                emit("invite-close", closed)
            else:
                out.print(f"[green]Invitation {closed.id} closed[/]: its link no longer works")
            return
        made = members.invite(
            home, steward(home), member=member, days=days, open_admission=open_admission
        )
    if as_json:
        emit("invite", made)
        return
    who = f"for {escape(member)} " if member else ""
    uses = "anyone may join with it" if made.reusable else "one use"
    out.print(f"[green]Invitation {made.id}[/] {who}({uses}, until {made.expires}):")
    out.print(made.link, soft_wrap=True, highlight=False)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="The address browsers use (default: TUNETRUST_WEB_ORIGIN, else "
            "http://localhost:PORT). Behind a TLS proxy: https://your.host",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run upload imports in this process.")
    ] = True,
) -> None:
    """Start the members' web app (docs/web.md). Stop it with Ctrl-C."""
    import logging

    import uvicorn

    from tunetrust.web.app import create_app

    settings = _settings(ctx)
    if origin:
        settings = settings.replace(web_origin=origin)
    elif "TUNETRUST_WEB_ORIGIN" not in __import__("os").environ:
        settings = settings.replace(web_origin=f"http://localhost:{port}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    application = create_app(settings, worker=workers)
    err.print(f"TuneTrust is serving {escape(str(settings.home))} at {settings.web_origin}")
    uvicorn.run(
        application,
        host=host,
        port=port,
        access_log=False,  # its lines carry the raw path (an invitation's secret): ours don't
        log_level="warning",
        proxy_headers=True,
    )


token_app = typer.Typer(
    help="API tokens for /api/v1, the buyer portal and the steward's console.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@token_app.command("add")
def token_add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="Who it acts as: buyer, auditor, steward or member.")],
    holder: Annotated[
        str, typer.Argument(help="The buyer's, auditor's, steward's or member's name.")
    ],
    label: Annotated[str, typer.Option(help="What it is for (shown in lists).")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="Narrow it to these scopes (repeat); default: all of its kind's "
            "(docs/api.md lists them).",
            show_default=False,
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="How long it works (1–365 days).")] = 90,
    as_json: JSON_OPTION = False,
) -> None:
    """Make an API token; its secret is printed once (only a digest is kept)."""
    from tunetrust.services.tokens import issue_token

    with _open(ctx) as home:
        made = issue_token(
            home,
            steward(home),
            kind=kind,
            holder=holder,
            label=label,
            scopes=scope or None,
            days=days,
        )
    if as_json:
        emit("token-add", made)
        return
    info = made.info
    out.print(
        f"[green]Token {info.id}[/] for {escape(info.holder)} ({info.kind}: "
        f"{', '.join(info.scopes)}; until {info.expires}). Shown once:"
    )
    out.print(made.token, soft_wrap=True, highlight=False)


@token_app.command("list")
def token_list(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Every token: holder, scopes, expiry, revocation, last use (never a secret)."""
    from rich.table import Table

    from tunetrust.services.tokens import list_tokens

    with _open(ctx) as home:
        found = list_tokens(home, steward(home))
    if as_json:
        emit("token-list", found)
        return
    table = Table("id", "kind", "holder", "label", "scopes", "expires", "revoked", "last used")
    for t in found:
        table.add_row(
            t.id,
            t.kind,
            escape(t.holder),
            escape(t.label),
            ", ".join(t.scopes),
            t.expires[:16],
            (t.revoked or "")[:16],
            (t.last_used or "")[:16],
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (from token list).")],
    as_json: JSON_OPTION = False,
) -> None:
    """Revoke a token now: its calls and browser sessions stop."""
    from tunetrust.services.tokens import revoke_token

    with _open(ctx) as home:
        done = revoke_token(home, steward(home), token_id)
    if as_json:
        emit("token-revoke", done)
        return
    out.print(f"[green]Token {done.id} revoked[/] at {done.revoked}")
