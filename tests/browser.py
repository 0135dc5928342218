"""Debian's Chromium for the browser tests, driven by Playwright (no browser download).

Locally a test without Chromium (or a package it needs) skips and says why; in CI
(``CI`` set) it fails instead, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# the real binary first: /usr/bin/chromium is a shell wrapper that prints noise
CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p and Path(p).exists()),
    None,
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextmanager
def chromium(*, modules: tuple[str, ...] = ()) -> Iterator[Any]:
    """A launched headless Chromium; skips (fails in CI) without it or ``modules``."""
    reason = None
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
    for module in modules:
        if reason is None and importlib.util.find_spec(module) is None:
            reason = f'{module} is not installed (pip install -e ".[dev]")'
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
