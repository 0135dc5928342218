"""Background jobs: a table of work that workers claim, never a queue of our own making.

A job is queued, claimed by one worker (``running``), and ends ``done`` or ``failed``.
The worker heartbeats while it runs; a running job whose heartbeat is older than
``stale_after`` lost its worker (a server stopped or killed) and is claimed again, up
to ``max_attempts`` claims, after which it is failed with a plain message. So a job is
resumed or clearly failed, never silently lost.

Claiming is one write transaction. On PostgreSQL several workers (processes, machines)
claim at once: ``SELECT … FOR UPDATE SKIP LOCKED`` hands each a different row without
waiting on the others. On SQLite the write transaction takes the database's write lock
at ``BEGIN`` (``store/db.py``), so claimers run one after another and the clause is left
out by SQLAlchemy.

Updates from a worker name it (``worker=``): once another worker claimed the job again,
the first one's heartbeats and its ending change nothing, so a job ends once.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from tunetrust.errors import NotFoundError
from tunetrust.store.home import Home
from tunetrust.store.models import Job
from tunetrust.store.objects import ObjectStore

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UPLOADS = "uploads"
"""The home's object-store scope of uploaded files; a job's ``params["upload"]`` is a key in it."""

STALE_AFTER = timedelta(seconds=30)
MAX_ATTEMPTS = 3
STAGE_CHARS = 80  # the width of ``jobs.stage``


def uploads(home: Home) -> ObjectStore:
    """The store uploaded files wait in until their job ends."""
    return home.objects.scope(UPLOADS)


def enqueue(home: Home, *, kind: str, member_id: int, params: dict[str, Any]) -> Job:
    """A new queued job of ``kind`` for a member."""
    now = datetime.now(UTC)
    job = Job(
        id=secrets.token_hex(16),
        kind=kind,
        member_id=member_id,
        state=QUEUED,
        params=params,
        stage="waiting for a worker",
        done=0,
        total=0,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    with home.transaction() as s:
        s.add(job)
    return job


def _stopped_message(attempts: int) -> str:
    times = "once" if attempts == 1 else f"{attempts} times"
    return (
        f"the server stopped while importing this upload {times}; "
        "upload it again or ask the steward"
    )


def claim(
    home: Home,
    worker: str,
    *,
    stale_after: timedelta = STALE_AFTER,
    max_attempts: int = MAX_ATTEMPTS,
) -> Job | None:
    """The oldest job waiting (queued, or running without a heartbeat for ``stale_after``),
    now running for ``worker``; None when there is none.

    A stale job claimed ``max_attempts`` times already is failed instead, and its upload
    deleted: the export may be what stops the server.
    """
    now = datetime.now(UTC)
    waiting = (
        select(Job)
        .where(
            or_(
                Job.state == QUEUED,
                and_(
                    Job.state == RUNNING,
                    or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < now - stale_after),
                ),
            )
        )
        .order_by(Job.created_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's BEGIN IMMEDIATE serialises
    )
    exhausted: list[str] = []
    with home.transaction() as s:
        while (job := s.scalar(waiting)) is not None:
            if job.state == RUNNING and job.attempts >= max_attempts:
                _end(job, FAILED, now, error=_stopped_message(job.attempts))
                exhausted += _upload_keys([job])
                s.flush()  # it no longer matches: look again
                continue
            job.state = RUNNING
            job.worker = worker
            job.attempts += 1
            job.stage = "starting"
            job.heartbeat_at = job.updated_at = now
            break
    for key in exhausted:
        uploads(home).delete(key)
    return job


def release_orphans(home: Home, host: str) -> int:
    """Jobs left running by a worker process of ``host`` that has died (a server killed
    mid-import): made claimable at once instead of after ``STALE_AFTER``.

    Worker names are ``host:pid:…``; a pid that no longer exists on this host cannot be
    working. (A reused pid only means the job waits for its heartbeat to go stale.)
    """
    released = 0
    with home.transaction() as s:
        for job in s.scalars(select(Job).where(Job.state == RUNNING, Job.worker.like(f"{host}:%"))):
            pid = (job.worker or "").split(":")[1:2]
            if pid and pid[0].isdigit() and not _alive(int(pid[0])):
                job.heartbeat_at = None
                job.stage = "interrupted: the server stopped; starting again"
                released += 1
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owned(job_id: str, worker: str | None) -> Any:
    """The condition that ``job_id`` is running (for ``worker``, when one is named)."""
    cond = and_(Job.id == job_id, Job.state == RUNNING)
    return cond if worker is None else and_(cond, Job.worker == worker)


def heartbeat(
    home: Home,
    job_id: str,
    *,
    stage: str,
    done: int,
    total: int,
    worker: str | None = None,
) -> bool:
    """Record a running job's progress; False if it is no longer running (for ``worker``)."""
    now = datetime.now(UTC)
    with home.transaction() as s:
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(Job)
            .where(_owned(job_id, worker))
            .values(
                stage=stage[:STAGE_CHARS],
                done=done,
                total=total,
                heartbeat_at=now,
                updated_at=now,
            )
        )
    return bool(result.rowcount)


def touch(home: Home, job_id: str, *, worker: str | None = None) -> bool:
    """A heartbeat without news: the worker is alive, the job still running."""
    with home.transaction() as s:
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(Job).where(_owned(job_id, worker)).values(heartbeat_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


def finish(
    home: Home,
    job_id: str,
    result: dict[str, Any],
    *,
    stage: str = "finished",
    worker: str | None = None,
) -> bool:
    """End a running job done with ``result``; False if it was not running (for ``worker``)."""
    return _close(home, job_id, worker, DONE, stage=stage, result=result)


def fail(
    home: Home,
    job_id: str,
    error: str,
    *,
    result: dict[str, Any] | None = None,
    worker: str | None = None,
) -> bool:
    """End a running job failed with ``error`` (a message for the member, no personal value)."""
    return _close(home, job_id, worker, FAILED, error=error, result=result)


def _close(
    home: Home,
    job_id: str,
    worker: str | None,
    state: str,
    *,
    stage: str | None = None,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    with home.transaction() as s:
        job = s.scalar(select(Job).where(_owned(job_id, worker)).with_for_update())
        if job is None:
            return False
        _end(job, state, datetime.now(UTC), stage=stage, error=error, result=result)
    return True


def _end(
    job: Job,
    state: str,
    now: datetime,
    *,
    stage: str | None = None,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    job.state = state
    job.stage = (stage or state)[:STAGE_CHARS]
    job.error = error
    job.result = result
    job.updated_at = now
    if state == DONE:
        job.done = job.total = max(job.total, job.done)


def get(home: Home, job_id: str) -> Job:
    """One job by id."""
    with home.sessions() as s:
        job = s.get(Job, job_id)
    if job is None:
        raise not_found()
    return job


def not_found() -> NotFoundError:
    """The answer for a job that does not exist (and for another member's job)."""
    return NotFoundError("no such job; the list of your imports shows the ones you have")


def member_jobs(home: Home, member_id: int) -> list[Job]:
    """A member's jobs, newest first."""
    with home.sessions() as s:
        return list(
            s.scalars(
                select(Job)
                .where(Job.member_id == member_id)
                .order_by(Job.created_at.desc(), Job.id.desc())
            )
        )


LEFT_AFTER = timedelta(hours=1)  # an upload file no live job names, this old, is left over


def sweep_uploads(home: Home, *, older_than: timedelta = LEFT_AFTER) -> int:
    """Delete what killed processes left in the uploads store; how many files went.

    A server killed mid-upload leaves a staged ``.tmp`` file; one killed between storing
    an upload and queueing its job leaves a file no job names; a worker killed mid-import
    leaves its run folder. Files a queued or running job names (its upload, its run
    folder) stay; so does anything younger than ``older_than``, which may be an upload
    still arriving at another server sharing the home.
    """
    with home.sessions() as s:
        live = list(s.scalars(select(Job).where(Job.state.in_((QUEUED, RUNNING)))))
    kept = set(_upload_keys(live)) | {f".run-{j.id}-" for j in live}
    store = uploads(home)
    cutoff = datetime.now(UTC).timestamp() - older_than.total_seconds()
    swept = 0
    for key in store.list():
        top = key.split("/", 1)[0]
        if top in kept or any(top.startswith(k) for k in kept if k.startswith(".run-")):
            continue
        local = Path(store.uri(key))
        if local.stat().st_mtime < cutoff:
            local.unlink(missing_ok=True)
            swept += 1
    for folder in sorted(Path(store.uri("")).glob(".run-*")):  # emptied run folders
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return swept


def forget(session: Session, member_id: int) -> list[str]:
    """Delete a member's jobs in the caller's transaction (erasure); their upload keys,
    for the caller to delete once it commits."""
    rows = list(session.scalars(select(Job).where(Job.member_id == member_id)))
    session.execute(delete(Job).where(Job.member_id == member_id))
    return _upload_keys(rows)


def _upload_keys(rows: list[Job]) -> list[str]:
    return [str(j.params["upload"]) for j in rows if j.params.get("upload")]
