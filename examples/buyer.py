"""A buyer's client for TuneTrust's API: propose a data request, wait for its release,
download it and check every file.

    export TUNETRUST_TOKEN=tt_…   # from the steward: `tunetrust buyer add` prints one
    python examples/buyer.py --url https://coop.example --spec examples/spec.yaml \\
        --price 25000 --currency EUR --licence research-only --wait 3600 --out release/
    python examples/buyer.py --url https://coop.example --request ID --out release/

What it does, each step one call of the API under ``/api/v1``:

1. ``POST /specs/check``: the spec validated and planned over the members consenting
   now; it prints how many members would be included, the ε each would spend, each
   metric's expected accuracy and the keys expected.
2. ``POST /requests`` with an ``Idempotency-Key``: a draft request in the buyer's name.
   The key is made once and sent again when a network error makes the call retry, so
   a retry can never propose twice.
3. ``GET /requests/{id}``, with growing pauses, until the request is delivered (the
   steward opens the vote, the members vote, the steward closes it and delivers).
4. ``GET /requests/{id}/release``: the manifest, each file's SHA-256 and size, and a
   signed link per file; each file is downloaded through its link, which works for
   five minutes without the token.
5. ``verify()``: every file against the digests the API listed, the release's own
   ``SHA256SUMS`` and its ``manifest.json``. Files are written to ``--out`` only when
   all of them agree.

``--request ID`` skips steps 1 and 2: it waits for, downloads and checks a request
made earlier (run it again after ``--wait`` ran out). It needs only httpx and the
standard library; with pyarrow installed it also counts the rows of ``data.parquet``.

Exit codes:
    0  the release was downloaded, verified and written to --out
    1  the server refused a call (its problem details are printed) or could not be
       reached, even after retries
    2  the command line is wrong (or no token was given)
    3  the request cannot succeed: its plan expects an empty release (not submitted),
       or the members' vote failed
    4  --wait seconds passed before the request was delivered (run again with --request)
    5  the download failed verification (nothing was written)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx

DELIVERED = ("delivered", "paid")
ATTEMPTS = 5  # tries of one call that meets a network error or a busy server
POLL_FIRST, POLL_MOST = 1.0, 10.0  # seconds between status checks: the first, the longest
# "<64 hex digits><space><space, or * for binary mode><file name>", as sha256sum writes it
SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\]+)")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a file name, never a path


class Stop(Exception):
    """The run ends here: an exit code and what to tell the buyer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- talking to the API ------------------------------------------------------------------


def problem_text(response: httpx.Response) -> str:
    """An error answer as a person reads it: the RFC 9457 ``detail``, then each field
    at fault (``spec.group_by: unknown key …``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "detail" not in body:
        return f"HTTP {response.status_code} {response.reason_phrase} (not problem details)"
    lines = [f"{body['detail']} (HTTP {response.status_code})"]
    lines += [f"  {e.get('field')}: {e.get('detail')}" for e in body.get("errors") or []]
    return "\n".join(lines)


def send(request: Callable[[], httpx.Response]) -> httpx.Response:
    """``request()``, tried again after a network error or a busy answer: a 409 with
    Retry-After (the same Idempotency-Key is still being worked on) or a 502/503/504."""
    pause = 1.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = request()
        except httpx.TransportError as error:
            if attempt == ATTEMPTS:
                raise Stop(1, f"could not reach the server: {error!r}") from None
        else:
            busy = response.status_code == 409 and "retry-after" in response.headers
            if attempt == ATTEMPTS or not (busy or response.status_code in (502, 503, 504)):
                return response
            if response.headers.get("retry-after", "").isdigit():
                pause = float(response.headers["retry-after"])
        time.sleep(pause)
        pause = min(pause * 2, 30.0)
    raise AssertionError("unreachable")  # the last attempt returns or raises


class Api:
    """The API at ``url`` + ``/api/v1``, called with the buyer's token."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        # download links are absolute URLs: fetched by a client that holds no token, so
        # the token never goes anywhere but the API
        self.links = httpx.Client(timeout=timeout)

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """One call's JSON answer; any other status than ``expect`` stops the run."""
        response = send(lambda: self.http.request(method, path, **kwargs))
        if response.status_code != expect:
            raise Stop(1, f"{method} {path}: {problem_text(response)}")
        return response.json()

    def close(self) -> None:
        self.http.close()
        self.links.close()


# --- the steps ---------------------------------------------------------------------------


def check_spec(api: Api, spec: str) -> dict[str, Any]:
    """The spec's plan over the members consenting now (nothing is spent or proposed)."""
    plan: dict[str, Any] = api.call("POST", "/specs/check", json={"spec": spec})
    outcome = plan["outcome"]
    left = ", ".join(f"{n} {why}" for why, n in plan["members_left_out"].items()) or "none"
    print(
        f"Plan: {plan['members_included']} members included (left out: {left}); each spends "
        f"ε {plan['epsilon_per_member']} of their {plan['year']} budget for {plan['purpose']}"
    )
    for name, a in outcome["accuracy"].items():
        print(
            f"  {name}: within ± {a['half_width']:,} {a['unit']} of the bounded true value, "
            f"{a['coverage']:.0%} of the time ({a['distribution']} noise)"
        )
    print(f"  keys: {outcome['statement']}")
    return plan


def submit(api: Api, spec: str, price: int, currency: str, licence: str, days: int) -> str:
    """Propose the request (a draft until the steward opens the vote); its id."""
    body = {
        "spec": spec,
        "price": price,
        "currency": currency,
        "licence": licence,
        "voting_days": days,
    }
    key = str(uuid.uuid4())  # one key for this proposal: send() repeats it on a retry
    info = api.call("POST", "/requests", expect=201, json=body, headers={"Idempotency-Key": key})
    print(
        f"Request {info['id']} proposed at {info['price']['text']}: {info['state']} "
        "until the steward opens the members' vote"
    )
    return str(info["id"])


def wait(api: Api, request_id: str, seconds: float) -> dict[str, Any]:
    """The request once delivered, asked for with growing pauses, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    pause, shown = POLL_FIRST, ""
    while True:
        info: dict[str, Any] = api.call("GET", f"/requests/{request_id}")
        state = info["state"]
        if state != shown:
            print(f"Request {request_id[:12]}: {state}", flush=True)
            shown = state
        if state in DELIVERED:
            return info
        if state == "failed":
            raise Stop(3, f"request {request_id}: {why_failed(info)}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise Stop(
                4,
                f"request {request_id} is still {state} after {seconds:g} s; "
                f"run again with --request {request_id}",
            )
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, POLL_MOST)


def why_failed(info: Mapping[str, Any]) -> str:
    """A failed vote's count against the rules it was held under."""
    tally, rules = info.get("tally"), info.get("rules")
    if not tally or not rules:
        return "the members' vote did not pass"
    return (
        f"the members' vote did not pass: turnout {tally['turnout']:.0%} "
        f"(quorum {rules['quorum']:.0%}), yes {tally['yes']:g}, no {tally['no']:g} "
        f"(more than {rules['majority']:.0%} yes needed)"
    )


def download(api: Api, request_id: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The delivery (manifest, digests) and every file's bytes, through its signed link."""
    answer = api.call("GET", f"/requests/{request_id}/release")
    files = {}
    for link in answer["links"]:
        name = link["name"]
        if not SAFE_NAME.fullmatch(name):  # it becomes a path under --out
            raise Stop(5, f"the release names a file {name!r}: not a plain file name")
        response = send(partial(api.links.get, link["url"]))
        if response.status_code != 200:
            raise Stop(1, f"downloading {name}: {problem_text(response)}")
        files[name] = response.content  # releases are aggregates: small enough for memory
    return answer["delivery"], files


def verify(delivery: Mapping[str, Any], files: Mapping[str, bytes]) -> list[str]:
    """What is wrong with a release's downloaded ``files`` (name → bytes): each is checked
    against the digest and size in the API's ``delivery``, the release's SHA256SUMS and
    its manifest.json. Empty when all agree."""
    problems: list[str] = []
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}

    listed = {f["name"]: f for f in delivery["files"]}
    for name, f in listed.items():
        if name not in files:
            problems.append(f"{name}: listed in the delivery but not downloaded")
        elif len(files[name]) != f["bytes"] or digests[name] != f["sha256"]:
            problems.append(f"{name}: does not match its size and SHA-256 in the delivery")
    problems += [f"{name}: not listed in the delivery" for name in files if name not in listed]

    try:
        manifest = json.loads(files["manifest.json"])
    except (KeyError, ValueError):
        return [*problems, "manifest.json: missing or not JSON"]
    if manifest != delivery["manifest"]:
        problems.append("manifest.json: differs from the manifest in the delivery")
    for name, digest in manifest.get("files", {}).items():
        if digests.get(name) != digest:
            problems.append(f"{name}: does not match its SHA-256 in manifest.json")
    # The Merkle root commits to the members included. Each leaf is salted with a secret
    # the cooperative keeps per release, and padded with secret random leaves, so a
    # buyer cannot recompute it (members check their own inclusion against it: `tunetrust
    # release inclusion`). Here it can only be the same in the delivery and the manifest.
    if manifest.get("merkle_root") != delivery["merkle_root"]:
        problems.append("manifest.json: its Merkle root is not the delivery's")
    if manifest.get("id") != delivery["release"]:
        problems.append("manifest.json: names another release")
    problems += _check_rows(manifest, files)

    sums = str(manifest.get("checksums") or "SHA256SUMS")
    covered = set()
    text = files.get(sums, b"").decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        match = SUM_LINE.fullmatch(line)
        if match is None:
            problems.append(f"{sums}, line {n}: not '<SHA-256>  <file name>'")
            continue
        covered.add(match[2])
        if digests.get(match[2]) != match[1]:
            problems.append(f"{match[2]}: does not match its SHA-256 in {sums}")
    problems += [f"{name}: not covered by {sums}" for name in files if name not in (*covered, sums)]
    return list(dict.fromkeys(problems))  # each problem once


def _check_rows(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> list[str]:
    """The rows of data.csv (and data.parquet, with pyarrow) against the manifest's count."""
    counts = {}
    if "data.csv" in files:
        lines = csv.reader(io.StringIO(files["data.csv"].decode("utf-8", errors="replace")))
        counts["data.csv"] = sum(1 for _ in lines) - 1  # less the header
    if "data.parquet" in files:
        try:
            import pyarrow.parquet as pq
        except ImportError:  # optional: the digests above cover the file already
            pass
        else:
            try:
                meta = pq.read_metadata(io.BytesIO(files["data.parquet"]))
                counts["data.parquet"] = meta.num_rows
            except Exception:  # pyarrow's errors for a damaged file are of several kinds
                return ["data.parquet: not a Parquet file"]
    want = manifest.get("rows")
    return [f"{n}: {c} rows, manifest.json says {want}" for n, c in counts.items() if c != want]


def write(out: Path, files: Mapping[str, bytes]) -> None:
    """The files into ``out``, each whole or not at all (a temporary name, then renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        part = out / f".{name}.part"
        part.write_bytes(data)
        part.replace(out / name)


# --- the command line --------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the cooperative, e.g. https://coop.example")
    parser.add_argument("--token", help="the buyer's API token (default: $TUNETRUST_TOKEN)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--spec", type=Path, help="a release spec to propose (docs/releases.md)")
    which.add_argument("--request", help="a request proposed earlier: wait for it, download it")
    parser.add_argument("--price", type=int, help="whole minor units of the currency (cents)")
    parser.add_argument("--currency", default="EUR", help="ISO 4217 (default: EUR)")
    parser.add_argument(
        "--licence", default="research-only", help="a licence template's name, or its text"
    )
    parser.add_argument("--voting-days", type=int, default=14, help="the vote's window")
    parser.add_argument(
        "--wait", type=float, default=600, help="seconds to wait for delivery (default: 600)"
    )
    parser.add_argument("--out", type=Path, default=Path("release"), help="where files go")
    args = parser.parse_args(argv)
    args.token = args.token or os.environ.get("TUNETRUST_TOKEN")
    if not args.token:
        parser.error("give the buyer's API token: --token or TUNETRUST_TOKEN")
    if args.spec and args.price is None:
        parser.error("--spec needs --price")
    if not args.url.startswith(("https://", "http://localhost", "http://127.0.0.1")):
        print("warning: the token travels unencrypted over plain http", file=sys.stderr)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the client; its exit code (the module's docstring lists them)."""
    args = parse(argv)
    api = Api(args.url, args.token)
    try:
        request_id = args.request
        if args.spec:
            spec = args.spec.read_text(encoding="utf-8")
            if check_spec(api, spec)["outcome"]["expected_empty"]:
                raise Stop(3, "the plan expects an empty release: not submitted")
            request_id = submit(
                api, spec, args.price, args.currency, args.licence, args.voting_days
            )
        wait(api, request_id, args.wait)
        delivery, files = download(api, request_id)
        problems = verify(delivery, files)
        if problems:
            raise Stop(5, "the download does not verify:\n" + "\n".join(f"  {p}" for p in problems))
        write(args.out, files)
    except Stop as stop:
        print(stop, file=sys.stderr)
        return stop.code
    finally:
        api.close()
    print(
        f"Release {delivery['release']}: {len(files)} files verified against the delivery, "
        f"SHA256SUMS and manifest.json; {delivery['manifest'].get('rows')} rows; "
        f"written to {args.out}/"
    )
    for name, data in files.items():
        print(f"  {name:<14} {len(data):>10,} bytes  sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"  Merkle root of the included members: {delivery['merkle_root']}")
    print(f"Check them again without this script: cd {args.out} && sha256sum -c SHA256SUMS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
