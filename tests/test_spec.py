"""Release specs as untrusted input: every field checked, hostile YAML refused in one line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunetrust import InputError
from tunetrust.releases.spec import (
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    load_spec,
    parse_spec,
    spec_dict,
    spec_json_schema,
)

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
purpose: research
filters:
  kind: [music, podcast]
  min_seconds: 20
  period: {from: 2023-01-01, to: 2023-12-31}
  countries: [SE, DE]
group_by: [country, month]
metrics: [plays, minutes, skip_share]
bounds: {max_partitions: 50, max_plays_per_partition: 5, max_minutes_per_play: 10}
privacy:
  epsilon: 1
  delta: 1.0e-6
  noise: laplace
  split: {selection: 0.4, plays: 0.3, minutes: 0.2, skips: 0.1}
keys: private
min_members: 20
min_listeners: 12
"""

PARSED = {
    "purpose": "research",
    "group_by": ["country", "month"],
    "metrics": ["plays", "minutes", "skip_share"],
    "bounds": {"max_partitions": 50, "max_plays_per_partition": 5, "max_minutes_per_play": 10},
    "privacy": {
        "epsilon": 1,
        "delta": 1e-6,
        "noise": "laplace",
        "split": {"selection": 0.4, "plays": 0.3, "minutes": 0.2, "skips": 0.1},
    },
    "keys": "private",
    "public_keys": [],
    "kinds": ["music", "podcast"],
    "period": ["2023-01-01", "2023-12-31"],
    "countries": ["SE", "DE"],
    "min_seconds": 20,
    "min_members": 20,
    "min_listeners": 12,
}


def _refusal(text: str) -> str:
    """The one line ``parse_spec`` refuses ``text`` with."""
    with pytest.raises(InputError) as info:
        parse_spec(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_valid_spec_round_trips_from_yaml_json_and_a_file(tmp_path: Path) -> None:
    spec = parse_spec(SPEC)
    assert spec_dict(spec) == PARSED and spec.source == SPEC
    as_json = """{
        "purpose": "research",
        "filters": {"kind": ["music", "podcast"], "min_seconds": 20,
                    "period": {"from": "2023-01-01", "to": "2023-12-31"},
                    "countries": ["SE", "DE"]},
        "group_by": ["country", "month"], "metrics": ["plays", "minutes", "skip_share"],
        "bounds": {"max_partitions": 50, "max_plays_per_partition": 5,
                   "max_minutes_per_play": 10},
        "privacy": {"epsilon": 1, "delta": 1.0e-6, "noise": "laplace",
                    "split": {"selection": 0.4, "plays": 0.3, "minutes": 0.2, "skips": 0.1}},
        "keys": "private", "public_keys": null, "min_members": 20, "min_listeners": 12
    }"""
    assert spec_dict(parse_spec(as_json)) == PARSED
    # a UTF-8 file with a byte-order mark: the same spec, the text kept without the mark
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + SPEC.encode())
    from_file = load_spec(path)
    assert spec_dict(from_file) == PARSED and from_file.source == SPEC


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (
            ("  min_seconds: 20\n", "  min_secs: 20\n  contries: [SE]\n"),
            [
                "filters.min_secs: unknown field, did you mean min_seconds?",
                "filters.contries: unknown field, did you mean countries?",
            ],
        ),
        (
            ("  noise: laplace", "  nosie: laplace"),
            ["privacy.nosie: unknown field, did you mean noise?"],
        ),
        (
            ("{from: 2023", "{form: 2023"),
            ["filters.period.form: unknown field, did you mean from?"],
        ),
        (
            ("max_partitions: 50", "max_partition: 50"),
            ["bounds.max_partition: unknown field, did you mean max_partitions?"],
        ),
        (
            ("purpose: research", "purpse: research"),
            ["purpse: unknown field, did you mean purpose?"],
        ),
        (
            ("keys: private", 'keys: private\n"secret\\nx": personal-value'),
            ["secret?x: unknown field; known fields: purpose, filters, group_by, metrics"],
        ),
    ],
)
def test_a_typo_at_any_level_is_refused_naming_the_field(
    change: tuple[str, str], problems: list[str]
) -> None:
    message = _refusal(SPEC.replace(*change))
    assert message.startswith("release spec, ")
    for problem in problems:
        assert problem in message
    assert "personal-value" not in message and "SE" not in message


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("filters:\n  kind", "filters: 3\nx:\n  kind"), "filters: must be a mapping of fields"),
        (("bounds: {", "bounds: [1, 2]\nx: {"), "bounds: must be a mapping of fields"),
        (("privacy:\n", "privacy: yes\nx:\n"), "privacy: must be a mapping of fields"),
        (("period: {from: 2023-01-01, to: 2023-12-31}", "period: 2023"), "filters.period: must be"),
        (("from: 2023-01-01", "from: 2023-13-01"), "a date or number that cannot be read"),
        (
            ("split: {selection: 0.4", "split: {selection: [1]"),
            "privacy.split.selection: must be a",
        ),
        (("countries: [SE, DE]", "countries: [SE, [DE]]"), "filters.countries[1]: must be text"),
    ],
)
def test_a_field_of_the_wrong_shape_is_refused_in_one_line(
    change: tuple[str, str], problem: str
) -> None:
    assert problem in _refusal(SPEC.replace(*change))


def test_many_problems_are_summed_up_in_one_line() -> None:
    text = SPEC + "".join(f"extra{i}: 1\n" for i in range(8))
    assert _refusal(text).endswith("(and 3 more)")


def test_billion_laughs_is_refused_at_once() -> None:
    """Nine levels of nine aliases: 9⁹ strings inside ``purpose`` from 300 bytes."""
    levels = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"&{name} [{', '.join([f'*{prev}'] * 9)}]")
    laughs = f"purpose: [{', '.join(levels)}]"
    started = time.perf_counter()
    message = _refusal(SPEC.replace("purpose: research", laughs))
    assert time.perf_counter() - started < 0.5
    assert message == "spec: YAML anchors and aliases (& and *) are not allowed (line 1)"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("  epsilon: 1\n", "  epsilon: 0.1\n  epsilon: 10\n"), "epsilon"),
        (("purpose: research", "purpose: research\npurpose: ai-training"), "purpose"),
        (("bounds: {", "bounds: {max_partitions: 1, "), "max_partitions"),
    ],
)
def test_a_repeated_key_is_refused_not_overwritten(change: tuple[str, str], key: str) -> None:
    """YAML keeps the last of two equal keys: what a voter reads would not be what is run."""
    text = SPEC.replace(*change)
    assert text != SPEC
    assert f"the key '{key}' is repeated" in _refusal(text)


def test_equal_names_in_different_mappings_and_lists_are_fine() -> None:
    # `plays` is a metric in a list and a key of privacy.split; `min_seconds` one key
    assert "plays" in SPEC.split("split:")[1] and "plays" in SPEC.split("metrics:")[1]
    assert parse_spec(SPEC).metrics == ("plays", "minutes", "skip_share")


def test_an_anchor_alone_is_refused_too() -> None:
    assert "anchors and aliases" in _refusal(SPEC.replace("bounds: {", "bounds: &b {"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "larger than 64 KiB"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "larger than 64 KiB"),
        # within the size cap: the nesting limit itself
        ("purpose: " + "[" * 30_000 + "]" * 30_000, f"nested more than {MAX_SPEC_DEPTH} levels"),
        ("{a: " * 10_000 + "1" + "}" * 10_000, f"nested more than {MAX_SPEC_DEPTH} levels"),
        ("- " * 20_000 + "x", f"nested more than {MAX_SPEC_DEPTH} levels"),
    ],
)
def test_deep_nesting_is_refused_without_a_recursion_error(text: str, problem: str) -> None:
    started = time.perf_counter()
    assert problem in _refusal(text)
    assert time.perf_counter() - started < 2


def test_the_nesting_limit_is_exact() -> None:
    depth = MAX_SPEC_DEPTH
    assert "a release spec is a mapping of fields" in _refusal("[" * depth + "]" * depth)
    assert "nested more than" in _refusal("[" * (depth + 1) + "]" * (depth + 1))


def test_a_spec_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    comment = "# " + "x" * (MAX_SPEC_BYTES - len(SPEC) - 3) + "\n"
    at_cap = SPEC + comment
    assert len(at_cap.encode()) == MAX_SPEC_BYTES
    assert spec_dict(parse_spec(at_cap)) == PARSED
    assert "larger than 64 KiB" in _refusal(at_cap + "\n")
    assert "larger than 64 KiB" in _refusal(SPEC + "# " + "é" * 40_000)  # 80,000 bytes
    big = tmp_path / "big.yaml"
    big.write_text(SPEC + "# " + "x" * 10_000_000 + "\n")
    with pytest.raises(InputError, match=r"^big\.yaml: larger than 64 KiB; a release spec"):
        load_spec(big)
    assert "larger than 64 KiB" in _refusal(big.read_text())


@pytest.mark.parametrize(
    "encoding", ["latin-1", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"]
)
def test_a_file_not_in_utf8_is_refused_in_one_line(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(("# Spotify Café, Malmö\n" + SPEC).encode(encoding))
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert str(info.value) == "spec.yaml: not UTF-8 text; save it as UTF-8"


# Any JSON value in any field: the spec parses, or is refused with an InputError line.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_PATHS = [
    ("purpose",),
    ("filters",),
    ("filters", "kind"),
    ("filters", "period"),
    ("filters", "period", "from"),
    ("filters", "countries"),
    ("group_by",),
    ("metrics",),
    ("bounds",),
    ("bounds", "max_partitions"),
    ("privacy",),
    ("privacy", "split"),
    ("public_keys",),
    ("min_listeners",),
]


@given(st.sampled_from(_PATHS), _JSON)
@settings(max_examples=200, deadline=None)
def test_any_value_in_any_field_parses_or_is_one_input_error(
    path: tuple[str, ...], value: Any
) -> None:
    doc: dict[str, Any] = json.loads(json.dumps(_document()))
    where = doc
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    try:
        parse_spec(json.dumps(doc))
    except InputError as exc:
        assert "\n" not in str(exc)


def _document() -> dict[str, Any]:
    return {
        "purpose": "research",
        "filters": {"kind": "music", "period": {"from": "2023-01-01"}, "countries": ["SE"]},
        "group_by": ["country"],
        "metrics": ["plays"],
        "bounds": {"max_partitions": 5, "max_plays_per_partition": 5, "max_minutes_per_play": 5},
        "privacy": {"epsilon": 1, "delta": 0.001 / 8, "split": {}},
        "public_keys": None,
        "min_listeners": 10,
    }


def test_the_published_json_schema_is_up_to_date() -> None:
    checked_in = json.loads((ROOT / "docs" / "release-spec.schema.json").read_text())
    assert checked_in == spec_json_schema(), (
        "docs/release-spec.schema.json is out of date: regenerate it as docs/releases.md says"
    )


def test_the_json_schema_forbids_unknown_fields_at_every_level() -> None:
    schema = spec_json_schema()
    objects = [schema, *schema["$defs"].values()]
    assert {"Filters", "Period", "Bounds", "Privacy"} <= set(schema["$defs"])
    assert all(o["type"] == "object" and o["additionalProperties"] is False for o in objects)
    assert set(schema["properties"]) == {
        "purpose",
        "filters",
        "group_by",
        "metrics",
        "bounds",
        "privacy",
        "keys",
        "public_keys",
        "min_members",
        "min_listeners",
    }
    assert set(schema["required"]) == {"purpose", "group_by", "metrics", "bounds", "privacy"}


@pytest.mark.parametrize("written", ["1e-6", "1.0e-6", "1E-6", "0.000001", "+1e-06"])
def test_a_number_in_exponent_form_is_a_number(written: str) -> None:
    # YAML 1.1 reads 1e-6 as text; JSON and YAML 1.2 (and the API's spec objects) as a float
    spec = parse_spec(SPEC.replace("delta: 1.0e-6", f"delta: {written}"))
    assert spec.privacy.delta == pytest.approx(1e-6)


def test_text_that_only_looks_numeric_stays_text() -> None:
    with pytest.raises(InputError, match="privacy.delta"):
        parse_spec(SPEC.replace("delta: 1.0e-6", "delta: 1e-6x"))
