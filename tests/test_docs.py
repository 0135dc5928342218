"""The docs keep up with the code: every command documented, every export listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

import tunetrust
from tunetrust.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(cmd, "commands"):  # a group of sub-commands
            found += _commands(cmd, full + " ")
        else:
            found.append((full, cmd))
    return found


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_is_documented(name: str, cmd: Any) -> None:
    assert cmd.help and cmd.help.strip()
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert f"tunetrust {name}" in docs, f"docs/cli.md does not mention `tunetrust {name}`"


PUBLIC = {
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
}


def test_public_surface() -> None:
    assert set(tunetrust.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(tunetrust, name) is not None


def test_architecture_doc_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    src = ROOT / "src" / "tunetrust"
    for path in src.rglob("*.py"):
        rel = path.relative_to(src)
        if path.name == "__init__.py" or "migrations" in rel.parts or path.name == "__main__.py":
            continue
        assert rel.as_posix() in text, f"docs/architecture.md does not mention {rel}"


def test_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
