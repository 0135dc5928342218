"""Commands for buyers, data requests, votes and the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tunetrust.cli._app import (
    _open,
    _print_json,
    app,
    buyer_app,
    err,
    ledger_app,
    out,
    request_app,
)


@buyer_app.command("add")
def buyer_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The organisation's name.")],
    contact: Annotated[str, typer.Option(help="Who to contact (e-mail or address).")],
    country: Annotated[str, typer.Option(help="Two-letter country code.")],
) -> None:
    """Register a buyer; prints its API token once (only a hash is kept)."""
    from tunetrust.coop.governance import add_buyer

    with _open(ctx) as home:
        buyer, token = add_buyer(home, name, contact, country)
    out.print(f"[green]Added buyer[/] {escape(buyer.name)}; API token (shown once): {token}")


@request_app.command("create")
def request_create(
    ctx: typer.Context,
    buyer: Annotated[str, typer.Option(help="The buyer's name.")],
    spec_path: Annotated[Path, typer.Option("--spec", help="The release spec (YAML or JSON).")],
    price: Annotated[int, typer.Option(help="Price in integer cents.")],
    currency: Annotated[str, typer.Option(help="ISO currency code.")] = "EUR",
    licence: Annotated[
        str,
        typer.Option(
            help="Licence text, or research-only, "
            "ai-training-no-reidentification, commercial-analytics."
        ),
    ] = "research-only",
    voting_days: Annotated[int, typer.Option(help="Length of the vote in days.")] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """A buyer proposes a data product: spec, price, licence, voting window (a draft)."""
    from tunetrust.coop.governance import create_request

    text = spec_path.read_text(encoding="utf-8")
    with _open(ctx) as home:
        req = create_request(
            home,
            buyer=buyer,
            spec_text=text,
            price_cents=price,
            currency=currency,
            licence=licence,
            voting_days=voting_days,
        )
    if as_json:
        _print_json({"id": req.id, "state": req.state})
        return
    out.print(f"Request {req.id} created (draft)")


def _request_move(ctx: typer.Context, request_id: str, move: str) -> dict[str, Any]:
    from tunetrust.coop import governance

    with _open(ctx) as home:
        if move == "open":
            governance.open_request(home, request_id)
        elif move == "close":
            governance.close_request(home, request_id)
        else:
            governance.deliver(home, request_id)
        return governance.show_request(home, request_id)


@request_app.command("open")
def request_open(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request.")]
) -> None:
    """Open the vote (a steward): eligible members and the budget cost are fixed now."""
    shown = _request_move(ctx, request_id, "open")
    out.print(f"Vote open until {shown['closes_at']}: {shown['plan']}")


@request_app.command("close")
def request_close(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request.")]
) -> None:
    """Close the vote: the request passes or fails by quorum and majority."""
    shown = _request_move(ctx, request_id, "close")
    out.print(f"Request {shown['state']}: {shown['tally']}")


@request_app.command("deliver")
def request_deliver(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request.")]
) -> None:
    """Build the release of a passed request, deliver it, record payment and payouts."""
    shown = _request_move(ctx, request_id, "deliver")
    out.print(f"Request {shown['state']}: release {shown['release']}")


@request_app.command("show")
def request_show(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request.")]
) -> None:
    """A request: state, plan, licence, and the tally (counts and turnout)."""
    from tunetrust.coop.governance import show_request

    with _open(ctx) as home:
        _print_json(show_request(home, request_id))


@request_app.command("list")
def request_list(ctx: typer.Context) -> None:
    """Every request with its state."""
    from tunetrust.coop.governance import list_requests

    with _open(ctx) as home:
        rows = list_requests(home)
    table = Table("id", "purpose", "state", "price", "created")
    for r in rows:
        table.add_row(
            r.id[:12],
            r.purpose,
            r.state,
            f"{r.price_cents / 100:,.2f} {r.currency}",
            f"{r.created_at:%Y-%m-%d}",
        )
    out.print(table)


@app.command("vote")
def vote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member voting.")],
    request_id: Annotated[str, typer.Argument(help="The request.")],
    choice: Annotated[str, typer.Argument(help="yes, no or abstain.")],
) -> None:
    """Cast or change a member's vote on an open request."""
    from tunetrust.coop.governance import cast_vote

    with _open(ctx) as home:
        cast_vote(home, name, request_id, choice)
    out.print(f"Vote recorded: {choice}")


@ledger_app.command("show")
def ledger_show(ctx: typer.Context) -> None:
    """Every account's balance."""
    from tunetrust.coop.ledger import balances

    with _open(ctx) as home:
        rows = balances(home)
    table = Table("account", "currency", "balance")
    for b in rows:
        table.add_row(b.account, b.currency, f"{b.cents / 100:,.2f}")
    out.print(table)


@ledger_app.command("verify")
def ledger_verify(ctx: typer.Context) -> None:
    """Every transaction balances and balances equal their entries; exit 1 otherwise."""
    from tunetrust.coop.ledger import verify

    with _open(ctx) as home:
        check = verify(home)
    if not check.ok:
        err.print(f"[red]ledger broken[/]: {escape('; '.join(check.problems))}")
        raise typer.Exit(1)
    out.print(f"[green]ledger holds[/]: {check.transactions} transactions balance")
