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


@member_app.command("show")
def member_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a member: joined, settings, consents in force, contributions, listens."""
    from dataclasses import asdict

    from tunetrust.coop.members import show_member

    with _open(ctx) as home:
        view = show_member(home, name)
    if as_json:
        _print_json({**asdict(view), "joined": view.joined.isoformat()})
        return
    from tunetrust.render import print_member

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
    from tunetrust.render import print_consents

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
        str | None, typer.Option("--member", help="Only entries about this member.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List audit entries (members appear by pseudonym)."""
    from tunetrust.coop.audit import entries
    from tunetrust.coop.members import get_member

    with _open(ctx) as home:
        subject = get_member(home, member).pseudonym if member else None
        with home.sessions() as s:
            rows = entries(s, subject)
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
    from tunetrust.render import print_audit

    print_audit(out, rows)


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="A zip, a folder, or one or more JSON files.")
    ],
    member: Annotated[str, typer.Option("--member", help="Whose export this is.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import a member's own export: checked, de-identified, deduplicated, stored."""
    from tunetrust.ingest.pipeline import ContributionRejected, import_export
    from tunetrust.render import print_import

    try:
        with _open(ctx) as home, _progress() as progress:
            task = progress.add_task("reading", total=None)

            def report(name: str, done: int, total: int) -> None:
                progress.update(
                    task, description=name.rsplit("/", 1)[-1] or "done", completed=done, total=total
                )

            summary = import_export(home, member, paths, progress=report)
    except ContributionRejected as rejected:
        # the report is the useful part: show it, then fail with the one-line error
        if as_json:
            _print_json(rejected.summary.to_dict())
        else:
            print_import(out, rejected.summary)
        raise
    if as_json:
        _print_json(summary.to_dict())
        return
    print_import(out, summary)


@contribution_app.command("show")
def contribution_show(
    ctx: typer.Context,
    contribution_id: Annotated[str, typer.Argument(help="The contribution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a contribution's report: checks, verdict, quality score."""
    from tunetrust.coop.contributions import get_contribution

    with _open(ctx) as home:
        row = get_contribution(home, contribution_id)
    if as_json:
        _print_json(row.summary)
        return
    from tunetrust.render import print_report

    print_report(out, row.summary)


@contribution_app.command("list")
def contribution_list(
    ctx: typer.Context,
    member: Annotated[str | None, typer.Option("--member", help="Only this member's.")] = None,
) -> None:
    """List contributions: when, whose, verdict, listens added, quality score."""
    from tunetrust.coop.contributions import list_contributions
    from tunetrust.render import print_contributions

    with _open(ctx) as home:
        rows = list_contributions(home, member)
    print_contributions(out, rows)


SpecPath = Annotated[Path, typer.Argument(help="A release spec, YAML or JSON.")]


@release_app.command("plan")
def release_plan(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Check a spec: who would be included, the budget cost, the noise. Computes nothing."""
    from tunetrust.releases.build import plan_release
    from tunetrust.releases.spec import load_spec

    spec = load_spec(spec_path)
    with _open(ctx) as home:
        plan = plan_release(home, spec)
    if as_json:
        _print_json(plan.to_dict())
        return
    from tunetrust.render import print_plan

    print_plan(out, plan.to_dict())


@release_app.command("build")
def release_build(
    ctx: typer.Context,
    spec_path: SpecPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print id and path as JSON.")] = False,
) -> None:
    """Build a release: bounded aggregates, OpenDP noise, files, manifest; spends budget."""
    from tunetrust.releases.build import build_release
    from tunetrust.releases.spec import load_spec

    spec = load_spec(spec_path)
    with _open(ctx) as home:
        built = build_release(home, spec)
    if as_json:
        _print_json(
            {
                "id": built.id,
                "path": str(built.path),
                "rows": built.manifest["rows"],
                "members_included": built.manifest["members_included"],
                "merkle_root": built.manifest["merkle_root"],
            }
        )
        return
    out.print(
        f"[green]Release {built.id}[/]: {built.manifest['rows']:,} rows from "
        f"{built.manifest['members_included']} members, in {built.path}"
    )


@release_app.command("show")
def release_show(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release id.")]
) -> None:
    """Print a release's manifest."""
    from tunetrust.releases.build import release_folder
    from tunetrust.releases.manifest import read_manifest

    with _open(ctx) as home:
        folder = release_folder(home, release_id)
    _print_json(read_manifest(folder))


@release_app.command("verify")
def release_verify(
    ctx: typer.Context, release_id: Annotated[str, typer.Argument(help="The release id.")]
) -> None:
    """Check a release's files against its manifest; exit 1 naming any mismatch."""
    from tunetrust.releases.build import release_folder
    from tunetrust.releases.manifest import verify_files

    with _open(ctx) as home:
        problems = verify_files(release_folder(home, release_id))
    if problems:
        err.print(f"[red]release does not match its manifest[/]: {escape('; '.join(problems))}")
        raise typer.Exit(1)
    out.print("[green]every file matches the manifest[/]")


@release_app.command("inclusion")
def release_inclusion(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release id.")],
    member: Annotated[str, typer.Option("--member", help="Whose inclusion to prove.")],
) -> None:
    """A member's proof of inclusion or non-inclusion, checkable against the Merkle root."""
    from dataclasses import asdict

    from tunetrust.releases.build import inclusion
    from tunetrust.releases.manifest import check_proof

    with _open(ctx) as home:
        proof, root = inclusion(home, release_id, member)
    _print_json({"merkle_root": root, "checks": check_proof(root, proof), **asdict(proof)})


@budget_app.command("show")
def budget_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The member.")]
) -> None:
    """A member's privacy budget this year: cap, spent and remaining, per purpose."""
    from tunetrust.releases.budget import budget_report

    with _open(ctx) as home:
        rows = budget_report(home, name)
    from tunetrust.render import print_budget

    print_budget(out, rows)


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The member.")],
    purpose: Annotated[str, typer.Argument(help="The purpose.")],
    cap: Annotated[float, typer.Option("--cap", help="The member's own yearly ε cap.")],
) -> None:
    """Lower a member's own yearly ε cap for a purpose (never above the cooperative's)."""
    from tunetrust.releases.budget import set_member_cap

    with _open(ctx) as home:
        value = set_member_cap(home, name, purpose, cap)
    out.print(f"ε cap for {purpose}: {value}")


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


@member_app.command("statement")
def member_statement(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The member.")]
) -> None:
    """A member's payouts, line by line."""
    from tunetrust.coop.ledger import statement
    from tunetrust.coop.members import get_member

    with _open(ctx) as home:
        lines = statement(home, f"member:{get_member(home, name).pseudonym}")
    table = Table("when", "what", "amount")
    for at, memo, currency, cents in lines:
        table.add_row(f"{at:%Y-%m-%d}", memo, f"{cents / 100:,.2f} {currency}")
    out.print(table)
    out.print(f"total: {sum(c for *_, c in lines) / 100:,.2f}")


@app.command()
def insights(
    ctx: typer.Context,
    member: Annotated[str, typer.Option("--member", help="Whose listening.")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    year: Annotated[int | None, typer.Option("--year", help="One calendar year.")] = None,
    min_seconds: Annotated[int, typer.Option(help="A play counts from this many seconds.")] = 30,
    top: Annotated[int, typer.Option("--top", help="Length of top lists.")] = 10,
    tz: Annotated[str, typer.Option("--tz", help="Time zone for days and hours.")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
) -> None:
    """A member's listening: totals, top lists, clock, habits, discovery."""
    from tunetrust.insights.stats import Period, member_insights

    period = Period.parse(start, end, year)
    with _open(ctx) as home:
        result = member_insights(home, member, period, min_seconds=min_seconds, top=top, tz=tz)
    if html is not None:
        from tunetrust.insights.report import render_html

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(result, member=member), encoding="utf-8")
    if as_json:
        _print_json(result.to_dict())
        return
    from tunetrust.render import print_insights

    print_insights(out, result)
    if html is not None:
        out.print(f"[green]Report written[/] to {html}")


@app.command()
def synth(
    variant: Annotated[
        str, typer.Option(help="account, account-legacy, extended-a, extended-b or extended-c.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    listens: Annotated[int, typer.Option(help="How many plays the history holds.")] = 5000,
    seed: Annotated[int, typer.Option(help="Which synthetic person (same seed, same data).")] = 1,
    years: Annotated[
        int | None, typer.Option(help="Span of the history in years [default: the variant's].")
    ] = None,
) -> None:
    """Write a synthetic export (no real person's data) for tests and demos."""
    from tunetrust.formats.synth import VARIANTS, write_export

    if variant not in VARIANTS:
        raise typer.BadParameter(f"choose one of {', '.join(VARIANTS)}", param_hint="--variant")
    if listens < 0:
        raise typer.BadParameter("must be at least 0", param_hint="--listens")
    result = write_export(variant, listens, seed, out_path, years)
    out.print(
        f"[green]Wrote[/] {result.path}: {variant}, {result.listens:,} plays "
        f"({result.incognito:,} incognito) in {len(result.files)} files"
    )


@app.command()
def demo(
    ctx: typer.Context,
    listens: Annotated[int, typer.Option(help="Plays in each demo member's history.")] = 2_000,
) -> None:
    """The main job: a synthetic cooperative through its whole lifecycle (empty home)."""
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
