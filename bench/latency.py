"""Latency figures the benchmarks report: a nearest-rank percentile and one summary row."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values_s: list[float], *, with_min: bool = True) -> dict[str, float]:
    """n, p50, p99, min (unless `with_min` is false) and max of `values_s`, in milliseconds."""
    ms = [v * 1000 for v in values_s]
    row: dict[str, float] = {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
    }
    if with_min:
        row["min_ms"] = round(min(ms), 2)
    row["max_ms"] = round(max(ms), 2)
    return row
