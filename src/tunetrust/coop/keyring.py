"""The cooperative's keys: members' data keys, sealed names, secrets, master key rotation.

A member's name is sealed with their data key, so erasing the key (crypto-shredding)
leaves nothing readable of the name whatever the database keeps on disk (PostgreSQL
keeps dead rows and WAL until ``VACUUM FULL``). Cooperative secrets are random and
sealed by the master key; rotating the master key rewraps them, never changes them,
nor the keys derived from them (for names' keys and accounts' markers).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust import faults
from tunetrust.coop import audit
from tunetrust.errors import ConflictError, SetupError
from tunetrust.store import durable, keys
from tunetrust.store.home import ACCOUNT_HASH_SECRET, NEW_KEY_SUFFIX, Home
from tunetrust.store.models import Member, Secret


def _context(member: Member) -> bytes:
    return keys.member_key_context(member.pseudonym)


def seal_new_data_key(home: Home, member: Member) -> bytes:
    """Give ``member`` a fresh data key, sealed by the master key; returns the key."""
    key = keys.new_key()
    member.data_key_wrapped = keys.seal(home.master_key, key, _context(member))
    return key


def derived_key(home: Home, use: bytes) -> bytes:
    """A key for one use (``keys.NAME_KEY``, ``keys.ACCOUNT_MARKER``), from the coop secret."""
    return keys.derive(home.secret(ACCOUNT_HASH_SECRET), use)


def seal_name(key: bytes, member: Member, name: str) -> None:
    """Store ``name`` sealed with the member's data key ``key``."""
    member.name_sealed = keys.seal(key, name.encode(), keys.member_name_context(member.pseudonym))


def reveal(home: Home, member: Member) -> Member:
    """Attach the member's unsealed name to the row (none once erased); returns the row."""
    name = None
    if member.name_sealed is not None and member.data_key_wrapped is not None:
        key = keys.unseal(
            home.master_key, member.data_key_wrapped, _context(member), "a member's data key"
        )
        name = keys.unseal(
            key, member.name_sealed, keys.member_name_context(member.pseudonym), "a member's name"
        ).decode()
    member.show_name(name)
    return member


def account_marker(home: Home, account_hash: str) -> str:
    """The marker of a streaming account under which erased members' spent ε is kept.

    An HMAC of the account's keyed hash under a key of its own: a copy of the database
    without the master key cannot compute it from an old ``account_hash``.
    """
    return keys.keyed_digest(derived_key(home, keys.ACCOUNT_MARKER), account_hash)


def bind_account(home: Home, member: Member, account_hash: str) -> None:
    """Bind a streaming account to ``member``: its keyed hash and its marker.

    The marker lets the budget find the ε an erased member of the same account spent.
    """
    member.account_hash = account_hash
    member.account_marker = account_marker(home, account_hash)


def data_key(home: Home, session: Session, member: Member) -> bytes:
    """The member's data key (created for members from before the vault existed)."""
    if member.erased_at is not None:
        raise ConflictError("this member was erased; their data key no longer exists")
    if member.data_key_wrapped is None:
        seal_new_data_key(home, member)
        session.flush()
    assert member.data_key_wrapped is not None
    return keys.unseal(
        home.master_key, member.data_key_wrapped, _context(member), "a member's data key"
    )


def rotate_master_key(home: Home, *, actor: str, new_key: bytes | None = None) -> int:
    """Rewrap every member key and secret under a new master key; returns keys rewrapped.

    With a key file: the new key is written beside it first, the database rewrapped in
    one transaction, then the file switched — a crash at any point leaves a home that
    opens with one consistent key (see ``store.home._recover_rotation``). With
    ``TUNETRUST_MASTER_KEY``, the caller supplies ``new_key`` and switches the variable.
    """
    from_env = bool(home.settings.master_key)
    if from_env and new_key is None:
        raise SetupError(
            "the master key comes from TUNETRUST_MASTER_KEY: set TUNETRUST_NEW_MASTER_KEY "
            "to the new key (tunetrust key new prints one) and run this again"
        )
    new_key = new_key or keys.new_key()
    old_key = home.master_key
    pending = home.settings.key_file.with_name(home.settings.key_file.name + NEW_KEY_SUFFIX)
    with home.lock():
        if not from_env:
            pending.unlink(missing_ok=True)
            keys.write_key_file(pending, new_key)
            faults.reach("rotate.key_written")
        count = 0
        with home.transaction() as s:
            for member in s.scalars(select(Member).where(Member.data_key_wrapped.is_not(None))):
                assert member.data_key_wrapped is not None
                plain = keys.unseal(old_key, member.data_key_wrapped, _context(member), "a key")
                member.data_key_wrapped = keys.seal(new_key, plain, _context(member))
                count += 1
            for secret in s.scalars(select(Secret)):
                plain = keys.unseal(old_key, secret.wrapped, secret.name.encode(), "a secret")
                secret.wrapped = keys.seal(new_key, plain, secret.name.encode())
                count += 1
            audit.record(
                s,
                actor=actor,
                action="key.rotate",
                subject="cooperative",
                payload={"keys_rewrapped": count},
            )
        faults.reach("rotate.committed")
        if not from_env:
            durable.replace(pending, home.settings.key_file)
        home.__dict__["master_key"] = new_key
    return count
