"""Open an export package safely: a zip, a folder, or loose JSON files.

Nothing here interprets a service's content. It lists entries with their names
relative to the package, refuses paths that escape it or files over the limits, and
reads each entry as a stream with hard limits that do not trust sizes declared in
zip headers (zip bombs lie about them). ``jsonlist.py`` reads a JSON list of
objects from such a stream in bounded batches.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tunetrust.errors import ExportError
from tunetrust.settings import ImportLimits

_CHUNK = 1024 * 1024

Opener = Callable[[int], AbstractContextManager[IO[bytes]]]
"""Opens a file of the package as a stream that refuses to go past the given size."""


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: its name inside the package and a way to read it."""

    name: str
    size: int
    _read: Callable[[int], bytes] | None = None
    _head: Callable[[int], bytes] | None = None
    _open: Opener | None = None

    @property
    def basename(self) -> str:
        """The file name without folders."""
        return PurePosixPath(self.name).name

    def open(self, limit: int) -> AbstractContextManager[IO[bytes]]:
        """The file as a stream, refusing more than ``limit`` bytes while it is read."""
        if self._open is not None:
            return self._open(limit)
        assert self._read is not None, "an ExportFile needs a reader or an opener"
        return _opened(io.BytesIO(self._read(limit)))

    def read(self, limit: int) -> bytes:
        """All bytes of the file, refusing more than ``limit`` (for small files only)."""
        if self._open is None and self._read is not None:
            return self._read(limit)
        with self.open(limit) as stream:
            return stream.read()

    def head(self, n: int = 4096) -> bytes:
        """The first ``n`` bytes (fewer for a shorter file), for sniffing content.

        A file of any size has a head: it is read from the start, never to the end.
        """
        if self._head is not None:
            return self._head(n)
        try:
            with self.open(max(self.size, n)) as stream:
                return stream.read(n)
        except ExportError:  # a reader without a head of its own refuses long files
            return b""


@contextmanager
def _opened(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    with stream:
        yield stream


@dataclass(frozen=True)
class Package:
    """An opened export: its files and a digest of their contents."""

    source: str
    files: tuple[ExportFile, ...]


def _safe_name(raw: str, source: str) -> str:
    """Normalise an entry name, refusing absolute paths and ``..`` components."""
    name = raw.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
        raise ExportError(
            source,
            f"the entry {raw!r} points outside the package",
            hint="this is not an export as the service hands it out; download it again",
        )
    return "/".join(p for p in parts if p not in ("", "."))


def _too_large(name: str, limit: int) -> ExportError:
    return ExportError(
        name,
        f"the file is larger than the limit of {limit:,} bytes",
        hint="split the export or raise the limit in the settings",
    )


class _Limited(io.RawIOBase):
    """A stream cut off with an error once more than ``limit`` bytes come out of it.

    ``over`` says why (the size limit, or a zip entry's expansion ratio); ``damaged``
    translates a failing zip stream into an :class:`ExportError`.
    """

    def __init__(
        self,
        stream: IO[bytes],
        limit: int,
        over: Callable[[], ExportError],
        damaged: Callable[[Exception], ExportError] | None = None,
    ) -> None:
        super().__init__()
        self._stream, self._limit, self._over, self._damaged = stream, limit, over, damaged
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._limit + 1 - self._done)
        try:
            chunk = self._stream.read(want) if want > 0 else b""
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            if self._damaged is None:
                raise
            raise self._damaged(exc) from None
        self._done += len(chunk)
        if self._done > self._limit:
            raise self._over()
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._stream.close()
        super().close()

    def buffered(self) -> IO[bytes]:
        """This stream behind a buffer: ``read(n)`` returns ``n`` bytes unless at the end."""
        return io.BufferedReader(self, _CHUNK)


@contextmanager
def open_package(paths: Sequence[Path], limits: ImportLimits) -> Iterator[Package]:
    """Open a zip file, a folder, or loose JSON files as one package."""
    if not paths:
        raise ExportError("(nothing)", "no file or folder given")
    if len(paths) > 1:
        yield _open_loose(list(paths), limits)
        return
    path = paths[0]
    _check_kind(path)
    if path.is_dir():
        yield _open_folder(path, limits)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            yield _open_zip(zf, path.name, limits)
    elif path.suffix.lower() == ".zip":
        raise ExportError(
            path.name, "the zip file is damaged or truncated", hint="download the export again"
        )
    else:
        yield _open_loose([path], limits)


def _check_kind(path: Path) -> None:
    """A given path must be a regular file or a folder: never a link, device or pipe.

    Checked before anything opens the path, so ``/dev/zero`` or a named pipe is refused
    at once instead of being read until memory runs out.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ExportError(str(path), "no such file or folder", hint="check the path") from None
    if stat.S_ISLNK(mode):
        raise ExportError(
            path.name,
            "symbolic links are not followed",
            hint="give the real file or folder the link points to",
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ExportError(
            path.name,
            "is not a regular file (a device, a pipe or a socket)",
            hint="give a zip, a folder or JSON files",
        )


def _open_loose(paths: list[Path], limits: ImportLimits) -> Package:
    files = []
    for p in paths:
        _check_kind(p)
        if p.is_dir():
            raise ExportError(p.name, "is a folder", hint="give one folder alone, or files")
        files.append(_disk_file(p, p.name, limits))
    _check_total(sum(f.size for f in files), ", ".join(p.name for p in paths), limits)
    return Package(source=", ".join(p.name for p in paths), files=tuple(files))


def _check_total(total: int, source: str, limits: ImportLimits) -> None:
    if total > limits.max_total_bytes:
        raise ExportError(
            source,
            f"the export holds {total:,} bytes, over the limit of {limits.max_total_bytes:,}",
            hint="this is not an export as the service hands it out, or raise the limit",
        )


def _check_size(name: str, size: int, limits: ImportLimits) -> None:
    """A file over the per-file limit is refused when the package is opened, read or not."""
    if size > limits.max_file_bytes:
        raise _too_large(name, limits.max_file_bytes)


def _disk_file(p: Path, name: str, limits: ImportLimits) -> ExportFile:
    size = p.stat().st_size
    _check_size(name, size, limits)

    def open_(limit: int) -> AbstractContextManager[IO[bytes]]:
        cap = min(limit, limits.max_file_bytes)  # the file may have grown since
        return _opened(_Limited(p.open("rb"), cap, lambda: _too_large(name, cap)).buffered())

    def head(n: int) -> bytes:
        with p.open("rb") as fh:
            return fh.read(n)

    return ExportFile(name=name, size=size, _head=head, _open=open_)


def _open_folder(root: Path, limits: ImportLimits) -> Package:
    """A folder, under the limits a zip has: file count, per-file size, total size."""
    files: list[ExportFile] = []
    total = 0
    for p in root.rglob("*"):
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise ExportError(
                str(p.relative_to(root)),
                "symbolic links are not followed",
                hint="copy the real files into the folder",
            )
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise ExportError(
                str(p.relative_to(root)),
                "is not a regular file (a device, a pipe or a socket)",
                hint="copy the real files into the folder",
            )
        if len(files) == limits.max_entries:  # counted before the whole tree is listed
            raise ExportError(root.name, f"more than {limits.max_entries:,} files in the folder")
        files.append(_disk_file(p, p.relative_to(root).as_posix(), limits))
        total += files[-1].size
        _check_total(total, root.name, limits)
    return Package(source=root.name, files=tuple(sorted(files, key=lambda f: f.name)))


def _open_zip(zf: zipfile.ZipFile, source: str, limits: ImportLimits) -> Package:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_entries:
        raise ExportError(source, f"the zip holds more than {limits.max_entries:,} entries")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise ExportError(
            source,
            f"the zip unpacks to {declared:,} bytes, over the limit of {limits.max_total_bytes:,}",
            hint="this looks like a zip bomb or not an export",
        )
    files = []
    for info in infos:
        name = _safe_name(info.filename, source)
        if info.flag_bits & 0x1:
            raise ExportError(name, "the entry is encrypted", hint="unpack it yourself first")
        _check_size(name, info.file_size, limits)  # declared; reading checks the real size
        if info.file_size > int(max(info.compress_size, 1) * limits.max_ratio) + _CHUNK:
            # refused before reading when the entry says so (an upload is checked this way
            # before its import is queued); reading enforces the same bound on real bytes
            raise ExportError(
                name,
                f"the entry expands more than {limits.max_ratio:g} times",
                hint="this looks like a zip bomb, not an export",
            )
        files.append(_zip_file(zf, info, name, limits))
    return Package(source=source, files=tuple(files))


def _zip_file(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ImportLimits
) -> ExportFile:
    # The ratio guard uses the real compressed size, and the read limit does not
    # trust info.file_size: the stream is cut off at whichever bound comes first.
    ratio_cap = int(max(info.compress_size, 1) * limits.max_ratio) + _CHUNK

    def over(cap: int) -> ExportError:
        if cap > ratio_cap:
            return ExportError(
                name,
                f"the entry expands more than {limits.max_ratio:g} times",
                hint="this looks like a zip bomb, not an export",
            )
        return _too_large(name, cap)

    def damaged(exc: Exception) -> ExportError:
        return ExportError(
            name, f"the zip entry is damaged ({type(exc).__name__})", hint="download again"
        )

    def open_(limit: int) -> AbstractContextManager[IO[bytes]]:
        cap = min(limit, limits.max_file_bytes)
        try:
            stream = zf.open(info)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise damaged(exc) from None
        limited = _Limited(stream, min(cap, ratio_cap), lambda: over(cap), damaged)
        return _opened(limited.buffered())

    def head(n: int) -> bytes:
        try:
            with zf.open(info) as stream:
                return stream.read(min(n, ratio_cap))
        except (zipfile.BadZipFile, EOFError, OSError):
            return b""  # a damaged entry has nothing to recognise; reading it says why

    return ExportFile(name=name, size=info.file_size, _head=head, _open=open_)


# --- a JSON list of objects, read in bounded batches ----------------------------------
