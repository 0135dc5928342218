"""Debian's Chromium for the browser tests, driven by Playwright (no browser download).

Locally a test without Chromium (or a package it needs) skips and says why; in CI
(``CI`` set) it fails instead, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import os
import re
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


def screenshot_root() -> Path:
    """``$TUNETRUST_SCREENSHOTS``, else ``build/screenshots`` in the checkout (git ignores
    ``build/``)."""
    root = os.environ.get("TUNETRUST_SCREENSHOTS")
    return Path(root) if root else Path(__file__).resolve().parent.parent / "build" / "screenshots"


def screens(name: str) -> Path:
    """A kept folder for one test module's screenshots, under :func:`screenshot_root`;
    pytest's summary names the folders written in the run (``conftest.py``)."""
    folder = screenshot_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# what a page may not do at any width: scroll sideways, put a chart or a chart's text
# outside the window, or shrink a chart's text below 9.5 px (each visible chart only)
_LAYOUT = """() => {
  const out = [];
  const wide = document.documentElement.scrollWidth, win = window.innerWidth;
  if (wide > win) out.push(`scrolls sideways: ${wide} px in ${win} px`);
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    if (box.width === 0) continue;  // the drawing for the other width
    const where = svg.getAttribute('aria-label');
    if (box.left < 0 || box.right > win) out.push(`${where}: outside the window`);
    const scale = box.width / svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect(), px = scale * Number(t.getAttribute('font-size'));
      if (r.left < 0 || r.right > win) out.push(`${where}: "${t.textContent}" cut off`);
      if (px < 9.5) out.push(`${where}: "${t.textContent}" at ${px.toFixed(1)} px`);
    }
  }
  return out;
}"""


def layout_problems(page: Any) -> list[str]:
    """What is wrong with the page's layout at its width (see ``_LAYOUT``)."""
    problems: list[str] = page.evaluate(_LAYOUT)
    return problems


def month_labels(page: Any, chart: str) -> list[tuple[str, float, float]]:
    """The visible axis labels of ``chart`` (a selector of its drawings): text, left and
    right in px; fails if two of one row overlap."""
    found: list[tuple[str, float, float, float]] = page.locator(
        f"{chart} text.x-label"
    ).evaluate_all(
        """els => els.filter(e => e.getBoundingClientRect().width > 0).map(e => {
             const r = e.getBoundingClientRect(); return [e.textContent, r.left, r.right, r.top];
           })"""
    )
    for row in {top for *_, top in found}:
        spans = sorted((left, right) for _, left, right, top in found if top == row)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    return [(text, left, right) for text, left, right, _ in found]


def unseparated_numbers(text: str) -> list[str]:
    """Numbers of 1,000 or more written without thousands separators (years and dates
    aside): the one formatter writes ``12,345`` everywhere."""
    plain = re.sub(r"\b\d{4}-\d{2}(-\d{2})?\b|\b(19|20)\d{2}\b", "", text)
    return re.findall(r"\b\d{4,}\b", plain)


def axe_problems(page: Any) -> list[str]:
    """Serious and critical axe-core findings on the page."""
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"axe {v['impact']} {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:4]}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
