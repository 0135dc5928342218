"""The de-identified events store: Parquet, one partition folder per pseudonym.

Layout::

    <home>/events/pseudonym=<p>/<contribution>.parquet

Each partition holds exactly one current file, named in the member's metadata row
(``members.events_file``). An import writes the member's whole new partition as
``<contribution>.parquet.tmp``, commits the metadata, then renames the file and
removes the previous one. :meth:`EventsStore.recover` finishes or undoes whatever
a killed process left, so readers only ever see committed files. The files live in an
object store (``store/objects.py``) under keys ``pseudonym=<p>/<file>``; engines read
them by :meth:`EventsStore.uri`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tunetrust.listens import CONTENT_FIELDS
from tunetrust.store.objects import STAGED, ObjectStore, join

EVENTS_SCHEMA = pa.schema(
    [
        *CONTENT_FIELDS,
        pa.field("country", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("contribution", pa.string(), nullable=False),
    ]
)
"""One de-identified listen. Documented column by column in docs/events.md."""


class EventsStore:
    """Parquet partitions in an object store (keys ``pseudonym=<p>/<file>``)."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def key(pseudonym: str, file: str = "") -> str:
        """The key of a member's file (or, without a file, their partition's prefix)."""
        return join(f"pseudonym={pseudonym}", file)

    def partition(self, pseudonym: str) -> Path:
        """The folder of one member's listens (a local store's; engines take :meth:`uri`)."""
        return Path(self.objects.uri(self.key(pseudonym)))

    def _current(self, pseudonym: str, file: str) -> str:
        """The key of a committed file: its own, or still its staged one if a writer was
        killed between commit and publish (readers never wait for a writer to settle it)."""
        key = self.key(pseudonym, file)
        staged = key + STAGED
        return staged if not self.objects.exists(key) and self.objects.exists(staged) else key

    def uri(self, pseudonym: str, file: str) -> str:
        """Where an engine reads a member's committed file."""
        return self.objects.uri(self._current(pseudonym, file))

    def path(self, pseudonym: str, file: str) -> Path:
        """Where a committed file is, as a local path (see :meth:`uri`)."""
        return Path(self.uri(pseudonym, file))

    def read(
        self, pseudonym: str, file: str | None, *, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """A member's current listens (an empty table when there are none); ``columns``:
        only those (a reader that needs a few skips decoding the rest)."""
        if file is None:
            empty = EVENTS_SCHEMA.empty_table()
            return empty.select(list(columns)) if columns is not None else empty
        chosen = list(columns) if columns is not None else None
        return pq.read_table(self.uri(pseudonym, file), schema=EVENTS_SCHEMA, columns=chosen)

    def count(self, pseudonym: str, file: str | None) -> int:
        """How many listens a member has, from the Parquet footer (no data is read)."""
        if file is None:
            return 0
        with self.objects.open(self._current(pseudonym, file)) as source:
            return int(pq.ParquetFile(source).metadata.num_rows)

    def stage(self, pseudonym: str, file: str, table: pa.Table) -> str:
        """Write a member's next partition file under its staged key, durably; its URI."""
        key = self.key(pseudonym, file)
        with self.objects.stage(key) as sink:
            pq.write_table(table.cast(EVENTS_SCHEMA), sink, compression="zstd")
        return self.objects.uri(key + STAGED)

    def publish(self, pseudonym: str, file: str) -> None:
        """Make a staged file current and remove every other file of the partition."""
        key = self.key(pseudonym, file)
        if self.objects.exists(key + STAGED):
            self.objects.publish(key)
        for other in self.objects.list(self.key(pseudonym)):
            if other != key:
                self.objects.delete(other)

    def discard(self, pseudonym: str, file: str) -> None:
        """Remove a staged file that will not be committed."""
        self.objects.discard(self.key(pseudonym, file))

    def recover(self, current: Mapping[str, str | None]) -> int:
        """Settle partitions after a crash; ``current`` maps pseudonym → committed file.

        Only partitions of known pseudonyms are touched, so a home opened with the
        wrong database loses nothing. Returns how many files were fixed.
        """
        fixed = 0
        found: dict[str, list[str]] = {}
        for key in self.objects.list():
            folder, _, name = key.partition("/")
            pseudonym = folder.removeprefix("pseudonym=")
            if name and "/" not in name and pseudonym in current:
                found.setdefault(pseudonym, []).append(name)
        for pseudonym, names in sorted(found.items()):
            keep = current[pseudonym]
            for name in names:
                if keep is not None and name == keep + STAGED:
                    self.objects.publish(self.key(pseudonym, keep))  # committed, not renamed
                    fixed += 1
                elif name != keep:
                    self.objects.delete(self.key(pseudonym, name))  # never committed, or old
                    fixed += 1
        return fixed  # a folder left empty went with its last file (LocalObjectStore)
