"""The synthetic generator never writes what the importer calls impossible."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunetrust.formats import Role, classify, registry
from tunetrust.formats.package import open_package
from tunetrust.formats.spotify.synth import VARIANTS, render, synthesize, write_zip
from tunetrust.ingest.validate import FAIL, FileInfo, run_checks
from tunetrust.settings import Checks, ImportLimits

NOW = datetime(2026, 11, 23)


def _checks(path: Path) -> dict[str, str]:
    """Every check of the export at ``path`` that needs no cooperative: name → status."""
    parsers = registry()
    infos, tables = [], []
    with open_package([path], ImportLimits()) as package:
        for f in package.files:
            found = classify(f, parsers)
            if found is None or found[1].role is not Role.LISTENS:
                continue
            parsed = found[0].parse(f, f.read(10**9), found[1].kind)
            infos.append(FileInfo(f.name, parsed.variant, found[1].by_content, parsed.table))
            tables.append(parsed.table)
    result = run_checks(infos, pa.concat_tables(tables), checks=Checks(), now=NOW, extra=[])
    return {c.name: c.status for c in result}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variant=st.sampled_from(VARIANTS),
    listens=st.integers(1, 1_500),
    seed=st.integers(0, 10_000),
    years=st.one_of(st.none(), st.integers(1, 25)),
    crossfade=st.booleans(),
)
def test_every_option_gives_an_export_without_impossible_plays(
    variant: str, listens: int, seed: int, years: int | None, crossfade: bool
) -> None:
    try:
        history = synthesize(variant, listens, seed, years, crossfade=crossfade)
    except ValueError as exc:
        assert years is not None and "at most" in str(exc)  # only too many years
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.zip"
        write_zip(render(history, variant), path)
        statuses = _checks(path)
    assert FAIL not in statuses.values(), statuses


@pytest.mark.parametrize(("variant", "years"), [("extended-c", 20), ("extended-b", 15)])
def test_too_many_years_is_refused_with_the_limit(variant: str, years: int) -> None:
    with pytest.raises(ValueError, match=r"at most \d+ years: the service started on 2008-10-07"):
        synthesize(variant, 100, 1, years)


def test_the_longest_allowed_span_starts_after_the_launch() -> None:
    history = synthesize("extended-c", 2_000, 3, years=16)
    assert history.end_ms.min() > datetime(2008, 10, 7, tzinfo=UTC).timestamp() * 1000
