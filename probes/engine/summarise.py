"""Shared helpers for probe readers: log2 histograms to percentiles, top-N tables, bounded samples,
and the small formatting every one-sentence summary needs."""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from probes.models import HistogramBucket, LatencyStats, TopEntry

Unit = Literal["ns", "us", "ms", "s", "bytes", "count"]
_UNIT_DIVISOR = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9, "bytes": 1.0, "count": 1.0}
MAX_TOP = 5
MAX_SAMPLES = 5
MAX_HIST_BUCKETS = 12


class SampleEvent(BaseModel):
    """One sample event, in the seed's shape."""

    timestamp: int = Field(description="Unix time in ns.")
    process_id: int
    process_name: str
    event_type: str
    data: dict[str, Any] = Field(default_factory=dict)


class MonotonicClock:
    """Turns bpf_ktime_get_ns() (CLOCK_MONOTONIC) into unix ns."""

    def __init__(self) -> None:
        self.offset_ns = time.time_ns() - time.monotonic_ns()

    def unix_ns(self, ktime_ns: int) -> int:
        return int(ktime_ns) + self.offset_ns


class Samples:
    """Keeps the first few events of each kind, so one busy kind cannot hide the others."""

    def __init__(self, limit: int = MAX_SAMPLES, per_kind: int = 2) -> None:
        self.limit = limit
        self.per_kind = per_kind
        self.items: list[SampleEvent] = []
        self._kinds: Counter[str] = Counter()

    def offer(self, event: SampleEvent, kind: str | None = None) -> None:
        kind = kind or event.event_type
        if len(self.items) >= self.limit or self._kinds[kind] >= self.per_kind:
            return
        self._kinds[kind] += 1
        self.items.append(event)

    def dumps(self) -> list[dict[str, Any]]:
        return [item.model_dump() for item in self.items]


def log2_buckets(table: Any) -> dict[int, int]:
    """A bcc BPF_HISTOGRAM (index = bpf_log2l(value)) as {index: count}, empty buckets dropped."""
    out: dict[int, int] = {}
    for key, value in table.items():
        count = int(value.value)
        if count:
            out[int(key.value)] = count
    return out


def _bucket_bounds(index: int) -> tuple[float, float]:
    """bcc's bpf_log2l: index 0 holds 0; index k holds [2^(k-1), 2^k)."""
    if index <= 0:
        return 0.0, 1.0
    return float(1 << (index - 1)), float(1 << index)


def latency_from_log2(
    buckets: Mapping[int, int],
    *,
    base_unit: Unit = "ns",
    unit: Unit = "us",
    max_value: float | None = None,
) -> LatencyStats:
    """Percentiles (interpolated inside the bucket) from log2 buckets counted in `base_unit`.

    Pass the measured largest value as `max_value` whenever the probe keeps one: percentiles are
    then capped at it (an estimate inside the top bucket can pass the real max), and `max` is it.
    Without it, `max` is the top bucket's upper bound.
    """
    scale = _UNIT_DIVISOR[base_unit] / _UNIT_DIVISOR[unit]
    total = sum(buckets.values())
    stats = LatencyStats(unit=unit, count=total)
    if not total:
        return stats
    ordered = sorted(buckets.items())

    def percentile(fraction: float) -> float:
        rank = fraction * total
        seen = 0
        for index, count in ordered:
            if seen + count >= rank:
                low, high = _bucket_bounds(index)
                within = (rank - seen) / count
                return round((low + (high - low) * within) * scale, 3)
            seen += count
        return round(_bucket_bounds(ordered[-1][0])[1] * scale, 3)

    top_high = _bucket_bounds(ordered[-1][0])[1] * scale
    stats.max = round(max_value * scale, 3) if max_value is not None else round(top_high, 3)
    stats.p50 = min(percentile(0.50), stats.max)
    stats.p90 = min(percentile(0.90), stats.max)
    stats.p99 = min(percentile(0.99), stats.max)
    shown = ordered[-MAX_HIST_BUCKETS:]
    stats.histogram = [
        HistogramBucket(low=round(lo * scale, 3), high=round(hi * scale, 3), count=count)
        for index, count in shown
        for lo, hi in [_bucket_bounds(index)]
    ]
    return stats


def fullest_buckets(stats: LatencyStats, keep: int = MAX_HIST_BUCKETS) -> LatencyStats:
    """`stats` with its histogram cut to the `keep` fullest buckets, the slowest always among
    them, in order (percentiles and max untouched: they were computed from every bucket)."""
    if keep <= 0:
        return stats.model_copy(update={"histogram": []})
    if len(stats.histogram) <= keep:
        return stats
    *rest, slowest = stats.histogram
    ranked = sorted(range(len(rest)), key=lambda i: (-rest[i].count, i))[: keep - 1]
    chosen = [rest[i] for i in sorted(ranked)] + [slowest]
    return stats.model_copy(update={"histogram": chosen})


def latency_from_values(
    values: Iterable[float], *, base_unit: Unit = "ns", unit: Unit = "us"
) -> LatencyStats:
    """Same statistics from raw values (streamed events), through the same log2 buckets."""
    buckets: Counter[int] = Counter()
    biggest = 0.0
    for value in values:
        biggest = max(biggest, value)
        buckets[int(value).bit_length()] += 1
    return latency_from_log2(buckets, base_unit=base_unit, unit=unit, max_value=biggest or None)


def top_entries(
    counts: Mapping[str, int],
    *,
    limit: int = MAX_TOP,
    values: Mapping[str, float] | None = None,
    labels: Mapping[str, dict[str, str | int | float]] | None = None,
) -> list[TopEntry]:
    """The `limit` biggest keys, with an optional second figure and labels per key."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        TopEntry(
            key=key,
            count=count,
            value=None if values is None else round(values.get(key, 0.0), 3),
            labels=dict(labels.get(key, {})) if labels else {},
        )
        for key, count in ranked
    ]


def raw_field(record: Any, name: str) -> bytes:
    """All bytes of a char-array field of a bcc-cast record (ctypes stops at the first NUL)."""
    field = getattr(type(record), name)
    return ctypes.string_at(ctypes.addressof(record) + field.offset, field.size)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def comm_text(raw: bytes | Any) -> str:
    data = bytes(raw)
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def c_string(raw: bytes | Any, limit: int = 256) -> str:
    return comm_text(raw)[:limit]


def format_addr(family: int, raw: bytes | Any) -> str:
    data = bytes(raw)
    if family == socket.AF_INET6:
        address = ipaddress.IPv6Address(data[:16])
        return str(address.ipv4_mapped or address)
    return str(ipaddress.IPv4Address(data[:4]))


def endpoint(family: int, raw: bytes | Any, port: int) -> str:
    host = format_addr(family, raw)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fmt_ms(ns: float) -> str:
    ms = ns / 1e6
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural_word or word + 's')}"


def proc_label(comm: str, pid: int) -> str:
    return f"{comm} (pid {pid})"
