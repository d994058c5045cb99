"""lock_contention reader: in-kernel wait sums -> top waiters, locks, processes and percentiles."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    comm_text,
    fmt_ms,
    fullest_buckets,
    latency_from_log2,
    log2_buckets,
    plural,
    proc_label,
)
from probes.models import Aggregates, LatencyStats, TopEntry

FUTEX_OPS = {
    0: "wait",
    6: "lock_pi",
    9: "wait_bitset",
    11: "wait_requeue_pi",
    13: "lock_pi2",
    100: "futex2_wait",
    101: "futex_waitv",
}
LOCK_FLAGS = (
    (1 << 5, "mutex"),
    (1 << 4, "percpu"),
    (1 << 3, "rt"),
    (1 << 1, "read"),
    (1 << 2, "write"),
    (1 << 0, "spin"),
)
KALLSYMS = Path("/proc/kallsyms")
SYMBOL_SLACK = 0x200  # a lock this close above a data symbol is taken to be inside it


def futex_op_name(op: int) -> str:
    return FUTEX_OPS.get(op, f"op {op}")


def lock_kind(flags: int) -> str:
    """lock:contention_begin flags as text, e.g. `mutex`, `rwsem write`, `spinlock`."""
    names = [name for bit, name in LOCK_FLAGS if flags & bit]
    if "mutex" in names:
        return "mutex" + (" (rt)" if "rt" in names else "")
    if "percpu" in names:
        return "percpu-rwsem " + ("read" if "read" in names else "write")
    if "read" in names or "write" in names:
        rw = "read" if "read" in names else "write"
        return ("rwlock " if "spin" in names else "rwsem ") + rw
    if "spin" in names:
        return "spinlock"
    return "lock" if not names else "|".join(names)


class Wait(BaseModel):
    """One in-kernel row: who waited on what, how often and how long."""

    pid: int
    comm: str
    addr: int
    kind: str
    count: int
    total_ns: int
    max_ns: int
    timeouts: int = 0

    @property
    def proc(self) -> str:
        return proc_label(self.comm, self.pid)


class KernelSymbols:
    """Data symbols from /proc/kallsyms, to name statically allocated kernel locks."""

    def __init__(self, lines: Iterable[str]) -> None:
        pairs = []
        for line in lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "dDbBrR":
                pairs.append((int(parts[0], 16), parts[2]))
        pairs.sort()
        self.addrs = [a for a, _ in pairs if a]
        self.names = [n for a, n in pairs if a]

    @classmethod
    def load(cls) -> KernelSymbols:
        try:
            with KALLSYMS.open() as handle:
                return cls(handle)
        except OSError:
            return cls([])

    def name(self, addr: int) -> str | None:
        index = bisect.bisect_right(self.addrs, addr) - 1
        if index < 0:
            return None
        offset = addr - self.addrs[index]
        if offset > SYMBOL_SLACK:
            return None
        return self.names[index] + (f"+{offset:#x}" if offset else "")


def _rows(table: Any, kind_of: Any, addr_field: str) -> list[Wait]:
    rows = []
    for key, val in table.items():
        rows.append(
            Wait(
                pid=int(key.pid),
                comm=comm_text(key.comm),
                addr=int(getattr(key, addr_field)),
                kind=kind_of(key),
                count=int(val.count),
                total_ns=int(val.total_ns),
                max_ns=int(val.max_ns),
                timeouts=int(val.timeouts),
            )
        )
    return rows


TOP_N = 3
HIST_KEEP = 6


def _merge(rows: list[Wait], label: Callable[[Wait], str]) -> list[tuple[str, Wait]]:
    """Rows merged by `label(row)`, biggest total wait first."""
    merged: dict[str, Wait] = {}
    for row in rows:
        key = label(row)
        have = merged.get(key)
        if have is None:
            merged[key] = row.model_copy()
            continue
        have.count += row.count
        have.total_ns += row.total_ns
        have.max_ns = max(have.max_ns, row.max_ns)
        have.timeouts += row.timeouts
    return sorted(merged.items(), key=lambda item: (-item[1].total_ns, item[0]))


def _entry(key: str, row: Wait, **labels: str | int | float) -> TopEntry:
    return TopEntry(
        key=key,
        count=row.count,
        value=round(row.total_ns / 1e6, 3),
        labels={"max_ms": round(row.max_ns / 1e6, 3), **labels},
    )


def _proc_buckets(table: Any) -> dict[int, dict[int, int]]:
    """proc_hist as {pid: {log2 slot: count}}, both kinds of wait together."""
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for key, val in table.items():
        slots = out[int(key.pid)]
        slots[int(key.slot)] = slots.get(int(key.slot), 0) + int(val.value)
    return out


def fmt_wait(ns: float) -> str:
    return f"{ns / 1e9:.1f} s" if ns >= 10e9 else fmt_ms(ns)


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=3)

    def on_event(self, ring: str, event: Any) -> None:
        futex = int(event.kind) == 0
        kind = futex_op_name(int(event.op_or_flags)) if futex else lock_kind(int(event.op_or_flags))
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=int(event.pid),
                process_name=comm_text(event.comm),
                event_type="futex_wait" if futex else "kernel_lock_wait",
                data={
                    "tid": int(event.tid),
                    "lock": f"{int(event.addr):#x}",
                    "op" if futex else "lock_kind": kind,
                    "wait_ms": round(int(event.wait_ns) / 1e6, 3),
                },
            )
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        futex = _rows(bpf["futex_waits"], lambda k: futex_op_name(int(k.op)), "uaddr")
        kernel = _rows(bpf["klock_waits"], lambda k: lock_kind(int(k.flags)), "lock")
        symbols = KernelSymbols.load() if kernel else KernelSymbols([])
        for row in kernel:
            name = symbols.name(row.addr)
            if name:
                row.kind = f"{row.kind} {name}"
        per_proc = _proc_buckets(bpf["proc_hist"])
        futex_lat = _latency(bpf["futex_hist"], futex)
        kernel_lat = _latency(bpf["klock_hist"], kernel)

        top: dict[str, list[TopEntry]] = {}
        procs = _merge(futex + kernel, lambda r: r.proc)[:TOP_N]
        if procs:
            top["processes"] = []
            for key, row in procs:
                stats = latency_from_log2(
                    per_proc.get(row.pid, {}),
                    base_unit="ns",
                    unit="ms",
                    max_value=row.max_ns or None,
                )
                top["processes"].append(
                    _entry(
                        key,
                        row,
                        pid=row.pid,
                        comm=row.comm,
                        p50_ms=stats.p50 or 0.0,
                        p99_ms=stats.p99 or 0.0,
                    )
                )
        futex_top = _merge(futex, lambda r: f"{r.proc} futex {r.addr:#x} {r.kind}")[:TOP_N]
        if futex_top:
            top["futex_waiters"] = [
                _entry(
                    key,
                    row,
                    pid=row.pid,
                    comm=row.comm,
                    op=row.kind,
                    **({"timeouts": row.timeouts} if row.timeouts else {}),
                )
                for key, row in futex_top
            ]
        lock_top = _merge(kernel, lambda r: f"{r.kind} {r.addr:#x}")[:TOP_N]
        if lock_top:
            top["kernel_locks"] = []
            for key, row in lock_top:
                waiter = _merge(
                    [r for r in kernel if f"{r.kind} {r.addr:#x}" == key], lambda r: r.proc
                )[0][1]
                top["kernel_locks"].append(
                    _entry(key, row, top_waiter=waiter.proc, top_waiter_pid=waiter.pid)
                )
        latency: dict[str, LatencyStats] = {}
        if futex_lat.count:
            latency["futex_wait"] = futex_lat
        if kernel_lat.count:
            latency["kernel_lock_wait"] = kernel_lat
        totals: dict[str, int | float] = {
            "futex_waits": sum(r.count for r in futex),
            "futex_wait_ms": round(sum(r.total_ns for r in futex) / 1e6, 3),
            "futex_timeouts": sum(r.timeouts for r in futex),
            "kernel_lock_waits": sum(r.count for r in kernel),
            "kernel_lock_wait_ms": round(sum(r.total_ns for r in kernel) / 1e6, 3),
            "waits_in_progress": len(bpf["futex_starts"]) + len(bpf["kstarts"]),
        }
        return ReaderOutput(
            event_count=int(totals["futex_waits"]) + int(totals["kernel_lock_waits"]),
            events=self.samples.dumps(),
            summary=_summary(elapsed_s, futex, kernel, top, futex_lat, kernel_lat),
            aggregates=Aggregates(totals=totals, top=top, latency=latency),
        )


def _latency(table: Any, rows: list[Wait]) -> LatencyStats:
    """Percentiles, with the histogram cut to its HIST_KEEP fullest buckets plus the slowest."""
    biggest = max((r.max_ns for r in rows), default=0)
    stats = latency_from_log2(
        log2_buckets(table), base_unit="ns", unit="ms", max_value=biggest or None
    )
    return fullest_buckets(stats, HIST_KEEP)


def _overall(label: str, rows: list[Wait], lat: LatencyStats) -> str:
    total_ns = sum(r.total_ns for r in rows)
    p99 = f", p99 {fmt_ms((lat.p99 or 0) * 1e6)}" if lat.p99 is not None else ""
    return f"{plural(sum(r.count for r in rows), label)} ({fmt_wait(total_ns)}{p99})"


def _summary(
    elapsed_s: float,
    futex: list[Wait],
    kernel: list[Wait],
    top: dict[str, list[TopEntry]],
    futex_lat: LatencyStats,
    kernel_lat: LatencyStats,
) -> str:
    head = f"Lock waits in {elapsed_s:.1f}s"
    if not futex and not kernel:
        return f"{head}: no futex or kernel lock waits seen"
    lead = top["processes"][0]
    labels = lead.labels
    text = (
        f"{head}: top waiter {lead.key} waited {fmt_wait((lead.value or 0) * 1e6)} in "
        f"{plural(lead.count, 'wait')} (p99 {fmt_ms(float(labels['p99_ms']) * 1e6)}"
    )
    waiter = top.get("futex_waiters", [None])[0]
    if waiter is not None and waiter.labels.get("pid") == labels["pid"]:
        text += f", mostly futex {waiter.key.split(' futex ', 1)[1]}"
    text += ")"
    parts = []
    if futex:
        parts.append("all futex: " + _overall("wait", futex, futex_lat))
    if kernel:
        lock = top["kernel_locks"][0]
        parts.append(
            "kernel locks: "
            + _overall("wait", kernel, kernel_lat)
            + f", top {lock.key} by {lock.labels['top_waiter']}"
        )
    return text + "; " + "; ".join(parts)


__all__ = ["KernelSymbols", "Reader", "futex_op_name", "lock_kind"]
