"""Background imports: an uploaded export imported by a worker, followed live by its member.

The web app streams an upload into the uploads store (``coop.jobs.uploads(home)``),
publishes it, and calls :func:`submit_import`, which queues a job. A :class:`Worker`
(a thread of the web server, or several processes on PostgreSQL) claims the job
(``coop/jobs.py``), runs the ordinary import (``services.data.import_contribution``) as
the member, heartbeats its progress, and ends it done or failed. The upload is deleted
when the job ends either way. A server stopped mid-import leaves a running job whose
heartbeat goes stale: the next worker claims it again (an import is recognised by its
digest, so nothing is stored twice) until the attempts run out, then it is failed with
a plain message. So an upload is imported or clearly failed, never silently lost.

What a member reads of a failure is the importer's own message (it names the file, row
and field, never a value). What the server log keeps of an internal error is the job
id, the exception's type and where it was raised, never its message (it may quote a
value from the export), nor the file's name (the member chose it).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path, PurePosixPath
from types import TracebackType

from sqlalchemy import select

from tunetrust.coop import jobs
from tunetrust.coop.governance import iso_time
from tunetrust.coop.jobs import MAX_ATTEMPTS, STALE_AFTER
from tunetrust.coop.keyring import reveal
from tunetrust.coop.members import get_member
from tunetrust.errors import ConflictError, ForbiddenError, InputError, TuneTrustError
from tunetrust.ingest.pipeline import ContributionRejected, ImportSummary
from tunetrust.services._access import for_member, steward_only
from tunetrust.services.data import import_contribution
from tunetrust.services.models import Actor, JobInfo, JobOverview
from tunetrust.store import private
from tunetrust.store.home import Home
from tunetrust.store.models import Job, Member

IMPORT = "import"
PROGRESS_EVERY = 0.5  # seconds between two progress writes, at most one
FILENAME_CHARS = 100
INTERNAL = "the import stopped on an internal error; the steward can find it in the server log"

log = logging.getLogger("tunetrust.jobs")


def submit_import(home: Home, actor: Actor, member: str, upload_key: str, filename: str) -> JobInfo:
    """Queue the import of a member's uploaded export (a key in the uploads store)."""
    for_member(actor, member, "import a member's export")
    if not jobs.uploads(home).exists(upload_key):
        raise InputError("the uploaded file is not on the server; upload it again")
    job = jobs.enqueue(
        home,
        kind=IMPORT,
        member_id=get_member(home, member).id,
        params={"upload": upload_key, "filename": _safe_filename(filename)},
    )
    return _info(job)


def _safe_filename(raw: str) -> str:
    """A file name a member gave, reduced to a plain base name of at most 100 characters.

    Folders, control and format characters, and anything but letters, digits and
    ``.-_ ()[]+`` are dropped or replaced, so the name is safe on disk and in a page.
    """
    base = PurePosixPath(raw.replace("\\", "/")).name
    kept = "".join(
        c if c.isalnum() or c in ".-_ ()[]+" else "_"
        for c in unicodedata.normalize("NFC", base)
        if unicodedata.category(c)[0] != "C"
    )
    kept = kept.strip(" .") or "upload"
    if len(kept) > FILENAME_CHARS:
        stem, dot, suffix = kept.rpartition(".")
        tail = f".{suffix}" if dot and stem and len(suffix) <= 10 else ""
        kept = kept[: FILENAME_CHARS - len(tail)] + tail
    return kept


def job_status(home: Home, actor: Actor, job_id: str) -> JobInfo:
    """One job as its member follows it; another member's job is not found (not refused)."""
    if actor.kind not in ("steward", "member"):
        raise ForbiddenError("only a member or a steward can follow an import")
    job = jobs.get(home, job_id)
    if actor.kind == "member" and job.member_id != get_member(home, actor.name).id:
        raise jobs.not_found()  # the same answer as for no job at all
    return _info(job)


def member_jobs(home: Home, actor: Actor, member: str) -> list[JobInfo]:
    """A member's imports, newest first."""
    for_member(actor, member, "see a member's imports")
    return [_info(j) for j in jobs.member_jobs(home, get_member(home, member).id)]


def all_jobs(home: Home, actor: Actor, *, limit: int = 200) -> list[JobOverview]:
    """The newest jobs of every member, by pseudonym (the steward's console)."""
    steward_only(actor, "see every job")
    with home.sessions() as s:
        rows = s.execute(
            select(Job, Member.pseudonym)
            .join(Member, Member.id == Job.member_id)
            .order_by(Job.created_at.desc(), Job.id)
            .limit(limit)
        ).all()
        return [
            JobOverview(
                id=job.id,
                member=pseudonym,
                kind=job.kind,
                state=job.state,
                stage=job.stage,
                attempts=job.attempts,
                created=iso_time(job.created_at) or "",
                updated=iso_time(job.updated_at) or "",
                error=job.error,
            )
            for job, pseudonym in rows
        ]


def _info(job: Job) -> JobInfo:
    result = job.result or {}
    return JobInfo(
        id=job.id,
        kind=job.kind,
        state=job.state,  # type: ignore[arg-type]  # validated against the Literal
        stage=job.stage,
        done=job.done,
        total=job.total,
        created=iso_time(job.created_at) or "",
        updated=iso_time(job.updated_at) or "",
        contribution=result.get("contribution"),
        error=job.error,
    )


def run_job(home: Home, job: Job, *, beat: float = STALE_AFTER.total_seconds() / 3) -> None:
    """Run a claimed job to its end, done or failed; its upload is deleted either way.

    ``beat``: seconds between heartbeats while the importer reports no progress. If
    another worker claimed the job meanwhile (this one was taken for dead), this run's
    ending changes nothing and leaves the upload to that worker.
    """
    _clear_earlier_runs(home, job)
    with _Heartbeat(home, job, beat) as progress:
        ended = _run(home, job, progress)
    key = job.params.get("upload")
    if ended and key:
        try:
            jobs.uploads(home).delete(str(key))
        except InputError:  # not a key of the store (a row edited by hand): no file of ours
            pass


def _run(home: Home, job: Job, progress: _Heartbeat) -> bool:
    """Run ``job`` and record its end; whether this run's end was recorded."""
    worker = job.worker
    try:
        if job.kind != IMPORT:
            raise InputError(f"this server does not run jobs of the kind {job.kind!r}")
        summary = _import(home, job, progress)
    except ContributionRejected as exc:
        # recorded with its report, which says which checks failed and why
        rejected = exc.summary
        return jobs.fail(
            home,
            job.id,
            f"{exc.file}: {exc.problem}; nothing was added — its report says why",
            result={"contribution": rejected.contribution, "verdict": rejected.verdict},
            worker=worker,
        )
    except TuneTrustError as exc:  # names a file, row or field, never a value
        return jobs.fail(home, job.id, str(exc), worker=worker)
    except Exception as exc:
        _log_internal(exc, job.id)
        return jobs.fail(home, job.id, INTERNAL, worker=worker)
    return jobs.finish(home, job.id, _result(summary), stage=_ending(summary), worker=worker)


def _import(home: Home, job: Job, progress: _Heartbeat) -> ImportSummary:
    with home.sessions() as s:
        member = s.get(Member, job.member_id)
    name = reveal(home, member).name if member is not None else None
    if name is None:
        raise ConflictError("the member was erased; nothing was imported")
    with _as_uploaded(home, job) as path:
        return import_contribution(home, Actor.member(name), name, [path], progress=progress)


def _result(summary: ImportSummary) -> dict[str, object]:
    return {
        "contribution": summary.contribution,
        "verdict": summary.verdict,
        "listens_added": summary.listens_added,
        "same_export_as": summary.same_export_as,
    }


def _ending(summary: ImportSummary) -> str:
    """The stage a done job shows, in plain words."""
    if summary.same_export_as == summary.contribution:
        return "this export was imported before; nothing new was added"
    if summary.same_export_as:
        return "the same files as an earlier import; nothing new was added"
    return f"imported: {summary.listens_added:,} new listens"


def _run_folder(job_id: str, attempt: int) -> str:
    return f".run-{job_id}-{attempt}"


def _clear_earlier_runs(home: Home, job: Job) -> None:
    """Remove what earlier, stopped runs of this job left (their workers are gone)."""
    store = jobs.uploads(home)
    for attempt in range(1, job.attempts):
        store.delete_tree(_run_folder(job.id, attempt))


@contextmanager
def _as_uploaded(home: Home, job: Job) -> Iterator[Path]:
    """The upload as a local file under the name its member gave it.

    The importer recognises a loose JSON file by its name, and its messages then name
    the member's file, not the upload's key. A hard link is a second name, not a copy,
    and keeps the file readable to this run even if erasure deletes the upload.
    """
    store = jobs.uploads(home)
    key = str(job.params.get("upload") or "")
    source = Path(store.uri(key))  # a local store's (LocalObjectStore)
    if not key or not source.is_file():
        raise InputError("the uploaded file is no longer on the server; upload it again")
    folder = private.mkdir(Path(store.uri(_run_folder(job.id, job.attempts))))
    target = folder / _safe_filename(str(job.params.get("filename") or "upload"))
    try:
        try:
            os.link(source, target)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, target)
        yield target
    finally:
        store.delete_tree(_run_folder(job.id, job.attempts))


class _Heartbeat:
    """A running job's heartbeat: the importer's progress (at most every 0.5 s), and a
    beat every ``beat`` seconds from a small thread, so a long quiet step (checking,
    storing) never looks like a dead worker.

    A heartbeat that cannot be written is logged and skipped: progress never stops an
    import.
    """

    def __init__(self, home: Home, job: Job, beat: float) -> None:
        self.home, self.job, self.beat = home, job, beat
        self._last = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._tick, name=f"tunetrust-job-{job.id[:8]}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def __call__(self, what: str, done: int, total: int) -> None:
        """The importer's progress: the file being read, bytes done of bytes in all."""
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY and done < total:
            return
        self._last = now
        stage = f"reading {PurePosixPath(what).name}" if what else "checking and storing"
        self._safely(
            lambda: jobs.heartbeat(
                self.home,
                self.job.id,
                stage=stage,
                done=done,
                total=total,
                worker=self.job.worker,
            )
        )

    def _tick(self) -> None:
        while not self._stop.wait(self.beat):
            self._safely(lambda: jobs.touch(self.home, self.job.id, worker=self.job.worker))

    def _safely(self, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as exc:
            log.warning(
                "job %s: a heartbeat was not recorded (%s)", self.job.id, type(exc).__name__
            )


def _log_internal(exc: BaseException, job_id: str | None = None) -> None:
    """Log an unexpected error for the steward: its type and where it was raised, never
    its message (it may quote a value from a member's export)."""
    where = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.error(
        "job %s stopped on an internal error: %s\n%s",
        job_id or "(none)",
        type(exc).__name__,
        where.rstrip(),
    )


class Worker:
    """Claims jobs one at a time and runs them, in a daemon thread (:meth:`start`) or a
    step at a time (:meth:`run_once`). Any number of workers may share a database."""

    def __init__(
        self,
        home: Home,
        name: str | None = None,
        poll: float = 0.5,
        *,
        stale_after: timedelta = STALE_AFTER,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.home = home
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")[:80]
        self.poll = poll
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run jobs in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        jobs.release_orphans(self.home, self.name.split(":")[0])  # a killed server's jobs
        jobs.sweep_uploads(self.home)  # and the files killed processes left
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tunetrust-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the job in hand (waiting ``timeout`` seconds at most; a job still
        running then is claimed again by a worker after the server restarts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> bool:
        """Claim one job and run it to its end; whether there was one."""
        job = jobs.claim(
            self.home, self.name, stale_after=self.stale_after, max_attempts=self.max_attempts
        )
        if job is None:
            return False
        run_job(self.home, job, beat=self.stale_after.total_seconds() / 3)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception as exc:  # a database gone away: log, wait, try again
                _log_internal(exc)
                ran = False
            if not ran:
                self._stop.wait(self.poll)
