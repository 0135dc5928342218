"""The shareable image of a story: a 1080×1920 (``tall``) or 1080×1080 (``square``) PNG.

Drawn as SVG here from the story's own figures (so the image says what the story says),
then rendered offline by resvg (the ``resvg-py`` wheel: no browser, no network, no system
library). Text is set in DejaVu Sans, loaded from its files when the system has them
(Debian: ``fonts-dejavu-core``), so the same story gives the same bytes on every
machine that has those fonts; elsewhere resvg falls back to the system's fonts.

What the image shows is what the member chooses: the period, hours, plays, days,
artists new to them and their listening personality, and, unless hidden, the names of
their top artist and top song. Never the member's name, pseudonym or any id: the story
holds none, and nothing else is passed in (``tests/test_story.py`` checks the SVG).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tunetrust.errors import InputError
from tunetrust.insights.charts import fit, text_width
from tunetrust.insights.story import Figure, Story, Trait

SHAPES = {"tall": (1080, 1920), "square": (1080, 1080)}
FONT = "DejaVu Sans"
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts",  # Fedora
    "/usr/share/fonts/TTF",  # Arch
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    "/opt/homebrew/share/fonts",
)
_BACK, _INK, _MUTED, _ACCENT = "#0b2e2b", "#ffffff", "#a7e3d4", "#fcd34d"
_MARGIN = 90


@dataclass(frozen=True)
class ShareImage:
    """A rendered image: its shape and size, the SVG it was drawn from, the PNG bytes, and
    ``alt``, the same words as plain text (for an ``<img>``'s alternative text)."""

    shape: str
    width: int
    height: int
    svg: str
    png: bytes
    alt: str


@cache
def font_files() -> tuple[str, ...]:
    """DejaVu Sans (regular and bold) where the system keeps it; empty when it has none."""
    for folder in FONT_DIRS:
        regular, bold = Path(folder, "DejaVuSans.ttf"), Path(folder, "DejaVuSans-Bold.ttf")
        if regular.is_file() and bold.is_file():
            return (str(regular), str(bold))
    return ()


# --- text that fits -------------------------------------------------------------------


def _wrap(text: str, size: float, bold: bool, width: float, lines: int) -> list[str]:
    """``text`` in at most ``lines`` lines of ``width``; the last cut if it must be."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and text_width(f"{line} {words[0]}", size, bold=bold) <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words:
        out[-1] = fit(f"{out[-1]} {' '.join(words)}", width, size, bold=bold)
    return [fit(line, width, size, bold=bold) for line in out]


def _clean(text: str) -> str:
    """Text safe inside SVG: no control characters, markup characters escaped."""
    kept = "".join(ch for ch in text if ch >= " " and ch not in "\ufffe\uffff")
    return (
        kept.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


# --- what the image says ----------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    text: str
    size: int
    gap: int  # space above the line (baseline to baseline, less the size)
    bold: bool = False
    fill: str = _INK
    lines: int = 1
    spacing: float = 0  # letter spacing, for small labels in capitals
    spare: int = 0  # left out first (highest first) when the image has no room for all
    say: str | None = None  # what the alternative text says for it (None: the text)


def _label(text: str, gap: int, spare: int = 0) -> _Block:
    return _Block(text.upper(), 30, gap, fill=_MUTED, spacing=3, spare=spare, say="")


# each habit in the first person, as the member says it on their image
_MINE = {
    "night_owl": "{} of my listening between 22:00 and 04:00",
    "early_bird": "{} of my listening between 05:00 and 09:00",
    "weekend": "{} of my listening on Saturdays and Sundays",
    "explorer": "{} of my artists were new to me",
    "devoted": "my top artist had {} of my listening",
    "shuffler": "{} of my listens on shuffle",
    "skipper": "I skipped {} of my listens",
}


def _text(story: Story, key: str) -> str | None:
    found: Figure | None = story.figure(key)
    return found.text if found else None


def _blocks(story: Story, shape: str, show_artist: bool, show_track: bool) -> list[_Block]:
    """Everything the image could say, top to bottom; ``spare`` ones go first for room."""
    tall = shape == "tall"
    hours = _text(story, "hours") or "0 hours"
    number, _, unit = hours.partition(" ")
    gap = 70 if tall else 44  # above each labelled part
    blocks = [
        _Block("TuneTrust · my listening", 30, 0, fill=_MUTED, spacing=1, say=""),
        _Block(story.heading(), 68 if tall else 60, 60 if tall else 40, bold=True, lines=2),
        _Block(number, 240 if tall else 180, 90 if tall else 40, bold=True, fill=_ACCENT, say=""),
        _Block(f"{unit} with music", 52 if tall else 44, 20, say=f"{hours} with music"),
    ]
    plays, days = _text(story, "plays"), _text(story, "active_days")
    if plays and days:
        blocks.append(_Block(f"{plays} on {days}", 44, 30, fill=_MUTED, spare=4))
    artist, track = _text(story, "top_artist"), _text(story, "top_track")
    if show_artist and artist:
        top = _Block(artist, 64, 20, bold=True, say=f"Top artist: {artist}")
        blocks += [_label("Top artist", gap), top]
    if show_track and track:
        by = _text(story, "top_track_artist")
        spare = 2 if show_artist and artist else 0
        said = f"Top song: {track}" + (f" by {by}" if by and show_artist else "")
        song = _Block(track, 60, 20, bold=True, lines=2 if tall else 1, spare=spare, say=said)
        blocks += [_label("Top song", gap, spare), song]
        if by and show_artist:  # (the artist is the member's to show or not)
            blocks.append(_Block(f"by {by}", 40, 16, fill=_MUTED, spare=spare, say=""))
    new = _text(story, "new_artists")
    if new:
        blocks += [
            _label("New to me", gap, 5),
            _Block(new, 60, 20, bold=True, spare=5, say=f"New to me: {new}"),
        ]
    streak, change, before = (story.figure(k) for k in ("streak", "change", "before.period"))
    if streak:
        run = f"{streak.text} in a row"
        longest = _Block(run, 60, 20, bold=True, spare=6, say=f"Longest run: {run}")
        blocks += [_label("Longest run", gap, 6), longest]
    if change and before and round(abs(float(change.value)) * 100):
        more = f"{change.text} {'more' if float(change.value) > 0 else 'less'} listening"
        label = _label(f"Against {before.text}", gap, 7)
        blocks += [label, _Block(more, 52, 20, spare=7, say=f"Against {before.text}: {more}")]
    trait = next((t for t in story.traits if t.label == story.personality), None)
    blocks += [_label("Listening personality", gap), *_character(trait)]
    return blocks


_ME = "Listening personality: "


def _character(trait: Trait | None) -> list[_Block]:
    if trait is None:
        return [
            _Block("Steady listener", 72, 20, bold=True, fill=_ACCENT, say=f"{_ME}Steady listener"),
            _Block("no single habit stood out", 36, 20, fill=_MUTED, spare=1),
        ]
    reason = _MINE[trait.key].format(trait.measured.text)
    return [
        _Block(trait.label, 72, 20, bold=True, fill=_ACCENT, say=f"{_ME}{trait.label}"),
        _Block(reason, 36, 20, fill=_MUTED, lines=2, spare=1),
    ]


def _layout(
    blocks: list[_Block], top: int, bottom: int, width: int
) -> list[tuple[int, _Block, str]]:
    """Each line's baseline, block and words, leaving out spare blocks until all fit."""
    while True:
        y, placed = top, []
        for b in blocks:
            for n, line in enumerate(_wrap(b.text, b.size, b.bold, width, b.lines)):
                y += (b.gap if n == 0 else round(b.size * 0.25)) + b.size
                placed.append((y, b, line))
        spare = max((b.spare for b in blocks), default=0)
        if y <= bottom or spare == 0:
            return placed
        blocks = [b for b in blocks if b.spare != spare]


def image_svg(
    story: Story, *, shape: str = "tall", show_artist: bool = True, show_track: bool = True
) -> tuple[str, str]:
    """The image as SVG, and its words as plain text (the alternative text)."""
    if shape not in SHAPES:
        raise InputError(f"the image's shape is one of {', '.join(SHAPES)}, not {shape!r}")
    if story.empty:
        raise InputError("there is nothing to put on an image yet: import your export first")
    width, height = SHAPES[shape]
    blocks = _blocks(story, shape, show_artist, show_track)
    texts, said = [], {}
    for y, b, line in _layout(
        blocks, 60 if shape == "square" else 80, height - 170, width - 2 * _MARGIN
    ):
        weight = ' font-weight="bold"' if b.bold else ""
        spacing = f' letter-spacing="{b.spacing}"' if b.spacing else ""
        texts.append(
            f'<text x="{_MARGIN}" y="{y}" font-size="{b.size}" fill="{b.fill}"'
            f"{weight}{spacing}>{_clean(line)}</text>"
        )
        said[id(b)] = b.text if b.say is None else b.say
    footer = "Made from my own listening history"
    texts.append(
        f'<text x="{_MARGIN}" y="{height - 70}" font-size="28" fill="{_MUTED}">{footer}</text>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}, sans-serif">'
        f'<rect width="{width}" height="{height}" fill="{_BACK}"/>'  # (a gradient: twice the time)
        f'<rect width="{width}" height="24" fill="{_ACCENT}"/>'
        f'<rect x="{_MARGIN}" y="{height - 130}" width="120" height="8" fill="{_ACCENT}"/>'
        + "".join(texts)
        + "</svg>"
    )
    return svg, ". ".join(s for s in said.values() if s) + "."


def render_png(svg: str) -> bytes:
    """The SVG as PNG bytes, with DejaVu Sans from its files when the system has them."""
    import resvg_py

    fonts = font_files()
    png: bytes = resvg_py.svg_to_bytes(
        svg_string=svg,
        skip_system_fonts=bool(fonts),  # the same fonts everywhere, not whatever is installed
        font_files=list(fonts) or None,
        font_family=FONT,
        sans_serif_family=FONT,
    )
    return png


def share_image(
    story: Story, *, shape: str = "tall", show_artist: bool = True, show_track: bool = True
) -> ShareImage:
    """The story's shareable image, ``tall`` (1080×1920) or ``square`` (1080×1080)."""
    svg, alt = image_svg(story, shape=shape, show_artist=show_artist, show_track=show_track)
    width, height = SHAPES[shape]
    return ShareImage(shape, width, height, svg, render_png(svg), alt)
