"""The JSON every command prints with ``--json``: one registry, one serialiser, its schemas.

Each output has a name (``member-show``, ``request-list`` …) and the type the service
returns for it. :func:`to_json` serialises a result through that type (so what is
printed is exactly what the schema describes) and adds ``schema_version``; a list is
printed as ``{"schema_version": 1, "items": [...]}``. The JSON Schemas are generated
from the same types and checked in under ``docs/schemas/`` (regenerate with
``python -m tunetrust.services.outputs docs/schemas``; a test fails when they drift).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from tunetrust.ingest.disputes import Decision, Dispute
from tunetrust.ingest.pipeline import ImportSummary
from tunetrust.insights.cooperative import Comparison
from tunetrust.insights.stats import Insights
from tunetrust.insights.story import Story
from tunetrust.releases.member_insights import Outcome
from tunetrust.services.models import (
    SCHEMA_VERSION,
    AuditEntryInfo,
    AuditHead,
    AuditVerdict,
    BudgetLine,
    BuyerCreated,
    ConsentChange,
    ConsentHistory,
    ContributionInfo,
    ErasureReceipt,
    ExportReceipt,
    InclusionProof,
    InvitationClosed,
    InvitationInfo,
    JobInfo,
    KeyRotation,
    LedgerBalanceInfo,
    LedgerCheckInfo,
    Manifest,
    MemberInfo,
    MemberProfile,
    Model,
    Rebuilt,
    ReleaseBuilt,
    ReleaseCheck,
    ReleasePlanInfo,
    RequestInfo,
    RulesChangeInfo,
    RulesReport,
    Settled,
    Statement,
    TokenInfo,
    TokenIssued,
    Verification,
    VoteCast,
)


class ErrorInfo(Model):
    """A refusal, for ``--json`` callers: its kind, HTTP status, message and, for an
    export, the file, row and problem (never a personal value)."""

    type: str
    status: int
    message: str
    file: str | None = None
    row: int | None = None
    problem: str | None = None
    hint: str | None = None


class Refusal(Model):
    """What ``import --json`` prints when an import is refused before any report exists."""

    error: ErrorInfo


OUTPUTS: dict[str, Any] = {
    "member-add": MemberInfo,
    "member-list": list[MemberInfo],
    "member-show": MemberProfile,
    "member-export": ExportReceipt,
    "member-erase": ErasureReceipt,
    "member-statement": Statement,
    "consent-change": ConsentChange,
    "consent-show": ConsentHistory,
    "budget-show": list[BudgetLine],
    "budget-set": BudgetLine,
    "import": ImportSummary,
    "import-refused": Refusal,
    "contribution-show": ImportSummary,
    "contribution-list": list[ContributionInfo],
    "contribution-disputes": list[Dispute],
    "contribution-decide": Decision,
    "insights": Insights,
    "insights-story": Story,
    "insights-cooperative": Comparison,
    "doctor": Settled,
    "doctor-rebuild": Rebuilt,
    "buyer-add": BuyerCreated,
    "rules-show": RulesReport,
    "rules-set": RulesChangeInfo,
    "request": RequestInfo,
    "request-list": list[RequestInfo],
    "vote": VoteCast,
    "ledger-show": list[LedgerBalanceInfo],
    "ledger-verify": LedgerCheckInfo,
    "release-plan": ReleasePlanInfo,
    "release-build": ReleaseBuilt,
    "release-member-insights": list[Outcome],
    "release-show": Manifest,
    "release-verify": ReleaseCheck,
    "release-inclusion": InclusionProof,
    "audit-verify": AuditVerdict,
    "audit-head": AuditHead,
    "audit-show": list[AuditEntryInfo],
    "key-rotate": KeyRotation,
    "verify": Verification,
    "invite": InvitationInfo,
    "invite-close": InvitationClosed,
    "job": JobInfo,
    "token-add": TokenIssued,
    "token-list": list[TokenInfo],
    "token-revoke": TokenInfo,
}


def to_json(kind: str, value: Any) -> dict[str, Any]:
    """``value`` as the JSON object the command prints, with ``schema_version`` first."""
    data = TypeAdapter(OUTPUTS[kind]).dump_python(value, mode="json")
    head: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    return head | ({"items": data} if isinstance(data, list) else data)


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one output, envelope included."""
    schema = TypeAdapter(OUTPUTS[kind]).json_schema(mode="serialization")
    defs = schema.pop("$defs", None)
    version = {"const": SCHEMA_VERSION, "description": "the shape's version"}
    if schema.get("type") == "array":
        out: dict[str, Any] = {
            "type": "object",
            "properties": {"schema_version": version, "items": schema},
            "required": ["schema_version", "items"],
            "additionalProperties": False,
        }
    else:
        out = dict(schema)
        out["properties"] = {"schema_version": version, **schema.get("properties", {})}
        out["required"] = ["schema_version", *schema.get("required", [])]
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tunetrust.invalid/schemas/{kind}.schema.json",
        "title": f"tunetrust {kind.replace('-', ' ')} --json",
    }
    return head | out | ({"$defs": defs} if defs else {})


def write_schemas(folder: Path) -> list[Path]:
    """Write every output's schema as ``<kind>.schema.json``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in sorted(OUTPUTS):
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(json_schema(kind), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m tunetrust.services.outputs docs/schemas
    for p in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(p)
