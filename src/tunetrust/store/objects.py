"""The storage seam: one object-store interface under the events store, vault and releases.

Keys are ``/``-separated relative names (``events/pseudonym=<p>/<c>.parquet``), never
paths, so the same code runs over a local folder today and an S3 bucket (by URL) later.
A store hands an engine a *URI* for a key that DuckDB's ``read_parquet`` and pyarrow
read directly: for :class:`LocalObjectStore` the absolute path as a string, for S3
``s3://bucket/prefix/key``.

The write protocol every caller follows (docs/architecture.md, "One write protocol"):

1. :meth:`ObjectStore.stage` writes ``<key>.tmp`` and makes it durable;
2. the caller commits the metadata naming ``<key>``;
3. :meth:`ObjectStore.publish` renames ``<key>.tmp`` to ``<key>`` atomically.

Recovery compares the keys :meth:`ObjectStore.list` returns with the committed rows.
A release, several files published together, is staged under one prefix and published
with :meth:`ObjectStore.publish_tree` (locally, one folder rename). :meth:`put` is
stage and publish at once, for files nothing else names.

:class:`LocalObjectStore` keeps the home's custody rules (folders 0700, files 0600
before a byte is written, ``store/private.py``) and its durability (file and folder
entries fsynced at publish points, ``store/durable.py``). Like an object store, a
prefix exists while something is under it: deleting a folder's last object removes the
emptied folders up to the store's root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from tunetrust.errors import InputError
from tunetrust.store import durable, private

STAGED = ".tmp"
"""The suffix of a staged object: ``<key>.tmp`` until :meth:`ObjectStore.publish`."""


def check_key(key: str, *, prefix: bool = False) -> str:
    """A key as the stores take it: relative, ``/``-separated, no ``.``/``..`` parts."""
    parts = key.split("/") if key else []
    if (not parts and not prefix) or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise InputError(f"not a storage key: {key!r}")
    return key


def join(*parts: str) -> str:
    """Keys joined with ``/`` (empty parts skipped)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class ObjectStore(Protocol):
    """Objects under ``/``-separated keys: put, get, list, delete, atomic publish."""

    def scope(self, prefix: str) -> ObjectStore:
        """The same store seen from below ``prefix`` (keys relative to it)."""
        ...

    def uri(self, key: str) -> str:
        """Where an engine reads ``key`` (DuckDB ``read_parquet``, pyarrow)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix``, staged ones included, sorted (relative to the store)."""
        ...

    def get(self, key: str) -> bytes:
        """An object's bytes (``FileNotFoundError`` if there is none)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """An object opened for streaming reads (``FileNotFoundError`` if there is none)."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically and durably (stage, then publish)."""
        ...

    def stage(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Write ``<key>.tmp``; durable when the block ends, removed if it raises."""
        ...

    def publish(self, key: str) -> None:
        """Make ``<key>.tmp`` the object ``key``, atomically and durably."""
        ...

    def discard(self, key: str) -> None:
        """Remove ``<key>.tmp`` if it is there."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object ``key`` if it is there."""
        ...

    def publish_tree(self, staged: str, prefix: str) -> None:
        """Move everything under ``staged`` to ``prefix`` at once (``prefix`` must be free)."""
        ...

    def delete_tree(self, prefix: str) -> None:
        """Remove everything under ``prefix``."""
        ...


class LocalObjectStore:
    """An :class:`ObjectStore` over a local folder; keys are paths below it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The local path of a key or prefix (this store only; engines get :meth:`uri`)."""
        check_key(key, prefix=True)
        return self.root.joinpath(*key.split("/")) if key else self.root

    def _object(self, key: str) -> Path:
        return self.path(check_key(key))

    def scope(self, prefix: str) -> LocalObjectStore:
        """The same folder seen from below ``prefix``."""
        return LocalObjectStore(self.path(prefix))

    def uri(self, key: str) -> str:
        """The absolute path, as a string."""
        return str(self.path(key).absolute())

    def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""
        return self._object(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Every file below ``prefix`` as a key, sorted."""
        top = self.path(prefix)
        if not top.is_dir():
            return []
        found = []
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            rel = Path(folder).relative_to(self.root).as_posix()
            found += [name if rel == "." else f"{rel}/{name}" for name in files]
        return sorted(found)

    def get(self, key: str) -> bytes:
        """A file's bytes."""
        return self._object(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        """A file opened for reading."""
        return self._object(key).open("rb")

    def put(self, key: str, data: bytes) -> None:
        """Write ``<key>.tmp``, fsync it, rename it to ``key``."""
        with self.stage(key) as sink:
            sink.write(data)
        self.publish(key)

    @contextmanager
    def _staging(self, key: str) -> Iterator[BinaryIO]:
        target = self._object(key)
        tmp = target.with_name(target.name + STAGED)
        created = _mkdirs(target.parent)
        try:
            with private.create(tmp).open("wb") as sink:
                yield sink
                sink.flush()
                os.fsync(sink.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # the staged name, and any folder made for it, survive a power cut after the commit
        durable.sync_dir(target.parent)
        for folder in created:
            durable.sync_dir(folder.parent)

    def stage(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Write ``<key>.tmp`` (0600 from the start); file and folder entries fsynced."""
        return self._staging(key)

    def publish(self, key: str) -> None:
        """Rename ``<key>.tmp`` over ``key`` and sync the folder."""
        target = self._object(key)
        durable.replace(target.with_name(target.name + STAGED), target)

    def discard(self, key: str) -> None:
        """Remove ``<key>.tmp`` if it is there."""
        self.delete(key + STAGED)

    def delete(self, key: str) -> None:
        """Remove a file, then any folder that leaves empty (up to the root)."""
        path = self._object(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def publish_tree(self, staged: str, prefix: str) -> None:
        """Rename the folder ``staged`` to ``prefix`` (one atomic rename) and sync it."""
        target = self.path(prefix)
        _mkdirs(target.parent)
        durable.replace(self.path(staged), target)

    def delete_tree(self, prefix: str) -> None:
        """Remove a folder and everything in it (nothing if it is not there)."""
        path = self.path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): folders above are not empty either
                return
            folder = folder.parent


def _mkdirs(folder: Path) -> list[Path]:
    """Make ``folder`` and missing parents private (0700); the folders made, top first."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        private.mkdir(f)
    return list(reversed(missing))
