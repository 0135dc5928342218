"""TuneTrust: a self-hostable, privacy-first data cooperative for listening histories.

Map of the package (data flows top to bottom):

    formats/          what exports look like
      package.py        open a zip / folder / loose files safely (zip bombs, traversal)
      spotify.py        classify and parse every Spotify file variant → parsed listens
      listens.py        the parsed-listen schema every parser produces
      others.py         other services' exports, recognised by name to say "not yet"
      synth.py          synthetic exports of every variant (tests, demo, benchmarks)
    ingest/           from parsed listens to stored, de-identified listens
      deidentify.py     platform families, incognito plays, nothing personal kept
      dedup.py          each play once across re-imports and export kinds
      pipeline.py       import_export(): parse → de-identify → dedup → store, atomically
      rebuild.py        rebuild_events(): members' listens re-derived from their vaults
    store/            where things live
      home.py           a cooperative home: database, events store, master key, lock
      db.py, models.py  metadata database (SQLAlchemy 2, Alembic migrations/)
      events.py         de-identified listens, Parquet, one partition per pseudonym
      keys.py           master key and AES-GCM sealing of secrets
    coop/             the cooperative's records
      members.py        members, pseudonyms, data keys
      consent.py        consent per purpose, with history
      rights.py         access / portability export, erasure
      audit.py          the hash-chained audit log
      keyring.py        member data keys, master key rotation
    store/vault.py    raw exports, encrypted per member (chunked AES-256-GCM)
    faults.py         named crash points for tests that kill real processes
    settings.py       typed settings, passed down explicitly
    errors.py         the one exception tree
    cli/              the command line (thin), one module per command group
    render.py         Rich tables shared by the CLI and the demo
    demo.py           the quick start's main job: a synthetic cooperative's lifecycle
"""

from tunetrust.coop.audit import verify_home as verify_audit
from tunetrust.coop.consent import decide as decide_consent
from tunetrust.coop.keyring import rotate_master_key
from tunetrust.coop.members import add_member, get_member, list_members, show_member
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

__version__ = "0.2.0"

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
