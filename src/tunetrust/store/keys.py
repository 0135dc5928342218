"""The cooperative master key and the secrets it wraps (AES-256-GCM).

The master key comes from ``TUNETRUST_MASTER_KEY`` (urlsafe base64 of 32 bytes) or
from ``<home>/master.key`` (mode 0600). It never encrypts data itself: it wraps
other keys and secrets, so rotating it rewraps a few small values (envelope
encryption). A wrong key fails authentication and gives a clear error, never garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tunetrust.errors import SetupError
from tunetrust.store import durable

KEY_BYTES = 32
_NONCE_BYTES = 12

# Keys derived from the cooperative secret (store/home.py ACCOUNT_HASH_SECRET), one
# per use, so that no value keyed by one can be tested against another (HKDF info)
NAME_KEY = b"tunetrust/name-key"  # keys members.name_key: names cannot be tested offline
ACCOUNT_MARKER = b"tunetrust/account-marker"  # keys members/budget_carryover.account_marker
FINGERPRINT_KEY = b"tunetrust/fingerprint"  # keys the listening fingerprints (fingerprints)


def derive(secret: bytes, use: bytes) -> bytes:
    """A 256-bit key for one ``use``, derived from a cooperative secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=use).derive(secret)


def member_key_context(pseudonym: str) -> bytes:
    """What a member's wrapped data key is bound to."""
    return b"member-key:" + pseudonym.encode()


def member_name_context(pseudonym: str) -> bytes:
    """What a member's sealed name is bound to (a sealed name moved to another row fails)."""
    return b"member-name:" + pseudonym.encode()


def keyed_digest(secret: bytes, text: str) -> str:
    """HMAC-SHA256 of ``text`` under a cooperative secret, as hex."""
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    """A key as urlsafe base64 text."""
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str, origin: str) -> bytes:
    """Parse a key written by :func:`encode_key`; ``origin`` names where it came from."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise SetupError(f"the master key in {origin} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise SetupError(f"the master key in {origin} must be {KEY_BYTES} bytes")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file readable by its owner only (0600), refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(key) + "\n")
        fh.flush()
        os.fsync(fh.fileno())  # before anything is wrapped under it
    durable.sync_dir(path.parent)


def load_master_key(env_value: str | None, key_file: Path) -> bytes:
    """The master key from the environment, else from the key file."""
    if env_value:
        return decode_key(env_value, "TUNETRUST_MASTER_KEY")
    if not key_file.exists():
        raise SetupError(f"no master key: set TUNETRUST_MASTER_KEY or restore {key_file}")
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        raise SetupError(f"{key_file} is readable by others (mode {mode:o}); chmod 600 it")
    return decode_key(key_file.read_text(), str(key_file))


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``, bound to ``context`` (nonce ‖ ciphertext)."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def unseal(key: bytes, sealed: bytes, context: bytes, what: str) -> bytes:
    """Decrypt what :func:`seal` wrote; a wrong key or altered bytes is a SetupError."""
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise SetupError(
            f"cannot unlock {what}: wrong master key, or the stored value was altered"
        ) from None
