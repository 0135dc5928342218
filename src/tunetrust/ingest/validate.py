"""Proof of contribution: checks a member can read, a verdict, and a quality score.

Every check measures one number and compares it with thresholds from
:class:`~tunetrust.settings.Checks`; each says in one sentence what it found. These are
plausibility checks, not cryptographic proof: a careful forger who copies real
listening patterns can pass them. docs/contributions.md lists each check, its
calibration, and the attacks tested against it. What a check needs to know about
the service (its reason codes, file names, launch date, time resolution) it reads from
the parser's :class:`~tunetrust.formats.ServiceFacts`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunetrust.coop.contributions import (
    ACCEPTED,
    COUNTED,
    DISPUTED,
    REJECTED,
    REVOKED,
    WITH_WARNINGS,
)
from tunetrust.formats import ServiceFacts, registry
from tunetrust.ingest.dedup import coarse_key, fine_key, first_of_each
from tunetrust.ingest.deidentify import platform_families
from tunetrust.settings import Checks

PASS, WARN, FAIL, HOLD = "pass", "warn", "fail", "hold"


@dataclass(frozen=True)
class Check:
    """One check's result, in the words of the report."""

    name: str
    status: str
    value: float | int | None
    threshold: str | None
    message: str


@dataclass(frozen=True)
class FileInfo:
    """A parsed listening file, as the checks see it."""

    name: str
    variant: str  # what the content says
    by_content: bool  # recognised by content, not by name
    table: pa.Table


__all__ = [
    "ACCEPTED",
    "COUNTED",
    "DISPUTED",
    "FAIL",
    "HOLD",
    "PASS",
    "REJECTED",
    "REVOKED",
    "WARN",
    "WITH_WARNINGS",
    "Check",
    "FileInfo",
    "grade",
    "run_checks",
    "verdict",
]


def verdict(checks: list[Check]) -> str:
    """Rejected on any failure, disputed on any hold, with warnings on any warning, else
    accepted."""
    statuses = {c.status for c in checks}
    if FAIL in statuses:
        return REJECTED
    if HOLD in statuses:
        return DISPUTED
    return WITH_WARNINGS if WARN in statuses else ACCEPTED


def grade(name: str, value: float, warn: float, fail: float, unit: str, what: str) -> Check:
    status = FAIL if value > fail else WARN if value > warn else PASS
    shown = f"{value * 100:.1f} %" if unit == "%" else f"{value:.2f}{unit}"
    limit = (
        f"warn above {warn * 100:g} %, reject above {fail * 100:g} %"
        if unit == "%"
        else f"warn above {warn:g}{unit}, reject above {fail:g}{unit}"
    )
    return Check(name, status, round(value, 4), limit, f"{what}: {shown}.")


def _na(name: str, why: str) -> Check:
    return Check(name, PASS, None, None, f"Not judged: {why}.")


# --- checks on files --------------------------------------------------------------


def check_structure(files: list[FileInfo], skipped: Sequence[str]) -> Check:
    """Every listening file parsed; a well-formed file of unknown shape is skipped, and said."""
    parsed = f"{len(files)} listening file(s) parsed with every field of the right type"
    if not skipped:
        return Check("structure", PASS, len(files), "warn on a skipped file", parsed + ".")
    names = [n.rsplit("/", 1)[-1] for n in skipped]
    return Check(
        "structure",
        WARN,
        len(files),
        "warn on a skipped file",
        f"{parsed}; {len(skipped)} file(s) of a shape this version does not know were "
        f"skipped: {', '.join(names[:3])}{' …' if len(names) > 3 else ''}.",
    )


def check_names(files: list[FileInfo], facts: ServiceFacts) -> Check:
    """File names and contents agree (a renamed or hand-made file stands out)."""
    odd = []
    for f in files:
        base = f.name.rsplit("/", 1)[-1]
        said = next((v for p, v in facts.name_variants if p.search(base)), None)
        variant = f.variant.removesuffix("-video")
        if f.by_content or said is None or variant not in said:
            odd.append(base)
    if not odd:
        return Check("file_names", PASS, 0, "warn on any", "Every file name matches its content.")
    return Check(
        "file_names",
        WARN,
        len(odd),
        "warn on any",
        f"{len(odd)} file(s) whose name does not match the content: "
        f"{', '.join(odd[:3])}{' …' if len(odd) > 3 else ''}.",
    )


def check_file_sequence(files: list[FileInfo], facts: ServiceFacts) -> Check:
    """Numbered files run 0, 1, 2 … without gaps (a gap means files are missing)."""
    groups: dict[str, set[int]] = defaultdict(set)
    for f in files:
        base = f.name.rsplit("/", 1)[-1]
        m = facts.numbered_file.match(base) if facts.numbered_file else None
        if m:
            prefix = m.group("prefix")
            if facts.numbered_varies:  # the part that differs between files of one sequence
                prefix = facts.numbered_varies.sub("_", prefix)
            groups[prefix.lower()].add(int(m.group("n")))
    missing = sum(max(ns) + 1 - len(ns) for ns in groups.values())
    if missing:
        return Check(
            "file_sequence",
            WARN,
            missing,
            "warn on any",
            f"{missing} numbered file(s) seem to be missing from the export; "
            "import the whole package as downloaded.",
        )
    return Check("file_sequence", PASS, 0, "warn on any", "No numbered file is missing.")


def check_sort_order(files: list[FileInfo], facts: ServiceFacts) -> Check:
    """Files of the variants the service writes sorted are in time order."""
    unsorted, judged = 0, 0
    for f in files:
        sorted_variant = bool(facts.sorted_variants) and f.variant.startswith(facts.sorted_variants)
        if sorted_variant and f.table.num_rows > 1:
            judged += 1
            ts = f.table["ts"].cast(pa.int64()).to_numpy()
            unsorted += int(np.sum(ts[1:] < ts[:-1]))
    if not judged:
        return _na("sort_order", "this variant is not sorted by the service")
    status = WARN if unsorted else PASS
    return Check(
        "sort_order",
        status,
        unsorted,
        "warn on any",
        "Plays are in time order, as the service writes them."
        if not unsorted
        else f"{unsorted} plays are out of order in files the service writes sorted.",
    )


def check_video_audio(files: list[FileInfo]) -> Check:
    """Plays found in both video and audio files name the same thing."""
    video = [f.table for f in files if f.variant.endswith("-video")]
    # account data has minute resolution and no URIs: it cannot be matched to video rows
    audio = [
        f.table
        for f in files
        if not f.variant.endswith("-video") and not f.variant.startswith("account")
    ]
    if not video or not audio:
        return _na("video_audio_agree", "no video and audio files to compare")

    def keyed(t: pa.Table) -> pa.Table:
        # instant skips (0 ms) often share a second; only real plays identify anything
        t = t.filter(pc.greater_equal(t["ms_played"], 30_000))
        ident = pc.coalesce(
            t["track_uri"], t["episode_uri"], t["track_name"], t["episode_name"], pa.scalar("")
        )
        return pa.table({"ts": t["ts"], "ms": t["ms_played"], "what": ident})

    a, v = keyed(pa.concat_tables(audio)), keyed(pa.concat_tables(video))
    both = a.join(v, ["ts", "ms"], right_suffix="_v", join_type="inner")
    if both.num_rows == 0:
        return Check(
            "video_audio_agree",
            PASS,
            0,
            "warn on any disagreement",
            "Video and audio files do not overlap.",
        )
    bad = int(pc.sum(pc.not_equal(both["what"], both["what_v"])).as_py() or 0)
    return Check(
        "video_audio_agree",
        WARN if bad else PASS,
        bad,
        "warn on any disagreement",
        f"{both.num_rows} plays appear in both video and audio files; "
        f"{bad} of them disagree on what was played.",
    )


# --- checks on plays --------------------------------------------------------------


@dataclass
class _Plays:
    """Unique plays of the export as arrays, computed once for every check."""

    end_ms: np.ndarray
    ms: np.ndarray
    stream: np.ndarray  # each play's stream, a position in ``streams``
    streams: list[str]  # platform families, and "account" for account data
    reason_end: pa.Array
    skip: pa.Array  # true / false / null (unknown)
    video: pa.Array  # episodes watched as video: skipped far more often, judged apart
    facts: ServiceFacts


def _unique_plays(t: pa.Table, facts: ServiceFacts) -> tuple[_Plays, int]:
    ext = pc.equal(t["source"], "extended")
    keys = pc.if_else(
        ext,
        fine_key(t, facts),
        pc.binary_join_element_wise(coarse_key(t, facts), pa.scalar("account"), "|"),
    )
    u = first_of_each(t, keys)
    stream = pc.if_else(
        pc.equal(u["source"], "extended"),
        platform_families(u["platform_raw"]),
        pa.scalar("account"),
    )
    # as codes: comparing half a million strings, twice per check, cost a second
    filled = pc.fill_null(stream, "other")
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    coded = pc.dictionary_encode(filled)
    plays = _Plays(
        end_ms=u["ts"].cast(pa.int64()).to_numpy(),
        ms=u["ms_played"].to_numpy(),
        stream=coded.indices.to_numpy(zero_copy_only=False),
        streams=coded.dictionary.to_pylist(),
        reason_end=u["reason_end"].combine_chunks(),
        skip=u["skipped"].combine_chunks(),  # the parser filled it from the skip reasons
        video=pc.equal(u["kind"], "video").combine_chunks(),
        facts=facts,
    )
    return plays, t.num_rows - u.num_rows


def _impossible(name: str, bad: int, total: int, message: str) -> Check:
    """Plays that cannot happen: any warns, more than 0.1 % (and more than one) rejects."""
    status = FAIL if bad > max(1, total // 1000) else WARN if bad else PASS
    return Check(name, status, bad, "warn on any, reject above 0.1 %", message)


def check_time_range(p: _Plays, now: datetime) -> Check:
    """No play before the service existed or in the future."""
    started = p.facts.started
    lo = started.timestamp() * 1000
    hi = (now.timestamp() + 86_400) * 1000
    bad = int(np.sum((p.end_ms < lo) | (p.end_ms > hi)))
    return _impossible(
        "time_range",
        bad,
        len(p.ms),
        f"{bad} plays dated before {started:%Y-%m-%d} or in the future.",
    )


def check_play_length(p: _Plays) -> Check:
    """Play lengths between 0 and 12 hours."""
    bad = int(np.sum(p.ms > 12 * 3_600_000))
    return _impossible("play_length", bad, len(p.ms), f"{bad} plays last longer than 12 hours.")


def check_daily(p: _Plays, checks: Checks) -> Check:
    """Listening per day: 24 h plus an allowance for parallel devices."""
    if not len(p.ms):
        return _na("daily_listening", "no plays")
    day = p.end_ms // 86_400_000
    totals = np.bincount(day - day.min(), weights=p.ms) / 3_600_000
    limit = 24 * (1 + checks.daily_allowance)
    worst = float(totals.max())
    over = int(np.sum(totals > limit))
    # a play counts on the day it ended, so a day can hold a little over 24 h honestly
    status = FAIL if over else WARN if worst > 25 else PASS
    return Check(
        "daily_listening",
        status,
        round(worst, 2),
        f"warn above 25 h, reject above {limit:g} h",
        f"The busiest day holds {worst:.1f} h of listening"
        + (f"; {over} day(s) hold more than {limit:g} h, which is impossible." if over else "."),
    )


def check_overlap(p: _Plays, checks: Checks) -> Check:
    """Plays on one platform family do not overlap each other much (density)."""
    overlapping = judged = 0
    for code in np.unique(p.stream):
        stream, sel = p.streams[code], p.stream == code
        order = np.argsort(p.end_ms[sel], kind="stable")
        end, ms = p.end_ms[sel][order], p.ms[sel][order]
        keep = ms >= 30_000
        end, ms = end[keep], ms[keep]
        if len(end) < 2:
            continue
        # account data is coarse (a minute for Spotify); elsewhere crossfade and logging
        # latency make finished plays overlap the next by seconds
        slack = (
            p.facts.resolution("account")
            if stream == "account"
            else checks.overlap_slack_seconds * 1_000
        )
        overlapping += int(np.sum(end[1:] - ms[1:] < end[:-1] - slack))
        judged += len(end) - 1
    if judged < 50:
        return _na("play_density", "too few plays")
    return grade(
        "play_density",
        overlapping / judged,
        checks.overlap_warn,
        checks.overlap_fail,
        "%",
        "Plays overlapping the previous play on the same kind of device",
    )


def check_patterns(p: _Plays, checks: Checks) -> list[Check]:
    """Signs of fabrication: rounded or identical lengths, regular gaps, a flat day."""
    played = p.ms[p.ms >= 30_000]
    names = ("rounded_lengths", "identical_lengths", "regular_gaps", "time_of_day")
    if len(played) < checks.min_plays_for_patterns:
        why = f"fewer than {checks.min_plays_for_patterns} plays of 30 s or more"
        return [_na(n, why) for n in names]
    rounded = float(np.mean(played % 1000 == 0))
    same = float(np.unique(played, return_counts=True)[1].max()) / len(played)
    parts = []
    for code in np.unique(p.stream):
        if p.streams[code] == "account":
            continue  # coarse resolution: equal gaps are an artefact, not a sign
        ends = np.sort(p.end_ms[(p.stream == code) & (p.ms >= 30_000)])
        d = np.diff(ends) // 1000
        parts.append(d[(d > 0) & (d < 3_600)])
    gaps = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
    regular = (
        float(np.unique(gaps, return_counts=True)[1].max()) / len(gaps) if len(gaps) >= 50 else 0.0
    )
    hours = np.bincount((p.end_ms[p.ms >= 30_000] // 3_600_000) % 24, minlength=24)
    smooth = np.convolve(np.concatenate([hours[-1:], hours, hours[:1]]), [1, 1, 1], "valid")
    flat = float(smooth.min() / smooth.max())
    return [
        grade(
            "rounded_lengths",
            rounded,
            checks.rounded_warn,
            checks.rounded_fail,
            "%",
            "Plays whose length is a whole number of seconds",
        ),
        grade(
            "identical_lengths",
            same,
            checks.same_length_warn,
            checks.same_length_fail,
            "%",
            "Plays sharing the single most common length",
        ),
        grade(
            "regular_gaps",
            regular,
            checks.same_gap_warn,
            checks.same_gap_fail,
            "%",
            "Gaps between plays equal to the most common gap",
        ),
        grade(
            "time_of_day",
            flat,
            checks.flat_day_warn,
            checks.flat_day_fail,
            "",
            "Quietest hour of the day ÷ busiest hour (real listening has quiet hours)",
        ),
    ]


def check_skips_and_reasons(p: _Plays) -> list[Check]:
    """Reason codes from the known set; skip share and reason mix like real listening.

    The mix is judged on audio plays: episodes watched as video are mostly skipped.
    """

    def counted(reasons: pa.Array) -> dict[str, int]:
        return {r["values"]: r["counts"] for r in pc.value_counts(reasons).to_pylist()}

    every = counted(p.reason_end.drop_null())
    if not sum(every.values()):
        return [
            _na("reason_codes", "account data has no reason codes"),
            _na("skip_pattern", "no skip information in this export"),
        ]
    known_reasons = p.facts.reasons
    unknown = sum(n for r, n in every.items() if r not in known_reasons) / sum(every.values())
    out = [grade("reason_codes", unknown, 0.01, 0.1, "%", "Reason codes outside the known set")]
    audio = pc.invert(p.video)
    counts = counted(p.reason_end.filter(audio).drop_null())
    n_reasons = sum(counts.values())
    known = p.skip.filter(audio).drop_null()
    if len(known) < 200 or not n_reasons:
        out.append(_na("skip_pattern", "too few plays with skip information"))
        return out
    share = float(pc.mean(pc.cast(known, pa.float64())).as_py() or 0.0)
    top = max(counts.values()) / n_reasons
    odd = []
    if not 0.01 <= share <= 0.85:
        odd.append(f"{share * 100:.0f} % skipped")
    if top < 0.25:
        odd.append(f"no reason dominates ({top * 100:.0f} % for the most common)")
    if top > 0.97:
        odd.append(f"one reason for {top * 100:.0f} % of plays")
    out.append(
        Check(
            "skip_pattern",
            WARN if odd else PASS,
            round(share, 4),
            "skips 1–85 %, most common end reason 25–97 %",
            "Skips and reasons look like real listening."
            if not odd
            else "Skips and reasons look unlike real listening: " + "; ".join(odd) + ".",
        )
    )
    return out


def check_uri_metadata(t: pa.Table) -> Check:
    """The same track URI keeps the same track and artist names."""
    sel = t.filter(pc.is_valid(t["track_uri"]))
    if sel.num_rows == 0:
        return _na("uri_metadata", "no track URIs in this variant")
    names = pc.binary_join_element_wise(
        pc.fill_null(sel["track_name"], ""), pc.fill_null(sel["artist_name"], ""), "\x1f"
    )
    g = (
        pa.table({"uri": sel["track_uri"], "n": names})
        .group_by("uri")
        .aggregate([("n", "count_distinct")])
    )
    conflicts = int(pc.sum(pc.greater(g["n_count_distinct"], 1)).as_py() or 0)
    return grade(
        "uri_metadata",
        conflicts / g.num_rows,
        0.01,
        0.1,
        "%",
        "Track URIs whose names differ between plays",
    )


def check_repeated(repeated: int, total: int, checks: Checks) -> Check:
    """Rows repeated inside the export (doubled rows count once, and are suspicious)."""
    return grade(
        "repeated_rows",
        repeated / max(total, 1),
        checks.repeated_warn,
        checks.repeated_fail,
        "%",
        "Rows repeated inside the export",
    )


def run_checks(
    files: list[FileInfo],
    table: pa.Table,
    *,
    checks: Checks,
    now: datetime,
    extra: list[Check],
    skipped: Sequence[str] = (),
    facts: ServiceFacts | None = None,
) -> list[Check]:
    """Every check of one export, in reading order, followed by ``extra`` (account, copies).

    ``skipped`` names listening files of a shape this version does not know; ``facts``
    are the facts of the export's service (by default the first parser's).
    """
    facts = facts if facts is not None else registry()[0].facts
    plays, repeated = _unique_plays(table, facts)
    out = [
        check_structure(files, skipped),
        check_names(files, facts),
        check_file_sequence(files, facts),
        check_sort_order(files, facts),
        check_time_range(plays, now),
        check_play_length(plays),
        check_daily(plays, checks),
        check_overlap(plays, checks),
        check_repeated(repeated, table.num_rows, checks),
        check_uri_metadata(table),
        check_video_audio(files),
        *check_skips_and_reasons(plays),
        *check_patterns(plays, checks),
    ]
    return out + extra
