"""The demo: a synthetic cooperative taken through its whole lifecycle.

Thirty synthetic members import their exports (one also brings account data that
overlaps), most consent to research, one gets an insights report, a buyer's request is
voted on, passes, is built as a differentially private release, delivered and paid,
and the audit log and ledger are verified. Nothing here is real data.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tunetrust.cli.render import print_import
from tunetrust.errors import ConflictError
from tunetrust.formats.spotify.synth import render, synthesize, write_zip
from tunetrust.insights.report import render_html
from tunetrust.insights.stats import Period
from tunetrust.services import audit, data, governance, members, tokens
from tunetrust.services.models import Actor, PaymentInfo
from tunetrust.settings import Settings
from tunetrust.store import private
from tunetrust.store.home import init_home

MEMBERS = 30
SPEC = """\
purpose: research
filters: {kind: music, min_seconds: 30, period: {from: 2024-01-01, to: 2024-10-31}}
group_by: [month]
metrics: [plays, minutes, listeners]
bounds: {max_partitions: 10, max_plays_per_partition: 30, max_minutes_per_play: 8}
privacy: {epsilon: 0.5, delta: 1.0e-6}
keys: public
"""


def _amounts(paid: PaymentInfo) -> dict[str, int]:
    return {"price": paid.price, "fee": paid.fee, "payouts": paid.payouts}


def run_demo(
    settings: Settings, console: Console, *, listens: int = 2_000, program: str = "tunetrust"
) -> None:
    """Run the lifecycle in an empty home and say where to look."""
    home = init_home(settings)
    steward = Actor.steward(settings.actor)
    try:
        if members.list_members(home, steward):
            raise ConflictError(
                f"the demo needs an empty cooperative home; {settings.home} has members "
                "(use --home with a new folder)"
            )
        console.rule("1. Thirty members import their own (synthetic) exports")
        summaries = []
        with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as bar:
            task = bar.add_task("importing", total=MEMBERS + 1)
            for i in range(1, MEMBERS + 1):
                name = f"member-{i:02d}"
                members.join(home, steward, name)
                member = Actor.member(name)  # from here on, members act for themselves
                history = synthesize("extended-c", listens, seed=2024 + i, years=3)
                path = Path(tmp) / f"{name}.zip"
                write_zip(render(history, "extended-c"), path)
                summaries.append(data.import_contribution(home, member, name, [path]))
                if i == 1:  # the same person's account data: every play counted once
                    acc = Path(tmp) / "account.zip"
                    write_zip(render(history, "account"), acc)
                    account_summary = data.import_contribution(home, member, name, [acc])
                bar.advance(task)
        table = Table("member", "verdict", "plays added", "quality score")
        for s in summaries[:5]:
            table.add_row(s.member, s.verdict, f"{s.listens_added:,}", f"{s.quality_score:.3f}")
        table.add_row("…", "", "", "")
        console.print(table)
        console.print("member-01 also imported account data:")
        print_import(console, account_summary, program=program)

        console.rule("2. Consent, and a personal insights report")
        consenting = [f"member-{i:02d}" for i in range(1, MEMBERS + 1) if i % 7]  # 26 of 30
        for name in consenting:
            members.set_consent(home, Actor.member(name), name, "research", granted=True)
        report = settings.home / "reports" / "member-01.html"
        private.mkdir(report.parent)
        private.create(report)
        insights = data.insights(
            home, Actor.member("member-01"), "member-01", Period.parse(None, None, 2024)
        )
        report.write_text(render_html(insights, member="member-01"), encoding="utf-8")
        console.print(
            f"member-01 listened {insights.total_ms / 3_600_000:,.0f} h in 2024; report: {report}"
        )

        console.rule("3. A buyer's request, the members' vote, the release, the payouts")
        lab = governance.add_buyer(home, steward, "Demo Research Lab", "lab@example.invalid", "SE")
        req = governance.create_request(
            home,
            Actor.buyer(lab.name),
            buyer=lab.name,
            spec_text=SPEC,
            price=250_000,  # minor units: 2,500.00 EUR
            currency="EUR",
            licence="research-only",
            voting_days=7,
        )
        governance.open_request(home, steward, req.id)
        for n, name in enumerate(consenting):  # the eligible: consent in force at opening
            choice = "no" if n % 9 == 0 else "abstain" if n % 11 == 0 else "yes"
            governance.vote(home, Actor.member(name), name, req.id, choice)
        closed = governance.close_request(home, steward, req.id)
        assert closed.tally is not None  # a closed request has its final tally
        result = closed.tally
        console.print(
            f"vote: {result.yes:.0f} yes, {result.no:.0f} no, "
            f"{result.abstain:.0f} abstain; turnout {result.turnout:.0%} → "
            f"{'passed' if result.passed else 'failed'}"
        )
        delivered = governance.deliver(home, steward, req.id)
        paid = delivered.payment
        assert paid is not None  # a delivered request is paid in the same call
        money = {n: members.amount(v, paid.currency).text for n, v in _amounts(paid).items()}
        console.print(
            f"release {paid.release} built from {paid.members_paid} members; "
            f"{money['price']} paid: fee {money['fee']}, payouts {money['payouts']}"
        )

        console.rule("4. Everything checks")
        audit_ok = audit.verify_chain(home, steward)
        ledger_ok = governance.verify_ledger(home, steward)
        console.print(
            f"audit chain: {'holds' if audit_ok.ok else audit_ok.problem} "
            f"({audit_ok.entries} entries); ledger: "
            f"{'balances' if ledger_ok.ok else ledger_ok.problems}"
        )
        # a second request stays open, so members signing in to the web app have a vote
        pending = governance.create_request(
            home,
            Actor.buyer(lab.name),
            buyer=lab.name,
            spec_text=SPEC.replace("group_by: [month]", "group_by: [weekday]"),
            price=120_000,
            currency="EUR",
            licence="research-only",
            voting_days=14,
        )
        governance.open_request(home, steward, pending.id)
        links = {
            who: members.invite(home, steward, member=who, days=2).link
            for who in ("member-01", "member-02")
        }
        links["someone new"] = members.invite(home, steward, days=2).link
        console_token = tokens.issue_token(
            home, steward, kind="steward", holder=steward.name, label="the demo", days=2
        ).token

        h = f"{program} --home {settings.home}"
        console.rule("5. The members' web app")
        console.print(
            f"{program} --home {settings.home} serve   (make demo starts it for you)\n"
            f"then open {settings.web_origin} and sign in as a member with a one-time link "
            "(it registers a passkey on your device):",
            soft_wrap=True,
            highlight=False,
        )
        for who, link in links.items():
            console.print(f"  {who + ':':<14} {link}", soft_wrap=True, highlight=False)
        console.print(f"  an open vote waits for them: request {pending.id}", highlight=False)
        console.print(
            f"The steward's console and the buyer portal: open {settings.web_origin}/staff/signin "
            "and paste a token (shown once; docs/api.md):\n"
            f"  steward:       {console_token}\n"
            f"  buyer:         {lab.token}\n"
            f"The HTTP API:    curl -H 'Authorization: Bearer {lab.token}' "
            f"{settings.web_origin}/api/v1/requests",
            soft_wrap=True,
            highlight=False,
        )
        console.rule("Where to look")
        console.print(
            f"insights report:     {report}\n"
            f"member insights:     {h} insights --member member-01 --year 2024\n"
            f"the release:         {settings.home / 'releases' / paid.release}\n"
            f"                     {h} release verify {paid.release}\n"
            f"the ledger:          {h} ledger show   ·   {h} member statement member-02\n"
            f"the audit log:       {h} audit verify   ·   {h} audit show\n"
            f"your own export:     {h} member add YOU && {h} import YOUR-EXPORT.zip --member YOU",
            soft_wrap=True,  # commands are copied: never wrap them mid-word
            highlight=False,
        )
    finally:
        home.close()
