"""Export formats: a registry of parsers, one per streaming service.

A parser looks at a file's name and first bytes and says what the file is
(:class:`Classification`); for listening-history files it turns the bytes into a
table with :data:`~tunetrust.listens.PARSED_SCHEMA`. Adding a service is one
new module whose parser is appended to :data:`PARSERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import pyarrow as pa

from tunetrust.formats.package import ExportFile
from tunetrust.listens import PARSED_SCHEMA


class Role(StrEnum):
    """What the importer does with a file."""

    LISTENS = "listens"  # parsed into listens
    IDENTITY = "identity"  # read only for the account username, kept as a keyed hash
    IGNORED = "ignored"  # recognised, never opened


@dataclass(frozen=True)
class Classification:
    """What a file is, in the words of the summary."""

    service: str
    kind: str
    role: Role
    note: str = ""
    by_content: bool = False  # the name was unfamiliar; the first bytes said what it is


@dataclass(frozen=True)
class Parsed:
    """A parsed listening-history file."""

    table: pa.Table
    variant: str
    usernames: frozenset[str] = frozenset()


class Parser(Protocol):
    """One streaming service's export format."""

    service: str

    def classify(self, file: ExportFile) -> Classification | None:
        """Say what ``file`` is, or ``None`` when it is not this service's."""

    def parse(self, file: ExportFile, data: bytes, kind: str) -> Parsed:
        """Parse a listens file (raises ExportError naming file, row and field)."""

    def username(self, file: ExportFile, data: bytes) -> str | None:
        """The account username in an identity file, if there is one."""


def registry() -> list[Parser]:
    """The parsers, in the order they are asked."""
    from tunetrust.formats.spotify import SpotifyParser

    return [SpotifyParser()]


def classify(file: ExportFile, parsers: list[Parser]) -> tuple[Parser, Classification] | None:
    """The first parser that recognises ``file``, with its classification."""
    for parser in parsers:
        found = parser.classify(file)
        if found is not None:
            return parser, found
    return None


__all__ = [
    "PARSED_SCHEMA",
    "Classification",
    "Parsed",
    "Parser",
    "Role",
    "classify",
    "registry",
]
