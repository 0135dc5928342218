"""Export formats: a registry of parsers, one per streaming service.

A parser looks at a file's name and first bytes and says what the file is
(:class:`Classification`); for listening-history files it turns the bytes, streamed
in bounded batches, into a table with :data:`~tunetrust.listens.PARSED_SCHEMA`.
Adding a service is one new module whose parser is added to :func:`registry`.

Each parser also declares its service's facts (:class:`ServiceFacts`): file names,
time resolution, which end reasons mean a skip, when the service started. The parser
normalises its rows with them (:func:`normalise`), so code above ``formats`` reads the
stored ``skipped`` column and never a service's reason codes, and checks that need a
fact about a service (the reason vocabulary, the launch date) ask the parser's facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import IO, Protocol

import pyarrow as pa
import pyarrow.compute as pc

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


@dataclass(frozen=True)
class ServiceFacts:
    """What TuneTrust knows about one service's exports, declared by its parser.

    ``resolution_ms`` maps each ``source`` the parser emits (``extended``, ``account``)
    to the precision of its end times; ``skip_reasons`` are the end reasons that mean
    a skip where an export has no ``skipped`` flag; ``reasons`` is every end or start
    reason the service is known to write. ``name_variants`` says which variants a file
    name promises (the ``file_names`` check); ``numbered_file`` matches a file of a
    numbered sequence (groups ``prefix`` and ``n``) and ``numbered_varies`` the part of
    the prefix that differs between files of one sequence; ``sorted_variants`` are the
    variant prefixes the service writes in time order. ``reexport_shift_ms`` is how far
    two downloads of one account may disagree on a play's end. ``export_hint`` tells a
    member which download of the service to import, in the service's words;
    ``export_steps`` how to ask the service for it, step by step (the web app's guide;
    ``<strong>`` marks the service's own words for a box or a page, and is the only
    markup allowed).
    """

    service: str
    started: datetime  # naive UTC: the public launch, so no play can be older
    resolution_ms: Mapping[str, int]
    skip_reasons: frozenset[str]
    reasons: frozenset[str]
    name_variants: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = ()
    numbered_file: re.Pattern[str] | None = None
    numbered_varies: re.Pattern[str] | None = None
    sorted_variants: tuple[str, ...] = ()
    reexport_shift_ms: int = 0
    export_hint: str = ""
    export_steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.service:
            raise ValueError("a service needs a name")
        if self.started.tzinfo is not None:
            raise ValueError("started is a naive UTC datetime")
        if not self.resolution_ms or any(v <= 0 for v in self.resolution_ms.values()):
            raise ValueError("every source needs a positive time resolution")
        if not self.skip_reasons <= self.reasons:
            raise ValueError("every skip reason must be a known reason")
        if self.reexport_shift_ms < 0:
            raise ValueError("reexport_shift_ms cannot be negative")
        object.__setattr__(self, "resolution_ms", MappingProxyType(dict(self.resolution_ms)))

    def __hash__(self) -> int:  # the mapping is read-only but not hashable
        return hash((self.service, self.started, self.skip_reasons))

    def resolution(self, source: str) -> int:
        """Milliseconds to which end times of ``source`` are known."""
        try:
            return self.resolution_ms[source]
        except KeyError:
            raise ValueError(f"{self.service} declares no time resolution for {source!r}") from None


def normalise(table: pa.Table, facts: ServiceFacts) -> pa.Table:
    """Rows as they are stored: skips and end times made comparable across services.

    ``skipped`` keeps the export's flag; where the export has none it is whether
    ``reason_end`` is one of the service's skip reasons, and stays null when there is
    no reason either (unknown). ``ts`` is floored to its source's resolution.
    ``reason_end`` itself is kept as exported.
    """
    reasons = table["reason_end"]
    by_reason = pc.is_in(reasons, value_set=pa.array(sorted(facts.skip_reasons), pa.string()))
    by_reason = pc.if_else(pc.is_null(reasons), pa.scalar(None, pa.bool_()), by_reason)
    skipped = pc.coalesce(table["skipped"], by_reason)

    sources = sorted(facts.resolution_ms)
    which = pc.index_in(table["source"], value_set=pa.array(sources, pa.string()))
    if which.null_count:
        raise ValueError(f"{facts.service} declares no time resolution for some rows' source")
    res = pc.take(pa.array([facts.resolution_ms[s] for s in sources], pa.int64()), which)
    ms = pc.cast(table["ts"], pa.int64())
    rem = pc.subtract(ms, pc.multiply(pc.divide(ms, res), res))
    rem = pc.if_else(pc.less(rem, 0), pc.add(rem, res), rem)  # floor, also before 1970
    ts = pc.cast(pc.subtract(ms, rem), table.schema.field("ts").type)

    out = table.set_column(
        table.schema.get_field_index("skipped"), table.schema.field("skipped"), skipped
    )
    return out.set_column(out.schema.get_field_index("ts"), out.schema.field("ts"), ts)


class Parser(Protocol):
    """One streaming service's export format.

    ``parse`` returns rows already :func:`normalise`-d with the parser's ``facts``.
    """

    service: str
    facts: ServiceFacts

    def classify(self, file: ExportFile) -> Classification | None:
        """Say what ``file`` is, or ``None`` when it is not this service's."""

    def parse(self, file: ExportFile, data: bytes | IO[bytes], kind: str) -> Parsed:
        """Parse a listens file (raises ExportError naming file, row and field).

        ``data`` is the file's bytes or a stream of them; a parser reads a stream to
        its end in bounded batches (:func:`~tunetrust.formats.jsonlist.json_list`).
        """

    def username(self, file: ExportFile, data: bytes) -> str | None:
        """The account username in an identity file, if there is one."""


def registry() -> list[Parser]:
    """The parsers, in the order they are asked."""
    from tunetrust.formats.spotify import SpotifyParser

    return [SpotifyParser()]


def service_facts(service: str, parsers: list[Parser] | None = None) -> ServiceFacts:
    """The facts of ``service``, as its parser declares them."""
    for parser in parsers if parsers is not None else registry():
        if parser.service == service:
            return parser.facts
    raise LookupError(f"no parser for the service {service!r}")


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
    "ServiceFacts",
    "classify",
    "normalise",
    "registry",
    "service_facts",
]
