"""Rich renderings shared by the CLI and the demo (terminal output only, no logic)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunetrust.coop.ledger import format_amount
from tunetrust.insights.display import DAYS, count, days, hours, percent, platform
from tunetrust.services.models import (
    AuditEntryInfo,
    BudgetLine,
    ConsentHistory,
    ContributionInfo,
    LedgerBalanceInfo,
    MemberProfile,
    PaymentInfo,
    Rebuilt,
    RequestInfo,
    RulesChangeInfo,
    RulesInForce,
)
from tunetrust.settings import Rules

if TYPE_CHECKING:  # types only: a command that prints a budget does not load pyarrow
    from tunetrust.ingest.disputes import Dispute
    from tunetrust.ingest.pipeline import ImportSummary
    from tunetrust.insights.cooperative import Comparison
    from tunetrust.insights.stats import Insights, Ranked
    from tunetrust.insights.story import Story


def print_import(
    console: Console, s: ImportSummary, *, report: bool = False, program: str = "tunetrust"
) -> None:
    """An import in a few lines (``report``: every file, count and check) and a next step."""
    if report:
        print_import_report(console, s)
    dropped = sum(s.dropped.values())
    console.print(
        f"{_VERDICTS.get(s.verdict, s.verdict)}: {s.listens_added:,} of "
        f"{s.listens_in_export:,} plays added for {escape(s.member)} "
        f"({s.duplicates_skipped:,} already counted, {dropped:,} dropped for privacy); "
        f"{s.listens_total:,} stored · quality +{s.quality_score:.3f}",
        highlight=False,
    )
    if not report:  # the report's tables said these already
        for c in s.checks:
            if c.status != "pass":
                console.print(
                    f"  {_STATUS[c.status]} {c.name}: {escape(c.message)}", highlight=False
                )
        skipped = [f for f in s.files if f.status == "skipped" and f.kind != "unknown"]
        if skipped:
            console.print(
                f"  {len(skipped)} file(s) not imported (personal data or unknown shape)."
            )
    if s.same_export_as:
        console.print(
            f"[yellow]This export was imported before[/] (contribution {s.same_export_as})."
        )
    if report:
        return
    console.print(
        f"Full report: {program} contribution show {s.contribution}  ·  "
        f"your listening: {program} insights --member {escape(s.member)}",
        highlight=False,
        soft_wrap=True,
    )


def print_import_report(console: Console, s: ImportSummary) -> None:
    """An import in full: every file, what happened to the plays, every check."""
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
    print_report(console, s.to_dict())


def print_member(console: Console, v: MemberProfile) -> None:
    """One member's record."""
    t = Table(show_header=False, title=escape(v.name))
    t.add_row("joined", v.joined[:10])
    t.add_row("keeps incognito plays", "yes" if v.keep_incognito else "no")
    t.add_row("streaming account bound", "yes" if v.account_bound else "not yet")
    t.add_row("contributions", f"{v.contributions:,}")
    t.add_row("listens stored", f"{v.listens:,}")
    given = [p for p, ok in v.consents.items() if ok]
    t.add_row("consents in force", ", ".join(given) or "none")
    console.print(t)


def print_consents(console: Console, h: ConsentHistory) -> None:
    """Consents in force per purpose, then the history."""
    state = {p: False for p in h.purposes} | h.in_force
    now = Table("purpose", "consent", title="In force")
    for p, ok in state.items():
        now.add_row(p, "[green]granted[/]" if ok else "[dim]not given[/]")
    console.print(now)
    hist = Table("when", "purpose", "decision", "by", title="History")
    for r in h.history:
        hist.add_row(
            r.at[:19].replace("T", " "),
            r.purpose,
            "granted" if r.granted else "withdrawn",
            escape(r.by),
        )
    console.print(hist)


def print_audit(console: Console, rows: list[AuditEntryInfo]) -> None:
    """Audit entries, oldest first."""
    t = Table("seq", "at", "actor", "action", "subject", "hash")
    for e in rows:
        t.add_row(
            str(e.seq),
            e.at[:19],
            escape(e.actor),
            e.action,
            e.subject[:12],
            e.entry_hash[:16] + "…",
        )
    console.print(t)


def _ranked(title: str, rows: list[Ranked], by: bool = False) -> Table:
    t = Table("#", "name", "hours", "plays", title=title)
    for n, r in enumerate(rows, 1):
        name = escape(r.name) + (f" [dim]· {escape(r.by)}[/]" if by and r.by else "")
        t.add_row(str(n), name, hours(r.ms), count(r.plays))
    return t


def print_cooperative(console: Console, c: Comparison) -> None:
    """The member beside the cooperative: sentences, then the top tracks."""
    if c.state != "ready":
        console.print(escape(c.message), soft_wrap=True)
        return
    for line in c.sentences:
        console.print(escape(line), soft_wrap=True)
    if c.top_tracks:
        table = Table(title=f"The cooperative's top tracks, {c.month}")
        table.add_column("#", justify="right")
        table.add_column("track")
        table.add_column("listeners (noisy)", justify="right")
        for t in c.top_tracks:
            table.add_row(str(t.rank), escape(t.track), f"{t.listeners:,}")
        console.print(table)


def print_insights(console: Console, i: Insights, *, member: str = "") -> None:
    """Insights as terminal tables; the listening clock as shaded blocks."""
    if i.history_first_day is None:
        who = escape(member) if member else "NAME"
        console.print(
            f"[yellow]No listens yet{f' for {who}' if member else ''}: import your export "
            f"first[/] (tunetrust import my_data.zip --member {who})",
            highlight=False,
        )
        return
    totals = Table(show_header=False, title=f"Listening, {i.period} ({i.tz})")
    totals.add_row("listening time", hours(i.total_ms))
    totals.add_row(
        f"plays (≥ {i.min_seconds} s)", f"{count(i.plays)} of {count(i.listens)} listens"
    )
    totals.add_row(
        "tracks / artists / albums",
        f"{count(i.distinct_tracks)} / {count(i.distinct_artists)} / {count(i.distinct_albums)}",
    )
    totals.add_row("active days", count(i.active_days))
    if i.longest_streak_start:
        streak = f"{days(i.longest_streak_days)} from {i.longest_streak_start}"
        totals.add_row("longest streak", streak)
    if i.busiest_day:
        totals.add_row("busiest day", f"{i.busiest_day} ({hours(i.busiest_day_ms)})")
    totals.add_row(
        "skipped / shuffle / offline",
        f"{percent(i.skip_rate)} / {percent(i.shuffle_share)} / {percent(i.offline_share)}",
    )
    if i.platform_share:
        shares = (f"{platform(p)} {percent(v)}" for p, v in i.platform_share.items())
        totals.add_row("devices", ", ".join(shares))
    if i.new_artist_time_share is not None:
        totals.add_row("time on artists new in period", percent(i.new_artist_time_share))
    console.print(totals)
    for note in i.notes:
        console.print(f"[yellow]{escape(note)}[/]")
    console.print(_ranked("Top artists", i.top_artists))
    console.print(_ranked("Top tracks", i.top_tracks, by=True))
    console.print(_ranked("Top albums", i.top_albums, by=True))
    if i.top_shows:
        console.print(_ranked("Podcasts and shows", i.top_shows))
    months = Table("month", "hours", "plays", "new artists", title="Per month")
    new = {m["month"]: m["new_artists"] for m in i.new_artists_per_month}
    found = i.discovery_from[:7] if i.discovery_from else None
    for m in i.per_month:
        n = new.get(m["month"], 0) if found and m["month"] >= found else None
        months.add_row(
            m["month"], hours(m["ms"]), count(m["plays"]), "—" if n is None else count(n)
        )
    console.print(months)
    peak = max((v for row in i.clock_ms for v in row), default=0) or 1
    shades = " ░▒▓█"
    clock = Table(
        "",
        *(f"{h:02d}" if h % 3 == 0 else "" for h in range(24)),
        title="Listening clock",
        box=None,
        padding=0,
    )
    for d, row in enumerate(i.clock_ms):
        clock.add_row(DAYS[d] + " ", *(shades[min(4, round(4 * v / peak))] * 2 for v in row))
    console.print(clock)
    if i.forgotten_favourites:
        console.print(
            _ranked("Forgotten favourites (not played in this period)", i.forgotten_favourites)
        )


def print_story(console: Console, story: Story, *, member: str, program: str) -> None:
    """A story card by card: its title, then its sentences with the figures in bold."""
    first = story.cards[0].key if story.cards else None
    if first != "import-first":
        console.print(f"[bold]Your story: {escape(story.period)}[/] ({escape(story.tz)})")
    for card in story.cards:
        console.print()
        console.print(f"[bold underline]{escape(card.title)}[/]")
        for line in card.lines:
            said = "".join(
                f"[bold]{escape(p.text)}[/]" if p.figure else escape(p.text) for p in line.parts
            )
            console.print(f"  {said}", highlight=False)
    if first == "import-first":
        console.print(f"\n  {program} import EXPORT.zip --member {escape(member)}")


_VERDICTS = {
    "accepted": "[green]accepted[/]",
    "accepted_with_warnings": "[yellow]accepted with warnings[/]",
    "rejected": "[red]rejected[/]",
    "disputed": "[magenta]held for the steward (disputed)[/]",
    "revoked": "[red]revoked by a dispute's decision[/]",
    "resolved": "[green]dispute decided for this member[/]",
}
_STATUS = {
    "pass": "[green]pass[/]",
    "warn": "[yellow]warn[/]",
    "fail": "[red]fail[/]",
    "hold": "[magenta]hold[/]",
}


def print_report(console: Console, summary: dict[str, Any]) -> None:
    """A contribution report: each check, the verdict and the quality score."""
    t = Table(
        "check",
        "result",
        "measured",
        "threshold",
        "what it means",
        title=f"Contribution {summary['contribution'][:12]} — checks",
    )
    for c in summary.get("checks", []):
        value = "—" if c["value"] is None else str(c["value"])
        t.add_row(
            c["name"],
            _STATUS.get(c["status"], c["status"]),
            value,
            escape(c["threshold"] or ""),
            escape(c["message"]),
        )
    console.print(t)
    parts = summary.get("quality", {}).get("member_after", {})
    shown = ", ".join(f"{k} {v:.2f}" for k, v in parts.items() if k != "score")
    console.print(
        f"Verdict: {_VERDICTS.get(summary.get('verdict', ''), summary.get('verdict'))} · "
        f"quality score added: {summary.get('quality_score', 0):.3f}"
        + (f" (member now {parts.get('score', 0):.3f}: {shown})" if parts else "")
    )


def print_contributions(console: Console, rows: list[ContributionInfo]) -> None:
    """Contributions, one per line."""
    t = Table("id", "member", "when", "verdict", "listens added", "quality")
    for r in rows:
        t.add_row(
            r.id[:12],
            escape(r.member),
            r.at[:16].replace("T", " "),
            _VERDICTS.get(r.verdict, r.verdict),
            f"{r.listens_added:,}",
            f"{r.quality_score:.3f}",
        )
    console.print(t)


def print_disputes(console: Console, rows: list[Dispute]) -> None:
    """Open disputes, both sides by pseudonym, with what the steward weighs."""
    if not rows:
        console.print("No open disputes.")
        return
    for d in rows:
        why = "same account" if d.reason == "account" else "same plays, unaltered"
        console.print(
            f"[bold]Dispute {d.contribution[:12]}[/] (opened {d.opened:%Y-%m-%d %H:%M}): {why}",
            highlight=False,
        )
        c = d.claimant
        console.print(
            f"  claimant {c.pseudonym[:12]}, joined {c.joined:%Y-%m-%d}: "
            f"{d.listens_in_export:,} plays in the held export, {c.first_play} – {c.last_play}",
            highlight=False,
        )
        h = d.holder
        console.print(
            f"  holder   {h.pseudonym[:12]}, joined {h.joined:%Y-%m-%d}: {h.listens:,} plays "
            f"stored, {h.first_play} – {h.last_play}"
            if h is not None
            else "  holder   (erased)",
            highlight=False,
        )
    console.print(
        "The owner of an account can download a newer export of it, with plays after the "
        "dispute was opened: ask both. Decide with: tunetrust contribution decide ID "
        "--for claimant|holder"
    )


def print_plan(console: Console, plan: dict[str, Any]) -> None:
    """What a release would cost and whom it would include."""
    t = Table(show_header=False, title=f"Release plan — purpose {plan['purpose']}")
    t.add_row("members included", f"{plan['members_included']:,}")
    for reason, n in plan["members_left_out"].items():
        t.add_row(f"left out: {reason.replace('_', ' ')}", f"{n:,}")
    t.add_row(
        "cost per included member",
        f"ε {plan['epsilon_per_member']} (δ {plan['delta']:g}) from the {plan['year']} budget",
    )
    noise = plan["noise"]
    if noise.get("threshold") is not None:
        t.add_row("keys considered once members reach", f"{noise['min_listeners']:,}")
        t.add_row(
            "keys released when noisy distinct members reach",
            f"{noise['release_threshold']:,.0f}",
        )
    for name, part in noise["parts"].items():
        t.add_row(
            f"noise on {name}",
            f"{noise['noise']} scale {part['scale']:,.2f} (sensitivity {part['sensitivity']:,.2f})",
        )
    outcome = plan["outcome"]
    if outcome["keys"] == "public":
        t.add_row("keys released", f"all {outcome['keys_declared']:,} declared keys")
    elif outcome["expected_empty"]:
        t.add_row("keys released", "[bold red]none expected[/]")
    else:
        t.add_row("keys released", f"depends on the data; at most {outcome['keys_at_most']:,}")
    for q, a in outcome["accuracy"].items():
        label = f"accuracy of {q}" + (" (for skip_share)" if q == "skips" else "")
        t.add_row(label, f"± {a['half_width']:,} {a['unit']}, 95 % of the time")
    console.print(t)
    if outcome["keys"] == "private":
        console.print(escape(outcome["statement"][:1].upper() + outcome["statement"][1:] + "."))
    if outcome["expected_empty"]:
        console.print(
            "[bold red]Expected to be empty[/]: building it would spend every included "
            "member's ε for no data. `release build` refuses it unless --allow-empty."
        )


def print_budget(console: Console, rows: list[BudgetLine]) -> None:
    """A member's budget per purpose."""
    t = Table("purpose", "year", "cap ε", "spent ε", "remaining ε")
    for r in rows:
        t.add_row(r.purpose, str(r.year), r.cap, r.spent, r.remaining)
    console.print(t)


def print_rebuild(console: Console, r: Rebuilt) -> None:
    """What ``doctor --rebuild-events`` found per member, and what it did."""
    t = Table(
        "member (pseudonym)",
        "exports replayed",
        "listens stored",
        "listens rebuilt",
        "weight",
        "",
        title="Listens re-derived from the vaults" + (" (dry run)" if r.dry_run else ""),
    )
    for m in r.members:
        if m.missing_raw:
            note = f"[yellow]kept: {m.missing_raw} raw export(s) not in the vault[/]"
        else:
            note = "[yellow]repaired[/]" if m.changed else "[green]correct[/]"
            if m.changed and r.dry_run:
                note = "[yellow]would be repaired[/]"
        t.add_row(
            m.pseudonym[:12] + "…",
            f"{m.contributions:,}",
            f"{m.listens_before:,}",
            f"{m.listens_after:,}",
            f"{m.weight_before:.4f} → {m.weight_after:.4f}",
            note,
        )
    console.print(t)
    verb = "would change" if r.dry_run else "changed"
    audited = "; each change is in the audit log" if r.changed and not r.dry_run else ""
    console.print(f"{r.changed} of {len(r.members)} member(s) {verb}{audited}.")


# --- data requests, the cooperative's rules, money ------------------------------------


def _share(x: float) -> str:
    return f"{x * 100:g} %"


def _weight(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.3f}"


def rules_text(r: Rules | RulesInForce) -> str:
    """The rules in one sentence a member can read."""
    return (
        f"quorum {_share(r.quorum)} of eligible members; passes when yes ÷ (yes + no) is "
        f"above {_share(r.majority)}; "
        + ("votes weighed by contribution quality" if r.weighted_votes else "one member, one vote")
        + f"; fee {r.fee_basis_points / 100:g} % to the treasury; "
        + (
            "members who vote no are left out of the release"
            if r.no_votes_opt_out
            else "a passed vote includes every consenting member"
        )
        + f"; each member's yearly budget per purpose ε {r.epsilon_cap:g}, δ {r.delta_cap:g}; "
        f"releases of at least {r.min_members:,} members"
    )


def print_request(console: Console, v: RequestInfo) -> None:
    """A data request: the proposal, its vote (rules, cost, tally), its delivery."""
    t = Table(show_header=False, title=f"Data request {v.id}")
    t.add_row("buyer", escape(v.buyer or "—"))
    t.add_row("purpose", escape(v.purpose))
    t.add_row("state", v.state)
    t.add_row("price", escape(v.price.text))
    t.add_row("licence", escape(v.licence))
    t.add_row("created", v.created_at or "")
    if v.opens_at is None:
        t.add_row("vote", f"not open yet; {v.voting_days} days once opened")
    else:
        t.add_row("vote", f"opened {v.opens_at}; window ends {v.closes_at}")
        t.add_row("eligible voters", f"{v.eligible:,}")
    if v.plan:
        left = ", ".join(
            f"{reason.replace('_', ' ')} {n:,}"
            for reason, n in v.plan.get("left_out", {}).items()
            if reason not in ("not_in_request", "erased")  # never eligible voters
        )
        t.add_row(
            "plan at opening",
            f"{v.plan.get('members_included_if_passed', 0):,} members included if it passes, "
            f"ε {v.plan.get('epsilon_per_member')} each" + (f" (left out: {left})" if left else ""),
        )
    if v.rules is not None:
        t.add_row("rules (fixed at opening)", rules_text(v.rules))
    if v.tally is not None:
        c = v.tally
        t.add_row(
            "tally" + (" so far" if v.state == "open" else ""),
            f"{_weight(c.yes)} yes, {_weight(c.no)} no, {_weight(c.abstain)} abstain; "
            f"{c.voters:,} of {c.eligible:,} voted ({_share(round(c.turnout, 4))}); "
            f"quorum {'met' if c.quorum_met else 'not met'}"
            + ("; weighed by contribution quality" if c.weighted else ""),
        )
    if v.early_reason:
        t.add_row("closed early, because", escape(v.early_reason))
    if v.release:
        t.add_row("release", v.release)
    console.print(t)


def print_requests(console: Console, views: list[RequestInfo]) -> None:
    """Requests, newest first."""
    t = Table("id", "buyer", "purpose", "state")
    t.add_column("price", justify="right")
    t.add_column("created", no_wrap=True)
    for v in views:
        t.add_row(
            v.id[:12],
            escape(v.buyer or "—"),
            escape(v.purpose),
            v.state,
            escape(v.price.text),
            v.created_at or "",
        )
    console.print(t)


def print_payment(console: Console, p: PaymentInfo) -> None:
    """What a delivered request paid, and to whom."""
    console.print(
        f"{format_amount(p.price, p.currency)} paid: fee {format_amount(p.fee, p.currency)} "
        f"to the treasury, {format_amount(p.payouts, p.currency)} split among "
        f"{p.members_paid:,} members",
        highlight=False,
    )


def print_rules(console: Console, history: list[RulesChangeInfo]) -> None:
    """The rules in force, then every decision that set them."""
    now = history[-1].rules
    t = Table("rule", "in force", "meaning", title="The cooperative's rules")
    t.add_row("quorum", _share(now.quorum), "share of eligible members who must vote")
    t.add_row("majority", _share(now.majority), "a request passes when yes ÷ (yes + no) is above")
    t.add_row(
        "weighted votes",
        "yes" if now.weighted_votes else "no",
        "votes weighed by contribution quality (no: one member, one vote)",
    )
    t.add_row(
        "fee",
        f"{now.fee_basis_points / 100:g} %",
        f"the cooperative's share of each sale ({now.fee_basis_points:,} basis points)",
    )
    t.add_row(
        "no votes opt out",
        "yes" if now.no_votes_opt_out else "no",
        "members who vote no are left out of a passed release",
    )
    t.add_row("epsilon cap", f"{now.epsilon_cap:g}", "each member's ε budget per purpose and year")
    t.add_row("delta cap", f"{now.delta_cap:g}", "each member's δ budget per purpose and year")
    t.add_row("min members", f"{now.min_members:,}", "the fewest members a release may include")
    console.print(t)
    h = Table(title="History")
    h.add_column("when", no_wrap=True)
    for name in ("by", "what changed", "why"):
        h.add_column(name)
    for c in history:
        changed = ", ".join(f"{k} {v['from']} → {v['to']}" for k, v in c.changed.items())
        h.add_row(c.at or "", escape(c.actor), escape(changed or "first rules"), escape(c.reason))
    console.print(h)


def print_balances(console: Console, rows: list[LedgerBalanceInfo]) -> None:
    """Every account's balance, in its currency's own decimals."""
    t = Table("account", "currency")
    t.add_column("balance", justify="right")
    for b in rows:
        t.add_row(b.account, b.currency, b.text)
    console.print(t)
