"""The de-identified events store: Parquet, one partition folder per pseudonym.

Layout::

    <home>/events/pseudonym=<p>/<contribution>.parquet

Each partition holds exactly one current file, named in the member's metadata row
(``members.events_file``). An import writes the member's whole new partition as
``<contribution>.parquet.tmp``, commits the metadata, then renames the file and
removes the previous one. :meth:`EventsStore.recover` finishes or undoes whatever
a killed process left, so readers only ever see committed files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tunetrust.listens import CONTENT_FIELDS
from tunetrust.store import durable, private

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

_TMP = ".tmp"


class EventsStore:
    """Parquet partitions under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def partition(self, pseudonym: str) -> Path:
        """The folder of one member's listens."""
        return self.root / f"pseudonym={pseudonym}"

    def path(self, pseudonym: str, file: str) -> Path:
        """Where a committed file is: its name, or still its staged name if a writer was
        killed between commit and publish (readers never wait for a writer to settle it)."""
        path = self.partition(pseudonym) / file
        staged = path.with_name(file + _TMP)
        return staged if not path.exists() and staged.exists() else path

    def read(self, pseudonym: str, file: str | None) -> pa.Table:
        """A member's current listens (an empty table when there are none)."""
        if file is None:
            return EVENTS_SCHEMA.empty_table()
        return pq.read_table(self.path(pseudonym, file), schema=EVENTS_SCHEMA)

    def count(self, pseudonym: str, file: str | None) -> int:
        """How many listens a member has, from the Parquet footer (no data is read)."""
        if file is None:
            return 0
        return int(pq.ParquetFile(self.path(pseudonym, file)).metadata.num_rows)

    def stage(self, pseudonym: str, file: str, table: pa.Table) -> Path:
        """Write a member's next partition file under a temporary name, synced to disk."""
        folder = private.mkdir(self.partition(pseudonym))
        tmp = private.create(folder / (file + _TMP))
        pq.write_table(table.cast(EVENTS_SCHEMA), tmp, compression="zstd")
        durable.sync_file(tmp)
        # the staged name (and a new partition folder) survive a power cut after the commit
        durable.sync_dir(folder)
        durable.sync_dir(self.root)
        return tmp

    def publish(self, pseudonym: str, file: str) -> None:
        """Make a staged file current and remove every other file of the partition."""
        folder = self.partition(pseudonym)
        tmp = folder / (file + _TMP)
        if tmp.exists():
            os.replace(tmp, folder / file)
        for other in folder.iterdir():
            if other.name != file:
                other.unlink()
        durable.sync_dir(folder)

    def discard(self, pseudonym: str, file: str) -> None:
        """Remove a staged file that will not be committed."""
        (self.partition(pseudonym) / (file + _TMP)).unlink(missing_ok=True)

    def recover(self, current: Mapping[str, str | None]) -> int:
        """Settle partitions after a crash; ``current`` maps pseudonym → committed file.

        Only partitions of known pseudonyms are touched, so a home opened with the
        wrong database loses nothing. Returns how many files were fixed.
        """
        fixed = 0
        if not self.root.exists():
            return 0
        for folder in self.root.iterdir():
            pseudonym = folder.name.removeprefix("pseudonym=")
            if not folder.is_dir() or pseudonym not in current:
                continue
            keep = current[pseudonym]
            for path in sorted(folder.iterdir()):
                if keep is not None and path.name == keep + _TMP:
                    os.replace(path, folder / keep)  # committed but not yet renamed
                    fixed += 1
                elif path.name != keep:
                    path.unlink()  # staged and never committed, or superseded
                    fixed += 1
            if keep is None and not any(folder.iterdir()):
                folder.rmdir()
        return fixed
