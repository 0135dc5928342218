"""The ledger: double-entry movements of money, one place for all of it.

Amounts are integers in the currency's minor unit as ISO 4217 defines it (the
``iso4217`` package ships the standard's table): cents for EUR, yen for JPY, fils
(1/1000) for KWD. ``format_amount`` prints them with the currency's own decimals.

Accounts: ``buyer:<id>``, ``treasury``, ``member:<pseudonym>`` (pseudonymous, so an
erased member's lines stay without naming anyone). Every transaction's entries sum to
zero per currency; balances are kept beside the entries and ``verify`` recomputes both.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import iso4217
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust.errors import InputError
from tunetrust.store.home import Home
from tunetrust.store.models import LedgerBalance, LedgerEntry, LedgerTransaction

TREASURY = "treasury"
MAX_AMOUNT = 10**15 - 1  # minor units: far above any sale, far below the database's limit
_NOT_A_CURRENCY = "the currency is an ISO 4217 code in use, such as EUR, USD, GBP or JPY"


def minor_unit(currency: str) -> int:
    """Decimals of the currency's minor unit (ISO 4217): EUR 2, JPY 0, KWD 3."""
    try:
        exponent = iso4217.Currency(currency).exponent
    except ValueError:
        raise InputError(_NOT_A_CURRENCY) from None
    if exponent is None:  # XAU, XDR, XTS, XXX …
        raise InputError(_NOT_A_CURRENCY)
    return exponent


def currency_code(text: str) -> str:
    """An ISO 4217 code in use with a minor unit, in upper case; anything else is refused."""
    code = text.strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise InputError(_NOT_A_CURRENCY)
    minor_unit(code)
    return code


def check_amount(value: int, currency: str) -> int:
    """A positive whole amount in the currency's minor unit (``currency`` already checked)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
        raise InputError(
            f"an amount is a whole number of the currency's minor unit from 1 to "
            f"{MAX_AMOUNT:,} (for {currency}: {format_amount(1, currency)} to "
            f"{format_amount(MAX_AMOUNT, currency)})"
        )
    return value


def format_amount(value: int, currency: str) -> str:
    """``250000, "EUR"`` → ``2,500.00 EUR``; ``250000, "JPY"`` → ``250,000 JPY``. Exact."""
    try:
        digits = minor_unit(currency)
    except InputError:  # an older version let any three letters in: show what is stored
        return f"{value:,} {currency} (minor units of an unknown currency)"
    sign = "-" if value < 0 else ""
    whole, part = divmod(abs(value), 10**digits)
    return (
        f"{sign}{whole:,}.{part:0{digits}d} {currency}" if digits else f"{sign}{whole:,} {currency}"
    )


def split_cents(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` minor units by weight, largest remainder first; sums exactly.

    Ties in remainders go to the earlier key in sorted order; zero total weight splits
    evenly. Nobody outside ``weights`` ever receives anything.
    """
    if total < 0:
        raise InputError("cannot split a negative amount")
    if not weights:
        if total:
            raise InputError("no one to pay")
        return {}
    keys = sorted(weights)
    w = {k: max(0.0, float(weights[k])) for k in keys}
    if sum(w.values()) <= 0:
        w = dict.fromkeys(keys, 1.0)
    whole = sum(w.values())
    exact = {k: total * w[k] / whole for k in keys}
    shares = {k: int(exact[k]) for k in keys}
    left = total - sum(shares.values())
    for k in sorted(keys, key=lambda k: (-(exact[k] - shares[k]), keys.index(k)))[:left]:
        shares[k] += 1
    return shares


def entries_digest(entries: list[tuple[str, str, int]]) -> str:
    """SHA-256 of a transaction's (account, currency, minor units) entries, sorted: the
    audit log records it with each sale, so an entry moved or relabelled later shows."""
    rows = sorted([account, currency, int(v)] for account, currency, v in entries if v)
    return hashlib.sha256(orjson.dumps(rows)).hexdigest()


def post(
    session: Session,
    *,
    memo: str,
    currency: str,
    entries: dict[str, int],
    request_id: str | None = None,
) -> LedgerTransaction:
    """Record one balanced transaction (entries: account → signed minor units)."""
    minor_unit(currency)
    if sum(entries.values()) != 0:
        raise InputError(
            f"a transaction must balance; these entries sum to {sum(entries.values())}"
        )
    tx = LedgerTransaction(at=datetime.now(UTC), memo=memo, request_id=request_id)
    session.add(tx)
    session.flush()
    for account, cents in entries.items():
        if cents == 0:
            continue
        session.add(
            LedgerEntry(transaction_id=tx.id, account=account, currency=currency, cents=cents)
        )
        bal = session.scalar(
            select(LedgerBalance)
            .where(LedgerBalance.account == account, LedgerBalance.currency == currency)
            .with_for_update()
        )
        if bal is None:
            session.add(LedgerBalance(account=account, currency=currency, cents=cents))
        else:
            bal.cents += cents
    return tx


@dataclass(frozen=True)
class LedgerCheck:
    """The result of ``ledger verify``."""

    ok: bool
    transactions: int
    problems: list[str]


def verify(home: Home) -> LedgerCheck:
    """Every transaction balances; every stored balance equals the sum of its entries."""
    problems: list[str] = []
    with home.sessions() as s:
        per_tx: dict[tuple[int, str], int] = defaultdict(int)
        per_account: dict[tuple[str, str], int] = defaultdict(int)
        for e in s.scalars(select(LedgerEntry)):
            per_tx[(e.transaction_id, e.currency)] += e.cents
            per_account[(e.account, e.currency)] += e.cents
        n = len(list(s.scalars(select(LedgerTransaction.id))))
        for (tx, cur), total in sorted(per_tx.items()):
            if total:
                problems.append(
                    f"transaction {tx} does not balance in {cur} "
                    f"(its entries sum to {format_amount(total, cur)})"
                )
        stored = {(b.account, b.currency): b.cents for b in s.scalars(select(LedgerBalance))}
    for key in sorted(set(stored) | set(per_account)):
        if stored.get(key, 0) != per_account.get(key, 0):
            problems.append(
                f"balance of {key[0]} in {key[1]} is {format_amount(stored.get(key, 0), key[1])}, "
                f"its entries sum to {format_amount(per_account.get(key, 0), key[1])}"
            )
    return LedgerCheck(not problems, n, problems)


def balances(home: Home) -> list[LedgerBalance]:
    """Every account's balance."""
    with home.sessions() as s:
        return list(s.scalars(select(LedgerBalance).order_by(LedgerBalance.account)))


def statement(home: Home, account: str) -> list[tuple[datetime, str, str, int]]:
    """An account's lines: when, what, currency, amount in its minor unit."""
    with home.sessions() as s:
        return [
            (tx.at, tx.memo, e.currency, e.cents)
            for e, tx in s.execute(
                select(LedgerEntry, LedgerTransaction)
                .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
                .where(LedgerEntry.account == account)
                .order_by(LedgerTransaction.id)
            )
        ]
