"""Uploading an export: streamed to the home under the import limits, imported by a job.

The browser posts the zip as ``multipart/form-data``. The body is parsed as it arrives
(``python-multipart``'s streaming parser) and written straight into the uploads store
(``coop/jobs.py``): it is never held whole in memory, and the upload is refused as soon
as it passes ``ImportLimits.max_total_bytes`` (before a byte is read, when the declared
length says so already). A finished upload is opened as a package under the same limits
as any import (entries, sizes, compression ratio: a zip bomb is refused here), then a
job imports it in the background and the member watches its progress.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from tunetrust.coop import jobs as job_records
from tunetrust.errors import InputError
from tunetrust.formats.package import open_package
from tunetrust.services import jobs
from tunetrust.services.outputs import to_json
from tunetrust.settings import ImportLimits
from tunetrust.web.app import ACCESS, page
from tunetrust.web.security import MemberPost, MemberVisit

router = APIRouter()
ACCESS.update(
    {
        "GET /upload": "member",
        "POST /upload": "member",
        "GET /jobs/{job_id}": "member",
        "GET /jobs/{job_id}.json": "member",
    }
)
FIELD = b"export"  # the form's file field
FIELDS_ALLOWANCE = 2**20  # what the form's other parts may add to the file


class TooLarge(InputError):
    """The upload passed the largest export accepted."""

    status = 413


def _size(n: int) -> str:
    """A limit as a person reads it: 4,096 MiB, 256 KiB."""
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


class _Receiver:
    """Callbacks for the streaming parser: the file field's bytes go to ``sink``."""

    def __init__(self, sink: BinaryIO, limit: int) -> None:
        self.sink = sink
        self.limit = limit
        self.written = 0
        self.total = 0
        self.filename = ""
        self.in_file = False
        self.seen_file = False
        self._field = b""
        self._value = b""
        self._disposition = b""

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._disposition = b""
        self.in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._disposition)
        if params.get(b"name") == FIELD and b"filename" in params:
            if self.seen_file:
                raise InputError("upload one export at a time")
            self.in_file = self.seen_file = True
            self.filename = params[b"filename"].decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.total += end - start  # every part counts: other fields cannot carry a flood
        if self.total > self.limit + FIELDS_ALLOWANCE:
            raise TooLarge("the upload is larger than an export may be")
        if not self.in_file:
            return
        self.written += end - start
        if self.written > self.limit:
            raise TooLarge(
                f"{self.filename or 'the upload'}: larger than the {_size(self.limit)} "
                "an export may be — upload the zip the service sent, unchanged"
            )
        self.sink.write(data[start:end])

    def _end(self) -> None:
        self.in_file = False


def _check_package(path: Path, limits: ImportLimits) -> None:
    """Entries, declared sizes and compression ratios, as any import checks them (a zip
    bomb stops here, before anything is queued)."""
    with open_package([path], limits):
        pass


@router.get("/upload")
def upload_page(request: Request, v: MemberVisit) -> Response:
    """The upload form and the member's earlier uploads."""
    limit = v.home.settings.limits.max_total_bytes
    recent = jobs.member_jobs(v.home, v.actor, v.name)
    return page(request, "upload.html", nav="upload", jobs=recent, limit=_size(limit))


@router.post("/upload")
async def upload(request: Request, v: MemberPost) -> Response:
    """Stream the file into the uploads store, check it opens as a package, queue its import."""
    home = v.home
    limits = home.settings.limits
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_total_bytes + 2**20:
        raise TooLarge(
            f"the upload is larger than the {_size(limits.max_total_bytes)} an export may be"
        )
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InputError("send the export with the upload form (multipart/form-data)")
    store = job_records.uploads(home)
    key = f"{secrets.token_hex(16)}.zip"
    with store.stage(key) as sink:
        receiver = _Receiver(sink, limits.max_total_bytes)
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError:
            raise InputError("the upload is not a well-formed form; use the upload page") from None
        if not receiver.seen_file or receiver.written == 0:
            raise InputError("choose your export's zip file first")
    # (a refusal above discards the staged file: nothing is stored)
    store.publish(key)
    try:
        await run_in_threadpool(_check_package, store.path(key), limits)  # type: ignore[attr-defined]
    except BaseException:
        store.delete(key)
        raise
    job = await run_in_threadpool(jobs.submit_import, home, v.actor, v.name, key, receiver.filename)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}.json")
def job_json(job_id: str, v: MemberVisit) -> Response:
    """The job's state for the progress script (the same as the page shows)."""
    return JSONResponse(to_json("job", jobs.job_status(v.home, v.actor, job_id)))


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, v: MemberVisit) -> Response:
    """Progress while the import runs (refreshes itself), then where it ended."""
    info = jobs.job_status(v.home, v.actor, job_id)
    share = round(100 * info.done / info.total) if info.total else None
    context: dict[str, Any] = {"job": info, "share": share, "nav": "upload"}
    return page(request, "job.html", **context)


__all__ = ["router"]
