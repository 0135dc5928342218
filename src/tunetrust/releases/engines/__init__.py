"""Release engines behind one protocol (``base.Engine``); DuckDB is the embedded default.

``engine_for(name)`` builds the engine ``Settings.engine`` names. Engines are imported
only when chosen, so a heavy or optional one (Spark, an extra) costs nothing unless used.
"""

from __future__ import annotations

import importlib
from typing import Any

from tunetrust.errors import InputError
from tunetrust.releases.engines.base import AGGREGATE_COLUMNS, WITNESS, Engine, Source

ENGINES = {"duckdb": ("tunetrust.releases.engines.duckdb", "DuckDBEngine")}
"""Engine name → (module, class): the registry ``engine_for`` reads."""


def engine_for(name: str) -> Engine:
    """The release engine called ``name`` (``InputError`` naming the choices if unknown)."""
    try:
        module, cls = ENGINES[name]
    except KeyError:
        raise InputError(
            f"unknown release engine {name!r}; choose from {', '.join(sorted(ENGINES))}"
        ) from None
    engine: Engine = getattr(importlib.import_module(module), cls)()
    return engine


def __getattr__(name: str) -> Any:
    if name == "DuckDBEngine":  # re-exported lazily: DuckDB is imported when first asked for
        from tunetrust.releases.engines.duckdb import DuckDBEngine

        return DuckDBEngine
    raise AttributeError(name)


__all__ = [
    "AGGREGATE_COLUMNS",
    "ENGINES",
    "WITNESS",
    "DuckDBEngine",
    "Engine",
    "Source",
    "engine_for",
]
