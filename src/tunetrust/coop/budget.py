"""Privacy budgets: each member's ε cap per purpose and calendar year, spent in one place.

Amounts are exact: :class:`Epsilon` holds whole micro-units (ε × 10⁶), so sums and
differences never drift and a balance can never go below zero unnoticed.

The caps are the cooperative's rules (``coop_rules``: ``epsilon_cap``, ``delta_cap``),
read inside the spending transaction, never from the environment of whoever builds;
each spend records the ε cap it was checked against and the δ it charged. δ adds up
across releases like ε, so it is accounted per member, purpose and year against its
own cap (a spend that would pass it is refused).

A budget belongs to a person, not to a member row: erasing and joining again must not
reset it. So erasure keeps, per streaming account, purpose and year, the ε spent
(``budget_carryover``, under the account's keyed marker and no member id), and what a
member has spent includes what was carried over for the account bound to them. Rows
are kept while their year's budget can still matter, until the end of the next year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tunetrust.coop import audit, governance
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, InputError
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetCap, BudgetCarryover, BudgetSpend, Member

MICRO = 1_000_000


@dataclass(frozen=True, order=True)
class Epsilon:
    """A non-negative privacy amount in micro-ε (exact)."""

    micro: int

    def __post_init__(self) -> None:
        if not isinstance(self.micro, int) or self.micro < 0:
            raise InputError("an epsilon is a number of at least 0")

    @classmethod
    def of(cls, value: float | str | Decimal) -> Epsilon:
        """From a number; rounded up to the next micro-ε (never under-charged)."""
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            raise InputError(f"{value!r} is not a number") from None
        if not d.is_finite() or d < 0:
            raise InputError("an epsilon is a finite number of at least 0")
        return cls(int((d * MICRO).to_integral_value(rounding=ROUND_CEILING)))

    def __add__(self, other: Epsilon) -> Epsilon:
        return Epsilon(self.micro + other.micro)

    def __sub__(self, other: Epsilon) -> Epsilon:
        if other.micro > self.micro:
            raise ConflictError(
                f"cannot take ε {other} from ε {self}: it would go below zero "
                f"(difference {Epsilon(other.micro - self.micro)})"
            )
        return Epsilon(self.micro - other.micro)

    def __str__(self) -> str:
        return f"{Decimal(self.micro) / MICRO:f}".rstrip("0").rstrip(".") or "0"


def cap(session: Session, member_id: int, purpose: str, default: Epsilon) -> Epsilon:
    """The member's yearly cap for a purpose: the cooperative default, or lower if they chose."""
    own = session.scalar(
        select(BudgetCap.micro_epsilon).where(
            BudgetCap.member_id == member_id, BudgetCap.purpose == purpose
        )
    )
    return Epsilon(min(own, default.micro)) if own is not None else default


def spent(session: Session, member_id: int, purpose: str, year: int) -> Epsilon:
    """What releases have spent from the member's budget for a purpose in a year.

    Includes what erased members of the same streaming account had spent (carried over).
    """
    return Epsilon(_used(session, [member_id], purpose, year).get(member_id, 0))


def _used(session: Session, member_ids: list[int], purpose: str, year: int) -> dict[int, int]:
    """Micro-ε spent per member: their own spends plus their account's carried-over ε."""
    used = {
        m: int(total or 0)
        for m, total in session.execute(
            select(BudgetSpend.member_id, func.sum(BudgetSpend.micro_epsilon))
            .where(
                BudgetSpend.purpose == purpose,
                BudgetSpend.year == year,
                BudgetSpend.member_id.in_(member_ids),
            )
            .group_by(BudgetSpend.member_id)
        )
    }
    for m, carried in session.execute(
        select(Member.id, BudgetCarryover.micro_epsilon)
        .join(BudgetCarryover, BudgetCarryover.account_marker == Member.account_marker)
        .where(
            Member.id.in_(member_ids),
            BudgetCarryover.purpose == purpose,
            BudgetCarryover.year == year,
        )
    ):
        used[m] = used.get(m, 0) + int(carried)
    return used


def carry_over(session: Session, member: Member, now: datetime) -> int:
    """At erasure: add the member's spent ε to their account's carry-over; returns rows.

    Nothing is carried for a member with no account bound (nothing could find it again)
    or for years whose budget no longer matters; expired rows are deleted on the way.
    """
    expire(session, now)
    if member.account_marker is None:
        return 0
    totals = session.execute(
        select(
            BudgetSpend.purpose,
            BudgetSpend.year,
            func.sum(BudgetSpend.micro_epsilon),
            func.sum(BudgetSpend.delta),
        )
        .where(BudgetSpend.member_id == member.id, BudgetSpend.year >= now.year - 1)
        .group_by(BudgetSpend.purpose, BudgetSpend.year)
    ).all()
    for purpose, year, total, delta in totals:
        row = session.scalar(
            select(BudgetCarryover).where(
                BudgetCarryover.account_marker == member.account_marker,
                BudgetCarryover.purpose == purpose,
                BudgetCarryover.year == year,
            )
        )
        if row is None:
            session.add(
                BudgetCarryover(
                    account_marker=member.account_marker,
                    purpose=purpose,
                    year=year,
                    micro_epsilon=int(total),
                    delta=float(delta or 0.0),
                )
            )
        else:  # erased before: the spends of this membership are added
            row.micro_epsilon += int(total)
            row.delta = float(row.delta or 0.0) + float(delta or 0.0)
    return len(totals)


def expire(session: Session, now: datetime) -> None:
    """Delete carried-over ε of years before last: no budget that counts reads them."""
    session.execute(delete(BudgetCarryover).where(BudgetCarryover.year < now.year - 1))


def remaining_for(
    session: Session, member_ids: list[int], purpose: str, year: int, default: Epsilon
) -> dict[int, Epsilon]:
    """Cap minus spent for many members at once: three queries, not three per member.

    A member's cap is the cooperative default, or their own lower one; a lowered cap
    already exceeded leaves zero.
    """
    if not member_ids:
        return {}
    caps = {
        m: micro
        for m, micro in session.execute(
            select(BudgetCap.member_id, BudgetCap.micro_epsilon).where(
                BudgetCap.purpose == purpose, BudgetCap.member_id.in_(member_ids)
            )
        )
    }
    used = _used(session, member_ids, purpose, year)
    return {
        m: Epsilon(max(0, min(caps.get(m, default.micro), default.micro) - used.get(m, 0)))
        for m in member_ids
    }


def cooperative_caps(session: Session) -> tuple[Epsilon, float]:
    """The ε and δ caps per member, purpose and year in the rules in force now."""
    rules = governance.rules_of(governance.newest_rules(session))
    return Epsilon.of(rules.epsilon_cap), rules.delta_cap


def delta_spent(
    session: Session, member_ids: list[int], purpose: str, year: int
) -> dict[int, float]:
    """δ charged to each member for a purpose in a year (spends before 0.3: none recorded)."""
    rows = session.execute(
        select(BudgetSpend.member_id, func.sum(BudgetSpend.delta))
        .where(
            BudgetSpend.member_id.in_(member_ids),
            BudgetSpend.purpose == purpose,
            BudgetSpend.year == year,
        )
        .group_by(BudgetSpend.member_id)
    )
    used = {m: float(total or 0.0) for m, total in rows}
    for m, carried in session.execute(  # an erased membership's δ, as for ε (_used)
        select(Member.id, BudgetCarryover.delta)
        .join(BudgetCarryover, BudgetCarryover.account_marker == Member.account_marker)
        .where(
            Member.id.in_(member_ids),
            BudgetCarryover.purpose == purpose,
            BudgetCarryover.year == year,
        )
    ):
        used[m] = used.get(m, 0.0) + float(carried or 0.0)
    return used


def delta_fits(spent: float, delta: float, cap: float) -> bool:
    """Whether ``delta`` more stays within ``cap``; a relative tolerance of 1e-9, since δ
    are floats and a sum may round a hair above."""
    return spent + delta <= cap * (1 + 1e-9)


def remaining(
    session: Session, member_id: int, purpose: str, year: int, default: Epsilon
) -> Epsilon:
    """Cap minus spent for one member."""
    return remaining_for(session, [member_id], purpose, year, default)[member_id]


def spend(
    session: Session,
    *,
    release_id: str,
    member_ids: list[int],
    purpose: str,
    year: int,
    amount: Epsilon,
    delta: float,
) -> None:
    """Charge ``amount`` (and ``delta``) to every member, refusing (nothing charged) if any
    would overdraw either cap of the rules in force."""
    # the members' rows are locked (in id order: no deadlock between two releases) before
    # what is left is read, so a concurrent spend on PostgreSQL re-reads after this one
    # commits; SQLite's BEGIN IMMEDIATE serialises writers already (test_budget_race.py)
    session.execute(
        select(Member.id).where(Member.id.in_(member_ids)).order_by(Member.id).with_for_update()
    )
    default, delta_cap = cooperative_caps(session)
    for left in remaining_for(session, member_ids, purpose, year, default).values():
        if amount > left:
            raise ConflictError(
                f"privacy budget: requested ε {amount}, remaining ε {left}, "
                f"difference ε {Epsilon(amount.micro - left.micro)}"
            )
    used = delta_spent(session, member_ids, purpose, year)
    worst = max(used.values(), default=0.0)
    if not delta_fits(worst, delta, delta_cap):
        raise ConflictError(
            f"privacy budget: requested δ {delta:.3g}, remaining δ "
            f"{max(0.0, delta_cap - worst):.3g} of the cooperative's yearly δ cap {delta_cap:.3g}"
        )
    now = datetime.now(UTC)
    expire(session, now)  # the carry-over's retention is kept by every spend and erasure
    session.add_all(
        BudgetSpend(
            member_id=m,
            purpose=purpose,
            year=year,
            micro_epsilon=amount.micro,
            release_id=release_id,
            at=now,
            cap_micro_epsilon=default.micro,
            delta=delta,
        )
        for m in member_ids
    )


def set_cap(session: Session, member_id: int, purpose: str, value: Epsilon) -> None:
    """A member lowers (or restores) their own cap for a purpose."""
    row = session.scalar(
        select(BudgetCap).where(BudgetCap.member_id == member_id, BudgetCap.purpose == purpose)
    )
    if row is None:
        session.add(BudgetCap(member_id=member_id, purpose=purpose, micro_epsilon=value.micro))
    else:
        row.micro_epsilon = value.micro


def budget_report(home: Home, name: str) -> list[dict[str, str]]:
    """Cap, spent and remaining ε of a member this year, per purpose."""
    member = get_member(home, name)
    year = datetime.now(UTC).year
    with home.sessions() as s:
        default, _ = cooperative_caps(s)
        return [
            {
                "purpose": p,
                "year": str(year),
                "cap": str(cap(s, member.id, p, default)),
                "spent": str(spent(s, member.id, p, year)),
                "remaining": str(remaining(s, member.id, p, year, default)),
            }
            for p in home.settings.purposes
        ]


def set_member_cap(home: Home, name: str, purpose: str, value: float) -> Epsilon:
    """Set a member's own cap (audited): at most the cooperative's, which binds everyone."""
    if purpose not in home.settings.purposes:
        raise InputError(f"unknown purpose {purpose!r}")
    member = get_member(home, name)
    amount = Epsilon.of(value)
    with home.sessions() as s:
        cooperative, _ = cooperative_caps(s)
    if amount > cooperative:
        # it would have no effect (cap() takes the lower), yet read as if it had
        raise InputError(
            f"ε cap for {purpose}: {amount} is above the cooperative's cap of {cooperative}, "
            "which applies to every member; a member can only lower their own cap "
            f"(at most {cooperative})"
        )
    with home.transaction() as s:
        set_cap(s, member.id, purpose, amount)
        audit.record(
            s,
            actor=audit.actor(home),
            action="budget.cap",
            subject=member.pseudonym,
            payload={"purpose": purpose, "cap": str(amount)},
        )
    return amount
