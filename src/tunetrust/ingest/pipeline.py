"""Import one export for one member: parse → de-identify → deduplicate → store, atomically.

Parsing happens outside the home's write lock; reading the member's partition,
merging, writing and committing happen inside it. The new partition file is staged,
the metadata committed, then the file published (see store/events.py), so a process
killed at any point leaves the home as it was before or as it is after — never between.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from tunetrust import faults
from tunetrust.coop import audit
from tunetrust.coop.keyring import bind_account, data_key
from tunetrust.coop.members import get_member
from tunetrust.errors import ExportError, UnknownContent
from tunetrust.formats import (
    Classification,
    Parsed,
    Parser,
    Role,
    ServiceFacts,
    classify,
    registry,
)
from tunetrust.formats.others import other_service
from tunetrust.formats.package import ExportFile, open_package
from tunetrust.ingest import fingerprint as prints
from tunetrust.ingest.dedup import Merge, merge
from tunetrust.ingest.deidentify import deidentify
from tunetrust.ingest.provenance import Provenance, assess, corroboration
from tunetrust.ingest.quality import quality
from tunetrust.ingest.validate import (
    ACCEPTED,
    COUNTED,
    DISPUTED,
    FAIL,
    HOLD,
    PASS,
    REJECTED,
    Check,
    FileInfo,
    run_checks,
    verdict,
)
from tunetrust.store.home import ACCOUNT_HASH_SECRET, Home
from tunetrust.store.models import Contribution, DisputeRecord, Member
from tunetrust.store.vault import raw_package

Progress = Callable[[str, int, int], None]
"""Called as ``progress(file_name, bytes_done, bytes_total)`` while files are read."""


@dataclass(frozen=True)
class FileReport:
    """What the importer made of one file of the package."""

    name: str
    kind: str
    status: str  # imported | read | skipped
    rows: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ImportSummary:
    """Everything an import did, in the shape ``import --json`` prints."""

    contribution: str
    member: str
    service: str
    files: list[FileReport]
    listens_in_export: int
    listens_added: int
    duplicates_skipped: int
    duplicates: dict[str, int]
    account_rows_superseded: int
    dropped: dict[str, int]
    listens_total: int
    verdict: str = ACCEPTED
    quality_score: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    same_export_as: str | None = None
    package_sha256: str | None = None  # of the zip or JSON file given, when it was one file
    dispute: dict[str, str] | None = None  # a held import: why, and the export's days

    @property
    def held(self) -> bool:
        """Whether the import waits for the steward's decision (nothing was added)."""
        return self.verdict == DISPUTED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


class ContributionRejected(ExportError):
    """The checks rejected the export; nothing was added. Carries the full summary."""

    def __init__(self, summary: ImportSummary, source: str) -> None:
        self.summary = summary
        failed = [c.name for c in summary.checks if c.status == FAIL]
        super().__init__(
            source,
            f"the contribution was rejected by its checks ({', '.join(failed)})",
            hint=f"see: tunetrust contribution show {summary.contribution}",
        )


@dataclass
class ReadExport:
    """What reading an export found: per-file reports, parsed tables, usernames, digest."""

    reports: list[FileReport]
    parsed: list[tuple[ExportFile, Parsed]]
    infos: list[FileInfo]
    usernames: set[str]
    digest: str
    service: str
    unknown: list[str]  # listening files of a shape this version does not know, skipped
    facts: ServiceFacts  # the service's, as its parser declares them


def read_package(home: Home, paths: list[Path], progress: Progress | None = None) -> ReadExport:
    """Open, classify and parse every file of an export (no checks, nothing stored)."""
    limits = home.settings.limits
    parsers = registry()
    label = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
    with open_package(paths, limits) as package:
        if not package.files:
            raise ExportError(label, "the package is empty", hint="download the export again")
        plan: list[tuple[ExportFile, Parser, Classification]] = []
        reports: list[FileReport] = []
        for f in package.files:
            found = classify(f, parsers)
            if found is None:
                reports.append(
                    FileReport(f.name, "unknown", "skipped", reason="not a known export file")
                )
            elif found[1].role is Role.IGNORED:
                reports.append(FileReport(f.name, found[1].kind, "skipped", reason=found[1].note))
            else:
                plan.append((f, found[0], found[1]))
        listens_files = [p for p in plan if p[2].role is Role.LISTENS]
        if not listens_files:
            raise _no_history(label, [f.name for f in package.files])
        # audio before video, so a play in both keeps its audio row
        plan.sort(key=lambda p: (p[2].kind.endswith("video"), p[0].name))
        total = sum(f.size for f, _, _ in plan)
        done = 0
        digest = hashlib.sha256()
        parsed: list[tuple[ExportFile, Parsed]] = []
        infos: list[FileInfo] = []
        usernames: set[str] = set()
        unknown: list[str] = []
        service, facts = listens_files[0][1].service, listens_files[0][1].facts
        for f, parser, cls in plan:
            if progress:
                progress(f.name, done, total)
            done += f.size
            try:
                if cls.role is Role.IDENTITY:
                    name = _username(f, parser, limits.max_file_bytes)
                    if name:
                        usernames.add(name)
                    reports.append(FileReport(f.name, cls.kind, "read", reason=_USERNAME_ONLY))
                    continue
                # one file at a time, streamed: memory holds its parsed table and one
                # batch of its rows, never its text (docs/formats.md, "Memory")
                with f.open(limits.max_file_bytes) as raw:
                    stream = _Hashed(raw)
                    result = parser.parse(f, io.BufferedReader(stream, _CHUNK), cls.kind)
                    file_digest = stream.digest()
            except UnknownContent as exc:
                # one file this version cannot read never costs the member the others
                reason = f"{exc.problem} — {exc.hint}" if exc.hint else exc.problem
                reports.append(FileReport(f.name, cls.kind, "skipped", reason=reason))
                if cls.role is Role.LISTENS:
                    unknown.append(f.name)
                continue
            digest.update(f.name.encode() + b"\0" + file_digest)
            usernames |= result.usernames
            parsed.append((f, result))
            infos.append(
                FileInfo(f.name, result.variant, by_content=cls.by_content, table=result.table)
            )
            reports.append(
                FileReport(
                    f.name,
                    result.variant,
                    "imported",
                    rows=result.table.num_rows,
                    reason=cls.note or None,
                )
            )
        if progress:
            progress("", total, total)
        if not parsed:
            raise ExportError(
                label,
                f"no listening history this version can read: {len(unknown)} file(s) of "
                "an unknown shape were skipped",
                hint="see the file names and reasons with --json, or report the format to "
                "the project",
            )
    return ReadExport(
        reports, parsed, infos, usernames, digest.hexdigest(), service, unknown, facts
    )


_USERNAME_ONLY = "account username only, kept as a keyed hash"
_IDENTITY_MAX = 1024 * 1024  # an account's details are a few hundred bytes
_CHUNK = 1024 * 1024


def _username(f: ExportFile, parser: Parser, max_file_bytes: int) -> str | None:
    """The username in an identity file, which is read whole: only a small one is read."""
    if f.size > _IDENTITY_MAX:
        raise UnknownContent(
            f.name,
            f"is larger than {_IDENTITY_MAX:,} bytes, too large to be the account's details",
            hint="the plays are imported without the username and matched by their content",
        )
    return parser.username(f, f.read(min(max_file_bytes, _IDENTITY_MAX)))


class _Hashed(io.RawIOBase):
    """A file's stream, hashed as the parser reads it (to its end: the digest is the
    file's, as when it was read whole)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._stream.read(len(view))
        self._hash.update(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)

    def digest(self) -> bytes:
        """SHA-256 of the whole file (what the parser left unread is read here)."""
        while chunk := self._stream.read(_CHUNK):
            self._hash.update(chunk)
        return self._hash.digest()


def _no_history(label: str, names: list[str]) -> ExportError:
    """Why a package without listening-history files cannot be imported."""
    other = other_service(names)
    if other is not None:
        return ExportError(
            label,
            f"this looks like an export from {other}, which this version cannot import yet",
            hint="only exports of the services listed in docs/formats.md can be imported",
        )
    hints = [p.facts.export_hint for p in registry() if p.facts.export_hint]
    return ExportError(
        label,
        "no listening history found in this package",
        hint="; ".join(hints) or "import the export exactly as the service sent it",
    )


def package_digest(paths: list[Path], max_bytes: int) -> str | None:
    """SHA-256 of the file given, when the export is one file (a zip or a JSON file).

    Hashing the file as it lies (a few MB for a zip) recognises a second upload of the
    same package before anything is unpacked or parsed.
    """
    if len(paths) != 1 or not paths[0].is_file() or paths[0].is_symlink():
        return None
    if paths[0].stat().st_size > max_bytes:
        return None  # the import refuses it anyway; do not read it twice
    h = hashlib.sha256()
    with paths[0].open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _same_package(home: Home, member: Member, package: str) -> ImportSummary | None:
    """The member's earlier stored import of this very file, as a no-op summary."""
    with home.sessions() as s:
        rows = s.scalars(
            select(Contribution)
            .where(Contribution.member_id == member.id, Contribution.vault_file.is_not(None))
            .order_by(Contribution.created_at)
        ).all()
    earlier = next(
        (
            c
            for c in rows
            if c.summary.get("package_sha256") == package and c.verdict in (*COUNTED, DISPUTED)
        ),
        None,
    )
    if earlier is None or "rebuilt" in earlier.summary:
        return None  # not seen, or its numbers changed since: read it again
    skipped = any(
        c["name"] == "structure" and c["status"] != "pass" for c in earlier.summary["checks"]
    )
    if skipped:  # files this version may now read were skipped then: read it again
        return None
    was = earlier.summary
    counted = was["listens_added"] + sum(
        was["duplicates"].get(k, 0) for k in ("already_imported", "covered_by_extended_history")
    )
    repeated = was["duplicates"].get("repeated_in_export", 0)
    return ImportSummary(
        contribution=earlier.id,
        member=member.name or "",
        service=earlier.service,
        files=[FileReport(**f) for f in was["files"]],
        listens_in_export=was["listens_in_export"],
        listens_added=0,
        duplicates_skipped=counted + repeated,
        duplicates={
            "already_imported": counted,
            "repeated_in_export": repeated,
            "covered_by_extended_history": 0,
        },
        account_rows_superseded=0,
        dropped=was["dropped"],
        listens_total=home.events.count(member.pseudonym, member.events_file),
        verdict=was["verdict"],
        quality_score=0.0,
        same_export_as=earlier.id,
        package_sha256=package,
    )


def _account_hashes(home: Home, usernames: set[str]) -> list[str]:
    if not usernames:
        return []
    key = home.secret(ACCOUNT_HASH_SECRET)
    return sorted(hmac.new(key, u.encode(), hashlib.sha256).hexdigest() for u in usernames)


def import_export(
    home: Home,
    member_name: str,
    paths: Path | list[Path],
    *,
    progress: Progress | None = None,
    again: bool = False,
) -> ImportSummary:
    """Import an export (a zip, a folder, or loose JSON files) for ``member_name``.

    Parses, checks (docs/contributions.md), de-identifies, deduplicates and stores.
    A rejected export is recorded with its report and adds nothing
    (:class:`ContributionRejected`). A disputed one is recorded, kept in the member's
    vault for the steward's decision, and adds nothing yet (``summary.held``). With
    ``again``, a file imported before is read again (a dispute's decision).
    """
    paths = [paths] if isinstance(paths, Path) else list(paths)
    member = get_member(home, member_name)
    package = package_digest(paths, home.settings.limits.max_total_bytes)
    if package is not None and not again:
        earlier = _same_package(home, member, package)
        if earlier is not None:  # the very same file again: nothing to read or record
            return earlier
    read = read_package(home, paths, progress)
    parsed = pa.concat_tables([p.table for _, p in read.parsed])
    if parsed.num_rows == 0:
        raise ExportError(
            read.reports[0].name if len(read.reports) == 1 else paths[0].name,
            "the listening-history files hold no plays",
        )
    contribution = uuid.uuid4().hex
    events, dropped = deidentify(
        parsed, keep_incognito=member.keep_incognito, contribution=contribution
    )
    hashes = _account_hashes(home, read.usernames)
    key = prints.key_of(home)
    memo: prints.Memo = {}
    mine = prints.fingerprint(key, events, memo=memo)
    with home.lock():
        now = datetime.now(UTC)  # inside the lock: import order is commit order
        faults.reach("import.locked")
        snap = _snapshot(home, member, hashes, read.digest, key, events, mine, now)
        outcome = _assess(
            home,
            member,
            read,
            parsed,
            events,
            snap,
            now,
            contribution=contribution,
            dropped=dropped,
            package=package,
            key=key,
            memo=memo,
            mine=mine,
        )
        _store(home, member, paths, read, hashes, snap, outcome, now, key)
    if outcome.rejected:
        raise ContributionRejected(outcome.summary, paths[0].name if len(paths) == 1 else "export")
    return outcome.summary


@dataclass(frozen=True)
class _Snapshot:
    """What the import needs from the metadata, read once under the write lock."""

    current: str | None  # the member's current events file
    account: Check
    account_holder: int | None  # the member another export of this account is bound to
    same: str | None  # an earlier contribution of the very same files
    provenance: Provenance  # copies, split, corroboration, from the fingerprint index
    key: bytes  # the member's data key, for the vault
    fingerprinted: str | None  # the events file the member's index rows were made from


def _snapshot(
    home: Home,
    member: Member,
    hashes: list[str],
    digest: str,
    key: bytes,
    events: pa.Table,
    mine: prints.Prints,
    now: datetime,
) -> _Snapshot:
    with home.transaction() as s:
        fresh = s.get(Member, member.id)
        assert fresh is not None
        same = s.scalar(
            select(Contribution.id).where(
                Contribution.member_id == member.id,
                Contribution.export_digest == digest,
                Contribution.vault_file.is_not(None),  # the same files are in the vault
                Contribution.verdict.in_(COUNTED),
            )
        )
        # members fingerprinted from another file than their current one (an upgraded
        # home, a rebuild, a decision) are fingerprinted first, once
        prints.refresh_stale(home, s, key, except_id=member.id)
        account, holder = _check_account(s, fresh, hashes)
        return _Snapshot(
            fresh.events_file,
            account,
            holder,
            same,
            assess(home, s, fresh, events, mine, home.settings.checks, now=now),
            data_key(home, s, fresh),
            fresh.fingerprinted,
        )


@dataclass(frozen=True)
class _Outcome:
    """The checks' verdict, the merged partition and the summary, before anything is written."""

    contribution: str
    summary: ImportSummary
    merged: Merge
    rejected: bool
    held: bool  # disputed: the raw export is kept, nothing else changes
    holder: int | None  # the member a held import's account or plays belong to
    prints: prints.Prints | None  # of the merged listens, when they changed

    @property
    def changed(self) -> bool:
        """Whether the member's partition file must be rewritten."""
        return self.merged.added > 0 or self.merged.superseded > 0


def _assess(
    home: Home,
    member: Member,
    read: ReadExport,
    parsed: pa.Table,
    events: pa.Table,
    snap: _Snapshot,
    now: datetime,
    *,
    contribution: str,
    dropped: dict[str, int],
    package: str | None,
    key: bytes,
    memo: prints.Memo,
    mine: prints.Prints,
) -> _Outcome:
    """Run the checks and merge, writing nothing; ``key`` hashes fingerprints (``memo``
    keeps the export's items' hashes; ``mine`` are the export's)."""
    checks = home.settings.checks
    found = snap.provenance
    report_checks = run_checks(
        read.infos,
        parsed,
        checks=checks,
        now=now.replace(tzinfo=None),
        extra=[snap.account, found.copied, found.split],
        skipped=read.unknown,
        facts=read.facts,
    )
    result_verdict = verdict(report_checks)
    rejected = result_verdict == REJECTED
    held = result_verdict == DISPUTED
    existing = home.events.read(member.pseudonym, snap.current)
    merged = merge(existing, events.slice(0, 0) if rejected or held else events, read.facts)
    together = existing.slice(0, 0)  # the listens a split history is measured with
    if found.split_with is not None:
        with home.sessions() as s:
            other = s.get(Member, found.split_with)
            if other is not None and other.events_file is not None:
                together = home.events.read(other.pseudonym, other.events_file)
    # corroboration of the member's whole listening before and after, against the index
    # as it is now (so a member's increments add up to their score)
    merged_prints = None
    if merged.added:
        # a first import that adds every row: the merged listens are the export's rows,
        # whose fingerprints do not depend on their order
        whole = not existing.num_rows and merged.added == events.num_rows
        merged_prints = mine if whole else prints.fingerprint(key, merged.table, memo=memo)
    with home.sessions() as s:
        known = found.known_tracks  # the export's tracks are looked up already
        corr_before = None
        if existing.num_rows:
            # the member's tracks as their index rows hold them, when those were made from
            # this very file; else (rows from before an upgrade) fingerprinted again
            earlier = (
                prints.stored(s, member.id, (prints.TRACK,))
                if snap.fingerprinted is not None and snap.fingerprinted == snap.current
                else prints.fingerprint(key, existing, memo=memo)
            )
            corr_before = corroboration(
                s, earlier, member_id=member.id, typical=found.typical, known=known
            )
        corr_after = (
            corroboration(s, merged_prints, member_id=member.id, typical=found.typical, known=known)
            if merged_prints is not None
            else corr_before
        )
    before = quality(_with(existing, together), now, corr_before)
    after = quality(_with(merged.table, together), now, corr_after)
    uniqueness = 1.0 - found.copied_share
    counted = not rejected and not held
    increment = uniqueness * max(0.0, after["score"] - before["score"]) if counted else 0.0
    dispute = None
    if held:  # who holds it is the steward's to see (the disputes table), not the report's
        dispute = {
            "reason": "account" if snap.account.status == HOLD else "copy",
            **_span("export", events),
        }
    summary = ImportSummary(
        contribution=contribution,
        member=member.name or "",
        service=read.service,
        files=read.reports,
        listens_in_export=parsed.num_rows,
        listens_added=merged.added,
        duplicates_skipped=merged.duplicates,
        duplicates={
            "already_imported": merged.already_imported,
            "repeated_in_export": merged.repeated_in_export,
            "covered_by_extended_history": merged.covered_by_extended,
        },
        account_rows_superseded=merged.superseded,
        dropped=dropped,
        listens_total=merged.table.num_rows,
        verdict=result_verdict,
        quality_score=round(increment, 6),
        quality={
            "member_before": before,
            "member_after": after,
            "uniqueness": round(uniqueness, 6),
            "corroboration": None if corr_after is None else round(corr_after, 6),
            "typical_corroborated_share": found.typical,
            "measured_with": "another member's listens (split_history)"
            if together.num_rows
            else None,
        },
        checks=report_checks,
        same_export_as=snap.same,
        package_sha256=package,
        dispute=dispute,
    )
    holder = None
    if held:
        holder = snap.account_holder if snap.account.status == HOLD else found.dispute_with
    return _Outcome(contribution, summary, merged, rejected, held, holder, merged_prints)


def _span(label: str, listens: pa.Table) -> dict[str, str]:
    """The first and last day of ``listens`` (what a steward weighs in a dispute)."""
    if not listens.num_rows:
        return {}
    ts = listens["ts"]
    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
    return {f"{label}_first": f"{first:%Y-%m-%d}", f"{label}_last": f"{last:%Y-%m-%d}"}


def _with(listens: pa.Table, other: pa.Table) -> pa.Table:
    """``listens`` together with another member's (for a split history's increment)."""
    return pa.concat_tables([listens, other.cast(listens.schema)]) if other.num_rows else listens


def _store(
    home: Home,
    member: Member,
    paths: list[Path],
    read: ReadExport,
    hashes: list[str],
    snap: _Snapshot,
    outcome: _Outcome,
    now: datetime,
    key: bytes,
) -> None:
    """Stage files, commit the contribution with its audit entry, publish the files."""
    summary, merged = outcome.summary, outcome.merged
    new_file = f"{outcome.contribution}.parquet" if outcome.changed else snap.current
    vault_file = None
    try:
        if snap.same is None and not outcome.rejected:  # the same files are in the vault
            source, suffix = raw_package(paths)
            vault_file = f"{outcome.contribution}{suffix}.bin"
            with source:
                home.vault.stage(member.pseudonym, vault_file, snap.key, source)
        if outcome.changed:
            assert new_file is not None
            home.events.stage(member.pseudonym, new_file, merged.table)
        faults.reach("import.staged")
        with home.transaction() as s:
            s.add(
                Contribution(
                    id=outcome.contribution,
                    member_id=member.id,
                    created_at=now,
                    service=read.service,
                    export_digest=read.digest,
                    account_hashes=hashes,
                    listens_added=merged.added,
                    duplicates_skipped=merged.duplicates,
                    summary=summary.to_dict(),
                    vault_file=vault_file,
                    verdict=summary.verdict,
                    quality_score=summary.quality_score,
                )
            )
            row = s.get(Member, member.id)
            assert row is not None
            row.events_file = new_file
            counted = not outcome.rejected and not outcome.held
            if hashes and row.account_hash is None and counted:
                bind_account(home, row, hashes[0])  # its hash and its budget's marker
            if outcome.held and summary.dispute is not None:
                s.flush()  # the contribution first: the dispute refers to it
                s.add(
                    DisputeRecord(
                        contribution_id=outcome.contribution,
                        claimant_id=member.id,
                        holder_id=outcome.holder,
                        reason=summary.dispute["reason"],
                        opened_at=now,
                    )
                )
            if outcome.changed:
                made = outcome.prints or prints.fingerprint(key, merged.table)
                prints.store(s, row, made, new_file)
            action = (
                "member.import.rejected"
                if outcome.rejected
                else "member.import.disputed"
                if outcome.held
                else "member.import"
            )
            audit.record(
                s,
                actor=audit.actor(home),
                action=action,
                subject=member.pseudonym,
                payload={
                    "contribution": outcome.contribution,
                    "export_digest": read.digest,
                    "verdict": summary.verdict,
                    "listens_added": merged.added,
                    "duplicates_skipped": merged.duplicates,
                    "quality_score": summary.quality_score,
                    "dropped": summary.dropped,
                    **({"dispute": summary.dispute} if summary.dispute else {}),
                },
            )
    except BaseException:
        if vault_file:
            home.vault.discard(member.pseudonym, vault_file)
        if outcome.changed and new_file:
            home.events.discard(member.pseudonym, new_file)
        raise
    faults.reach("import.committed")
    if vault_file:
        home.vault.publish(member.pseudonym, vault_file)
    if outcome.changed and new_file:
        home.events.publish(member.pseudonym, new_file)


def _check_account(session: Session, member: Member, hashes: list[str]) -> tuple[Check, int | None]:
    """One streaming account per member, one member per account (by keyed username hash).

    An account another member contributed first is held as a dispute, with that member's
    id: the first to import an export is not always its owner.
    """
    name, rule = "account", "one account per member, one member per account"
    if len(hashes) > 1:
        return Check(
            name,
            FAIL,
            len(hashes),
            rule,
            f"The plays come from {len(hashes)} different streaming accounts; "
            "import each account's own export, for its own member.",
        ), None
    if not hashes:
        return Check(
            name,
            PASS,
            0,
            rule,
            "No username in this export; it is matched by its plays instead (see copied_data).",
        ), None
    if member.account_hash is not None and member.account_hash != hashes[0]:
        return Check(
            name,
            FAIL,
            1,
            rule,
            "This export is from a different streaming account than this member's earlier ones.",
        ), None
    owner = session.scalar(
        select(Member.id).where(Member.account_hash == hashes[0], Member.id != member.id)
    )
    if owner is not None:
        return Check(
            name,
            HOLD,
            1,
            rule,
            "This streaming account is already contributed by another member: held for the "
            "steward, who decides whose it is (if it is yours, a newer export of it shows it).",
        ), owner
    bound = member.account_hash is not None
    return Check(
        name,
        PASS,
        1,
        rule,
        "The account matches this member's earlier exports."
        if bound
        else "No other member contributes this account; accepting this contribution "
        "binds it to this member.",
    ), None
