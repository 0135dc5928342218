"""Durability at publish points: a file, and the folder entry naming it, reach the disk.

A rename is only durable once the folder holding it is synced, and a staged file is
only safe to name in a committed row once both its bytes and its folder entry are on
disk. Without that a power cut right after a commit can leave a row naming a file that
never reached the disk (a member's events, a raw export), or member keys wrapped under
a master key whose file was lost.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_file(path: Path) -> None:
    """Flush a file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(path: Path) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` and make the rename itself durable."""
    os.replace(src, dst)
    sync_dir(dst.parent)
