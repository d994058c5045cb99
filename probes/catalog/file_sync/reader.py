"""file_sync reader: sync calls per (process, call) with rate, time and failures."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import comm_text, fmt_ms, latency_from_log2, plural, proc_label
from probes.models import Aggregates, LatencyStats, TopEntry

CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "sync", "msync")
TOP_N = 4
HIST_KEEP = 8


class SyncCalls(BaseModel):
    pid: int
    comm: str
    call: str
    count: int
    errors: int
    total_ns: int
    max_ns: int

    @property
    def proc(self) -> str:
        return proc_label(self.comm, self.pid)


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        seconds = max(elapsed_s, 0.001)
        rows = [
            SyncCalls(
                pid=int(k.pid),
                comm=comm_text(k.comm),
                call=CALLS[int(k.call)] if int(k.call) < len(CALLS) else f"call {int(k.call)}",
                count=int(v.count),
                errors=int(v.errors),
                total_ns=int(v.total_ns),
                max_ns=int(v.max_ns),
            )
            for k, v in bpf["calls"].items()
        ]
        rows.sort(key=lambda r: (-r.total_ns, -r.count))
        busiest = sorted(rows, key=lambda r: -r.count)[:TOP_N]
        top: dict[str, list[TopEntry]] = {}
        if busiest:
            top["syncers"] = [_entry(r, seconds) for r in busiest]
        slowest = [r for r in rows[:TOP_N] if r not in busiest]
        if slowest:
            top["slowest"] = [_entry(r, seconds) for r in slowest]
        slots = {int(k.value): int(v.value) for k, v in bpf["lat_hist"].items() if int(v.value)}
        latency: dict[str, LatencyStats] = {}
        if slots:
            biggest = max((r.max_ns for r in rows), default=0) / 1000
            stats = latency_from_log2(slots, base_unit="us", unit="us", max_value=biggest or None)
            latency["sync"] = stats.model_copy(update={"histogram": stats.histogram[-HIST_KEEP:]})
        total = sum(r.count for r in rows)
        return ReaderOutput(
            event_count=total,
            summary=_summary(elapsed_s, rows, busiest, total),
            aggregates=Aggregates(
                totals={
                    "calls": total,
                    "errors": sum(r.errors for r in rows),
                    "time_ms": round(sum(r.total_ns for r in rows) / 1e6, 3),
                    "processes": len({r.pid for r in rows}),
                },
                top=top,
                latency=latency,
            ),
        )


def _entry(r: SyncCalls, seconds: float) -> TopEntry:
    return TopEntry(
        key=f"{r.call} by {r.proc}",
        count=r.count,
        value=round(r.count / seconds, 1),
        labels={
            "pid": r.pid,
            "comm": r.comm,
            "call": r.call,
            "total_ms": round(r.total_ns / 1e6, 3),
            "mean_ms": round(r.total_ns / r.count / 1e6, 3) if r.count else 0.0,
            "max_ms": round(r.max_ns / 1e6, 3),
            "errors": r.errors,
        },
    )


def _summary(elapsed_s: float, rows: list[SyncCalls], busiest: list[SyncCalls], total: int) -> str:
    text = f"Sync calls in {elapsed_s:.1f}s: {plural(total, 'call')}"
    if busiest:
        r = busiest[0]
        text += (
            f"; most by {r.proc}: {r.count} {r.call} ({r.count / max(elapsed_s, 0.001):.0f}/s, "
            f"{fmt_ms(r.total_ns)} in total, longest {fmt_ms(r.max_ns)})"
        )
    if rows and rows[0] is not (busiest[0] if busiest else None):
        r = rows[0]
        text += f"; most time {r.call} by {r.proc} {fmt_ms(r.total_ns)}"
    return text
