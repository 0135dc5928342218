"""Commands for buyers, the cooperative's rules, data requests, votes and the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tunetrust.cli._app import (
    _open,
    app,
    buyer_app,
    err,
    ledger_app,
    out,
    request_app,
)
from tunetrust.cli._service import emit, steward

if TYPE_CHECKING:
    from tunetrust.services.models import RequestInfo

rules_app = typer.Typer(
    help="The cooperative's rules: quorum, majority, weighting, fee.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")

JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print as JSON (docs/schemas/).")]
REQUEST_ARG = Annotated[str, typer.Argument(help="The request (id or a unique prefix).")]


@buyer_app.command("add")
def buyer_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The organisation's name.")],
    contact: Annotated[str, typer.Option(help="Who to contact (e-mail or address).")],
    country: Annotated[str, typer.Option(help="Two-letter country code.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Register a buyer; prints its first API token once (only a digest is kept)."""
    from tunetrust.services.governance import add_buyer

    with _open(ctx) as home:
        buyer = add_buyer(home, steward(home), name, contact, country)
    if as_json:
        emit("buyer-add", buyer)
        return
    out.print(
        f"[green]Added buyer[/] {escape(buyer.name)}. API token {buyer.token_id} for /api/v1 "
        f"and the buyer portal (until {buyer.expires}; shown once):"
    )
    out.print(buyer.token, soft_wrap=True, highlight=False)


@request_app.command("create")
def request_create(
    ctx: typer.Context,
    buyer: Annotated[str, typer.Option(help="The buyer's name.")],
    spec_path: Annotated[Path, typer.Option("--spec", help="The release spec (YAML or JSON).")],
    price: Annotated[
        int,
        typer.Option(
            help="Price in the currency's minor unit: with EUR 250000 is 2,500.00 EUR, "
            "with JPY 250000 is 250,000 JPY."
        ),
    ],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code.")] = "EUR",
    licence: Annotated[
        str,
        typer.Option(
            help="Licence text, or research-only, "
            "ai-training-no-reidentification, commercial-analytics."
        ),
    ] = "research-only",
    voting_days: Annotated[int, typer.Option(help="Length of the vote in days.")] = 14,
    as_json: JSON_OPTION = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the request id (for scripts).")
    ] = False,
) -> None:
    """A buyer proposes a data product: spec, price, licence, voting window (a draft)."""
    from tunetrust.releases.spec import read_spec_text
    from tunetrust.services.governance import create_request

    text = read_spec_text(spec_path)
    with _open(ctx) as home:
        view = create_request(
            home,
            steward(home),
            buyer=buyer,
            spec_text=text,
            price=price,
            currency=currency,
            licence=licence,
            voting_days=voting_days,
        )
    if quiet:
        out.print(view.id, highlight=False)
        return
    _show(view, as_json, f"Request {view.id} created as a draft.")


def _show(view: RequestInfo, as_json: bool, headline: str) -> None:
    """A request after a command: as JSON, or a headline and the request's table."""
    from tunetrust.cli.render import print_payment, print_request

    if as_json:
        emit("request", view)
        return
    out.print(escape(headline), highlight=False)
    if view.payment is not None:
        print_payment(out, view.payment)
    print_request(out, view)


@request_app.command("open")
def request_open(ctx: typer.Context, request_id: REQUEST_ARG, as_json: JSON_OPTION = False) -> None:
    """Open the vote (a steward): eligible members, budget cost and the rules are fixed now."""
    from tunetrust.services.governance import open_request

    with _open(ctx) as home:
        view = open_request(home, steward(home), request_id)
    _show(view, as_json, f"Vote open until {view.closes_at}.")


@request_app.command("close")
def request_close(
    ctx: typer.Context,
    request_id: REQUEST_ARG,
    early: Annotated[
        bool,
        typer.Option(
            "--early", help="Close before the window ends although not every member voted."
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why the vote closes early (with --early; audited).")
    ] = None,
    as_json: JSON_OPTION = False,
) -> None:
    """Close the vote: the request passes or fails by the quorum and majority frozen at open."""
    from tunetrust.errors import InputError
    from tunetrust.services.governance import close_request

    if early != (reason is not None):
        raise InputError("an early close needs both --early and --reason TEXT")
    with _open(ctx) as home:
        view = close_request(home, steward(home), request_id, early_reason=reason)
    _show(view, as_json, f"Vote closed: the request {view.state}.")


@request_app.command("deliver")
def request_deliver(
    ctx: typer.Context, request_id: REQUEST_ARG, as_json: JSON_OPTION = False
) -> None:
    """Build the release of a passed request, deliver it, record payment and payouts."""
    from tunetrust.services.governance import deliver

    with _open(ctx) as home:
        view = deliver(home, steward(home), request_id)
    _show(view, as_json, f"Request {view.state}: release {view.release}.")


@request_app.command("show")
def request_show(ctx: typer.Context, request_id: REQUEST_ARG, as_json: JSON_OPTION = False) -> None:
    """A request: state, price, licence, plan, rules, and the tally (counts and turnout)."""
    from tunetrust.cli.render import print_request
    from tunetrust.services.governance import show_request

    with _open(ctx) as home:
        view = show_request(home, steward(home), request_id)
    if as_json:
        emit("request", view)
        return
    print_request(out, view)


@request_app.command("list")
def request_list(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Every request with its state, newest first."""
    from tunetrust.cli.render import print_requests
    from tunetrust.services.governance import list_requests

    with _open(ctx) as home:
        views = list_requests(home, steward(home))
    if as_json:
        emit("request-list", views)
        return
    print_requests(out, views)


@app.command("vote")
def vote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member voting.")],
    request_id: Annotated[str, typer.Argument(help="The request.")],
    choice: Annotated[str, typer.Argument(help="yes, no or abstain.")],
    as_json: JSON_OPTION = False,
) -> None:
    """Cast or change a member's vote on an open request."""
    from tunetrust.services.governance import vote as cast_vote

    with _open(ctx) as home:
        cast = cast_vote(home, steward(home), name, request_id, choice)
    if as_json:
        emit("vote", cast)
        return
    out.print(f"Vote recorded: {cast.choice}")


@ledger_app.command("show")
def ledger_show(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Every account's balance."""
    from tunetrust.cli.render import print_balances
    from tunetrust.services.governance import balances

    with _open(ctx) as home:
        rows = balances(home, steward(home))
    if as_json:
        emit("ledger-show", rows)
        return
    print_balances(out, rows)


@ledger_app.command("verify")
def ledger_verify(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """Every transaction balances and balances equal their entries; exit 1 otherwise."""
    from tunetrust.services.governance import verify_ledger

    with _open(ctx) as home:
        check = verify_ledger(home, steward(home))
    if as_json:
        emit("ledger-verify", check)
        if not check.ok:
            raise typer.Exit(1)
        return
    if not check.ok:
        err.print(f"[red]ledger broken[/]: {escape('; '.join(check.problems))}")
        raise typer.Exit(1)
    out.print(f"[green]ledger holds[/]: {check.transactions} transactions balance")


@rules_app.command("show")
def rules_show(ctx: typer.Context, as_json: JSON_OPTION = False) -> None:
    """The cooperative's rules in force, and every decision that set them."""
    from tunetrust.cli.render import print_rules
    from tunetrust.services.governance import rules

    with _open(ctx) as home:
        report = rules(home, steward(home))
    if as_json:
        emit("rules-show", report)
        return
    print_rules(out, report.history)


@rules_app.command("set")
def rules_set(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option(help="Why: the decision that changes the rules (audited).")
    ],
    quorum: Annotated[
        float | None,
        typer.Option(help="Share of eligible members who must vote (above 0, at most 1)."),
    ] = None,
    majority: Annotated[
        float | None,
        typer.Option(help="A request passes when yes ÷ (yes + no) is above this (0.5 to below 1)."),
    ] = None,
    weighted_votes: Annotated[
        bool | None,
        typer.Option(
            "--weighted-votes/--one-member-one-vote",
            help="Weigh votes by contribution quality, or count one vote per member.",
            show_default=False,
        ),
    ] = None,
    fee_basis_points: Annotated[
        int | None,
        typer.Option(help="The cooperative's fee on each sale in 1/100 % (1000 = 10 %)."),
    ] = None,
    no_votes_opt_out: Annotated[
        bool | None,
        typer.Option(
            "--no-voters-left-out/--no-voters-included",
            help="Leave members who voted no out of a passed release, or include them.",
            show_default=False,
        ),
    ] = None,
    epsilon_cap: Annotated[
        float | None,
        typer.Option(help="Each member's ε budget per purpose and calendar year (0 to 100)."),
    ] = None,
    delta_cap: Annotated[
        float | None,
        typer.Option(help="Each member's δ budget per purpose and calendar year (to 0.001)."),
    ] = None,
    min_members: Annotated[
        int | None,
        typer.Option(help="The fewest members a release may include (at least 2)."),
    ] = None,
    as_json: JSON_OPTION = False,
) -> None:
    """Change the cooperative's rules, with a reason; open requests keep theirs."""
    from tunetrust.cli.render import rules_text
    from tunetrust.services.governance import set_rules

    with _open(ctx) as home:
        change = set_rules(
            home,
            steward(home),
            reason=reason,
            quorum=quorum,
            majority=majority,
            weighted_votes=weighted_votes,
            fee_basis_points=fee_basis_points,
            no_votes_opt_out=no_votes_opt_out,
            epsilon_cap=epsilon_cap,
            delta_cap=delta_cap,
            min_members=min_members,
        )
    if as_json:
        emit("rules-set", change)
        return
    out.print(f"[green]Rules changed[/]: {escape(rules_text(change.rules))}", highlight=False)
