"""TuneTrust: a self-hostable, privacy-first data cooperative for listening histories.

Map of the package (layers, lowest first; docs/architecture.md has the contract):

    errors.py         the one exception tree
    settings.py       typed settings, passed down explicitly
    faults.py         named crash points for tests that kill real processes
    listens.py        the parsed-listen schema every parser produces
    names.py          member names and the key look-alikes share
    formats/          what exports look like
      package.py        open a zip / folder / loose files safely (zip bombs, traversal)
      spotify/          every Spotify file variant: parser.py, and synth.py (synthetic exports)
      others.py         other services' exports, recognised by name to say "not yet"
    store/            where things live: home, database, events, vault, keys, locks
    coop/             the cooperative's records: members, profile, consent, budget,
                      governance, ledger, rights, audit, keyring, backup
    ingest/           parse → validate → de-identify → dedup → store, atomically
    releases/         spec → engines/ (bounding) → noise (OpenDP) → manifest
    insights/         personal statistics, charts, the HTML report
    services/         use cases above coop and releases (sale.py)
    cli/              the command line (thin), render.py, demo.py
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tunetrust._version import __version__ as __version__

if TYPE_CHECKING:
    from tunetrust.coop.audit import verify_home as verify_audit
    from tunetrust.coop.consent import decide as decide_consent
    from tunetrust.coop.keyring import rotate_master_key
    from tunetrust.coop.members import add_member, get_member, list_members
    from tunetrust.coop.profile import show_member
    from tunetrust.coop.rights import erase_member, export_member
    from tunetrust.errors import (
        ConflictError,
        ExportError,
        InputError,
        NotFoundError,
        SetupError,
        TuneTrustError,
    )
    from tunetrust.ingest.pipeline import ImportSummary, import_export
    from tunetrust.settings import Settings
    from tunetrust.store.home import Home, init_home, open_home

# Where each public name lives, as (module, name there). Imported on first use, so
# `import tunetrust` (and the CLI, which imports the package first) stays light:
# SQLAlchemy, pyarrow, DuckDB and OpenDP load only when a caller needs them.
_EXPORTS: dict[str, tuple[str, str]] = {
    "ConflictError": ("tunetrust.errors", "ConflictError"),
    "ExportError": ("tunetrust.errors", "ExportError"),
    "Home": ("tunetrust.store.home", "Home"),
    "ImportSummary": ("tunetrust.ingest.pipeline", "ImportSummary"),
    "InputError": ("tunetrust.errors", "InputError"),
    "NotFoundError": ("tunetrust.errors", "NotFoundError"),
    "SetupError": ("tunetrust.errors", "SetupError"),
    "Settings": ("tunetrust.settings", "Settings"),
    "TuneTrustError": ("tunetrust.errors", "TuneTrustError"),
    "add_member": ("tunetrust.coop.members", "add_member"),
    "decide_consent": ("tunetrust.coop.consent", "decide"),
    "erase_member": ("tunetrust.coop.rights", "erase_member"),
    "export_member": ("tunetrust.coop.rights", "export_member"),
    "get_member": ("tunetrust.coop.members", "get_member"),
    "import_export": ("tunetrust.ingest.pipeline", "import_export"),
    "init_home": ("tunetrust.store.home", "init_home"),
    "list_members": ("tunetrust.coop.members", "list_members"),
    "open_home": ("tunetrust.store.home", "open_home"),
    "rotate_master_key": ("tunetrust.coop.keyring", "rotate_master_key"),
    "show_member": ("tunetrust.coop.profile", "show_member"),
    "verify_audit": ("tunetrust.coop.audit", "verify_home"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ConflictError",
    "ExportError",
    "Home",
    "ImportSummary",
    "InputError",
    "NotFoundError",
    "SetupError",
    "Settings",
    "TuneTrustError",
    "add_member",
    "decide_consent",
    "erase_member",
    "export_member",
    "get_member",
    "import_export",
    "init_home",
    "list_members",
    "open_home",
    "rotate_master_key",
    "show_member",
    "verify_audit",
]
