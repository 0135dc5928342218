"""The engine seam: what every release engine computes, whatever runs it.

An engine turns a spec and the included members' events into *bounded true
aggregates*, one row per partition, before any noise; ``duckdb.py`` is the embedded
one and its docstring writes out the bounding argument every engine must keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pyarrow as pa

from tunetrust.releases.spec import ReleaseSpec

AGGREGATE_COLUMNS = ("listeners", "plays", "minutes", "skips")
# Columns named "_…" are the engine's own: carried through noise untouched, never released.
WITNESS = "_witness"  # one member who contributed to the partition (their hashed id)


class Engine(Protocol):
    """Computes bounded true aggregates for a spec over the given member files."""

    name: str

    def aggregate(self, spec: ReleaseSpec, files: list[Path], salt: str) -> pa.Table:
        """Rows: the spec's group keys (engine-encoded, ``k_<key>``), then listeners, plays,
        minutes, skips, and any engine-private ``_…`` columns."""

    def label(self, spec: ReleaseSpec, files: list[Path], table: pa.Table) -> pa.Table:
        """``table`` (rows of ``aggregate``, or fewer) with string labels for its keys."""
