"""Release use cases: plan, build, read, verify, and a member's proof of inclusion."""

from __future__ import annotations

from dataclasses import asdict

from tunetrust.releases import build, manifest
from tunetrust.releases.spec import parse_spec
from tunetrust.services._access import acting, for_member, reader, steward_only
from tunetrust.services.models import (
    Actor,
    InclusionProof,
    Manifest,
    ReleaseBuilt,
    ReleaseCheck,
    ReleasePlanInfo,
)
from tunetrust.store.home import Home


def plan(home: Home, actor: Actor, spec_text: str, *, source: str = "spec") -> ReleasePlanInfo:
    """Who a spec would include, its ε cost and expected outcome; computes nothing on data.

    A release expected to be empty is shown here, not refused (``build`` refuses it).
    """
    steward_only(actor, "plan a release")
    spec = parse_spec(spec_text, source_name=source)
    planned = build.plan_release(home, spec, allow_empty=True)
    return ReleasePlanInfo.model_validate(planned.to_dict())


def build_release(
    home: Home, actor: Actor, spec_text: str, *, allow_empty: bool = False, source: str = "spec"
) -> ReleaseBuilt:
    """Bounded aggregates, OpenDP noise, files, manifest; spends the included members' ε."""
    steward_only(actor, "build a release")
    with acting(home, actor):
        spec = parse_spec(spec_text, source_name=source)
        built = build.build_release(home, spec, allow_empty=allow_empty)
    return ReleaseBuilt(
        id=built.id,
        path=str(built.path),
        members_included=built.members_included,
        merkle_root=str(built.manifest["merkle_root"]),
        rows=int(built.manifest["rows"]),
        manifest=built.manifest,
    )


def show_manifest(home: Home, actor: Actor, release_id: str) -> Manifest:
    """A release's manifest as published beside its files."""
    reader(actor, "read a release's manifest")
    return Manifest.model_validate(manifest.read_manifest(build.release_folder(home, release_id)))


def verify(home: Home, actor: Actor, release_id: str) -> ReleaseCheck:
    """The files against the manifest and SHA256SUMS, the manifest against the records."""
    reader(actor, "verify a release")
    problems = build.verify_release(home, release_id)
    return ReleaseCheck(release=release_id, ok=not problems, problems=problems)


def inclusion(home: Home, actor: Actor, release_id: str, member: str) -> InclusionProof:
    """A member's own proof of inclusion (``checks`` is false when not included)."""
    for_member(actor, member, "see a member's proof of inclusion")
    proof, root = build.inclusion(home, release_id, member)
    return InclusionProof(
        merkle_root=root, checks=manifest.check_proof(root, proof), **asdict(proof)
    )
