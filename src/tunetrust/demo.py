"""The demo: a cooperative home built from synthetic exports, end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

from tunetrust.coop.members import add_member, get_member
from tunetrust.errors import NotFoundError
from tunetrust.formats.synth import render, synthesize, write_zip
from tunetrust.ingest.pipeline import import_export
from tunetrust.render import print_import
from tunetrust.settings import Settings
from tunetrust.store.home import init_home

DEMO_MEMBER = "demo-member"


def run_demo(settings: Settings, console: Console, *, listens: int = 20_000) -> None:
    """Create (or reuse) a home, import one synthetic person's two exports, show the result."""
    home = init_home(settings)
    try:
        try:
            get_member(home, DEMO_MEMBER)
        except NotFoundError:
            add_member(home, DEMO_MEMBER)
        history = synthesize("extended-c", listens, seed=2024)
        with tempfile.TemporaryDirectory() as tmp:
            extended = Path(tmp) / "extended-history.zip"
            account = Path(tmp) / "account-data.zip"
            write_zip(render(history, "extended-c"), extended)
            write_zip(render(history, "account"), account)
            console.rule("1. Extended streaming history (synthetic, variant C)")
            print_import(console, import_export(home, DEMO_MEMBER, extended))
            console.rule("2. Account data of the same person: overlapping plays count once")
            print_import(console, import_export(home, DEMO_MEMBER, account))
        console.rule("Done")
        console.print(
            f"Cooperative home: {settings.home}\n"
            f"De-identified listens (Parquet): {settings.events_dir}\n"
            "Import your own export with: "
            f"tunetrust --home {settings.home} member add YOU && "
            f"tunetrust --home {settings.home} import YOUR-EXPORT.zip --member YOU"
        )
    finally:
        home.close()
