"""Release engines behind one protocol (``base.Engine``); DuckDB is the embedded default."""

from tunetrust.releases.engines.base import AGGREGATE_COLUMNS, WITNESS, Engine
from tunetrust.releases.engines.duckdb import DuckDBEngine

__all__ = ["AGGREGATE_COLUMNS", "WITNESS", "DuckDBEngine", "Engine"]
