"""A release spec: what a data product holds and how it is protected. Frozen, validated.

The same spec comes from YAML, JSON or Python, goes verbatim into the manifest and the
audit log, and never assumes an engine: group keys and filters are names, turned
into SQL by each engine.

Reading one, in order: the text is capped at ``MAX_SPEC_BYTES`` and must be UTF-8;
PyYAML's event stream is checked for anchors, aliases and nesting deeper than
``MAX_SPEC_DEPTH``; the document is checked against ``_Document``, a pydantic model
that forbids unknown fields at every level (``spec_json_schema()`` is its JSON
Schema); the frozen dataclasses then check ranges and the rules between fields. Every
refusal is one ``InputError`` line naming the field path, never a value.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails

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
    "member_hours",
)
TIME_KEYS = ("year", "quarter", "month", "week", "weekday", "hour")
# A member-level key: the member's listening hours over the listens the release counts
# (after its filters), as the lower bound of one of these fixed, public buckets. Every
# listen of a member carries the same value, so a member lands in exactly one partition
# (per combination of any other keys); see docs/releases.md, "Member-level keys".
HOURS_BUCKETS = (0, 1, 2, 5, 10, 20, 40, 80, 160)
# Keys whose every value is known before the data is read: public keys need no list.
FIXED_KEYS = (*TIME_KEYS, "member_hours")
METRICS = ("plays", "listeners", "minutes", "skip_share")
KINDS = ("music", "podcast", "audiobook", "video", "unknown")
NOISES = ("gaussian", "laplace")
KEY_MODES = ("private", "public")
# With private keys a partition needs at least this many members before its noisy
# count is even drawn (pre-thresholding; see noise.py for what it costs).
DEFAULT_MIN_LISTENERS = 10


def _fail(where: str, problem: str) -> InputError:
    return InputError(f"release spec, {where}: {problem}", fields=[(where, problem)])


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
        if self.noise not in NOISES:
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
        if self.keys not in KEY_MODES:
            raise _fail("keys", "must be private or public")
        if self.keys == "private" and self.privacy.delta == 0:
            raise _fail("privacy.delta", "private key selection needs a delta above 0")
        if self.keys == "public":
            if not self.public_keys and not all(k in FIXED_KEYS for k in self.group_by):
                raise _fail(
                    "keys",
                    "public keys need a list under public_keys, or group_by "
                    "made only of time keys and member_hours (a calendar)",
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


# Reading a spec. Buyers submit specs, so the text is untrusted. A few bytes of YAML
# aliases can stand for gigabytes ("billion laughs"), and PyYAML's composer recurses
# once per level of nesting, so both are refused on the event stream, which recurses
# nowhere, before any value is built.
MAX_SPEC_BYTES = 64 * 1024
MAX_SPEC_DEPTH = 32
_NOT_UTF8 = "not UTF-8 text; save it as UTF-8"


def read_spec_text(path: Path) -> str:
    """A spec file's text: UTF-8 (a byte-order mark is allowed), at most MAX_SPEC_BYTES."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)  # never more, however large the file
    except OSError:
        raise InputError(f"{path}: cannot read the release spec") from None
    _check_size(len(data), path.name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path.name}: {_NOT_UTF8}") from None
    if "\0" in text:  # UTF-16 or UTF-32 without a byte-order mark: valid UTF-8, full of NULs
        raise InputError(f"{path.name}: {_NOT_UTF8}")
    return text


def load_spec(path: Path) -> ReleaseSpec:
    """A spec from a YAML or JSON file."""
    return parse_spec(read_spec_text(path), source_name=path.name)


def parse_spec(text: str, *, source_name: str = "spec") -> ReleaseSpec:
    """A spec from YAML or JSON text, with errors that name the field."""
    # a character is at least one byte: only short texts need encoding to be measured
    _check_size(len(text), source_name)
    _check_size(len(text.encode("utf-8", "surrogatepass")), source_name)
    try:
        _check_structure(text)
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506  # a SafeLoader, floats as YAML 1.2
    except _Refused as exc:
        raise InputError(f"{source_name}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(
            f"{source_name}: not valid YAML or JSON ({exc.__class__.__name__})"
        ) from None
    except ValueError:  # PyYAML builds 2023-13-01 or 0x_ without catching the error
        raise InputError(
            f"{source_name}: not valid YAML or JSON (a date or number that cannot be read)"
        ) from None
    if not isinstance(doc, dict):
        raise InputError(f"{source_name}: a release spec is a mapping of fields")
    try:
        fields = _Document.model_validate(doc)
    except ValidationError as exc:
        raise InputError(
            _problems(exc), fields=[(_path(e["loc"]), _problem(e)) for e in exc.errors()]
        ) from None
    return fields.spec(source=text)


def _check_size(size: int, source_name: str) -> None:
    if size > MAX_SPEC_BYTES:
        raise InputError(
            f"{source_name}: larger than {MAX_SPEC_BYTES // 1024} KiB; "
            "a release spec is a short document"
        )


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """PyYAML's safe loader, reading numbers like ``1e-6`` as floats (YAML 1.2, and JSON)
    where YAML 1.1 reads them as strings: the hint for delta says "1e-6"."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


class _Refused(Exception):
    """Well-formed YAML that a release spec may not use."""


def _check_structure(text: str) -> None:
    """Refuse anchors, aliases, deep nesting and repeated keys before PyYAML composes.

    A repeated key would silently keep its last value: ``privacy: {epsilon: 0.1,
    epsilon: 10}`` reads as ε = 10 while a voter reading the text may see 0.1.
    """
    # one frame per open collection: (keys seen, expecting a key) for a mapping
    frames: list[tuple[set[str], list[bool]] | None] = []

    def value_done() -> None:
        if frames and frames[-1] is not None:
            frames[-1][1][0] = True  # the parent mapping's value ended: a key comes next

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused(f"YAML anchors and aliases (& and *) are not allowed (line {line})")
        parent = frames[-1] if frames else None
        if isinstance(event, yaml.CollectionStartEvent):
            if parent is not None and parent[1][0]:
                raise _Refused(f"a key must be a name, not a list or mapping (line {line})")
            if parent is not None:
                parent[1][0] = False
            if len(frames) >= MAX_SPEC_DEPTH:
                raise _Refused(f"nested more than {MAX_SPEC_DEPTH} levels deep")
            frames.append((set(), [True]) if isinstance(event, yaml.MappingStartEvent) else None)
        elif isinstance(event, yaml.CollectionEndEvent):
            frames.pop()
            value_done()
        elif isinstance(event, yaml.ScalarEvent) and parent is not None:
            seen, expect_key = parent
            if expect_key[0]:
                if event.value in seen:
                    raise _Refused(f"the key '{_path((event.value,))}' is repeated (line {line})")
                seen.add(event.value)
                expect_key[0] = False
            else:
                expect_key[0] = True


# The document's shape. These models check names and types only; ranges and the rules
# between fields stay in the dataclasses above, so that a spec built in Python is held
# to them too. Numbers are kept as written (an int stays an int in the manifest).


def _one_or_many(value: object) -> object:
    """A single name stands for a list of one (``kind: music``)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError("must be a name or a list of names")
    return value


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise ValueError("must be a number")


def _key_value(value: object) -> object:
    """A public key's value as its label: ``2024`` or ``2024-01-31`` as text."""
    if isinstance(value, int | float | date) and not isinstance(value, bool):
        return str(value)
    return value


def _one_or_many_schema(name: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [name, {"type": "array", "items": name}]})


def _names(choices: tuple[str, ...]) -> WithJsonSchema:
    return _one_or_many_schema({"type": "string", "enum": list(choices)})


_Number = Annotated[float, PlainValidator(_number, json_schema_input_type=float)]
_GroupKeys = Annotated[list[str], BeforeValidator(_one_or_many), _names(GROUP_KEYS)]
_Metrics = Annotated[list[str], BeforeValidator(_one_or_many), _names(METRICS)]
_Kinds = Annotated[list[str], BeforeValidator(_one_or_many), _names(KINDS)]
_Countries = Annotated[
    list[str],
    BeforeValidator(_one_or_many),
    _one_or_many_schema({"type": "string", "pattern": "^[A-Z]{2}$"}),
]
_KeyRow = Annotated[
    list[Annotated[str, BeforeValidator(_key_value)]],
    BeforeValidator(_one_or_many),
    _one_or_many_schema({"type": ["string", "integer"]}),
]


def _date(value: object) -> object:
    # pydantic would also read a number as seconds since 1970: only dates and text here
    if value is None or isinstance(value, date | str):
        return value
    raise ValueError(_NOT_A_DATE)


_NOT_A_DATE = "must be a date like 2024-01-31"
# YAML gives a date, JSON a string: the one field read in pydantic's lax mode
_Date = Annotated[date | None, Field(strict=False), BeforeValidator(_date)]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class _Period(_Fields):
    """UTC dates, inclusive."""

    model_config = ConfigDict(title="Period")
    from_: _Date = Field(default=None, alias="from")
    to: _Date = None


class _Filters(_Fields):
    """Which listens count."""

    model_config = ConfigDict(title="Filters")
    kind: _Kinds = ["music"]
    min_seconds: int = 30
    """Plays shorter than this are ignored."""
    period: _Period | None = None
    countries: _Countries | None = None


class _Bounds(_Fields):
    """How much one member may contribute."""

    model_config = ConfigDict(title="Bounds")
    max_partitions: int
    max_plays_per_partition: int
    max_minutes_per_play: _Number


class _Privacy(_Fields):
    """The budget of one release: ε, δ, noise family, and how ε is split."""

    model_config = ConfigDict(title="Privacy")
    epsilon: _Number
    delta: _Number = 0.0
    """Needed for Gaussian noise and private keys."""
    noise: Annotated[str, WithJsonSchema({"type": "string", "enum": list(NOISES)})] = "gaussian"
    split: dict[str, _Number] | None = None
    """Each budget part's share of ε (even by default)."""


class _Document(_Fields):
    """A TuneTrust release spec (YAML or JSON): see docs/releases.md."""

    model_config = ConfigDict(title="TuneTrust release spec")
    purpose: str
    """A consent purpose."""
    filters: _Filters | None = None
    group_by: _GroupKeys
    metrics: _Metrics
    bounds: _Bounds
    privacy: _Privacy
    keys: Annotated[str, WithJsonSchema({"type": "string", "enum": list(KEY_MODES)})] = "private"
    public_keys: list[_KeyRow] | None = None
    """With public keys: the released keys, one value per group key."""
    min_members: int = 0
    """Refuse the release with fewer members."""
    min_listeners: int | None = None
    """Private keys: fewest members a released partition may describe."""

    def spec(self, *, source: str) -> ReleaseSpec:
        """The frozen spec, which checks ranges and the rules between fields."""
        filters = self.filters or _Filters()
        period = filters.period or _Period()
        privacy = self.privacy
        return ReleaseSpec(
            purpose=self.purpose,
            group_by=tuple(self.group_by),
            metrics=tuple(self.metrics),
            bounds=Bounds(
                max_partitions=self.bounds.max_partitions,
                max_plays_per_partition=self.bounds.max_plays_per_partition,
                max_minutes_per_play=self.bounds.max_minutes_per_play,
            ),
            privacy=Privacy(
                epsilon=privacy.epsilon,
                delta=privacy.delta,
                noise=privacy.noise,
                split=dict(privacy.split or {}),
            ),
            keys=self.keys,
            public_keys=tuple(tuple(row) for row in self.public_keys or ()),
            kinds=tuple(filters.kind),
            period_from=period.from_,
            period_to=period.to,
            countries=tuple(filters.countries or ()),
            min_seconds=filters.min_seconds,
            min_members=self.min_members,
            min_listeners=self.min_listeners,
            source=source,
        )


class _SchemaNames(GenerateJsonSchema):
    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).lstrip("_")  # "Filters", not "_Filters"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a release spec, published as docs/release-spec.schema.json."""
    # fields, types and names; ranges and the rules between fields are parse_spec's alone
    schema = _Document.model_json_schema(schema_generator=_SchemaNames)
    return {"$schema": GenerateJsonSchema.schema_dialect, **schema}


# Messages: one line, the field path and what is wrong, never the value given.
_SHOWN_PROBLEMS = 5
_PROBLEMS = {
    "missing": "missing",
    "model_type": "must be a mapping of fields",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "invalid_key": "field names must be text",
}


def _problems(exc: ValidationError) -> str:
    errors = exc.errors()
    shown = "; ".join(f"{_path(e['loc'])}: {_problem(e)}" for e in errors[:_SHOWN_PROBLEMS])
    more = len(errors) - _SHOWN_PROBLEMS
    return f"release spec, {shown}" + (f" (and {more} more)" if more > 0 else "")


def _problem(error: ErrorDetails) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        known = _field_names(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            return f"unknown field, did you mean {close[0]}?"
        return f"unknown field; known fields: {', '.join(known)}"
    if kind == "value_error":  # raised by the validators above, in their own words
        return str(error.get("ctx", {}).get("error"))
    if kind.startswith("date"):
        return _NOT_A_DATE
    return _PROBLEMS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # a field name, maybe a typo: kept short and on one line
            name = "".join(c if c.isprintable() else "?" for c in part[:40])
            path += f".{name}" if path else name
    return path or "(top level)"


def _field_names(loc: tuple[int | str, ...]) -> list[str]:
    """The fields allowed where ``loc`` points (a nested model of ``_Document``)."""
    model: type[BaseModel] = _Document
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        model = next(
            t
            for t in (annotation, *get_args(annotation))
            if isinstance(t, type) and issubclass(t, BaseModel)
        )
    return [info.alias or name for name, info in model.model_fields.items()]


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
