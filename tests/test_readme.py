"""The README's commands run, in order, exactly as written (the quick start aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tunetrust.formats.spotify.synth import write_export

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_the_quick_start_is_the_first_block() -> None:
    first = _blocks(README)[0]
    assert [line.split()[:2] for line in first.splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path: Path) -> None:
    """A new user's session: HOME is a fresh folder, the working folder a checkout.

    The quick start's first command (`make demo`) is replaced by its main job,
    `tunetrust --home .tunetrust-demo demo`, so the demo cooperative the README uses
    later exists; `make test` is what CI runs. `~/Downloads/my_export.zip` is a synthetic
    export, since nobody's real data may be used.
    """
    work = tmp_path / "checkout"
    work.mkdir()
    os.symlink(ROOT / ".venv", work / ".venv")
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    write_export("extended-c", 20_000, 7, downloads / "my_export.zip")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNETRUST_")}
    env |= {
        "HOME": str(tmp_path),
        "PATH": f"{bin_dir}:{env.get('PATH', '')}",
        "TUNETRUST_BACKUP_PASSPHRASE": "correct horse battery staple",
        "COLUMNS": "100",
    }
    script = "\n".join(
        [
            "set -euo pipefail",
            "tunetrust --home .tunetrust-demo demo --listens 1500 > demo.log",
            *_blocks(README)[1:],
        ]
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr
