"""Summary figures for the benchmark scripts in tools/ (one helper, one JSON shape)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

SCALE = {"s": 1.0, "ms": 1e3, "us": 1e6}


def percentiles(seconds: Sequence[float] | np.ndarray, unit: str = "us") -> dict[str, float]:
    """n, p50, p99 and max of durations given in seconds, expressed in ``unit`` (s, ms, us)."""
    values = np.asarray(seconds, dtype=np.float64) * SCALE[unit]
    return {"n": int(values.size),
            f"p50_{unit}": round(float(np.percentile(values, 50)), 3),
            f"p99_{unit}": round(float(np.percentile(values, 99)), 3),
            f"max_{unit}": round(float(values.max()), 3)}
