"""The command line's side of the service API: who acts, and how results print as JSON."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunetrust.services.models import Actor
    from tunetrust.store.home import Home


def steward(home: Home) -> Actor:
    """The command line acts as the steward named in the settings (TUNETRUST_ACTOR)."""
    from tunetrust.services.models import Actor

    return Actor.steward(home.settings.actor)


def emit(kind: str, value: Any) -> None:
    """Print a result as the ``--json`` output ``kind`` (docs/schemas/<kind>.schema.json)."""
    import orjson

    from tunetrust.services.outputs import to_json

    sys.stdout.write(orjson.dumps(to_json(kind, value), option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")
