"""runq_latency reader: in-kernel wait histograms -> percentiles, worst waiters, CPU holders."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    MAX_TOP,
    comm_text,
    latency_from_log2,
    log2_buckets,
    plural,
    proc_label,
)
from probes.models import Aggregates, LatencyStats, TopEntry


class Waiter(BaseModel):
    pid: int
    comm: str
    waits: int
    total_ms: float
    stats: LatencyStats


class CpuHolder(BaseModel):
    pid: int
    comm: str
    runtime_ms: float
    cpu_pct: float
    switch_outs: int
    preempted: int


def _waiters(bpf: Any) -> list[Waiter]:
    hists: defaultdict[int, dict[int, int]] = defaultdict(dict)
    for key, value in bpf["per_pid_hist"].items():
        hists[int(key.pid)][int(key.slot)] = int(value.value)
    out = []
    for key, stat in bpf["per_pid"].items():
        pid = int(key.value)
        stats = latency_from_log2(
            hists.get(pid, {}), base_unit="ns", unit="ms", max_value=int(stat.max_ns)
        )
        out.append(
            Waiter(
                pid=pid,
                comm=comm_text(stat.comm),
                waits=int(stat.count),
                total_ms=int(stat.sum_ns) / 1e6,
                stats=stats,
            )
        )
    return out


def _cpu_holders(bpf: Any, elapsed_s: float) -> list[CpuHolder]:
    out = []
    for key, cpu in bpf["oncpu"].items():
        runtime_ms = int(cpu.runtime_ns) / 1e6
        out.append(
            CpuHolder(
                pid=int(key.value),
                comm=comm_text(cpu.comm),
                runtime_ms=runtime_ms,
                cpu_pct=round(100 * runtime_ms / 1e3 / elapsed_s, 1) if elapsed_s else 0.0,
                switch_outs=int(cpu.switch_outs),
                preempted=int(cpu.preempted),
            )
        )
    return sorted(out, key=lambda h: (-h.runtime_ms, h.pid))


def _behind(bpf: Any) -> list[TopEntry]:
    """Processes preempted to let a measured waiter run, by the wait charged to them."""
    rows = [
        TopEntry(
            key=proc_label(comm_text(key.comm), int(key.pid)),
            count=int(val.count),
            value=round(int(val.wait_ns) / 1e6, 3),
            labels={"pid": int(key.pid)},
        )
        for key, val in bpf["behind"].items()
    ]
    return sorted(rows, key=lambda r: (-(r.value or 0.0), r.key))


def _rank_waiters(waiters: list[Waiter], min_waits: int) -> list[Waiter]:
    ranked = [w for w in waiters if w.waits >= min_waits] or waiters
    return sorted(ranked, key=lambda w: (-(w.stats.p99 or 0.0), -w.total_ms, w.pid))


def _waiter_entry(waiter: Waiter) -> TopEntry:
    return TopEntry(
        key=proc_label(waiter.comm, waiter.pid),
        count=waiter.waits,
        value=waiter.stats.p99,
        labels={
            "pid": waiter.pid,
            "p50_ms": waiter.stats.p50 or 0.0,
            "max_ms": waiter.stats.max or 0.0,
            "total_wait_ms": round(waiter.total_ms, 3),
        },
    )


def _holder_entry(holder: CpuHolder) -> TopEntry:
    return TopEntry(
        key=proc_label(holder.comm, holder.pid),
        count=holder.switch_outs,
        value=round(holder.runtime_ms, 3),
        labels={
            "pid": holder.pid,
            "cpu_pct": holder.cpu_pct,
            "preempted": holder.preempted,
        },
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f} ms" if value >= 1 else f"{value:.3f} ms"


def _summary(
    elapsed_s: float,
    overall: LatencyStats,
    worst: list[Waiter],
    behind: list[TopEntry],
    holders: list[CpuHolder],
) -> str:
    head = f"{plural(overall.count, 'run-queue wait')} in {elapsed_s:.1f}s"
    if not overall.count:
        return f"{head}: no task waited for a CPU"
    text = f"{head}: p50 {_ms(overall.p50)}, p99 {_ms(overall.p99)}, max {_ms(overall.max)}"
    if worst:
        top = worst[0]
        text += (
            f"; worst waiter {proc_label(top.comm, top.pid)} p99 {_ms(top.stats.p99)} "
            f"over {plural(top.waits, 'wait')}"
        )
    if behind:
        text += "; waits mostly behind " + ", ".join(
            f"{b.key} ({_ms(b.value)})" for b in behind[:2]
        )
    busy = [h for h in holders if h.pid != 0][:3]
    if busy:
        text += "; on CPU: " + ", ".join(
            f"{proc_label(h.comm, h.pid)} {h.cpu_pct:.0f}%" for h in busy
        )
    return text


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        min_waits = int(self.run.params.get("min_waits", 5))
        waiters = _waiters(bpf)
        max_ns = max((int(s.max_ns) for s in bpf["per_pid"].values()), default=0)
        overall = latency_from_log2(
            log2_buckets(bpf["latency"]), base_unit="ns", unit="ms", max_value=max_ns or None
        )
        worst = _rank_waiters(waiters, min_waits)
        holders = _cpu_holders(bpf, elapsed_s)
        behind = _behind(bpf)
        aggregates = Aggregates(
            totals={
                "waits": overall.count,
                "processes_waiting": len(waiters),
                "total_wait_ms": round(sum(w.total_ms for w in waiters), 3),
            },
            top={
                "waiters": [_waiter_entry(w) for w in worst[:MAX_TOP]],
                "behind": behind[:3],
                "on_cpu": [_holder_entry(h) for h in holders[:MAX_TOP]],
            },
            latency={"runq": overall} if overall.count else {},
        )
        return ReaderOutput(
            event_count=overall.count,
            summary=_summary(elapsed_s, overall, worst, behind, holders),
            aggregates=aggregates,
        )
