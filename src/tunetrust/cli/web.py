"""The web app's commands: ``invite`` (a one-time link to join) and ``serve``."""

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
