"""The quality score of a member's listens: what a fabrication cannot push up freely.

A contribution's score is the increment it brings to its member's score (see
ingest/pipeline.py), so repeats add nothing and increments sum to the member's weight.

Every part is bounded by the listening itself, so no part can be maximised apart from
the others: volume counts plays (not hours, which long made-up plays inflate) with a
day's plays capped; active days count no more than the plays could fill; recency is
measured at the 50th most recent play, not the last (one play dated tomorrow moves
nothing); and a quarter of the score is *corroboration*: tracks other members play
too, as much as for the cooperative's typical member, which music made up for the
purpose never is (ingest/provenance.py).
docs/contributions.md, "Quality score", explains each part and the attacks it answers.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUALITY_WEIGHTS = {
    "volume": 0.4,
    "span": 0.15,
    "richness": 0.1,
    "recency": 0.1,
    "corroboration": 0.25,
}
FULL_PLAYS = 50_000  # about eight years at 17 plays a day
DAY_PLAYS = 150  # plays of one day counted at most (about 9 hours of music)
PLAYS_PER_DAY = 8  # an active day needs this many plays to count in full
FULL_DAYS = 1825  # five years of active days
RECENT_RANK = 50  # recency is measured at the 50th most recent play
DAY_MS = 86_400_000


def quality(
    listens: pa.Table, now: datetime, corroboration: float | None = None
) -> dict[str, float]:
    """Quality parts in [0, 1] of a member's listens, and their weighted ``score``.

    volume         log(1 + plays) / log(1 + 50,000), plays of 30 s or more, at most 150
                   a day
    span           min(active days, plays / 8) / 1,825
    richness       0.5 + 0.5 × share of extended-history listens (URIs, reasons, platforms)
    recency        exp(−days since the 50th most recent play / 365), plays after ``now``
                   left out
    corroboration  given (ingest/provenance.py ``corroboration``): the share of tracks at
                   least two other members play, against the typical member's, at most
                   1; 1 when not judged (``None``: a young cooperative, or no index yet)
    """
    corroborated = 1.0 if corroboration is None else corroboration
    ms = listens["ms_played"].to_numpy() if listens.num_rows else np.zeros(0, np.int64)
    ends = listens["ts"].cast(pa.int64()).to_numpy() if listens.num_rows else ms
    now_ms = now.timestamp() * 1000
    played = (ms >= 30_000) & (ends <= now_ms + DAY_MS)
    if not played.any():
        return {**dict.fromkeys(QUALITY_WEIGHTS, 0.0), "score": 0.0}
    days, per_day = np.unique(ends[played] // DAY_MS, return_counts=True)
    plays = int(np.minimum(per_day, DAY_PLAYS).sum())
    extended = float(
        pc.mean(pc.cast(pc.equal(listens["source"], "extended"), pa.float64())).as_py() or 0.0
    )
    recent = np.sort(ends[played])[-min(RECENT_RANK, int(played.sum()))]
    age_days = max(0.0, (now_ms - float(recent)) / DAY_MS)
    parts = {
        "volume": min(1.0, math.log1p(plays) / math.log1p(FULL_PLAYS)),
        "span": min(1.0, min(len(days), plays / PLAYS_PER_DAY) / FULL_DAYS),
        "richness": 0.5 + 0.5 * extended,
        "recency": math.exp(-age_days / 365),
        "corroboration": corroborated,
    }
    parts["score"] = sum(QUALITY_WEIGHTS[k] * v for k, v in parts.items())
    return parts
