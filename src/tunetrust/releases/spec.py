"""A release spec: what a data product holds and how it is protected. Frozen, validated.

The same spec comes from YAML, JSON or Python, goes verbatim into the manifest and the
audit log, and never assumes an engine: group keys and filters are names, turned
into SQL by each engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from tunetrust.errors import InputError

GROUP_KEYS = (
    "country",
    "year",
    "quarter",
    "month",
    "week",
    "weekday",
    "hour",
    "platform",
    "artist",
    "track",
    "album",
    "show",
)
TIME_KEYS = ("year", "quarter", "month", "week", "weekday", "hour")
METRICS = ("plays", "listeners", "minutes", "skip_share")
KINDS = ("music", "podcast", "audiobook", "video", "unknown")
# With private keys a partition needs at least this many members before its noisy
# count is even drawn (pre-thresholding; see noise.py for what it costs).
DEFAULT_MIN_LISTENERS = 10


def _fail(where: str, problem: str) -> InputError:
    return InputError(f"release spec, {where}: {problem}")


@dataclass(frozen=True)
class Bounds:
    """How much one member may contribute."""

    max_partitions: int
    max_plays_per_partition: int
    max_minutes_per_play: float

    def __post_init__(self) -> None:
        if not (isinstance(self.max_partitions, int) and 1 <= self.max_partitions <= 10_000):
            raise _fail("bounds.max_partitions", "must be a whole number from 1 to 10,000")
        if not (
            isinstance(self.max_plays_per_partition, int)
            and 1 <= self.max_plays_per_partition <= 10_000
        ):
            raise _fail("bounds.max_plays_per_partition", "must be a whole number from 1 to 10,000")
        if not (
            isinstance(self.max_minutes_per_play, int | float)
            and 0 < self.max_minutes_per_play <= 600
        ):
            raise _fail("bounds.max_minutes_per_play", "must be a number above 0 and at most 600")


@dataclass(frozen=True)
class Privacy:
    """The budget of one release: ε, δ, noise family, and how ε is split."""

    epsilon: float
    delta: float = 0.0
    noise: str = "gaussian"
    split: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and 0 < self.epsilon <= 10):
            raise _fail("privacy.epsilon", "must be a number above 0 and at most 10")
        if not (isinstance(self.delta, int | float) and 0 <= self.delta < 1e-3):
            raise _fail("privacy.delta", "must be at least 0 and below 0.001")
        if self.noise not in ("gaussian", "laplace"):
            raise _fail("privacy.noise", "must be gaussian or laplace")
        if self.noise == "gaussian" and self.delta == 0:
            raise _fail("privacy.delta", "Gaussian noise needs a delta above 0 (e.g. 1e-6)")
        total = sum(self.split.values())
        if self.split and not math.isclose(total, 1.0, abs_tol=1e-9):
            raise _fail("privacy.split", f"the shares must add up to 1 (they add up to {total:g})")
        if any(v <= 0 for v in self.split.values()):
            raise _fail("privacy.split", "every share must be above 0")


@dataclass(frozen=True)
class ReleaseSpec:
    """A data product: filters, grouping, metrics, bounds, privacy, keys, purpose."""

    purpose: str
    group_by: tuple[str, ...]
    metrics: tuple[str, ...]
    bounds: Bounds
    privacy: Privacy
    keys: str = "private"  # private | public
    public_keys: tuple[tuple[str, ...], ...] = ()
    kinds: tuple[str, ...] = ("music",)
    period_from: date | None = None
    period_to: date | None = None
    countries: tuple[str, ...] = ()
    min_seconds: int = 30
    min_members: int = 0
    min_listeners: int | None = None  # private keys only; None: DEFAULT_MIN_LISTENERS
    source: str = ""  # the spec as written, kept verbatim for the manifest

    def __post_init__(self) -> None:
        if not self.group_by:
            raise _fail("group_by", "name at least one key")
        for k in self.group_by:
            if k not in GROUP_KEYS:
                raise _fail("group_by", f"unknown key {k!r}; choose from {', '.join(GROUP_KEYS)}")
        if len(set(self.group_by)) != len(self.group_by):
            raise _fail("group_by", "a key is named twice")
        if not self.metrics:
            raise _fail("metrics", "name at least one metric")
        for m in self.metrics:
            if m not in METRICS:
                raise _fail("metrics", f"unknown metric {m!r}; choose from {', '.join(METRICS)}")
        for m in self.privacy.split:
            if m not in self.budget_parts:
                raise _fail(
                    "privacy.split",
                    f"{m!r} is not a part of this release ({', '.join(self.budget_parts)})",
                )
        if self.keys not in ("private", "public"):
            raise _fail("keys", "must be private or public")
        if self.keys == "private" and self.privacy.delta == 0:
            raise _fail("privacy.delta", "private key selection needs a delta above 0")
        if self.keys == "public":
            if not self.public_keys and not all(k in TIME_KEYS for k in self.group_by):
                raise _fail(
                    "keys",
                    "public keys need a list under public_keys, or group_by "
                    "made only of time keys (a calendar)",
                )
            for row in self.public_keys:
                if len(row) != len(self.group_by):
                    raise _fail("public_keys", f"each key needs {len(self.group_by)} values")
        for kind in self.kinds:
            if kind not in KINDS:
                raise _fail(
                    "filters.kind", f"unknown kind {kind!r}; choose from {', '.join(KINDS)}"
                )
        if self.period_from and self.period_to and self.period_from > self.period_to:
            raise _fail("filters.period", "starts after it ends")
        if not (isinstance(self.min_seconds, int) and 0 <= self.min_seconds <= 3600):
            raise _fail("filters.min_seconds", "must be a whole number from 0 to 3,600")
        if not (isinstance(self.min_members, int) and self.min_members >= 0):
            raise _fail("min_members", "must be a whole number, 0 or more")
        if self.min_listeners is not None:
            if self.keys == "public":
                raise _fail(
                    "min_listeners",
                    "applies to private keys only (every public key is released)",
                )
            if not (isinstance(self.min_listeners, int) and 1 <= self.min_listeners <= 100_000):
                raise _fail("min_listeners", "must be a whole number from 1 to 100,000")
        for c in self.countries:
            if not (isinstance(c, str) and len(c) == 2 and c.isupper()):
                raise _fail("filters.countries", f"{c!r} is not a two-letter country code")

    @property
    def pre_threshold(self) -> int:
        """Fewest members a partition needs before private selection considers it."""
        if self.keys != "private":
            return 1
        return DEFAULT_MIN_LISTENERS if self.min_listeners is None else self.min_listeners

    @property
    def budget_parts(self) -> tuple[str, ...]:
        """What the budget is split over: key selection, then each noisy quantity."""
        parts = ["selection"] if self.keys == "private" else []
        wanted = set(self.metrics)
        if "listeners" in wanted and self.keys == "public":
            parts.append("listeners")
        if wanted & {"plays", "skip_share"}:
            parts.append("plays")
        if "minutes" in wanted:
            parts.append("minutes")
        if "skip_share" in wanted:
            parts.append("skips")
        return tuple(parts)

    def shares(self) -> dict[str, float]:
        """Each budget part's share of the privacy budget (explicit, else even)."""
        parts = self.budget_parts
        if self.privacy.split:
            return {p: self.privacy.split.get(p, 0.0) for p in parts}
        return {p: 1 / len(parts) for p in parts}


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _fail(where, "must be a date like 2024-01-31") from None


def parse_spec(text: str, *, source_name: str = "spec") -> ReleaseSpec:
    """A spec from YAML or JSON text, with errors that name the field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(
            f"{source_name}: not valid YAML or JSON ({exc.__class__.__name__})"
        ) from None
    if not isinstance(doc, dict):
        raise InputError(f"{source_name}: a release spec is a mapping of fields")
    known = {
        "purpose",
        "filters",
        "group_by",
        "metrics",
        "bounds",
        "privacy",
        "keys",
        "public_keys",
        "min_members",
        "min_listeners",
    }
    unknown = set(doc) - known
    if unknown:
        raise _fail(
            ", ".join(sorted(unknown)), f"unknown field; known fields: {', '.join(sorted(known))}"
        )
    for required in ("purpose", "group_by", "metrics", "bounds", "privacy"):
        if required not in doc:
            raise _fail(required, "missing")
    filters = doc.get("filters") or {}
    bounds = doc["bounds"] or {}
    privacy = doc["privacy"] or {}
    kind = filters.get("kind", "music")
    period = filters.get("period") or {}
    try:
        return ReleaseSpec(
            purpose=str(doc["purpose"]),
            group_by=tuple(_list(doc["group_by"], "group_by")),
            metrics=tuple(_list(doc["metrics"], "metrics")),
            bounds=Bounds(
                max_partitions=bounds.get("max_partitions", 0),
                max_plays_per_partition=bounds.get("max_plays_per_partition", 0),
                max_minutes_per_play=bounds.get("max_minutes_per_play", 0),
            ),
            privacy=Privacy(
                epsilon=privacy.get("epsilon", 0),
                delta=privacy.get("delta", 0.0),
                noise=privacy.get("noise", "gaussian"),
                split=dict(privacy.get("split") or {}),
            ),
            keys=str(doc.get("keys", "private")),
            public_keys=tuple(
                tuple(str(v) for v in _list(row, "public_keys"))
                for row in (doc.get("public_keys") or [])
            ),
            kinds=tuple(_list(kind, "filters.kind")),
            period_from=_date(period.get("from"), "filters.period.from"),
            period_to=_date(period.get("to"), "filters.period.to"),
            countries=tuple(_list(filters.get("countries") or [], "filters.countries")),
            min_seconds=filters.get("min_seconds", 30),
            min_members=doc.get("min_members", 0),
            min_listeners=doc.get("min_listeners"),
            source=text,
        )
    except TypeError as exc:
        raise InputError(f"{source_name}: a field has the wrong shape ({exc})") from None


def _list(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise _fail(where, "must be a name or a list of names")


def load_spec(path: Path) -> ReleaseSpec:
    """A spec from a YAML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise InputError(f"{path}: cannot read the release spec") from None
    return parse_spec(text, source_name=path.name)


def spec_dict(spec: ReleaseSpec) -> dict[str, Any]:
    """The parsed spec as plain data (the manifest also keeps the source verbatim)."""
    plain = {
        "purpose": spec.purpose,
        "group_by": list(spec.group_by),
        "metrics": list(spec.metrics),
        "bounds": dict(spec.bounds.__dict__),
        "privacy": dict(spec.privacy.__dict__),
        "keys": spec.keys,
        "public_keys": [list(k) for k in spec.public_keys],
        "kinds": list(spec.kinds),
        "period": [
            str(spec.period_from) if spec.period_from else None,
            str(spec.period_to) if spec.period_to else None,
        ],
        "countries": list(spec.countries),
        "min_seconds": spec.min_seconds,
        "min_members": spec.min_members,
        "min_listeners": spec.pre_threshold,
    }
    return plain
