"""Open an export package safely: a zip, a folder, or loose JSON files.

Nothing here interprets content. It lists entries with their names relative to the
package, refuses paths that escape it, and reads each entry with hard limits that
do not trust sizes declared in zip headers (zip bombs lie about them).
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tunetrust.errors import ExportError
from tunetrust.settings import ImportLimits

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: its name inside the package and a way to read it."""

    name: str
    size: int
    _read: Callable[[int], bytes]
    _head: Callable[[int], bytes] | None = None

    @property
    def basename(self) -> str:
        """The file name without folders."""
        return PurePosixPath(self.name).name

    def read(self, limit: int) -> bytes:
        """All bytes of the file, refusing more than ``limit``."""
        return self._read(limit)

    def head(self, n: int = 4096) -> bytes:
        """The first ``n`` bytes (fewer for a shorter file), for sniffing content.

        A file of any size has a head: it is read from the start, never to the end.
        """
        if self._head is not None:
            return self._head(n)
        try:
            return self._read(n)
        except ExportError:  # a reader without a head of its own refuses long files
            return b""


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


def _read_limited(open_stream: Callable[[], object], name: str, limit: int) -> bytes:
    """Read a stream to its end, stopping with an error once ``limit`` bytes pass."""
    out = bytearray()
    with open_stream() as stream:  # type: ignore[attr-defined]
        while True:
            chunk = stream.read(min(_CHUNK, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            if len(out) > limit:
                raise ExportError(
                    name,
                    f"the file is larger than the limit of {limit:,} bytes",
                    hint="split the export or raise the limit in the settings",
                )
    return bytes(out)


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


def _disk_file(p: Path, name: str, limits: ImportLimits) -> ExportFile:
    def read(limit: int) -> bytes:
        return _read_limited(lambda: p.open("rb"), name, min(limit, limits.max_file_bytes))

    def head(n: int) -> bytes:
        with p.open("rb") as fh:
            return fh.read(n)

    return ExportFile(name=name, size=p.stat().st_size, _read=read, _head=head)


def _open_folder(root: Path, limits: ImportLimits) -> Package:
    files = []
    for p in sorted(root.rglob("*")):
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
        files.append(_disk_file(p, p.relative_to(root).as_posix(), limits))
        if len(files) > limits.max_entries:
            raise ExportError(root.name, f"more than {limits.max_entries:,} files in the folder")
    _check_total(sum(f.size for f in files), root.name, limits)
    return Package(source=root.name, files=tuple(files))


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
        files.append(_zip_file(zf, info, name, limits))
    return Package(source=source, files=tuple(files))


def _zip_file(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ImportLimits
) -> ExportFile:
    # The ratio guard uses the real compressed size, and the read limit does not
    # trust info.file_size: the stream is cut off at whichever bound comes first.
    ratio_cap = int(max(info.compress_size, 1) * limits.max_ratio) + _CHUNK

    def read(limit: int) -> bytes:
        cap = min(limit, limits.max_file_bytes)
        try:
            data = _read_limited(lambda: zf.open(info), name, min(cap, ratio_cap))
        except ExportError:
            if cap > ratio_cap:
                raise ExportError(
                    name,
                    f"the entry expands more than {limits.max_ratio:g} times",
                    hint="this looks like a zip bomb, not an export",
                ) from None
            raise
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ExportError(
                name, f"the zip entry is damaged ({type(exc).__name__})", hint="download again"
            ) from None
        return data

    def head(n: int) -> bytes:
        try:
            with zf.open(info) as stream:
                return stream.read(min(n, ratio_cap))
        except (zipfile.BadZipFile, EOFError, OSError):
            return b""  # a damaged entry has nothing to recognise; reading it says why

    return ExportFile(name=name, size=info.file_size, _read=read, _head=head)
