"""The service API: every use case returns frozen, typed objects, and acts as someone.

The walk calls every public function of the service modules in one cooperative's
lifecycle and fails if any returns (or holds anywhere inside) an ORM row, a dict at
the top, a tuple, or something that is not frozen; a second test fails if a public
function was added and not walked.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.factories import WEEKDAY_SPEC, export_zip
from tunetrust import Home
from tunetrust.coop import audit as audit_log
from tunetrust.coop import jobs as job_records
from tunetrust.errors import ForbiddenError
from tunetrust.insights.stats import Period
from tunetrust.services import audit, data, governance, jobs, members, releases, tokens
from tunetrust.services.models import Actor
from tunetrust.services.outputs import OUTPUTS, json_schema, to_json
from tunetrust.store.models import Base

MODULES = (members, data, governance, releases, audit, jobs, tokens)
SPEC = WEEKDAY_SPEC
STEWARD = Actor.steward()


def _frozen_typed(value: Any, path: str = "result") -> None:
    """Fail on ORM rows and tuples anywhere, and on anything returned that is not frozen."""
    assert not isinstance(value, Base), f"{path} is an ORM row"
    assert not isinstance(value, tuple), f"{path} is a tuple"
    if isinstance(value, BaseModel):
        assert value.model_config.get("frozen"), f"{path}: {type(value).__name__} is not frozen"
        for name in type(value).model_fields:
            _frozen_typed(getattr(value, name), f"{path}.{name}")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = type(value).__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, f"{path}: {type(value).__name__} is not frozen"
        for f in dataclasses.fields(value):
            _frozen_typed(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _frozen_typed(item, f"{path}[{i}]")
    elif isinstance(value, dict):  # inside a result only: a typed mapping of values
        for k, item in value.items():
            _frozen_typed(item, f"{path}[{k!r}]")


def _result(value: Any, called: set[str], name: str) -> Any:
    called.add(name)
    assert not isinstance(value, dict), f"{name} returned a dict"
    assert (
        value is None or isinstance(value, BaseModel | list) or dataclasses.is_dataclass(value)
    ), f"{name} returned {type(value).__name__}"
    _frozen_typed(value, name)
    return value


def test_every_service_call_returns_frozen_typed_objects(home: Home, tmp_path: Path) -> None:
    called: set[str] = set()

    def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return _result(fn(home, *args, **kwargs), called, f"{fn.__module__}.{fn.__name__}")

    names = [f"m{i:02d}" for i in range(12)]
    for i, name in enumerate(names):
        call(members.join, STEWARD, name)
        me = Actor.member(name)
        call(data.import_contribution, me, name, [export_zip(tmp_path, "extended-c", 300, i + 1)])
        call(members.set_consent, me, name, "research", granted=True)
    me = Actor.member("m00")
    call(members.list_members, STEWARD)
    call(members.invite, STEWARD, days=3)
    opened = call(members.invite, STEWARD, open_admission=True)
    call(members.close_invitation, STEWARD, opened.id)
    call(members.member_profile, me, "m00")
    call(members.consent_history, me, "m00")
    receipts = call(governance.consent_receipts, me, "m00")
    assert [r.purpose for r in receipts] == ["research"] and receipts[0].granted
    assert call(governance.consent_receipt, me, "m00", receipts[0].seq) == receipts[0]
    call(members.budget_lines, me, "m00")
    call(members.lower_budget_cap, me, "m00", "ai-training", 1.0)
    contributions = call(data.list_contributions, me, "m00")
    call(data.contribution_report, me, contributions[0].id)
    call(data.insights, me, "m00", Period.parse(None, None, None))
    assert not call(data.story, me, "m00").empty  # the year of the latest listen
    call(data.settle, STEWARD)
    call(data.rebuild_events, STEWARD, dry_run=True)

    plan = call(releases.plan, STEWARD, SPEC)
    assert plan.members_included == 12
    built = call(releases.build_release, STEWARD, SPEC)
    call(releases.show_manifest, STEWARD, built.id)
    assert call(releases.verify, STEWARD, built.id).ok
    assert call(releases.inclusion, me, built.id, "m00").checks

    lab = call(governance.add_buyer, STEWARD, "Lab", "lab@example.invalid", "SE")
    buyer = Actor.buyer("Lab")
    preview = call(releases.preview, buyer, SPEC)
    assert preview.members_included == 12
    req = call(
        governance.create_request,
        Actor.buyer("Lab"),
        buyer=lab.name,
        spec_text=SPEC,
        price=120_000,
        currency="EUR",
        licence="research-only",
    )
    assert call(governance.request_plan, buyer, req.id).members_included == 12
    call(governance.open_request, STEWARD, req.id)
    for name in names:
        call(governance.vote, Actor.member(name), name, req.id, "yes")
    call(governance.tally, me, req.id)
    ballot = call(governance.my_ballot, me, "m00", req.id)
    assert ballot is not None and ballot.choice == "yes"
    weighed = call(governance.requests_for_member, me, "m00")
    assert [w.request.id for w in weighed] == [req.id] and weighed[0].ballot == ballot
    one = call(governance.request_for_member, me, "m00", req.id)
    assert one.eligible and one.can_vote and one.estimated_share is not None
    call(governance.close_request, STEWARD, req.id)
    delivered = call(governance.deliver, STEWARD, req.id)
    assert delivered.state == "paid" and delivered.payment is not None
    call(governance.show_request, buyer, req.id)
    assert [r.id for r in call(governance.list_requests, buyer)] == [req.id]
    got = call(releases.delivery, buyer, req.id)
    assert {f.name for f in got.files} >= {"data.csv", "manifest.json", "SHA256SUMS"}
    assert releases.release_file(home, buyer, req.id, "data.csv")
    called.add("tunetrust.services.releases.release_file")  # bytes: not a service model
    overview = call(members.member_overview, STEWARD)
    assert len(overview) == 12 and all(m.contributions == 1 for m in overview)
    issued = call(tokens.issue_token, STEWARD, kind="auditor", holder="outside-auditor")
    mine = call(tokens.issue_token, me, kind="member", holder="m00", label="my script")
    assert [t.id for t in call(tokens.list_tokens, me)] == [mine.info.id]
    assert call(tokens.revoke_token, STEWARD, issued.info.id).revoked is not None
    call(governance.rules, me)
    call(governance.rules_in_force, me)
    call(governance.set_rules, STEWARD, reason="a test of the walk", quorum=0.6)
    call(governance.balances, STEWARD)
    assert call(governance.verify_ledger, STEWARD).ok
    call(members.member_statement, me, "m00")
    was_in = call(releases.member_releases, me, "m00")
    assert [r.id for r in was_in] == [built.id, delivered.release]
    assert was_in[1].payout is not None and was_in[0].payout is None
    assert call(data.cooperative, me, "m00").state == "needs-consent"
    call(members.set_consent, me, "m00", "member-insights", granted=True)
    members.set_consent(home, Actor.member("m01"), "m01", "member-insights", granted=True)
    parts = call(releases.build_member_insights, STEWARD, "2024-03")
    assert [p.part for p in parts] == ["hours", "artists", "tracks"]
    assert call(data.cooperative, me, "m00").state == "ready"

    assert call(audit.verify_chain, STEWARD).ok
    assert call(audit.verify_everything, STEWARD).ok
    call(audit.head, STEWARD)
    call(audit.entries, me, member="m00")
    call(audit.entries, STEWARD)
    call(audit.rotate_master_key, STEWARD)
    upload = export_zip(tmp_path, "extended-c", 300, 1)  # m00's own export again: recognised
    job_records.uploads(home).put("walk.upload", upload.read_bytes())
    job = call(jobs.submit_import, me, "m00", "walk.upload", upload.name)
    claimed = job_records.claim(home, "walk")
    assert claimed is not None and claimed.id == job.id
    call(jobs.run_job, claimed)
    assert call(jobs.job_status, me, job.id).state == "done"
    call(jobs.member_jobs, me, "m00")
    assert [j.id for j in call(jobs.all_jobs, STEWARD)] == [job.id]
    # m01's export again for someone else: held for the steward, who decides for m01
    call(members.join, STEWARD, "claimant")
    again = export_zip(tmp_path, "extended-c", 300, 2)
    held = call(data.import_contribution, Actor.member("claimant"), "claimant", [again])
    assert held.verdict == "disputed"
    assert [d.contribution for d in call(data.disputes, STEWARD)] == [held.contribution]
    decided = call(data.decide_dispute, STEWARD, held.contribution, decided_for="holder")
    assert decided.revoked == [] and call(data.disputes, STEWARD) == []
    call(members.export_data, me, "m00", tmp_path / "m00.zip")
    call(members.erase, me, "m00")

    public = {
        f"{m.__name__}.{n}"
        for m in MODULES
        for n, fn in inspect.getmembers(m, inspect.isfunction)
        if fn.__module__ == m.__name__ and not n.startswith("_")
    }
    public.discard("tunetrust.services.members.amount")  # a formatter, not a use case
    assert public - called == set(), "public service calls the walk does not cover"


def test_members_act_for_themselves_only(home: Home, tmp_path: Path) -> None:
    for name in ("ann", "bob"):
        members.join(home, STEWARD, name)
    ann = Actor.member("ann")
    with pytest.raises(ForbiddenError):
        members.set_consent(home, ann, "bob", "research", granted=True)
    with pytest.raises(ForbiddenError):
        members.erase(home, ann, "bob")
    with pytest.raises(ForbiddenError):
        members.join(home, ann, "carol")  # admission is the steward's
    with pytest.raises(ForbiddenError):
        governance.balances(home, ann)
    with pytest.raises(ForbiddenError):
        releases.build_release(home, Actor.buyer("Lab"), SPEC)
    with pytest.raises(ForbiddenError):
        governance.create_request(
            home,
            Actor.buyer("Lab"),
            buyer="Other",
            spec_text=SPEC,
            price=1,
            currency="EUR",
            licence="research-only",
        )
    # look-alike spellings of one's own name are one's own name
    members.set_consent(home, Actor.member("ANN"), "ann", "research", granted=True)
    assert members.member_profile(home, ann, "ann").consents == {"research": True}
    audit.verify_chain(home, Actor(kind="auditor", name="outside-auditor"))


def test_the_audit_log_names_who_acted(home: Home) -> None:
    members.join(home, Actor.steward("stella"), "ann")
    members.set_consent(home, Actor.member("ann"), "ann", "research", granted=True)
    members.set_consent(home, Actor.steward("stella"), "ann", "research", granted=False)
    with home.sessions() as s:
        entries = audit_log.entries(s)
    by_action = [(e.action, e.actor) for e in entries if e.action != "rules.set"]
    ann = next(e.subject for e in entries if e.action == "member.add")
    assert by_action[-3:] == [
        ("member.add", "stella"),
        ("consent.grant", f"member:{ann}"),
        ("consent.withdraw", "stella"),
    ]
    history = members.consent_history(home, STEWARD, "ann").history
    assert [r.by for r in history] == [f"member:{ann}", "stella"]


def test_json_outputs_carry_a_version_and_match_their_checked_in_schemas() -> None:
    root = Path(__file__).resolve().parent.parent / "docs" / "schemas"
    on_disk = {p.name.removesuffix(".schema.json") for p in root.glob("*.schema.json")}
    assert on_disk == set(OUTPUTS), "docs/schemas/ and services/outputs.py list other outputs"
    for kind in OUTPUTS:
        checked_in = json.loads((root / f"{kind}.schema.json").read_text())
        assert checked_in == json.loads(json.dumps(json_schema(kind))), (
            f"docs/schemas/{kind}.schema.json is stale: "
            "run python -m tunetrust.services.outputs docs/schemas"
        )
    listed = to_json("member-list", [])
    assert listed == {"schema_version": 1, "items": []}
