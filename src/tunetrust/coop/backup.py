"""Backup and restore of a whole cooperative home, encrypted with a passphrase.

Losing ``master.key`` makes every vault file unreadable, and losing the home loses the
cooperative; a backup keeps both. It is a consistent snapshot taken under the home's
write lock (every writer of files holds it): the metadata database copied with
SQLite's online backup API (one read transaction's view, so nothing half-committed),
the ``events/``, ``vault/`` and ``releases/`` folders, ``master.key``, and the audit
head as of that database copy (the ``audit.head`` witness). A key given in
``TUNETRUST_MASTER_KEY`` is not in the home, so not in the backup: the backup says
so, and the steward keeps the key. A PostgreSQL database cannot be copied from here
consistently with the files: back it up with ``pg_dump`` and back up the files and
key with ``files_only``.

File format::

    header = "TTBK" ‖ format version (1 byte) ‖ KDF id (1 byte; 1 = Argon2id)
             ‖ memory KiB ‖ passes ‖ lanes (3 × uint32, big-endian) ‖ salt (16 bytes)
    check  = HMAC-SHA256(check key, header)                          (32 bytes)
    body   = the vault's STREAM format (store/vault.py: AES-256-GCM over 1 MiB
             chunks, the last one flagged) of a tar stream, with header ‖ check as
             associated data of every chunk

Argon2id (RFC 9106) stretches the passphrase and the random salt into 64 bytes: a
check key and a body key. The check tells a wrong passphrase from a damaged file
before anything is decrypted; the header cannot be altered without failing it; and a
flipped, dropped, reordered or cut-off chunk fails the body's authentication. The
tar holds ``backup.json`` (what the backup is) first, then ``home/…``, then
``digests.json`` (SHA-256 of every file).

Restore refuses a folder that is not new or empty, refuses KDF parameters beyond
:data:`MAX_MEMORY_KIB` before spending any memory, decrypts chunk by chunk (each
authenticated before use) into a private staging folder beside the target, checks
every file against ``digests.json``, opens the restored home and verifies its audit
chain and master key, and only then renames the staging folder into place. A backup
that fails anywhere leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

import orjson
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from tunetrust._version import __version__
from tunetrust.coop import audit
from tunetrust.errors import ConflictError, InputError, SetupError
from tunetrust.settings import Settings
from tunetrust.store import durable, private
from tunetrust.store.home import ACCOUNT_HASH_SECRET, WITNESS, Home, open_home
from tunetrust.store.vault import CHUNK, decrypt_stream, encrypt_stream

MAGIC = b"TTBK"
FORMAT = 1
KDF_ARGON2ID = 1
_HEADER = struct.Struct(">4sBBIII16s")
_CHECK = 32
MIN_PASSPHRASE = 12
MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB: a header asking for more is refused unread
DATABASE = "tunetrust.db"
FOLDERS = ("events", "vault", "releases")
_TOP = {DATABASE, WITNESS, "master.key", *FOLDERS}  # what home/ may hold in a backup


@dataclass(frozen=True)
class Kdf:
    """Argon2id's cost; the defaults are RFC 9106's second recommended option.

    64 MiB, 3 passes, 4 lanes: about half a second, and within a small server's (or a
    single-board computer's) memory. The parameters are stored in the header, so a
    later version can raise them and still read older backups.
    """

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    def __post_init__(self) -> None:
        ok = (
            1 <= self.lanes <= 64
            and 1 <= self.iterations <= 64
            and 8 * self.lanes <= self.memory_kib <= MAX_MEMORY_KIB
        )
        if not ok:
            raise InputError(
                "Argon2id parameters out of range: lanes 1 to 64, passes 1 to 64, "
                f"memory from 8 KiB per lane to {MAX_MEMORY_KIB // 1024 // 1024} GiB"
            )

    def keys(self, passphrase: str, salt: bytes) -> tuple[bytes, bytes]:
        """The check key and the body key for a passphrase and salt."""
        # one spelling per passphrase, whichever way a keyboard composes accents
        secret = unicodedata.normalize("NFC", passphrase).encode()
        out = Argon2id(
            salt=salt,
            length=64,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(secret)
        return out[:32], out[32:]


def check_passphrase(passphrase: str) -> str:
    """Refuse a passphrase too short to protect a whole cooperative."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise InputError(
            f"a backup passphrase needs at least {MIN_PASSPHRASE} characters "
            "(several unrelated words are easiest to type and remember)"
        )
    return passphrase


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


# --- writing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    """What ``backup`` wrote."""

    path: Path
    files: int
    bytes: int
    sha256: str
    audit_head: tuple[int, str] | None  # the head in the copied database; None: not copied
    database_included: bool
    key_included: bool


class _HashingWriter:
    """A sink that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.sink.write(data)


class _HashingReader:
    """A source that hashes what is read from it (tarfile reads exactly a file's size)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.sha = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        return data


def _snapshot(home: Home) -> tuple[bytes, tuple[int, str]]:
    """The SQLite database as one transaction sees it, and the audit head in it."""
    raw = home.engine.raw_connection()
    try:
        copy = sqlite3.connect(":memory:")
        try:
            # the online backup API copies a consistent view, write-ahead log included,
            # into memory: no plaintext copy of the metadata ever lands on a disk
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
            row = copy.execute("SELECT seq, entry_hash FROM audit_head WHERE id = 1").fetchone()
            data = copy.serialize()
        finally:
            copy.close()
    finally:
        raw.close()
    head = (int(row[0]), str(row[1])) if row else (0, audit.GENESIS)
    return data, head


def _files(home: Path) -> Iterator[tuple[str, Path]]:
    """The stores' committed files (staged ``.tmp`` ones are left out), in order."""
    for folder in FOLDERS:
        root = home / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(home)
            staged = path.name.endswith(".tmp") or any(p.startswith(".tmp") for p in rel.parts)
            if path.is_file() and not path.is_symlink() and not staged:
                yield rel.as_posix(), path


def _write_tar(
    sink: BinaryIO, home: Home, about: dict[str, Any], database: bytes | None
) -> dict[str, dict[str, Any]]:
    """The backup's tar stream; returns each file's digest and size."""
    digests: dict[str, dict[str, Any]] = {}
    now = int(datetime.now(UTC).timestamp())

    def info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
        entry = tarfile.TarInfo(name)
        entry.size, entry.mode, entry.mtime = size, private.FILE_MODE, int(mtime)
        return entry

    def put_bytes(name: str, data: bytes, listed: bool = True) -> None:
        tar.addfile(info(name, len(data), now), io.BytesIO(data))
        if listed:
            digests[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def put_file(name: str, path: Path) -> None:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            reader = _HashingReader(fh)
            tar.addfile(info(name, st.st_size, st.st_mtime), cast(IO[bytes], reader))
        digests[name] = {"sha256": reader.sha.hexdigest(), "bytes": st.st_size}

    root = home.settings.home
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        put_bytes("backup.json", _json(about), listed=False)
        if database is not None:
            put_bytes(f"home/{DATABASE}", database)
            seq, head = about["audit_head"]["seq"], about["audit_head"]["hash"]
            put_bytes(f"home/{WITNESS}", f"{seq} {head}\n".encode())
        elif (root / WITNESS).is_file():
            put_file(f"home/{WITNESS}", root / WITNESS)
        if about["key_included"]:
            put_file("home/master.key", home.settings.key_file)
        for name, path in _files(root):
            put_file(f"home/{name}", path)
        put_bytes("digests.json", _json(digests), listed=False)
    return digests


def _encrypt_tar(
    sink: BinaryIO, key: bytes, context: bytes, home: Home, about: dict[str, Any], db: bytes | None
) -> dict[str, dict[str, Any]]:
    """Write the tar stream through the vault's STREAM encryption (a pipe, a thread)."""
    read_fd, write_fd = os.pipe()
    result: dict[str, dict[str, Any]] = {}
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb") as pipe:
                result.update(_write_tar(pipe, home, about, db))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    producer = threading.Thread(target=produce, name="tunetrust-backup-tar", daemon=True)
    producer.start()
    try:
        # closing our end (also on error) makes a still-writing producer stop (EPIPE)
        with open(read_fd, "rb") as pipe:
            encrypt_stream(key, context, pipe, sink)
    finally:
        producer.join()
    if failure:  # the tar stopped early: what was encrypted is incomplete
        raise failure[0]
    return result


def backup_home(
    home: Home, out: Path, passphrase: str, *, files_only: bool = False, kdf: Kdf | None = None
) -> BackupReport:
    """Write an encrypted, consistent backup of the whole home to ``out`` (atomically)."""
    check_passphrase(passphrase)
    root = home.settings.home.resolve()
    out = out.absolute()
    if out.resolve().is_relative_to(root):
        raise InputError("write the backup outside the home: a backup kept in it is lost with it")
    with_database = not files_only
    if with_database and home.engine.dialect.name != "sqlite":
        raise InputError(
            "this home's metadata database is PostgreSQL, which a backup cannot copy "
            "consistently from here: back it up with pg_dump (pg_dump --format=custom), and "
            "back up the home's files and key with: tunetrust backup --files-only --out FILE"
        )
    home.secret(ACCOUNT_HASH_SECRET)  # the key in use opens this home: else no backup
    kdf = kdf or Kdf()
    salt = os.urandom(16)
    header = _HEADER.pack(
        MAGIC, FORMAT, KDF_ARGON2ID, kdf.memory_kib, kdf.iterations, kdf.lanes, salt
    )
    check_key, body_key = kdf.keys(passphrase, salt)
    context = header + hmac.digest(check_key, header, "sha256")
    key_included = not home.settings.master_key
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with home.lock():  # no writer of files (import, erasure, release, rotation) runs now
            database, head = _snapshot(home) if with_database else (None, None)
            about = {
                "format": "tunetrust-backup",
                "version": FORMAT,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "software": __version__,
                "database_included": database is not None,
                "key_included": key_included,
                "audit_head": {"seq": head[0], "hash": head[1]} if head else None,
            }
            with private.create(tmp).open("wb") as fh:
                sink = _HashingWriter(fh)
                sink.write(context)
                digests = _encrypt_tar(
                    cast(BinaryIO, sink), body_key, context, home, about, database
                )
                fh.flush()
                os.fsync(fh.fileno())
        report = BackupReport(
            out,
            len(digests),
            sink.size,
            sink.sha.hexdigest(),
            head,
            database is not None,
            key_included,
        )
        with home.transaction() as s:
            audit.record(
                s,
                actor=audit.actor(home),
                action="home.backup",
                subject="cooperative",
                payload={
                    "sha256": report.sha256,
                    "files": report.files,
                    "audit_head": about["audit_head"],
                    "database_included": report.database_included,
                    "key_included": key_included,
                },
            )
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written is left behind
        raise
    durable.replace(tmp, out)
    return report


# --- restoring --------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    """What ``restore`` put in place."""

    home: Path
    files: int
    created: str
    audit_head: tuple[int, str] | None  # verified in the restored home; None: no database
    database_included: bool
    key_included: bool
    key_checked: bool  # the master key (restored or from the environment) opens the home


def _damaged() -> InputError:
    return InputError(
        "the backup was altered, damaged or cut short: it does not decrypt (nothing was restored)"
    )


class _ChunkReader(io.RawIOBase):
    """Decrypted chunks as a readable stream; a chunk that fails authentication stops it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.left:
            try:
                self.left = next(self.chunks)
            except StopIteration:
                return 0
            except SetupError:
                raise _damaged() from None
        n = min(len(buffer), len(self.left))
        buffer[:n] = self.left[:n]
        self.left = self.left[n:]
        return n


def _read_header(fh: BinaryIO, passphrase: str) -> tuple[bytes, bytes]:
    """Check the header and the passphrase; returns the body key and its context."""
    header = fh.read(_HEADER.size)
    if len(header) < _HEADER.size or header[:4] != MAGIC:
        raise InputError("this file is not a TuneTrust backup")
    _, version, kdf_id, memory, passes, lanes, salt = _HEADER.unpack(header)
    if version != FORMAT or kdf_id != KDF_ARGON2ID:
        raise InputError(
            f"this backup is in format {version}, which this version of TuneTrust cannot "
            "read; restore it with the version that wrote it"
        )
    try:
        kdf = Kdf(memory_kib=memory, iterations=passes, lanes=lanes)
    except InputError:
        raise InputError(
            "the backup's header is damaged (its key parameters are out of range)"
        ) from None
    check = fh.read(_CHECK)
    check_key, body_key = kdf.keys(passphrase, salt)
    if len(check) != _CHECK or not hmac.compare_digest(
        check, hmac.digest(check_key, header, "sha256")
    ):
        raise InputError("wrong passphrase for this backup (or its header was altered)")
    return body_key, header + check


def _target_path(staging: Path, name: str) -> Path:
    """Where a tar member goes; anything outside the home's known parts is refused."""
    rel = PurePosixPath(name.removeprefix("home/"))
    if (
        not name.startswith("home/")
        or rel.is_absolute()
        or ".." in rel.parts
        or not rel.parts
        or rel.parts[0] not in _TOP
    ):
        raise InputError("the backup holds a file TuneTrust does not write (nothing was restored)")
    return staging.joinpath(*rel.parts)


def _extract(chunks: Iterator[bytes], staging: Path) -> tuple[dict[str, Any], int]:
    """Unpack the decrypted tar into ``staging``; returns backup.json and the file count."""
    about: dict[str, Any] | None = None
    listed: dict[str, Any] | None = None
    found: dict[str, dict[str, Any]] = {}
    stream = io.BufferedReader(_ChunkReader(chunks), buffer_size=CHUNK)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for entry in tar:
                source = tar.extractfile(entry) if entry.isfile() else None
                if source is None:
                    raise InputError("the backup holds something other than files")
                if entry.name == "backup.json" and about is None and not found:
                    about = orjson.loads(source.read())
                elif entry.name == "digests.json" and about is not None and listed is None:
                    listed = orjson.loads(source.read())
                elif about is not None and listed is None:
                    path = _target_path(staging, entry.name)
                    private.mkdir(path.parent)
                    sha = hashlib.sha256()
                    with private.create(path).open("wb") as sink:
                        while block := source.read(CHUNK):
                            sha.update(block)
                            sink.write(block)
                        sink.flush()
                        os.fsync(sink.fileno())
                    found[entry.name] = {"sha256": sha.hexdigest(), "bytes": entry.size}
                else:
                    raise InputError("the backup's contents are out of order")
    except tarfile.TarError:
        raise _damaged() from None
    if about is None or listed is None or about.get("format") != "tunetrust-backup":
        raise _damaged()
    if found != listed:
        raise InputError(
            "the backup's files do not match its list of digests (nothing was restored)"
        )
    for folder in FOLDERS:
        private.mkdir(staging / folder)
    return about, len(found)


def _verify(
    settings: Settings, staging: Path, about: dict[str, Any]
) -> tuple[tuple[int, str] | None, bool]:
    """Open the staged home: its audit chain must verify and its master key open it."""
    if not about["database_included"]:
        return None, False
    staged = settings.replace(home=staging, database_url=None)
    home = open_home(staged)
    try:
        verdict = audit.verify_home(home)
        if not verdict.ok:
            raise SetupError(f"the restored audit chain does not hold: {verdict.problem}")
        head = about["audit_head"]
        if head and (verdict.entries, verdict.head) != (head["seq"], head["hash"]):
            raise SetupError("the restored audit chain does not end where the backup's did")
        checked = about["key_included"] or bool(settings.master_key)
        if checked:
            home.secret(ACCOUNT_HASH_SECRET)  # a wrong key says "wrong master key"
        return (verdict.entries, verdict.head), checked
    finally:
        home.close()


def restore_home(settings: Settings, backup: Path, passphrase: str) -> RestoreReport:
    """Restore a backup into ``settings.home``, which must be new or empty."""
    target = settings.home.absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target} is not empty: restore into a new or empty folder")
    if not backup.is_file():
        raise InputError(f"no backup file at {backup}")
    target.parent.mkdir(parents=True, exist_ok=True)  # outside the home: the caller's
    with backup.open("rb") as fh:
        body_key, context = _read_header(fh, passphrase)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
        try:
            about, files = _extract(decrypt_stream(body_key, context, fh), staging)
            if about["database_included"] and settings.database_url:
                raise InputError(
                    "this backup holds the home's SQLite database: restore it without "
                    "--database-url (TUNETRUST_DATABASE_URL)"
                )
            head, checked = _verify(settings, staging, about)
            try:
                os.replace(staging, target)  # an empty target folder is replaced too
            except OSError:
                raise ConflictError(
                    f"{target} is not empty: restore into a new or empty folder"
                ) from None
            durable.sync_dir(target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return RestoreReport(
        target,
        files,
        str(about["created"]),
        head,
        bool(about["database_included"]),
        bool(about["key_included"]),
        checked,
    )


__all__ = [
    "BackupReport",
    "Kdf",
    "RestoreReport",
    "backup_home",
    "check_passphrase",
    "restore_home",
]
