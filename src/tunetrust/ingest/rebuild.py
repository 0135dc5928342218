"""Re-derive members' stored listens from the raw exports in their vaults.

The repair path for stores written by an importer with a fault (0.1.0's dedup kept
repeated rows and lost as many plays at the end of an export; CHANGELOG.md): each
member's accepted contributions are read again from the vault, in the order they were
imported, de-identified and merged by today's rules, and each contribution's quality
increment is recomputed as of its own import time. Members whose listens come out
the same are left alone.

It is also the upgrade step for stores written before the parsers normalised skips
(``skipped`` filled from the service's skip reasons, docs/events.md): the re-read rows
carry it. A member some of whose raw exports are not kept keeps their stored rows,
normalised in place with their service's facts.

All of it is one step of the write protocol: every changed partition is staged, then
one transaction moves every member to their new file, updates the contributions and
appends one audit entry per member, then the files are published. A process killed
anywhere leaves the cooperative as it was or as it is after (``Home.recover``).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import select

from tunetrust import faults
from tunetrust.coop import audit
from tunetrust.coop.keyring import data_key
from tunetrust.formats import ServiceFacts, normalise, service_facts
from tunetrust.ingest.dedup import merge
from tunetrust.ingest.deidentify import deidentify
from tunetrust.ingest.pipeline import read_package
from tunetrust.ingest.quality import quality
from tunetrust.ingest.validate import COUNTED
from tunetrust.store import private
from tunetrust.store.home import Home
from tunetrust.store.models import Contribution, Member

Progress = Callable[[int, int], None]
"""Called as ``progress(members_done, members_total)``."""


@dataclass(frozen=True)
class MemberRebuild:
    """What rebuilding one member's listens found."""

    pseudonym: str
    contributions: int  # accepted contributions replayed from the vault
    listens_before: int
    listens_after: int
    weight_before: float
    weight_after: float
    changed: bool
    missing_raw: int  # contributions that added listens but whose raw export is not kept


@dataclass(frozen=True)
class RebuildReport:
    """The outcome of :func:`rebuild_events` (nothing is written with ``dry_run``)."""

    members: tuple[MemberRebuild, ...]
    dry_run: bool

    @property
    def changed(self) -> int:
        """How many members' listens differ from what was stored."""
        return sum(m.changed for m in self.members)


@dataclass(frozen=True)
class _Plan:
    member_id: int
    result: MemberRebuild
    table: pa.Table
    scores: dict[str, tuple[int, float]]  # contribution → (listens added, quality increment)


def rebuild_events(
    home: Home, *, actor: str, dry_run: bool = False, progress: Progress | None = None
) -> RebuildReport:
    """Re-derive every member's listens from their vault; see the module docstring."""
    with home.lock():
        with home.sessions() as s:
            ids = list(
                s.scalars(select(Member.id).where(Member.erased_at.is_(None)).order_by(Member.id))
            )
        plans: list[_Plan] = []
        for done, member_id in enumerate(ids):
            if progress:
                progress(done, len(ids))
            plans.append(_replay(home, member_id))
        if progress:
            progress(len(ids), len(ids))
        report = RebuildReport(tuple(p.result for p in plans), dry_run)
        changed = [p for p in plans if p.result.changed]
        if dry_run or not changed:
            return report
        _store(home, changed, actor)
    return report


def _replay(home: Home, member_id: int) -> _Plan:
    with home.sessions() as s:
        member = s.get(Member, member_id)
        assert member is not None
        key = data_key(home, s, member)
        contributions = list(
            s.scalars(
                select(Contribution)
                .where(Contribution.member_id == member_id, Contribution.verdict.in_(COUNTED))
                .order_by(Contribution.created_at, Contribution.id)
            )
        )
        s.expunge_all()
    try:
        stored = home.events.read(member.pseudonym, member.events_file)
    except FileNotFoundError:  # the file the row names is gone: rebuilding restores it
        stored = home.events.read(member.pseudonym, None)
    table = stored.slice(0, 0)
    scores: dict[str, tuple[int, float]] = {}
    replayed = 0
    missing = 0
    for c in contributions:
        if c.vault_file is None:  # the same files as an earlier contribution: nothing new
            missing += c.listens_added > 0
            scores[c.id] = (0, 0.0)
            continue
        events, facts = vault_listens(home, member, key, c)
        merged = merge(table, events, facts)
        when = c.created_at if c.created_at.tzinfo else c.created_at.replace(tzinfo=UTC)
        recorded_quality = c.summary.get("quality", {})
        corroboration = recorded_quality.get("corroboration")  # as measured at the import
        before = quality(table, when, corroboration)
        after = quality(merged.table, when, corroboration)
        uniqueness = float(recorded_quality.get("uniqueness", 1.0))
        scores[c.id] = (merged.added, uniqueness * max(0.0, after["score"] - before["score"]))
        table = merged.table
        replayed += 1
    old_weight = sum(c.quality_score for c in contributions)
    recorded = {c.id: (c.listens_added, round(c.quality_score, 6)) for c in contributions}
    if missing:
        # without every raw export the stored listens are the only full copy: keep them
        # and their scores, normalised by today's rules (skips filled from reasons)
        table = _normalised(stored, {c.service for c in contributions})
        scores = {c.id: (c.listens_added, c.quality_score) for c in contributions}
    new_weight = sum(score for _, score in scores.values())
    rebuilt = {cid: (n, round(q, 6)) for cid, (n, q) in scores.items()}
    changed = not _same_rows(stored, table) or recorded != rebuilt
    result = MemberRebuild(
        pseudonym=member.pseudonym,
        contributions=replayed,
        listens_before=stored.num_rows,
        listens_after=table.num_rows,
        weight_before=round(old_weight, 6),
        weight_after=round(new_weight, 6),
        changed=changed,
        missing_raw=missing,
    )
    return _Plan(member_id, result, table, scores)


def _normalised(stored: pa.Table, services: set[str]) -> pa.Table:
    """Stored rows normalised with their service's facts (as they are when one service)."""
    if len(services) != 1 or stored.num_rows == 0:
        return stored  # the rows do not say their service; today there is only one
    try:
        facts = service_facts(next(iter(services)))
    except LookupError:
        return stored
    return normalise(stored, facts)


@contextmanager
def decrypted(home: Home, member: Member, key: bytes, c: Contribution) -> Iterator[Path]:
    """One contribution's raw export, decrypted from the vault into a private temporary
    file under its own name (removed on leaving)."""
    assert c.vault_file is not None
    suffix = c.vault_file.removeprefix(c.id).removesuffix(".bin")
    files = c.summary.get("files", [])
    # a single loose file was stored as is: give it back its name, which says its kind
    single = suffix.lower() != ".zip" and len(files) == 1
    name = files[0]["name"] if single else f"export{suffix}"
    with tempfile.TemporaryDirectory(prefix="tunetrust-vault-") as tmp:
        path = private.create(Path(tmp) / Path(name).name)  # decrypted: owner only
        with path.open("wb") as fh:
            for chunk in home.vault.read(member.pseudonym, c.vault_file, key):
                fh.write(chunk)
        yield path


def vault_listens(
    home: Home, member: Member, key: bytes, c: Contribution
) -> tuple[pa.Table, ServiceFacts]:
    """One contribution's de-identified listens, read again from the member's vault."""
    with decrypted(home, member, key, c) as path:
        read = read_package(home, [path])
    parsed = pa.concat_tables([p.table for _, p in read.parsed])
    events, _ = deidentify(parsed, keep_incognito=member.keep_incognito, contribution=c.id)
    return events, read.facts


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Whether two partitions hold the same rows in the same order."""
    return a.num_rows == b.num_rows and bool(a.equals(b.cast(a.schema)))


def _store(home: Home, plans: list[_Plan], actor: str) -> None:
    staged: list[tuple[str, str]] = []
    try:
        for plan in plans:
            name = f"{uuid.uuid4().hex}.parquet"
            home.events.stage(plan.result.pseudonym, name, plan.table)
            staged.append((plan.result.pseudonym, name))
        faults.reach("rebuild.staged")
        with home.transaction() as s:
            for plan, (_, name) in zip(plans, staged, strict=True):
                member = s.get(Member, plan.member_id)
                assert member is not None
                member.events_file = name
                for cid, (added, score) in plan.scores.items():
                    row = s.get(Contribution, cid)
                    assert row is not None
                    row.listens_added, row.quality_score = added, round(score, 6)
                    # the report keeps what the import said, plus what the rebuild found
                    row.summary = row.summary | {
                        "rebuilt": {"listens_added": added, "quality_score": round(score, 6)}
                    }
                r = plan.result
                audit.record(
                    s,
                    actor=actor,
                    action="member.events.rebuild",
                    subject=r.pseudonym,
                    payload={
                        "contributions": r.contributions,
                        "listens_before": r.listens_before,
                        "listens_after": r.listens_after,
                        "weight_before": r.weight_before,
                        "weight_after": r.weight_after,
                        "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                )
    except BaseException:
        for pseudonym, name in staged:
            home.events.discard(pseudonym, name)
        raise
    faults.reach("rebuild.committed")
    for pseudonym, name in staged:
        home.events.publish(pseudonym, name)
