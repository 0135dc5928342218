"""Typed settings: built once by an interface, passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from tunetrust.errors import InputError

MiB = 1024 * 1024
DEFAULT_PURPOSES = ("research", "ai-training", "commercial-analytics")


def default_home() -> Path:
    """The cooperative home: ``TUNETRUST_HOME``, else a per-user data folder."""
    env = os.environ.get("TUNETRUST_HOME")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("tunetrust", appauthor=False))


@dataclass(frozen=True)
class ImportLimits:
    """Limits that keep a hostile or broken export from exhausting the machine."""

    max_file_bytes: int = field(
        default=1024 * MiB,
        metadata={"help": "largest single JSON file accepted (uncompressed)"},
    )
    max_total_bytes: int = field(
        default=4096 * MiB,
        metadata={"help": "largest export accepted (sum of uncompressed files)"},
    )
    max_ratio: float = field(
        default=200.0,
        metadata={"help": "largest compression ratio of one zip entry (zip-bomb guard)"},
    )
    max_entries: int = field(
        default=10_000,
        metadata={"help": "most entries a zip or folder may hold"},
    )


@dataclass(frozen=True)
class Checks:
    """Thresholds of the contribution checks (docs/contributions.md explains each)."""

    daily_allowance: float = field(
        default=0.5,
        metadata={
            "help": "listening allowed per day beyond 24 h for parallel devices "
            "(0.5 = up to 36 h before a day is impossible)"
        },
    )
    overlap_warn: float = field(
        default=0.08,
        metadata={
            "help": "share of plays overlapping the previous one on the "
            "same platform family that warns"
        },
    )
    overlap_fail: float = field(
        default=0.25, metadata={"help": "… that rejects (an impossible density of plays)"}
    )
    overlap_slack_seconds: int = field(
        default=12,
        metadata={
            "help": "how far a play may overlap the previous one before it counts as "
            "overlapping (crossfade, automix and logging latency; 12 s is the longest "
            "crossfade the service offers)"
        },
    )
    rounded_warn: float = field(
        default=0.15,
        metadata={
            "help": "share of play lengths in whole seconds that warns (real account "
            "data reaches 9 %)"
        },
    )
    rounded_fail: float = field(default=0.5, metadata={"help": "… that rejects"})
    same_length_warn: float = field(
        default=0.15,
        metadata={"help": "share of plays with the single most common length that warns"},
    )
    same_length_fail: float = field(default=0.4, metadata={"help": "… that rejects"})
    same_gap_warn: float = field(
        default=0.1,
        metadata={
            "help": "share of gaps between plays equal to the most common "
            "gap that warns (perfectly regular gaps)"
        },
    )
    same_gap_fail: float = field(default=0.3, metadata={"help": "… that rejects"})
    flat_day_warn: float = field(
        default=0.35,
        metadata={
            "help": "quietest hour ÷ busiest hour of the day above which "
            "listening looks uniform over the day (warns)"
        },
    )
    flat_day_fail: float = field(default=0.6, metadata={"help": "… that rejects"})
    copied_warn: float = field(
        default=0.02,
        metadata={"help": "share of plays already contributed by other members that warns"},
    )
    copied_fail: float = field(default=0.1, metadata={"help": "… that rejects"})
    copy_window_minutes: int = field(
        default=10, metadata={"help": "time shift within which a play counts as copied"}
    )
    repeated_warn: float = field(
        default=0.01, metadata={"help": "share of rows repeated inside the export that warns"}
    )
    repeated_fail: float = field(default=0.1, metadata={"help": "… that rejects"})
    min_plays_for_patterns: int = field(
        default=300, metadata={"help": "fewest plays for the pattern checks to judge at all"}
    )


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

    def to_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready; the form frozen into a request and written to the audit log."""
        return {
            "quorum": float(self.quorum),
            "majority": float(self.majority),
            "weighted_votes": self.weighted_votes,
            "fee_basis_points": self.fee_basis_points,
            "no_votes_opt_out": self.no_votes_opt_out,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rules:
        """Rules from their stored form (validated again)."""
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError):
            raise InputError("the stored rules are incomplete") from None


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one cooperative; every field has a default and help."""

    home: Path = field(
        default_factory=default_home,
        metadata={"help": "cooperative home folder (TUNETRUST_HOME)"},
    )
    database_url: str | None = field(
        default=None,
        metadata={
            "help": "metadata database URL (TUNETRUST_DATABASE_URL); "
            "default: SQLite file in the home"
        },
    )
    master_key: str | None = field(
        default=None,
        metadata={
            "help": "cooperative master key, urlsafe base64 of 32 bytes "
            "(TUNETRUST_MASTER_KEY); default: <home>/master.key"
        },
    )
    limits: ImportLimits = field(
        default_factory=ImportLimits, metadata={"help": "import safety limits"}
    )
    purposes: tuple[str, ...] = field(
        default=DEFAULT_PURPOSES,
        metadata={
            "help": "purposes members can consent to (TUNETRUST_PURPOSES adds more, "
            "comma-separated)"
        },
    )
    epsilon_cap: float = field(
        default=3.0,
        metadata={
            "help": "each member's ε budget per purpose and calendar year; a member may "
            "lower their own (TUNETRUST_EPSILON_CAP)"
        },
    )
    checks: Checks = field(
        default_factory=Checks, metadata={"help": "contribution check thresholds"}
    )
    actor: str = field(
        default="steward",
        metadata={"help": "who the audit log names for actions taken (TUNETRUST_ACTOR)"},
    )
    engine: str = field(
        default="duckdb",
        metadata={"help": "the release engine that bounds and aggregates (TUNETRUST_ENGINE)"},
    )

    @classmethod
    def from_env(cls, home: Path | None = None, database_url: str | None = None) -> Settings:
        """Settings from explicit values, falling back to the environment, then defaults."""
        extra = [p.strip() for p in os.environ.get("TUNETRUST_PURPOSES", "").split(",")]
        return cls(
            home=home if home is not None else default_home(),
            database_url=database_url or os.environ.get("TUNETRUST_DATABASE_URL") or None,
            master_key=os.environ.get("TUNETRUST_MASTER_KEY") or None,
            purposes=DEFAULT_PURPOSES + tuple(p for p in extra if p and p not in DEFAULT_PURPOSES),
            actor=os.environ.get("TUNETRUST_ACTOR") or "steward",
            epsilon_cap=_env_number("TUNETRUST_EPSILON_CAP", 3.0, 0.0, 100.0),
            engine=os.environ.get("TUNETRUST_ENGINE") or "duckdb",
        )

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


def _env_number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name} must be a number from {low:g} to {high:g}") from None
    if not low <= value <= high:
        raise InputError(f"{name} must be a number from {low:g} to {high:g}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
