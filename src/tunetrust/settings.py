"""Typed settings: built once by an interface, passed down explicitly.

Every field is written once, here, with its default, its bounds and its help text
(``Field(description=...)``); pydantic validates the values whenever an object is built.
``Settings(...)`` takes exactly the values it is given, so tests can build many homes
side by side whatever the shell exports; ``Settings.from_env()`` (what the command line
calls) also reads ``TUNETRUST_<FIELD>`` variables, and a bad one is an ``InputError``
that names the variable. ``Rules`` are not settings (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from tunetrust.errors import InputError

MiB = 1024 * 1024
# member-insights: the cooperative's own releases for its members (docs/insights.md)
DEFAULT_PURPOSES = ("research", "ai-training", "commercial-analytics", "member-insights")
ENV_PREFIX = "TUNETRUST_"


def default_home() -> Path:
    """The per-user data folder used when neither ``--home`` nor ``TUNETRUST_HOME`` is given."""
    return Path(platformdirs.user_data_dir("tunetrust", appauthor=False))


_NESTED = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
Share = Annotated[float, Field(ge=0, le=1)]


class ImportLimits(BaseModel):
    """Limits that keep a hostile or broken export from exhausting the machine."""

    model_config = _NESTED

    max_file_bytes: int = Field(
        default=1024 * MiB, gt=0, description="largest single JSON file accepted (uncompressed)"
    )
    max_total_bytes: int = Field(
        default=4096 * MiB, gt=0, description="largest export accepted (sum of uncompressed files)"
    )
    max_ratio: float = Field(
        default=200.0,
        gt=1,
        description="largest compression ratio of one zip entry (zip-bomb guard)",
    )
    max_entries: int = Field(
        default=10_000, gt=0, description="most entries a zip or folder may hold"
    )


class Checks(BaseModel):
    """Thresholds of the contribution checks (docs/contributions.md explains each)."""

    model_config = _NESTED

    daily_allowance: float = Field(
        default=0.5,
        ge=0,
        description="listening allowed per day beyond 24 h for parallel devices "
        "(0.5 = up to 36 h before a day is impossible)",
    )
    overlap_warn: Share = Field(
        default=0.08,
        description="share of plays overlapping the previous one on the "
        "same platform family that warns",
    )
    overlap_fail: Share = Field(
        default=0.25, description="… that rejects (an impossible density of plays)"
    )
    overlap_slack_seconds: int = Field(
        default=12,
        ge=0,
        description="how far a play may overlap the previous one before it counts as "
        "overlapping (crossfade, automix and logging latency; 12 s is the longest "
        "crossfade the service offers)",
    )
    rounded_warn: Share = Field(
        default=0.15,
        description="share of play lengths in whole seconds that warns (real account "
        "data reaches 9 %)",
    )
    rounded_fail: Share = Field(default=0.5, description="… that rejects")
    same_length_warn: Share = Field(
        default=0.15, description="share of plays with the single most common length that warns"
    )
    same_length_fail: Share = Field(default=0.4, description="… that rejects")
    same_gap_warn: Share = Field(
        default=0.1,
        description="share of gaps between plays equal to the most common "
        "gap that warns (perfectly regular gaps)",
    )
    same_gap_fail: Share = Field(default=0.3, description="… that rejects")
    flat_day_warn: Share = Field(
        default=0.35,
        description="quietest hour ÷ busiest hour of the day above which "
        "listening looks uniform over the day (warns)",
    )
    flat_day_fail: Share = Field(default=0.6, description="… that rejects")
    copied_warn: Share = Field(
        default=0.05,
        description="share of the export's listening sequences (three plays in a row) "
        "already contributed by other members that warns",
    )
    copied_fail: Share = Field(
        default=0.2,
        description="… that rejects (or, when the plays are unaltered, holds the import "
        "as a dispute for the steward)",
    )
    copy_common_members: int = Field(
        default=3,
        ge=1,
        description="a sequence held by more other members than this is common listening "
        "(an album in order), not evidence of a copy",
    )
    split_similarity: Share = Field(
        default=0.5,
        description="share of an export's plays on tracks another member plays above "
        "which the two histories are compared for a split (one person, two memberships)",
    )
    corroboration_members: int = Field(
        default=5,
        ge=0,
        description="fewest other members in the fingerprint index before quality's "
        "corroboration part is judged",
    )
    repeated_warn: Share = Field(
        default=0.01, description="share of rows repeated inside the export that warns"
    )
    repeated_fail: Share = Field(default=0.1, description="… that rejects")
    min_plays_for_patterns: int = Field(
        default=300, ge=0, description="fewest plays for the pattern checks to judge at all"
    )

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Self:
        for name in type(self).model_fields:
            if name.endswith("_warn"):
                fail = name.removesuffix("_warn") + "_fail"
                if getattr(self, name) > getattr(self, fail):
                    raise ValueError(f"{name} must not be above {fail}")
        return self


@dataclass(frozen=True)
class Rules:
    """The cooperative's governance rules, as one decision sets them.

    Not settings: the rules in force are the newest row of the ``coop_rules`` table,
    changed only by ``tunetrust rules set`` (with a reason, in the audit log), and
    frozen into each data request when its vote opens. These defaults are the rules a
    new home starts with; no environment variable changes them.
    """

    quorum: float = field(
        default=0.5,
        metadata={"help": "share of eligible members who must vote (above 0, at most 1)"},
    )
    majority: float = field(
        default=0.5,
        metadata={
            "help": "a request passes when yes ÷ (yes + no) is above this (at least 0.5, below 1)"
        },
    )
    weighted_votes: bool = field(
        default=False,
        metadata={"help": "weigh votes by contribution quality (default: one member, one vote)"},
    )
    fee_basis_points: int = field(
        default=1000,
        metadata={"help": "the cooperative's fee on each sale, in 1/100 % (0 to 10,000)"},
    )
    no_votes_opt_out: bool = field(
        default=True,
        metadata={
            "help": "members who voted no are left out of a passed release; False: a "
            "passed vote binds every consenting member"
        },
    )
    epsilon_cap: float = field(
        default=3.0,
        metadata={
            "help": "each member's ε budget per purpose and calendar year (above 0, at "
            "most 100); a member may lower their own"
        },
    )
    delta_cap: float = field(
        default=1e-5,
        metadata={
            "help": "each member's δ budget per purpose and calendar year (above 0, at "
            "most 0.001): releases' δ add up, so their total stays negligible"
        },
    )
    min_members: int = field(
        default=2,
        metadata={
            "help": "the fewest members a release may include (at least 2); a spec may "
            "ask for more, never fewer"
        },
    )

    def __post_init__(self) -> None:
        # exact types: the database and JSON hand back what was stored, nothing coerced
        if not (_is_number(self.quorum) and 0 < self.quorum <= 1):
            raise InputError("rule quorum: a number above 0 and at most 1")
        # below one half a minority could pass a request; at 1 nothing could ever pass
        if not (_is_number(self.majority) and 0.5 <= self.majority < 1):
            raise InputError("rule majority: a number from 0.5 to below 1")
        fee = self.fee_basis_points
        if not (_is_number(fee) and isinstance(fee, int) and 0 <= fee <= 10_000):
            raise InputError("rule fee_basis_points: a whole number from 0 to 10,000")
        for name in ("weighted_votes", "no_votes_opt_out"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"rule {name}: true or false")
        if not (_is_number(self.epsilon_cap) and 0 < self.epsilon_cap <= 100):
            raise InputError("rule epsilon_cap: a number above 0 and at most 100")
        if not (_is_number(self.delta_cap) and 0 < self.delta_cap <= 1e-3):
            raise InputError("rule delta_cap: a number above 0 and at most 0.001")
        floor = self.min_members
        if not (_is_number(floor) and isinstance(floor, int) and 2 <= floor <= 1_000_000):
            raise InputError("rule min_members: a whole number, at least 2")

    def to_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready; the form frozen into a request and written to the audit log."""
        return {
            "quorum": float(self.quorum),
            "majority": float(self.majority),
            "weighted_votes": self.weighted_votes,
            "fee_basis_points": self.fee_basis_points,
            "no_votes_opt_out": self.no_votes_opt_out,
            "epsilon_cap": float(self.epsilon_cap),
            "delta_cap": float(self.delta_cap),
            "min_members": self.min_members,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rules:
        """Rules from their stored form (validated again). Rules frozen by 0.2 lack the
        privacy rules: they take the defaults, as the migration that added them did."""
        try:
            return cls(
                **{
                    f.name: data[f.name]
                    for f in fields(cls)
                    if f.name in data or f.name in _GOVERNANCE
                }
            )
        except (KeyError, TypeError):
            raise InputError("the stored rules are incomplete") from None


_GOVERNANCE = ("quorum", "majority", "weighted_votes", "fee_basis_points", "no_votes_opt_out")


class Settings(BaseSettings):
    """Everything configurable about one cooperative; every field has a default and help."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,  # a master key must not reach a log
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
    )

    home: Path = Field(
        default_factory=default_home,
        description="cooperative home folder (--home); default: a per-user data folder",
    )
    database_url: str | None = Field(
        default=None,
        min_length=1,
        description="metadata database URL (--database-url); default: SQLite file in the home",
    )
    master_key: str | None = Field(
        default=None,
        min_length=1,
        description="cooperative master key, urlsafe base64 of 32 bytes; "
        "default: <home>/master.key",
    )
    limits: ImportLimits = Field(
        default=ImportLimits(), description="import safety limits (set in code)"
    )
    # NoDecode: the variable is a comma-separated list, not JSON (see from_env)
    purposes: Annotated[tuple[Annotated[str, Field(pattern=r"^\S+$")], ...], NoDecode] = Field(
        default=DEFAULT_PURPOSES,
        min_length=1,
        description="purposes members can consent to; the variable adds more, comma-separated",
    )
    epsilon_cap: float = Field(
        default=3.0,
        ge=0,
        le=100,
        description="the ε budget per member, purpose and year a new home starts with "
        "(then a rule: tunetrust rules set --epsilon-cap)",
    )
    checks: Checks = Field(
        default=Checks(), description="contribution check thresholds (set in code)"
    )
    actor: str = Field(
        default="steward", min_length=1, description="who the audit log names for actions taken"
    )
    engine: str = Field(
        default="duckdb",
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="the release engine that bounds and aggregates",
    )
    web_origin: str = Field(
        default="http://localhost:8000",
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="the web app's address as members' browsers see it (passkeys are bound "
        "to its host; https behind a proxy)",
    )

    # set in code, not from the environment: each is a whole model of its own
    IN_CODE: ClassVar[frozenset[str]] = frozenset({"limits", "checks"})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` takes only what it is given; ``from_env()`` reads the rest."""
        return (init_settings,)

    @classmethod
    def env_var(cls, name: str) -> str | None:
        """The environment variable that sets a field, or None for one set in code."""
        return None if name in cls.IN_CODE else ENV_PREFIX + name.upper()

    @classmethod
    def from_env(cls, home: Path | None = None, database_url: str | None = None) -> Settings:
        """Settings from explicit values, falling back to the environment, then defaults."""
        try:
            found = _Environment(cls)()
        except SettingsError as exc:  # not reached for plain fields; kept for a clear message
            raise InputError(f"a {ENV_PREFIX}* variable could not be read: {exc}") from None
        if "purposes" in found:
            extra = (p.strip() for p in str(found["purposes"]).split(","))
            found["purposes"] = DEFAULT_PURPOSES + tuple(
                dict.fromkeys(p for p in extra if p and p not in DEFAULT_PURPOSES)
            )
        given = {k: v for k, v in (("home", home), ("database_url", database_url)) if v}
        try:
            return cls(**(found | given))
        except ValidationError as exc:
            raise InputError(_explain(exc, set(found) - set(given))) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated like a new object."""
        return type(self)(**(dict(self) | changes))

    @property
    def db_url(self) -> str:
        """The metadata database URL actually used."""
        return self.database_url or f"sqlite:///{self.home / 'tunetrust.db'}"

    @property
    def events_dir(self) -> Path:
        """Root of the de-identified events store (Parquet, one partition per pseudonym)."""
        return self.home / "events"

    @property
    def key_file(self) -> Path:
        """Where the master key lives when it is not given in the environment."""
        return self.home / "master.key"


class _Environment(EnvSettingsSource):
    """``TUNETRUST_<FIELD>`` for each plain field; the nested models are set in code."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in Settings.IN_CODE:
            return None, field_name, False
        return super().get_field_value(field, field_name)


def _explain(exc: ValidationError, from_env: set[str]) -> str:
    """One line per problem, naming the variable or field; never the value (a key may be)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        where = Settings.env_var(top) if top in from_env else f"setting {path}"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
