"""Plan and build a release: eligible members → engine → noise → files, manifest, budget."""

from __future__ import annotations

import importlib.metadata as md
import itertools
import re
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select

from tunetrust import faults
from tunetrust.coop import audit, budget
from tunetrust.coop.budget import Epsilon
from tunetrust.coop.consent import consenting
from tunetrust.coop.governance import rules_in_force
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, InputError, NotFoundError
from tunetrust.releases import manifest
from tunetrust.releases.engines import AGGREGATE_COLUMNS, Engine, Source, engine_for
from tunetrust.releases.noise import NoisePlan, Outcome, expected_outcome, plan_noise, release
from tunetrust.releases.spec import HOURS_BUCKETS, ReleaseSpec, spec_dict
from tunetrust.store.home import STAGED_RELEASE, Home
from tunetrust.store.models import AuditEntry, AuditPayload, BudgetSpend, Member, Release
from tunetrust.store.objects import ObjectStore


@dataclass(frozen=True)
class Plan:
    """Who a release would include, what it costs them, and how it is protected."""

    spec: ReleaseSpec
    year: int
    cost: Epsilon
    included: list[tuple[int, str, str]]  # member id, pseudonym, events file
    left_out: dict[str, int]
    budget_gap: tuple[Epsilon, Epsilon] | None  # (best remaining, difference) of those short
    noise: NoisePlan
    outcome: Outcome  # expected keys and accuracy, from the spec and member count alone

    def to_dict(self) -> dict[str, Any]:
        """What ``release plan`` shows."""
        return {
            "purpose": self.spec.purpose,
            "year": self.year,
            "epsilon_per_member": str(self.cost),
            "delta": self.spec.privacy.delta,
            "members_included": len(self.included),
            "members_left_out": self.left_out,
            "min_members": self.spec.min_members,
            "noise": self.noise.to_dict(),
            "outcome": self.outcome.to_dict(),
        }


def public_keys(spec: ReleaseSpec) -> list[tuple[str, ...]]:
    """The declared keys: the spec's list, or the calendar of its time keys and period."""
    if spec.public_keys:
        return sorted(set(spec.public_keys))
    needs_period = {"year", "quarter", "month", "week"} & set(spec.group_by)
    if needs_period and not (spec.period_from and spec.period_to):
        raise InputError(
            "release spec, filters.period: calendar keys "
            f"({', '.join(sorted(needs_period))}) need a period with from and to"
        )
    days = []
    if spec.period_from and spec.period_to:
        d = spec.period_from
        while d <= spec.period_to:
            days.append(d)
            d += timedelta(days=1)
    values: dict[str, list[str]] = {
        "year": sorted({f"{d:%Y}" for d in days}),
        "quarter": sorted({f"{d:%Y}-Q{(d.month - 1) // 3 + 1}" for d in days}),
        "month": sorted({f"{d:%Y-%m}" for d in days}),
        "week": sorted({f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in days}),
        "weekday": [str(i) for i in range(1, 8)],
        "hour": [f"{h:02d}" for h in range(24)],
        "member_hours": [str(b) for b in HOURS_BUCKETS],
    }
    return sorted(itertools.product(*(values[k] for k in spec.group_by)))


def _on_public_keys(spec: ReleaseSpec, aggregates: pa.Table) -> pa.Table:
    """Exactly the declared keys, in order: observed values, zeros where nothing was seen."""
    keys = list(spec.group_by)
    declared = public_keys(spec)
    seen = {tuple(r[k] for k in keys): r for r in aggregates.to_pylist()}
    zero = dict.fromkeys(AGGREGATE_COLUMNS, 0)
    rows = [
        {
            **dict(zip(keys, key, strict=True)),
            **{c: seen.get(key, zero)[c] for c in AGGREGATE_COLUMNS},
        }
        for key in declared
    ]
    return pa.Table.from_pylist(rows, schema=aggregates.schema)


def plan_release(
    home: Home,
    spec: ReleaseSpec,
    *,
    year: int | None = None,
    only: set[int] | None = None,
    allow_empty: bool = False,
) -> Plan:
    """Check a spec and work out who would be included; computes nothing on the data.

    A release expected to be empty (private keys, and too few members for any key to be
    expected to pass the threshold) is refused with an ``InputError`` unless
    ``allow_empty``: it would spend everyone's ε, and be paid for, for nothing.
    """
    engine_for(home.settings.engine)  # an unknown engine is refused before any work
    declared = None
    if spec.keys == "public":
        # a calendar without a period is refused here, before any work
        declared = len(public_keys(spec))
    if spec.purpose not in home.settings.purposes:
        raise InputError(
            f"release spec, purpose: unknown purpose {spec.purpose!r}; "
            f"choose from {', '.join(home.settings.purposes)}"
        )
    year = year or datetime.now(UTC).year
    cost = Epsilon.of(spec.privacy.epsilon)
    floor = rules_in_force(home).min_members
    if 0 < spec.min_members < floor:
        raise InputError(
            f"release spec, min_members: {spec.min_members} is below the cooperative's "
            f"floor of {floor} members (tunetrust rules show); ask for at least {floor}, "
            "or leave it out"
        )
    noise = plan_noise(spec)
    left_out: Counter[str] = Counter()
    included: list[tuple[int, str, str]] = []
    short: list[Epsilon] = []
    with home.sessions() as s:
        default, delta_cap = budget.cooperative_caps(s)
        consenting_ids = consenting(s, spec.purpose)
        members = list(s.scalars(select(Member).order_by(Member.id)))
        ids = [m.id for m in members]
        left = budget.remaining_for(s, ids, spec.purpose, year, default)
        delta_used = budget.delta_spent(s, ids, spec.purpose, year)
        for m in members:
            if m.erased_at is not None:
                left_out["erased"] += 1
            elif only is not None and m.id not in only:
                left_out["not_in_request"] += 1
            elif m.id not in consenting_ids:
                left_out["no_consent"] += 1
            elif m.events_file is None:
                left_out["no_listens"] += 1
            else:
                if cost > left[m.id]:
                    left_out["no_budget"] += 1
                    short.append(left[m.id])
                elif not budget.delta_fits(delta_used.get(m.id, 0.0), noise.delta, delta_cap):
                    left_out["no_delta_budget"] += 1
                else:
                    included.append((m.id, m.pseudonym, m.events_file))
    gap = None
    if short:
        best = max(short)
        gap = (best, Epsilon(cost.micro - best.micro))
    outcome = expected_outcome(noise, spec, len(included), declared)
    if not allow_empty:
        outcome.check()
    return Plan(spec, year, cost, included, dict(left_out), gap, noise, outcome)


@dataclass(frozen=True)
class Built:
    """A built release; the exact member counts are the steward's, never the buyer's."""

    id: str
    path: Path
    manifest: dict[str, Any]
    members_included: int
    members_left_out: dict[str, int]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("tunetrust", "opendp", "duckdb", "pyarrow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
            out[pkg] = "unknown"
    return out


_RELEASE_ID = re.compile(r"[0-9a-f]{32}")


def build_release(
    home: Home,
    spec: ReleaseSpec,
    *,
    engine: Engine | None = None,
    only: set[int] | None = None,
    allow_empty: bool = False,
    release_id: str | None = None,
    _noise: bool = True,
) -> Built:
    """Build a release: bounded aggregates, OpenDP noise, files, manifest, budget, audit.

    ``only`` restricts the release to these member ids (a data request's voters).
    A release expected to be empty is refused unless ``allow_empty`` (``plan_release``).
    ``release_id`` (32 lowercase hex digits) is chosen by a caller that records it before
    the build, such as a sale claiming a request; by default a new random one.
    ``_noise=False`` is a switch for tests only: it releases the true bounded
    aggregates so they can be compared with a reference computation.
    """
    if release_id is not None and not _RELEASE_ID.fullmatch(release_id):
        raise InputError("a release id is 32 lowercase hexadecimal digits")
    engine = engine or engine_for(home.settings.engine)
    with home.lock():
        plan = plan_release(home, spec, only=only, allow_empty=True)
        needed = max(spec.min_members, rules_in_force(home).min_members)
        if len(plan.included) < needed:
            message = (
                f"the release needs at least {needed} member(s); "
                f"{len(plan.included)} can be included"
            )
            if plan.budget_gap:
                best, diff = plan.budget_gap
                message += (
                    f"; privacy budget: requested ε {plan.cost}, remaining ε {best} "
                    f"at most, difference ε {diff}"
                )
            raise ConflictError(message)
        if not allow_empty:  # after the member count, whose refusal says more
            plan.outcome.check()
        release_id = release_id or uuid.uuid4().hex
        salt = secrets.token_hex(16)
        merkle_secret = secrets.token_bytes(32)  # the database's only (manifest.py)
        sources = [Source(p, home.events.uri(p, f)) for _, p, f in plan.included]
        aggregates = engine.aggregate(spec, sources, salt)
        if spec.keys == "public":
            aggregates = _on_public_keys(spec, engine.label(spec, sources, aggregates))
            table = release(plan.noise, spec, aggregates, noise=_noise)
        else:  # only the selected keys are labelled
            table = engine.label(spec, sources, release(plan.noise, spec, aggregates, noise=_noise))
        # staged under releases/.tmp-<id>/, published as releases/<id>/ once committed
        staged = f"{STAGED_RELEASE}{release_id}"
        files = home.releases.scope(staged)
        try:
            files.put("data.parquet", _parquet(table))
            files.put("data.csv", _csv(table))
            schema = manifest.column_schema(spec, table.schema, plan.outcome)
            files.put(manifest.SCHEMA, orjson.dumps(schema, option=orjson.OPT_INDENT_2))
            pseudonyms = [p for _, p, _ in plan.included]
            leaves = manifest.tree_leaves(pseudonyms, merkle_secret)
            doc = {
                "id": release_id,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "spec": spec.source or None,
                "spec_parsed": spec_dict(spec),
                "privacy": {
                    "model": "user-level differential privacy (neighbours differ by all "
                    "listens of one member)",
                    "epsilon": spec.privacy.epsilon,
                    "delta": spec.privacy.delta,
                    "noise": plan.noise.to_dict() if _noise else "DISABLED (test switch)",
                    "bounding_salt": salt,
                    "expected_outcome": plan.outcome.to_dict(),
                    "built_although_expected_empty": plan.outcome.expected_empty,
                },
                "accounting": {
                    "purpose": spec.purpose,
                    "year": plan.year,
                    "epsilon_per_member": str(plan.cost),
                },
                "engine": engine.name,
                "versions": _versions(),
                "rows": table.num_rows,
                # exact counts would tell a buyer who joined, left or was erased
                # between two releases: coarse here, exact in the audit entry
                "members_included": manifest.coarse_count(len(plan.included)),
                "merkle_root": manifest.root_of(leaves),
                "merkle_leaves": len(leaves),
                "files": {name: manifest.object_digest(files, name) for name in manifest.FILES},
                "checksums": manifest.CHECKSUMS,
            }
            body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            files.put(manifest.MANIFEST, body)
            files.put(
                manifest.CHECKSUMS,
                manifest.sha256sums(files, [*manifest.FILES, manifest.MANIFEST]).encode(),
            )
            manifest_sha256 = manifest.object_digest(files, manifest.MANIFEST)
            faults.reach("release.staged")  # files staged, nothing committed: a retry builds anew
            with home.transaction() as s:
                budget.spend(
                    s,
                    release_id=release_id,
                    member_ids=[m for m, _, _ in plan.included],
                    purpose=spec.purpose,
                    year=plan.year,
                    amount=plan.cost,
                    delta=plan.noise.delta,
                )
                s.add(
                    Release(
                        id=release_id,
                        created_at=datetime.now(UTC),
                        purpose=spec.purpose,
                        spec=spec.source,
                        manifest_sha256=manifest_sha256,
                        members_included=len(plan.included),
                        merkle_secret=merkle_secret.hex(),
                    )
                )
                audit.record(
                    s,
                    actor=audit.actor(home),
                    action="release.build",
                    subject=release_id,
                    payload={
                        "spec": spec.source,
                        "members_included": len(pseudonyms),
                        "members_left_out": plan.left_out,
                        "epsilon_per_member": str(plan.cost),
                        "merkle_root": doc["merkle_root"],
                        # what `release verify` holds the files to (verify_release)
                        "manifest_sha256": manifest_sha256,
                    },
                )
        except BaseException:
            home.releases.delete_tree(staged)
            raise
        faults.reach("release.committed")  # committed, not yet published: recovery publishes
        home.releases.publish_tree(staged, release_id)
    folder = Path(home.releases.uri(release_id))
    return Built(release_id, folder, doc, len(plan.included), plan.left_out)


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _csv(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def release_files(home: Home, release_id: str) -> ObjectStore:
    """The files of a built release, as a store (keys: file names)."""
    with home.sessions() as s:
        row = s.get(Release, release_id)
    if row is None:
        raise NotFoundError(f"no release {release_id!r}")
    return home.releases.scope(release_id)


def release_folder(home: Home, release_id: str) -> Path:
    """The folder of a built release (a local store's; see ``release_files``)."""
    return Path(release_files(home, release_id).uri(""))


def verify_release(home: Home, release_id: str) -> list[str]:
    """Problems found checking a release's files against its manifest and SHA256SUMS,
    and its manifest against the database's record and audit entry (empty: all match).

    The files alone cannot tell a consistent forgery, new data and its digests in the
    manifest and SHA256SUMS, from the original: the manifest's SHA-256 recorded when the
    release was committed can.
    """
    files = release_files(home, release_id)
    problems = manifest.verify_files(files)
    try:
        digest: str | None = manifest.object_digest(files, manifest.MANIFEST)
    except FileNotFoundError:  # pragma: no cover - verify_files raised NotFoundError first
        digest = None
    with home.sessions() as s:
        row = s.get(Release, release_id)
        recorded = row.manifest_sha256 if row is not None else None
        built = s.execute(
            select(AuditEntry.payload_digest, AuditPayload.payload)
            .outerjoin(AuditPayload, AuditPayload.seq == AuditEntry.seq)
            .where(AuditEntry.action == "release.build", AuditEntry.subject == release_id)
        ).all()
    if digest != recorded:
        problems.append("manifest.json does not match its SHA-256 in the database")
    if not built:
        problems.append("no audit entry records this release's build")
    for chained, payload in built:
        if payload is None or audit.digest(payload) != chained:
            problems.append("the audit entry of this release's build lost or changed its payload")
        elif payload.get("manifest_sha256", digest) != digest:  # older entries lack it
            problems.append("manifest.json does not match its SHA-256 in the audit log")
    return list(dict.fromkeys(problems))


def inclusion(home: Home, release_id: str, member_name: str) -> tuple[manifest.Proof, str]:
    """A member's proof of inclusion in a release (empty if not included), and the root
    it checks against."""
    files = release_files(home, release_id)
    member = get_member(home, member_name)
    with home.sessions() as s:
        pseudonyms = list(
            s.scalars(
                select(Member.pseudonym)
                .join(BudgetSpend, BudgetSpend.member_id == Member.id)
                .where(BudgetSpend.release_id == release_id)
            )
        )
        row = s.get(Release, release_id)
        secret = bytes.fromhex(row.merkle_secret) if row and row.merkle_secret else b""
    root = str(manifest.read_manifest(files)["merkle_root"])
    return manifest.prove(pseudonyms, member.pseudonym, secret), root
