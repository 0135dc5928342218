"""The vault: members' raw exports, encrypted with each member's own data key.

Envelope encryption: a member's 256-bit data key is sealed by the cooperative master
key (``members.data_key_wrapped``). Rotating the master key rewraps those few bytes;
vault files are never re-encrypted. Erasing a member destroys the wrapped key, so any
copy of their vault files — a backup included — can no longer be read.

File format (``<home>/vault/<pseudonym>/<contribution>.bin``): ``TTV1``, a 7-byte
random nonce prefix, then the export in 1 MiB chunks, each sealed with AES-256-GCM
under nonce = prefix ‖ chunk counter (4 bytes) ‖ last-chunk flag (1 byte) and the
contribution id as associated data (the STREAM construction): chunks cannot be
reordered, dropped, swapped between files, or the file truncated, without the
decryption failing.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tunetrust.errors import SetupError
from tunetrust.store.objects import STAGED, ObjectStore, join

MAGIC = b"TTV1"
CHUNK = 1024 * 1024
_TAG = 16


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(key: bytes, context: bytes, source: BinaryIO, sink: BinaryIO) -> int:
    """Encrypt ``source`` into ``sink``; returns the plaintext size."""
    aead, prefix = AESGCM(key), os.urandom(7)
    sink.write(MAGIC + prefix)
    counter, size = 0, 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if len(chunk) == CHUNK else b""
        last = not following
        sink.write(aead.encrypt(_nonce(prefix, counter, last), chunk, context))
        size += len(chunk)
        if last:
            return size
        chunk, counter = following, counter + 1


def decrypt_stream(key: bytes, context: bytes, source: BinaryIO) -> Iterator[bytes]:
    """The plaintext chunks of a vault file; any tampering or a wrong key raises SetupError."""
    header = source.read(len(MAGIC) + 7)
    if header[: len(MAGIC)] != MAGIC or len(header) != len(MAGIC) + 7:
        raise SetupError("a vault file is not in the vault format (damaged?)")
    aead, prefix = AESGCM(key), header[len(MAGIC) :]
    counter = 0
    sealed = source.read(CHUNK + _TAG)
    while True:
        following = source.read(CHUNK + _TAG) if len(sealed) == CHUNK + _TAG else b""
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, counter, last), sealed, context)
        except InvalidTag:
            raise SetupError(
                "cannot decrypt a vault file: wrong key, or the file was altered or truncated"
            ) from None
        if last:
            return
        sealed, counter = following, counter + 1


def raw_package(paths: list[Path]) -> tuple[BinaryIO, str]:
    """The export as one stream: a given zip or JSON file as is, else a zip of the files."""
    if len(paths) == 1 and paths[0].is_file():
        suffix = ".zip" if zipfile.is_zipfile(paths[0]) else paths[0].suffix or ".bin"
        return paths[0].open("rb"), suffix
    # a folder is zipped on disk past 8 MiB: never the whole export in memory
    buf = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (returned)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in paths:
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            for f in files:
                zf.write(f, f.relative_to(p).as_posix() if p.is_dir() else f.name)
    buf.seek(0)
    return buf, ".zip"  # type: ignore[return-value]  # a binary file object


class Vault:
    """Encrypted files in an object store (keys ``<pseudonym>/<file>``), staged and
    published like events."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def folder(self, pseudonym: str) -> Path:
        """One member's vault folder (a local store's)."""
        return Path(self.objects.uri(pseudonym))

    def stage(self, pseudonym: str, name: str, key: bytes, source: BinaryIO) -> int:
        """Encrypt ``source`` to ``<name>.tmp`` (durable); returns the plaintext size."""
        with self.objects.stage(join(pseudonym, name)) as sink:
            return encrypt_stream(key, name.encode(), source, sink)

    def publish(self, pseudonym: str, name: str) -> None:
        """Make a staged file permanent."""
        self.objects.publish(join(pseudonym, name))

    def discard(self, pseudonym: str, name: str) -> None:
        """Remove a staged file that will not be committed."""
        self.objects.discard(join(pseudonym, name))

    def read(self, pseudonym: str, name: str, key: bytes) -> Iterator[bytes]:
        """Decrypted chunks of one stored export."""
        stored = join(pseudonym, name)
        if not self.objects.exists(stored) and self.objects.exists(stored + STAGED):
            stored += STAGED  # committed; a killed writer did not rename it
        with self.objects.open(stored) as fh:
            yield from decrypt_stream(key, name.encode(), fh)

    def remove(self, pseudonym: str, name: str) -> None:
        """Delete one stored export (after its metadata no longer names it)."""
        self.objects.delete(join(pseudonym, name))

    def remove_member(self, pseudonym: str) -> None:
        """Delete a member's whole vault folder."""
        self.objects.delete_tree(pseudonym)

    def recover(self, committed: Mapping[str, set[str]]) -> int:
        """Finish or undo what a killed process left; ``committed``: pseudonym → files.

        Folders of pseudonyms not in ``committed`` are left alone (a home opened with
        the wrong database loses nothing); erased members are passed with no files.
        """
        fixed = 0
        for stored in self.objects.list():
            pseudonym, _, file = stored.partition("/")
            if not file or "/" in file or pseudonym not in committed:
                continue
            keep, name = committed[pseudonym], file.removesuffix(STAGED)
            if file.endswith(STAGED) and name in keep:
                self.objects.publish(join(pseudonym, name))
            elif file not in keep:
                self.objects.delete(stored)  # a folder left empty goes with it
            else:
                continue
            fixed += 1
        return fixed
