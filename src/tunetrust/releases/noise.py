"""Noise from OpenDP's core measurements: calibration, private key selection, accounting.

User-level sensitivities follow from the bounds (engines/duckdb.py): a member touches at most
P partitions, changing each by at most 1 listener, C plays, floor(C·M) minutes, C skips.

Gaussian (default; zero-concentrated DP):
  δ is split in two when keys are private: δ/2 for key selection, δ/2 for turning ρ
  into (ε, δ). The total ρ is the largest whose conversion stays within ε at that δ
  (OpenDP's zCDP→approxDP map). Each budget part gets its share of ρ; OpenDP's
  measurements are searched for the smallest noise scale meeting it: the Gaussian
  threshold on distinct-member counts (L0 = P, L2 = √P, L∞ = 1) selects keys, the
  Gaussian on vectors (L2 = √P × bound) noises each metric.
Laplace (pure DP, approximate with private keys):
  ε is split by the shares; the Laplace threshold (L0 = P, L1 = P, L∞ = 1) selects keys
  with all of δ, the Laplace on vectors (L1 = P × bound) noises each metric.

Pre-thresholding (private keys): a partition with fewer than τ members (the spec's
``min_listeners``) is dropped before selection, and the threshold measurement sees
every other partition's count shifted down, c − (τ − 1). The shift maps a count of
τ − 1 or less to "absent" and is 1-Lipschitz, so neighbouring datasets still differ in
at most P keys by at most 1 each, a key absent on one side holding at most 1 on the
other: exactly the input OpenDP's threshold map is stated for, so its (ε, δ) holds
unchanged. The price is a release threshold τ − 1 members higher; the gains are that
no released partition describes fewer than τ members, and that noise is drawn for the
few partitions near the threshold instead of every candidate (drawing OpenDP's exact
discrete Gaussian costs ~9 µs a key, which dominated releases with ~10⁶ candidates).
The noisy count released for a selected key is the shifted noisy count plus τ − 1.

Key selection's δ is not taken from OpenDP 0.16's threshold maps alone: they charge one
step of the tail too few (opendp/opendp#2922). ``selection_delta`` computes it from the
exact tail of the noise drawn; calibration and accounting use the larger of the two.

Released numbers are rounded and clipped at zero afterwards (post-processing).
Nothing here draws random numbers itself.

Expected accuracy (``expected_outcome``), from the calibrated scales alone, before any
data is read: integer inputs get OpenDP's *discrete* noise, P(x) ∝ exp(−x²/2σ²)
(Gaussian) or exp(−|x|/b) (Laplace). The 95 % half-width is the smallest whole h with
P(|noise| ≤ h) ≥ 0.95: for the discrete Laplace in closed form, P(|X| > h) =
2q^(h+1)/(1+q) with q = e^(−1/b), so h = ⌈b·ln(2/(0.05·(1+q)))⌉ − 1; for the discrete
Gaussian by summing its probabilities exactly up to σ = 5,000, and above that from the
normal distribution with a continuity correction, h = ⌈1.95996·σ − ½⌉, whose error
against the exact sums is then below 10⁻⁹. Private keys add a release threshold: a key
whose noisy count of members cannot be expected to reach it is expected not to appear.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
import opendp.prelude as dp
import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.errors import InputError
from tunetrust.releases.engines.base import AGGREGATE_COLUMNS
from tunetrust.releases.spec import ReleaseSpec

dp.enable_features("contrib")

_FLOATS = dp.atom_domain(T=float, nan=False)
_INTS = dp.atom_domain(T=int)
_KEY_SEP = "\x1f"


# Counts are integers, so the discrete Gaussian and Laplace apply: exact, and several times
# faster in OpenDP than its continuous samplers.
def _map_space(noise: str) -> tuple[Any, Any]:
    domain = dp.map_domain(dp.atom_domain(T=str), _INTS)
    inner = dp.absolute_distance(T=int)
    return domain, dp.l02inf_distance(inner) if noise == "gaussian" else dp.l01inf_distance(inner)


def _vector_space(noise: str) -> tuple[Any, Any]:
    metric = dp.l2_distance(T=int) if noise == "gaussian" else dp.l1_distance(T=int)
    return dp.vector_domain(_INTS), metric


@dataclass(frozen=True)
class Part:
    """One noisy quantity: its sensitivity, its share of the budget, its noise scale."""

    name: str
    bound: float  # most one member changes one partition
    sensitivity: float  # L2 (Gaussian) or L1 (Laplace) over all partitions
    budget: float  # ρ (Gaussian) or ε (Laplace)
    scale: float


@dataclass(frozen=True)
class NoisePlan:
    """How a release spends its (ε, δ): every scale, threshold and the accounting."""

    noise: str
    epsilon: float
    delta: float
    parts: dict[str, Part]
    threshold: int | None = None  # on shifted counts: a key needs τ − 1 + threshold
    rho: float | None = None
    accounting: dict[str, float] = field(default_factory=dict)
    min_listeners: int = 1  # τ, the pre-threshold (1: none)

    @property
    def release_threshold(self) -> int | None:
        """Distinct members a key's noisy count must reach to be released (unshifted)."""
        return None if self.threshold is None else self.threshold + self.min_listeners - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the manifest."""
        return {**asdict(self), "release_threshold": self.release_threshold}


def _bounds(spec: ReleaseSpec) -> dict[str, float]:
    c = spec.bounds.max_plays_per_partition
    return {
        "selection": 1.0,
        "listeners": 1.0,
        "plays": float(c),
        "skips": float(c),
        "minutes": float(math.floor(c * spec.bounds.max_minutes_per_play)),
    }


def _search(predicate: Any, bounds: tuple[float, float], *, rel: float = 1e-7) -> float:
    """The smallest x in ``bounds`` (to a relative ``rel``) where a monotone predicate on
    OpenDP's privacy maps holds; a numeric overflow at extreme values reads as "no".

    Geometric bisection: about 30 map calls instead of the ~80 of a bisection to the
    last float bit. Being a little above the optimum only costs a little utility; the
    budget itself is rechecked from the built measurements in ``_account``.
    """

    def safe(x: float) -> bool:
        try:
            return bool(predicate(x))
        except dp.OpenDPException:
            return False

    lo, hi = bounds
    if not safe(hi):
        raise RuntimeError("no noise scale in range meets the budget")  # pragma: no cover
    while hi / lo > 1 + rel:
        mid = math.sqrt(lo * hi)
        if safe(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _rho_for(epsilon: float, delta: float) -> float:
    """The largest ρ whose (ε, δ) conversion stays within ``epsilon`` (OpenDP's map)."""

    def converted(scale: float) -> Any:
        proxy = dp.m.make_gaussian(_FLOATS, dp.absolute_distance(T=float), scale=scale)
        return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(proxy), delta)

    scale = _search(lambda s: converted(s).map(1.0)[0] <= epsilon, (1e-3, 1e9))
    proxy = dp.m.make_gaussian(_FLOATS, dp.absolute_distance(T=float), scale=scale)
    return float(proxy.map(1.0))


def plan_noise(spec: ReleaseSpec) -> NoisePlan:
    """Calibrate every part of a release to the spec's privacy budget."""
    priv, p, noise = spec.privacy, spec.bounds.max_partitions, spec.privacy.noise
    bounds = _bounds(spec)
    private = spec.keys == "private"
    rho: float | None = None
    if noise == "gaussian":
        delta_sel = priv.delta / 2 if private else 0.0
        rho = _rho_for(priv.epsilon, priv.delta - delta_sel)
        total = rho
    else:
        delta_sel, total = priv.delta, priv.epsilon
    # how a member's changes in P partitions add up: L2 norm for Gaussian, L1 for Laplace.
    # OpenDP's integer distances are whole numbers: the threshold's (L0, Lp, L∞) map
    # itself tightens Lp to √L0·L∞, but a vector's L2 sensitivity is rounded up.
    norm = math.sqrt(p) if noise == "gaussian" else float(p)
    parts: dict[str, Part] = {}
    threshold = None
    for name, share in spec.shares().items():
        budget = total * share
        if name == "selection":
            d_in = (p, p, 1)
            scale = _search(
                lambda s, b=budget, d=d_in: _threshold(noise, s, 10**9).map(d)[0] <= b,
                (1e-3, 1e9),
            )
            # both OpenDP's map and the exact tail (see selection_delta) must hold
            threshold = int(
                dp.binary_search(
                    lambda t, s=scale, d=d_in: (
                        max(_threshold(noise, s, t).map(d)[1], selection_delta(noise, s, t, p))
                        <= delta_sel
                    ),
                    bounds=(1, 10**9),
                )
            )
            parts[name] = Part(name, 1.0, norm, budget, scale)
        else:
            sens = float(math.ceil(norm * bounds[name]))
            scale = _search(
                lambda s, b=budget, d=int(sens): _vector(noise, s).map(d) <= b, (1e-3, 1e12)
            )
            parts[name] = Part(name, bounds[name], sens, budget, scale)
    plan = NoisePlan(
        noise, priv.epsilon, priv.delta, parts, threshold, rho, min_listeners=spec.pre_threshold
    )
    return _account(plan, spec)


def _account(plan: NoisePlan, spec: ReleaseSpec) -> NoisePlan:
    """Recompute the spent budget from the measurements as built (basic composition)."""
    p = spec.bounds.max_partitions
    spent = 0.0
    delta = 0.0
    selection: dict[str, float] = {}
    for part in plan.parts.values():
        if part.name == "selection":
            t = int(plan.threshold or 0)
            budget, d = _threshold(plan.noise, part.scale, t).map((p, p, 1))
            charged = max(d, selection_delta(plan.noise, part.scale, t, p))
            delta += charged
            selection = {
                "delta_selection": charged,
                "delta_selection_per_key": noise_at_least(plan.noise, part.scale, t - 1),
                "delta_selection_opendp_map": d,
            }
        else:
            m = _vector(plan.noise, part.scale)
            budget = m.map(int(part.sensitivity))
        spent += budget
    if plan.noise == "gaussian":
        proxy = dp.m.make_gaussian(
            _FLOATS, dp.absolute_distance(T=float), scale=math.sqrt(1 / (2 * spent))
        )
        conv_delta = plan.delta - delta
        eps = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(proxy), conv_delta).map(1.0)[0]
        accounting = {
            "rho_spent": spent,
            "rho_allowed": plan.rho or 0.0,
            "epsilon_spent": eps,
            "delta_spent": delta + conv_delta,
            **selection,
        }
    else:
        accounting = {"epsilon_spent": spent, "delta_spent": delta, **selection}
    if accounting["epsilon_spent"] > plan.epsilon * (1 + 1e-9) or (
        accounting["delta_spent"] > plan.delta * (1 + 1e-9)
    ):
        raise RuntimeError("the calibrated measurements overspend the budget")  # pragma: no cover
    return replace(plan, accounting=accounting)


# OpenDP 0.16's threshold measurements release a key when its noisy count is ≥ the
# threshold, but their privacy map charges P[Z > threshold − l∞] (opendp/opendp#2922,
# open): one step of the tail too few, and for the Gaussian the continuous normal's tail
# where the discrete Gaussian is drawn. selection_delta computes δ from the exact tail of
# the noise actually drawn, and calibration and accounting take the larger of the two.
# Checked against OpenDP 0.16 only: tests/test_release_privacy.py fails on any other
# version, so that whoever upgrades re-checks the map (and may drop the workaround).
OPENDP_CHECKED = "0.16"


def selection_delta(noise: str, scale: float, threshold: int, keys: int) -> float:
    """The real δ of key selection at this threshold, from the exact noise tail.

    A key absent on one side holds a shifted count of at most 1 on the other and is
    released when 1 + Z ≥ threshold, with probability q = P(Z ≥ threshold − 1); a member
    touches at most ``keys`` keys, so δ = 1 − (1 − q)^keys (OpenDP's own composition).
    """
    q = noise_at_least(noise, scale, threshold - 1)
    return 1.0 if q >= 1 else -math.expm1(keys * math.log1p(-q))


def opendp_version() -> str:
    """The installed OpenDP version (the threshold workaround was checked on 0.16)."""
    return str(dp.__version__)


def _threshold(noise: str, scale: float, threshold: float) -> Any:
    make = dp.m.make_gaussian_threshold if noise == "gaussian" else dp.m.make_laplace_threshold
    return make(*_map_space(noise), scale=scale, threshold=threshold)


def _vector(noise: str, scale: float) -> Any:
    make = dp.m.make_gaussian if noise == "gaussian" else dp.m.make_laplace
    return make(*_vector_space(noise), scale=scale)


def pre_threshold(listeners: pa.Array | pa.ChunkedArray, tau: int) -> tuple[pa.Array, list[int]]:
    """Rows with at least ``tau`` members, and their counts shifted down by ``tau`` − 1.

    What OpenDP's threshold measurement sees (module docstring): below τ a key is
    absent, from τ on it counts c − (τ − 1) ≥ 1.
    """
    rows = pc.indices_nonzero(pc.greater_equal(listeners, tau))
    shifted = pc.subtract(pc.take(listeners, rows), tau - 1)
    return rows, [int(v) for v in shifted.to_pylist()]


def release(
    plan: NoisePlan, spec: ReleaseSpec, aggregates: pa.Table, *, noise: bool = True
) -> pa.Table:
    """The released table: selected keys and noisy metrics (true values if ``noise`` off).

    ``aggregates`` holds key columns (any encoding) and the engine's aggregate columns;
    the result keeps the key columns of the released rows and adds the spec's metrics.
    Engine-private ``_…`` columns are carried along for ``Engine.label``, which drops them.
    """
    keys = [c for c in aggregates.column_names if c not in AGGREGATE_COLUMNS]
    names_of = [c for c in keys if not c.startswith("_")]  # "_…" columns ride along
    if "selection" in plan.parts:
        shift = plan.min_listeners - 1
        rows, listeners = pre_threshold(aggregates["listeners"], plan.min_listeners)
        table = aggregates.take(rows)
        if noise:
            names = [
                _KEY_SEP.join(map(str, row))
                for row in zip(*(table[k].to_pylist() for k in names_of), strict=True)
            ]
            m = _threshold(plan.noise, plan.parts["selection"].scale, int(plan.threshold or 0))
            kept = m(dict(zip(names, listeners, strict=True)))
            chosen = [i for i, name in enumerate(names) if name in kept]
            table = table.take(pa.array(chosen, pa.int64()))
            noisy_listeners = np.array([kept[names[i]] + shift for i in chosen], dtype=float)
        else:
            noisy_listeners = np.array(listeners, dtype=float) + shift
    else:
        table = aggregates
        noisy_listeners = _noisy(plan, "listeners", table["listeners"], noise)
    out: dict[str, Any] = {k: table[k] for k in keys}
    wanted = set(spec.metrics)
    if "listeners" in wanted:
        out["listeners"] = _rounded(noisy_listeners)
    plays = _noisy(plan, "plays", table["plays"], noise) if "plays" in plan.parts else None
    if "plays" in wanted and plays is not None:
        out["plays"] = _rounded(plays)
    if "minutes" in wanted:
        out["minutes"] = _rounded(_noisy(plan, "minutes", table["minutes"], noise))
    if "skip_share" in wanted and plays is not None:
        skips = _noisy(plan, "skips", table["skips"], noise)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(plays >= 1, np.clip(skips / np.maximum(plays, 1), 0, 1), np.nan)
        out["skip_share"] = pa.array(np.round(share, 4), pa.float64(), mask=np.isnan(share))
    return pa.table(out)


def _noisy(plan: NoisePlan, part: str, values: pa.ChunkedArray, noise: bool) -> np.ndarray:
    true = values.to_pylist()
    if not noise or part not in plan.parts or len(true) == 0:
        return np.asarray(true, dtype=float)
    return np.asarray(_vector(plan.noise, plan.parts[part].scale)(true), dtype=float)


def _rounded(values: np.ndarray) -> pa.Array:
    return pa.array(np.maximum(np.rint(values), 0).astype(np.int64))


# --- Expected outcome: accuracy and selection, from the scales alone (module docstring) --

CONFIDENCE = 0.95
# up to this σ the discrete Gaussian's probabilities are summed exactly (≤ 65,000 terms)
_EXACT_GAUSSIAN_UP_TO = 5_000.0
_UNITS = {"listeners": "members", "plays": "plays", "minutes": "minutes", "skips": "plays"}
_DISTRIBUTIONS = {"gaussian": "discrete Gaussian", "laplace": "discrete Laplace"}


def _gaussian_weights(scale: float) -> np.ndarray:
    """exp(−x²/2σ²) for x = 0, 1, …, 13σ (beyond, each term is below 10⁻³⁶)."""
    x = np.arange(0, math.ceil(13 * scale) + 2, dtype=float)
    return np.exp(-(x**2) / (2 * scale * scale))


def noise_within(noise: str, scale: float, h: int) -> float:
    """P(|X| ≤ h) for the discrete noise OpenDP adds to an integer at this scale."""
    if h < 0:
        return 0.0
    if noise == "laplace":
        q = math.exp(-1 / scale)
        return 1 - 2 * math.exp(-(h + 1) / scale) / (1 + q)
    if scale > _EXACT_GAUSSIAN_UP_TO:
        return math.erf((h + 0.5) / (scale * math.sqrt(2)))
    w = _gaussian_weights(scale)
    total = w[0] + 2 * w[1:].sum()
    return float((w[0] + 2 * w[1 : h + 1].sum()) / total)


def noise_at_least(noise: str, scale: float, k: int) -> float:
    """P(X ≥ k) for the same noise (symmetric around 0)."""
    if k <= 0:
        return 1 - noise_at_least(noise, scale, 1 - k)
    if noise == "laplace":
        return math.exp(-k / scale) / (1 + math.exp(-1 / scale))
    if scale > _EXACT_GAUSSIAN_UP_TO:
        return 0.5 * math.erfc((k - 0.5) / (scale * math.sqrt(2)))
    w = _gaussian_weights(scale)
    total = w[0] + 2 * w[1:].sum()
    return float(w[k:].sum() / total)


def half_width(noise: str, scale: float, confidence: float = CONFIDENCE) -> int:
    """The smallest whole h with P(|noise| ≤ h) ≥ ``confidence`` (formulas: module docstring)."""
    alpha = 1 - confidence
    if noise == "laplace":
        q = math.exp(-1 / scale)
        return max(0, math.ceil(scale * math.log(2 / (alpha * (1 + q)))) - 1)
    if scale > _EXACT_GAUSSIAN_UP_TO:
        z = NormalDist().inv_cdf(1 - alpha / 2)
        return max(0, math.ceil(z * scale - 0.5))
    w = _gaussian_weights(scale)
    cumulative = (2 * np.cumsum(w) - w[0]) / (2 * w.sum() - w[0])
    return int(np.searchsorted(cumulative, confidence))


@dataclass(frozen=True)
class Accuracy:
    """How far one noisy quantity lands from its bounded true value, 95 times in 100."""

    quantity: str  # listeners, plays, minutes or skips
    unit: str  # members, plays or minutes
    distribution: str  # discrete Gaussian or discrete Laplace
    scale: float
    half_width: int  # |noise| ≤ half_width with probability `coverage`
    coverage: float  # exact, at least CONFIDENCE


@dataclass(frozen=True)
class Outcome:
    """What a release is expected to hold, from the spec and its member count alone."""

    keys: str  # private or public
    members: int  # members the release would include
    expected_empty: bool
    release_threshold: int | None  # private keys: noisy members a key needs
    min_listeners: int  # private keys: true members a key needs to be considered
    keys_declared: int | None  # public keys: every one is released
    keys_at_most: int  # no release can hold more keys than this
    chance_all_members_key: float | None  # private: P(a key all members share is released)
    accuracy: dict[str, Accuracy]
    confidence: float = CONFIDENCE

    def describe(self) -> str:
        """The selection rule and what it means for this cooperative, in one sentence."""
        if self.keys == "public":
            return f"every one of the {self.keys_declared:,} declared keys is released"
        chance = self.chance_all_members_key or 0.0
        if chance < 1e-6:
            odds = "below 1 in a million"
        elif chance < 0.01:
            odds = f"about 1 in {round(1 / chance):,}"
        else:
            odds = f"{chance:.0%}"
        return (
            f"a key is released only if at least {self.release_threshold:,} members "
            "contributed to it (its noisy count of members must reach that); "
            f"this release would include {self.members:,} "
            f"member{'' if self.members == 1 else 's'}, so a key every one of them "
            f"listened to is released with probability {odds}"
        )

    def check(self) -> None:
        """Refuse an expected-empty release: it would spend ε and be paid for nothing."""
        if self.expected_empty:
            raise InputError(
                f"this release is expected to be empty: {self.describe()}. "
                "Building it would spend every included member's ε for no data; raise "
                "privacy.epsilon, lower bounds.max_partitions, use public keys or wait "
                "for more members (`tunetrust release build --allow-empty` builds it anyway)"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``release plan --json`` and the manifest."""
        return {**asdict(self), "statement": self.describe()}


def expected_outcome(
    plan: NoisePlan, spec: ReleaseSpec, members: int, keys_declared: int | None = None
) -> Outcome:
    """The expected keys and each noisy quantity's 95 % accuracy; reads no data.

    Private keys: a key with c members is released when c − (τ − 1) + noise reaches the
    threshold, so with M members no key is expected (noise median 0) when M is below
    the release threshold N; the chance for a key all M share is P(noise ≥ N − M).
    Each released key has at least τ members and each member is in at most P keys, so
    no release holds more than ⌊M·P/τ⌋ keys.
    """
    parts = dict(plan.parts)
    if "selection" in parts:  # the released listeners are the selection's noisy counts
        parts["listeners"] = parts.pop("selection")
    accuracy = {}
    for name, part in parts.items():
        if name == "listeners" and "listeners" not in spec.metrics:
            continue
        h = half_width(plan.noise, part.scale)
        accuracy[name] = Accuracy(
            name,
            _UNITS[name],
            _DISTRIBUTIONS[plan.noise],
            part.scale,
            h,
            noise_within(plan.noise, part.scale, h),
        )
    if plan.release_threshold is None:
        declared = keys_declared or 0
        return Outcome(
            "public", members, declared == 0, None, 1, declared, declared, None, accuracy
        )
    tau, needed = plan.min_listeners, plan.release_threshold
    selection = plan.parts["selection"]
    chance = (
        noise_at_least(plan.noise, selection.scale, needed - members) if members >= tau else 0.0
    )
    return Outcome(
        "private",
        members,
        members < needed,
        needed,
        tau,
        None,
        members * spec.bounds.max_partitions // tau if members >= tau else 0,
        chance,
        accuracy,
    )
