"""Background imports: jobs claimed from a table, run to done or failed, never lost.

Real SQLite and real PostgreSQL (the ``coop`` fixture runs a test on each); several
workers are real processes. Exports are synthetic and small.
"""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import shutil
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.factories import export_zip, fabricated_rows, json_bytes, stored_listens, zip_of
from tunetrust import Home, Settings, init_home, open_home
from tunetrust.coop import jobs as records
from tunetrust.coop.members import get_member
from tunetrust.errors import ForbiddenError, InputError, NotFoundError
from tunetrust.formats.spotify.synth import render, synthesize
from tunetrust.services import data, jobs, members
from tunetrust.services.models import Actor, JobInfo
from tunetrust.store.models import Contribution, Job

STEWARD = Actor.steward()
AUDIO = "Spotify Extended Streaming History/Streaming_History_Audio_2021-2022_0.json"


def _upload(home: Home, path: Path) -> str:
    """Put a file in the uploads store as the web app does (stage, publish); its key."""
    key = f"{secrets.token_hex(8)}.upload"
    store = records.uploads(home)
    with store.stage(key) as sink, path.open("rb") as source:
        shutil.copyfileobj(source, sink)
    store.publish(key)
    return key


def _submit(home: Home, member: str, path: Path, filename: str | None = None) -> JobInfo:
    key = _upload(home, path)
    return jobs.submit_import(home, Actor.member(member), member, key, filename or path.name)


def _work(home: Home, name: str = "w1") -> int:
    """Run every waiting job in this process; how many ran."""
    worker, ran = jobs.Worker(home, name), 0
    while worker.run_once():
        ran += 1
    return ran


def _status(home: Home, info: JobInfo, member: str = "ann") -> JobInfo:
    return jobs.job_status(home, Actor.member(member), info.id)


def _contributions(home: Home) -> list[Contribution]:
    with home.sessions() as s:
        return list(s.scalars(select(Contribution)))


def _age(home: Home, job_id: str, by: timedelta = timedelta(hours=1)) -> None:
    """Make a running job's heartbeat old, as a worker that died leaves it."""
    with home.transaction() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=datetime.now(UTC) - by))


def _left_in_uploads(home: Home) -> list[str]:
    return records.uploads(home).list()


# --- a job runs to its end --------------------------------------------------------------


def test_an_upload_is_stored_as_a_direct_import_stores_it(coop: Home, tmp_path: Path) -> None:
    members.join(coop, STEWARD, "ann")
    export = export_zip(tmp_path, "extended-c", 3_000, 7)
    info = _submit(coop, "ann", export, "my_spotify_data.zip")
    assert (info.state, info.contribution, info.error) == ("queued", None, None)

    assert _work(coop) == 1
    done = _status(coop, info)
    assert done.state == "done" and done.error is None and done.contribution
    assert done.total > 0 and done.done == done.total
    assert done.stage.startswith("imported: ")
    assert _left_in_uploads(coop) == []  # the upload, and the run's own name for it, gone

    # the same file imported directly, in another home
    direct = init_home(Settings(home=tmp_path / "direct"))
    try:
        members.join(direct, STEWARD, "ann")
        copy = tmp_path / "my_spotify_data.zip"
        shutil.copyfile(export, copy)
        expected = data.import_contribution(direct, Actor.member("ann"), "ann", [copy])
        got = data.contribution_report(coop, Actor.member("ann"), done.contribution)
        ignore = {"contribution", "quality"}  # its id; quality's clock-dependent details
        assert {k: v for k, v in got.to_dict().items() if k not in ignore} == {
            k: v for k, v in expected.to_dict().items() if k not in ignore
        }
        assert got.listens_added == expected.listens_added > 2_000
        assert stored_listens(coop, "ann").equals(stored_listens(direct, "ann"))
    finally:
        direct.close()
    assert [j.id for j in jobs.member_jobs(coop, Actor.member("ann"), "ann")] == [info.id]


def test_a_loose_json_file_is_recognised_by_the_name_the_member_gave(
    home: Home, tmp_path: Path
) -> None:
    members.join(home, STEWARD, "ann")
    rendered = render(synthesize("extended-c", 1_500, 3), "extended-c")
    name, content = next((n, b) for n, b in rendered.items() if "Audio" in n)
    loose = tmp_path / "loose.bin"
    loose.write_bytes(content)
    info = _submit(home, "ann", loose, f"C:\\Downloads\\{Path(name).name}")
    _work(home)
    done = _status(home, info)
    assert done.state == "done", done.error
    report = data.contribution_report(home, Actor.member("ann"), done.contribution or "")
    assert [f.name for f in report.files] == [Path(name).name]


@pytest.mark.parametrize("bad", ["truncated", "zip_bomb"])
def test_a_bad_upload_fails_naming_the_file_and_stores_nothing(
    home: Home, tmp_path: Path, bad: str
) -> None:
    members.join(home, STEWARD, "ann")
    if bad == "truncated":
        whole = json_bytes(fabricated_rows(500))
        export = zip_of(tmp_path, {AUDIO: whole[: len(whole) // 2]})
    else:  # one entry expanding far past ImportLimits.max_ratio (200 by default)
        export = tmp_path / "export.zip"
        with zipfile.ZipFile(export, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(AUDIO, b"[" + b" " * (40 << 20) + b"]")
    info = _submit(home, "ann", export)
    _work(home)
    failed = _status(home, info)
    assert failed.state == "failed" and failed.contribution is None
    assert failed.error is not None and failed.error.startswith(AUDIO)
    if bad == "zip_bomb":
        assert "expands more than 200 times" in failed.error
    assert _contributions(home) == []
    assert get_member(home, "ann").events_file is None
    assert _left_in_uploads(home) == []


def test_a_rejected_export_fails_and_points_at_its_report(home: Home, tmp_path: Path) -> None:
    members.join(home, STEWARD, "ann")
    forged = zip_of(tmp_path, {AUDIO: json_bytes(fabricated_rows(2_000))})
    info = _submit(home, "ann", forged)
    _work(home)
    failed = _status(home, info)
    assert failed.state == "failed" and failed.contribution is not None
    assert failed.error is not None
    assert failed.error.startswith("export.zip: the contribution was rejected by its checks (")
    report = data.contribution_report(home, Actor.member("ann"), failed.contribution)
    assert report.verdict == "rejected" and report.listens_added == 0
    assert _left_in_uploads(home) == []


def test_the_same_upload_twice_ends_done_pointing_at_the_first(coop: Home, tmp_path: Path) -> None:
    members.join(coop, STEWARD, "ann")
    export = export_zip(tmp_path, "extended-b", 1_500, 11)
    first = _submit(coop, "ann", export)
    _work(coop)
    again = _submit(coop, "ann", export)
    _work(coop)
    second = _status(coop, again)
    assert second.state == "done" and second.error is None
    assert second.contribution == _status(coop, first).contribution
    assert second.stage == "this export was imported before; nothing new was added"
    assert len(_contributions(coop)) == 1
    assert _left_in_uploads(coop) == []


def test_an_internal_error_fails_plainly_and_logs_no_message(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    members.join(home, STEWARD, "ann")

    personal = "Private Song Title"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"a value from the export: {personal}")

    monkeypatch.setattr(jobs, "import_contribution", broken)
    info = _submit(home, "ann", export_zip(tmp_path, "extended-c", 300), "ann's export.zip")
    with caplog.at_level(logging.ERROR, logger="tunetrust.jobs"):
        _work(home)
    failed = _status(home, info)
    assert (failed.state, failed.error) == ("failed", jobs.INTERNAL)
    logged = caplog.text
    assert info.id in logged and "RuntimeError" in logged and "broken" in logged
    assert "Private Song Title" not in logged and "export.zip" not in logged
    assert _left_in_uploads(home) == []


# --- who sees what --------------------------------------------------------------------


def test_a_member_cannot_see_another_members_job(home: Home, tmp_path: Path) -> None:
    for name in ("ann", "bob"):
        members.join(home, STEWARD, name)
    export = export_zip(tmp_path, "extended-c", 300)
    info = _submit(home, "ann", export)
    with pytest.raises(NotFoundError) as theirs:
        jobs.job_status(home, Actor.member("bob"), info.id)
    with pytest.raises(NotFoundError) as nobodys:
        jobs.job_status(home, Actor.member("bob"), secrets.token_hex(16))
    assert str(theirs.value) == str(nobodys.value)  # nothing says the job exists
    with pytest.raises(ForbiddenError):
        jobs.member_jobs(home, Actor.member("bob"), "ann")
    with pytest.raises(ForbiddenError):
        jobs.submit_import(home, Actor.member("bob"), "ann", _upload(home, export), "x.zip")
    with pytest.raises(ForbiddenError):
        jobs.job_status(home, Actor.buyer("Lab"), info.id)
    assert jobs.job_status(home, STEWARD, info.id).id == info.id
    assert jobs.member_jobs(home, Actor.member("bob"), "bob") == []


def test_an_upload_that_is_not_there_is_refused(home: Home) -> None:
    members.join(home, STEWARD, "ann")
    with pytest.raises(InputError, match="not on the server"):
        jobs.submit_import(home, Actor.member("ann"), "ann", "missing.upload", "x.zip")
    with pytest.raises(InputError, match="not a storage key"):
        jobs.submit_import(home, Actor.member("ann"), "ann", "../escape", "x.zip")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("my_spotify_data.zip", "my_spotify_data.zip"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\export (1).zip", "export (1).zip"),
        ("a\x00b\u202e.zip", "ab.zip"),
        ("<script>.zip", "_script_.zip"),
        ("..", "upload"),
        ("", "upload"),
        ("x" * 300 + ".zip", "x" * 96 + ".zip"),
    ],
)
def test_a_member_given_file_name_is_kept_as_a_safe_base_name(given: str, kept: str) -> None:
    assert jobs._safe_filename(given) == kept


# --- never lost: dead workers, restarts ---------------------------------------------------


def test_a_job_whose_worker_died_is_claimed_again_and_finishes(coop: Home, tmp_path: Path) -> None:
    members.join(coop, STEWARD, "ann")
    info = _submit(coop, "ann", export_zip(tmp_path, "extended-c", 500))
    dead = records.claim(coop, "dead")
    assert dead is not None and dead.id == info.id and dead.state == "running"
    assert _work(coop, "alive") == 0  # its heartbeat is fresh: not claimable
    _age(coop, info.id)
    assert _work(coop, "alive") == 1
    done = _status(coop, info)
    assert done.state == "done"
    row = records.get(coop, info.id)
    assert (row.attempts, row.worker) == (2, "alive")
    # the dead worker waking up changes nothing
    assert not records.fail(coop, info.id, "late", worker="dead")
    assert not records.heartbeat(coop, info.id, stage="x", done=0, total=1, worker="dead")
    assert _status(coop, info) == done


def test_a_job_that_stopped_the_server_too_often_is_failed_plainly(
    coop: Home, tmp_path: Path
) -> None:
    members.join(coop, STEWARD, "ann")
    info = _submit(coop, "ann", export_zip(tmp_path, "extended-c", 300))
    later = _submit(coop, "ann", export_zip(tmp_path, "extended-c", 300, seed=2))
    for attempt in range(3):
        claimed = records.claim(coop, f"dies-{attempt}")
        assert claimed is not None and claimed.id == info.id
        _age(coop, info.id)
    # the exhausted job is failed on the way, and the next one claimed
    claimed = records.claim(coop, "next")
    assert claimed is not None and claimed.id == later.id
    failed = _status(coop, info)
    assert failed.state == "failed"
    assert failed.error == (
        "the server stopped while importing this upload 3 times; upload it again or ask the steward"
    )
    assert len(_left_in_uploads(coop)) == 1  # the failed job's upload is gone; later's waits


def test_the_heartbeat_goes_on_while_the_importer_is_quiet(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members.join(home, STEWARD, "ann")
    real = jobs.import_contribution

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(5)  # a long step with no progress at all, over twice the stale window
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "import_contribution", slow)
    info = _submit(home, "ann", export_zip(tmp_path, "extended-c", 300))
    # 2 s, not 1: on two busy cores a heartbeat every 0.7 s was once late by a second
    stale = timedelta(seconds=2)
    worker = jobs.Worker(home, "slow", poll=0.05, stale_after=stale)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while _status(home, info).state in ("queued", "running"):
            assert time.monotonic() < deadline
            assert records.claim(home, "thief", stale_after=stale) is None
            time.sleep(0.1)
    finally:
        worker.stop(timeout=30)
    assert _status(home, info).state == "done"
    assert records.get(home, info.id).attempts == 1


# --- PostgreSQL: several workers ------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_locked_job_is_skipped_not_waited_for(coop: Home, tmp_path: Path) -> None:
    members.join(coop, STEWARD, "ann")
    ids = [_submit(coop, "ann", export_zip(tmp_path, "extended-c", 100, i)).id for i in range(2)]
    claimed: list[Job | None] = []
    with coop.sessions() as other, other.begin():
        # another worker's claim transaction, still open, holds the oldest job
        locked = other.scalar(select(Job).where(Job.id == ids[0]).with_for_update())
        assert locked is not None
        claimer = threading.Thread(target=lambda: claimed.append(records.claim(coop, "w2")))
        claimer.start()
        claimer.join(timeout=10)
        waited = claimer.is_alive()  # blocked behind the lock: ends when this block does
    claimer.join()
    assert not waited, "claim() waited for a locked job instead of skipping it"
    assert claimed[0] is not None and claimed[0].id == ids[1]


def _work_in_child(settings: Settings, name: str, barrier: Barrier, out: Queue[str]) -> None:
    home = open_home(settings)
    try:
        worker = jobs.Worker(home, name)
        barrier.wait(timeout=60)
        while True:
            job = records.claim(home, worker.name)
            if job is None:
                break
            out.put(job.id)
            jobs.run_job(home, job)
    finally:
        home.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_worker_processes_run_each_job_once(db_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    home = init_home(settings)
    try:
        names = [f"m{i}" for i in range(6)]
        queued = []
        for i, name in enumerate(names):
            members.join(home, STEWARD, name)
            export = export_zip(tmp_path, "extended-c", 400, 100 + i)
            queued.append(_submit(home, name, export).id)

        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        out: Queue[str] = ctx.Queue()
        procs = [
            ctx.Process(target=_work_in_child, args=(settings, f"w{i}", barrier, out))
            for i in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=180)
        assert [p.exitcode for p in procs] == [0, 0]
        claimed = []
        while not out.empty() or len(claimed) < len(queued):
            claimed.append(out.get(timeout=5))

        assert sorted(claimed) == sorted(queued)  # each job claimed once, none twice
        with home.sessions() as s:
            rows = list(s.scalars(select(Job)))
        assert {(j.state, j.attempts) for j in rows} == {("done", 1)}
        assert {j.worker for j in rows} == {"w0", "w1"}  # both worked, side by side
        assert len(_contributions(home)) == len(names)
        assert _left_in_uploads(home) == []
    finally:
        home.close()


# --- erasure ---------------------------------------------------------------------------------


def test_forget_deletes_a_members_jobs_and_returns_their_uploads(
    coop: Home, tmp_path: Path
) -> None:
    for name in ("ann", "bob"):
        members.join(coop, STEWARD, name)
    keys = [_upload(coop, export_zip(tmp_path, "extended-c", 100, i)) for i in range(3)]
    for key in keys[:2]:
        jobs.submit_import(coop, Actor.member("ann"), "ann", key, "a.zip")
    jobs.submit_import(coop, Actor.member("bob"), "bob", keys[2], "b.zip")
    with coop.transaction() as s:
        forgotten = records.forget(s, get_member(coop, "ann").id)
    assert sorted(forgotten) == sorted(keys[:2])
    assert jobs.member_jobs(coop, STEWARD, "ann") == []
    assert len(jobs.member_jobs(coop, STEWARD, "bob")) == 1


def test_leftovers_of_killed_processes_are_swept_and_live_uploads_kept(coop: Home) -> None:
    import os

    members.join(coop, STEWARD, "ann")
    store = records.uploads(coop)
    queued = _submit(coop, "ann", export_zip(coop.settings.home.parent, "extended-c", 300))
    queued_key = records.get(coop, queued.id).params["upload"]
    store.put("orphan.zip", b"no job names me")  # stored, never queued
    store.put("fresh.zip", b"still arriving elsewhere")
    with store.stage("cut.zip"):  # a server killed mid-upload leaves the staged file
        pass
    staged = Path(store.uri("cut.zip.tmp"))
    staged.write_bytes(b"half an upload")
    store.put(".run-deadbeef-1/export.zip", b"a killed worker's run copy")
    old = time.time() - 2 * 3600
    for key in ("orphan.zip", queued_key, ".run-deadbeef-1/export.zip"):
        os.utime(store.uri(key), (old, old))
    os.utime(staged, (old, old))

    assert records.sweep_uploads(coop) == 3
    assert sorted(store.list()) == sorted([queued_key, "fresh.zip"])
    assert not Path(store.uri(".run-deadbeef-1")).exists()
    assert _work(coop) == 1 and _status(coop, queued).state == "done"  # the live one imports


def test_a_job_row_edited_to_point_outside_the_uploads_store_reads_nothing(home: Home) -> None:
    members.join(home, STEWARD, "ann")
    ann = get_member(home, "ann")
    key_file = home.settings.home / "master.key"
    before = key_file.read_bytes()
    for upload in ("../master.key", "../../etc/passwd", "/etc/passwd"):
        job = records.enqueue(home, kind="import", member_id=ann.id, params={"upload": upload})
        assert _work(home) == 1
        ended = records.get(home, job.id)
        assert ended.state == "failed" and ended.error, upload
        assert "root:" not in (ended.error or "")
    assert key_file.read_bytes() == before and _contributions(home) == []
