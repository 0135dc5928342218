"""Idempotency keys: a POST sent twice (or twice at once) with the same key has one effect.

The first request with a key claims it (a row in ``running`` state, committed before the
work starts); the work's response is kept with it (``done``). A repeat with the same
key and the same request gets that response again; one sent while the first is still
running is told so (the caller retries); the same key with a different request is
refused. Keys are scoped to who sent them and kept for ``KEEP``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tunetrust.errors import ConflictError, InputError
from tunetrust.store.home import Home
from tunetrust.store.models import IdempotencyKey

KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=15)  # a key "running" this long: its process died
MAX_KEY = 200


@dataclass(frozen=True)
class Replay:
    """The response kept for a key, to send again."""

    status: int
    body: Any


class KeyInUse(ConflictError):
    """The first request with this key is still being served."""


def fingerprint(method: str, route: str, body: bytes) -> str:
    """What makes two requests "the same": method, route and body."""
    h = hashlib.sha256()
    for part in (method.encode(), route.encode(), body):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def claim(home: Home, principal: str, key: str, print_: str) -> Replay | None:
    """Claim ``key`` for this request (None: go ahead) or the kept response to replay.

    Raises ``KeyInUse`` while the first is running and ``InputError`` when the key was
    used for a different request.
    """
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InputError(f"Idempotency-Key: 1 to {MAX_KEY} printable characters")
    now = datetime.now(UTC)
    try:
        with home.transaction() as s:
            s.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
            s.add(
                IdempotencyKey(
                    principal=principal,
                    key=key,
                    fingerprint=print_,
                    state="running",
                    created_at=now,
                )
            )
        return None
    except IntegrityError:
        pass
    with home.sessions() as s:
        row = s.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.principal == principal, IdempotencyKey.key == key
            )
        )
    if row is None:  # finished and abandoned in between: the caller may simply retry
        raise KeyInUse("a request with this Idempotency-Key has just ended; send it again")
    if row.fingerprint != print_:
        raise InputError(
            "Idempotency-Key: this key was used for a different request; use a new key",
            fields=[("Idempotency-Key", "used for a different request")],
        )
    if row.state != "done" or row.status is None:
        if _utc(row.created_at) < now - ABANDONED:  # the process serving it died
            abandon(home, principal, key)
            raise KeyInUse("a request with this Idempotency-Key was cut off; send it again")
        raise KeyInUse("a request with this Idempotency-Key is still being served; retry soon")
    return Replay(status=row.status, body=row.body)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def finish(home: Home, principal: str, key: str, status: int, body: Any) -> None:
    """Keep the response sent for ``key``."""
    with home.transaction() as s:
        row = s.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.principal == principal, IdempotencyKey.key == key
            )
        )
        if row is not None:
            row.state, row.status, row.body = "done", status, body


def abandon(home: Home, principal: str, key: str) -> None:
    """Free ``key`` after the server failed (the work did not happen): a retry runs it."""
    with home.transaction() as s:
        s.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.principal == principal, IdempotencyKey.key == key
            )
        )


__all__ = ["KEEP", "KeyInUse", "Replay", "abandon", "claim", "fingerprint", "finish"]
