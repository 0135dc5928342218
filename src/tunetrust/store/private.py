"""Custody of the home's files: folders 0700, files 0600, whatever the caller's umask.

Every file and folder the cooperative keeps in its home is created with its final mode
before a byte is written, so nothing personal is readable by another account, not even
for a moment. Writers that take a path (pyarrow, zipfile, SQLite) are handed a file that
:func:`create` made empty and private: opening an existing file truncates it but keeps
its mode. A home written by an older version (folders 0755, files 0644) is tightened
once, the first time it is opened (:func:`tighten`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tunetrust.errors import SetupError

FILE_MODE = 0o600
DIR_MODE = 0o700


def mkdir(path: Path) -> Path:
    """A folder, and any missing parent, that only the owner can open (no error if it exists)."""
    if path.is_dir():
        return path
    if not path.parent.exists():
        mkdir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return path  # made by a concurrent writer
    # the umask can only take bits away; this restores exactly 0700 on the new, empty folder
    os.chmod(path, DIR_MODE)
    return path


def create(path: Path) -> Path:
    """An empty file (truncated if it exists) that only the owner can read or write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode; the umask cuts a new one
    finally:
        os.close(fd)
    return path


def create_new(path: Path) -> bool:
    """Create ``path`` empty and private unless it exists; whether it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def tighten(home: Path) -> int:
    """Make private a home that an older version left open to others; returns paths changed.

    Call it on a cooperative home only: it walks the whole folder. A home whose own
    folder is 0700 costs one ``stat`` (its contents were written private, or tightened
    before). Otherwise every folder becomes 0700 and every file 0600, symbolic links
    skipped, never followed; the home folder goes last, so an interrupted walk runs
    again on the next open.
    """
    if stat.S_IMODE(home.stat().st_mode) == DIR_MODE:
        return 0
    changed = 0
    for folder, dirs, files in os.walk(home):
        for name, mode in [*((d, DIR_MODE) for d in dirs), *((f, FILE_MODE) for f in files)]:
            changed += _chmod(Path(folder) / name, mode)
    return changed + _chmod(home, DIR_MODE, follow=True)  # the home path may be a link


def _chmod(path: Path, mode: int, *, follow: bool = False) -> int:
    try:
        st = path.stat() if follow else path.lstat()
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
            return 0
        os.chmod(path, mode)
    except FileNotFoundError:
        return 0  # a staged file another process just published or removed
    except OSError as exc:
        raise SetupError(
            f"cannot make {path} private ({exc.strerror}); the home must belong to the "
            "account that runs TuneTrust"
        ) from None
    return 1
