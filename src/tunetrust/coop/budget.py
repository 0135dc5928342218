"""Privacy budgets: each member's ε cap per purpose and calendar year, spent in one place.

Amounts are exact: :class:`Epsilon` holds whole micro-units (ε × 10⁶), so sums and
differences never drift and a balance can never go below zero unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tunetrust.coop import audit
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, InputError
from tunetrust.store.home import Home
from tunetrust.store.models import BudgetCap, BudgetSpend

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
    """What releases have spent from the member's budget for a purpose in a year."""
    total = session.scalar(
        select(func.coalesce(func.sum(BudgetSpend.micro_epsilon), 0)).where(
            BudgetSpend.member_id == member_id,
            BudgetSpend.purpose == purpose,
            BudgetSpend.year == year,
        )
    )
    return Epsilon(int(total or 0))


def remaining_for(
    session: Session, member_ids: list[int], purpose: str, year: int, default: Epsilon
) -> dict[int, Epsilon]:
    """Cap minus spent for many members at once: two grouped queries, not two per member.

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
    return {
        m: Epsilon(max(0, min(caps.get(m, default.micro), default.micro) - used.get(m, 0)))
        for m in member_ids
    }


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
    default: Epsilon,
) -> None:
    """Charge ``amount`` to every member, refusing (nothing charged) if any would overdraw."""
    for left in remaining_for(session, member_ids, purpose, year, default).values():
        if amount > left:
            raise ConflictError(
                f"privacy budget: requested ε {amount}, remaining ε {left}, "
                f"difference ε {Epsilon(amount.micro - left.micro)}"
            )
    now = datetime.now(UTC)
    session.add_all(
        BudgetSpend(
            member_id=m,
            purpose=purpose,
            year=year,
            micro_epsilon=amount.micro,
            release_id=release_id,
            at=now,
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
    default = Epsilon.of(home.settings.epsilon_cap)
    with home.sessions() as s:
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
    cooperative = Epsilon.of(home.settings.epsilon_cap)
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
