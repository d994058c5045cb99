"""irq reader: per-handler and per-vector counts and time -> top tables, shares of CPU time."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    MAX_TOP,
    c_string,
    comm_text,
    latency_from_log2,
    log2_buckets,
    plural,
    proc_label,
)
from probes.models import Aggregates, LatencyStats, TopEntry

# The kernel's softirq vector names, in vector order (include/linux/interrupt.h).
SOFTIRQ_NAMES = (
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
)  # fmt: skip


def softirq_name(vec: int) -> str:
    return SOFTIRQ_NAMES[vec] if 0 <= vec < len(SOFTIRQ_NAMES) else f"vec{vec}"


class Handled(BaseModel):
    """One handler or vector: how often it ran and for how long."""

    key: str
    count: int
    total_ns: int
    max_ns: int
    irq: int | None = None

    @property
    def total_ms(self) -> float:
        return self.total_ns / 1e6


def _hardirqs(bpf: Any) -> list[Handled]:
    out = [
        Handled(
            key=f"irq {int(key.irq)} {c_string(key.name, 32)}",
            irq=int(key.irq),
            count=int(stat.count),
            total_ns=int(stat.total_ns),
            max_ns=int(stat.max_ns),
        )
        for key, stat in bpf["hard"].items()
    ]
    return sorted(out, key=lambda h: (-h.total_ns, -h.count, h.key))


def _softirqs(bpf: Any) -> list[Handled]:
    out = [
        Handled(
            key=softirq_name(int(vec.value)),
            count=int(stat.count),
            total_ns=int(stat.total_ns),
            max_ns=int(stat.max_ns),
        )
        for vec, stat in bpf["soft"].items()
        if int(stat.count)
    ]
    return sorted(out, key=lambda h: (-h.total_ns, -h.count, h.key))


def _contexts(bpf: Any) -> dict[str, float]:
    """Softirq ms per '<VECTOR> in <comm> (pid N)'."""
    spent: dict[str, float] = {}
    for key, value in bpf["soft_ctx"].items():
        label = f"{softirq_name(int(key.vec))} in {proc_label(comm_text(key.comm), int(key.pid))}"
        spent[label] = spent.get(label, 0.0) + int(value.value) / 1e6
    return spent


def _entry(item: Handled, cpu_ms: float) -> TopEntry:
    labels: dict[str, str | int | float] = {
        "max_us": round(item.max_ns / 1e3, 1),
        "cpu_pct": round(100 * item.total_ms / cpu_ms, 2) if cpu_ms else 0.0,
    }
    if item.irq is not None:
        labels["irq"] = item.irq
    return TopEntry(key=item.key, count=item.count, value=round(item.total_ms, 3), labels=labels)


def _part(kind: str, items: list[Handled], cpu_ms: float, shown: int) -> str:
    count = sum(i.count for i in items)
    total_ms = sum(i.total_ms for i in items)
    text = f"{plural(count, kind)} ({total_ms:.1f} ms"
    if cpu_ms:
        text += f", {100 * total_ms / cpu_ms:.1f}% of CPU time"
    text += ")"
    if items:
        text += ", most time in " + ", ".join(
            f"{item.key} ({plural(item.count, 'call')}, {item.total_ms:.1f} ms)"
            for item in items[:shown]
        )
    return text


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        cpus = os.cpu_count() or 1
        cpu_ms = elapsed_s * 1e3 * cpus
        hard = _hardirqs(bpf)
        soft = _softirqs(bpf)
        contexts = _contexts(bpf)
        latency: dict[str, LatencyStats] = {}
        for name, table, handled in (
            ("softirq", "soft_hist", soft),
            ("hardirq", "hard_hist", hard),
        ):
            biggest = max((h.max_ns for h in handled), default=0)
            stats = latency_from_log2(
                log2_buckets(bpf[table]), base_unit="ns", unit="us", max_value=biggest or None
            )
            if stats.count:
                # one histogram is enough to read the shape; the other keeps its percentiles
                latency[name] = stats if not latency else stats.model_copy(update={"histogram": []})
        ranked_contexts = sorted(contexts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TOP]
        aggregates = Aggregates(
            totals={
                "hardirqs": sum(h.count for h in hard),
                "hardirq_ms": round(sum(h.total_ms for h in hard), 3),
                "softirqs": sum(s.count for s in soft),
                "softirq_ms": round(sum(s.total_ms for s in soft), 3),
                "cpus": cpus,
            },
            top={
                "softirqs": [_entry(s, cpu_ms) for s in soft[:MAX_TOP]],
                "hardirqs": [_entry(h, cpu_ms) for h in hard[:MAX_TOP]],
                "softirq_contexts": [
                    TopEntry(key=label, value=round(ms, 3)) for label, ms in ranked_contexts
                ],
            },
            latency=latency,
        )
        total = sum(h.count for h in hard) + sum(s.count for s in soft)
        summary = (
            f"In {elapsed_s:.1f}s on {plural(cpus, 'CPU')}: {_part('softirq', soft, cpu_ms, 3)}; "
            f"{_part('hard IRQ', hard, cpu_ms, 1)}"
        )
        if ranked_contexts:
            summary += f"; top softirq context {ranked_contexts[0][0]}"
        return ReaderOutput(event_count=total, summary=summary, aggregates=aggregates)
