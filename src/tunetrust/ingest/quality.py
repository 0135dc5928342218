"""The quality score of a member's listens: volume, span, richness, recency.

A contribution's score is the increment it brings to its member's score (see
ingest/pipeline.py), so repeats add nothing and increments sum to the member's weight.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- quality ----------------------------------------------------------------------

QUALITY_WEIGHTS = {"volume": 0.5, "span": 0.2, "richness": 0.15, "recency": 0.15}


def quality(listens: pa.Table, now: datetime) -> dict[str, float]:
    """Quality parts in [0, 1] of a member's listens, and their weighted ``score``.

    volume   log(1 + hours played) / log(1 + 3000)   — 3,000 h is about 8 years at 1 h a day
    span     days with plays / 1,825                  — five years of active days
    richness 0.5 + 0.5 × share of extended-history listens (URIs, reasons, platforms)
    recency  exp(−days since the last listen / 365)
    """
    if listens.num_rows == 0:
        return {"volume": 0.0, "span": 0.0, "richness": 0.0, "recency": 0.0, "score": 0.0}
    ms = listens["ms_played"].to_numpy()
    ends = listens["ts"].cast(pa.int64()).to_numpy()
    hours = float(ms.sum()) / 3_600_000
    days = len(np.unique(ends[ms >= 30_000] // 86_400_000))
    extended = float(
        pc.mean(pc.cast(pc.equal(listens["source"], "extended"), pa.float64())).as_py() or 0.0
    )
    age_days = max(0.0, (now.timestamp() * 1000 - float(ends.max())) / 86_400_000)
    parts = {
        "volume": min(1.0, math.log1p(hours) / math.log1p(3000)),
        "span": min(1.0, days / 1825),
        "richness": 0.5 + 0.5 * extended,
        "recency": math.exp(-age_days / 365),
    }
    parts["score"] = sum(QUALITY_WEIGHTS[k] * v for k, v in parts.items())
    return parts
