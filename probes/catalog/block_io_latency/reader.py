"""block_io_latency reader: per-disk histograms -> percentiles, disk names, top submitters."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
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

OPS = ("read", "write", "discard", "flush", "other")
SYS_DEV_BLOCK = Path("/sys/dev/block")
MINOR_BITS = 20  # the kernel's dev_t: major << 20 | minor


def decode_dev(dev: int) -> tuple[int, int]:
    return dev >> MINOR_BITS, dev & ((1 << MINOR_BITS) - 1)


def disk_name(dev: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> str:
    """`vda` for 254:0, from /sys/dev/block/MAJ:MIN/uevent; `MAJ:MIN` when it has no name."""
    major, minor = decode_dev(dev)
    try:
        uevent = (sys_dev_block / f"{major}:{minor}" / "uevent").read_text()
    except OSError:
        return f"{major}:{minor}"
    for line in uevent.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value:
            return value
    return f"{major}:{minor}"


class Totals(BaseModel):
    count: int = 0
    bytes: int = 0
    errors: int = 0
    total_ns: int = 0
    max_ns: int = 0

    def add(self, stat: Any) -> None:
        self.count += int(stat.count)
        self.bytes += int(stat.bytes)
        self.errors += int(stat.errors)
        self.total_ns += int(stat.total_ns)
        self.max_ns = max(self.max_ns, int(stat.max_ns))


class Disk(BaseModel):
    name: str
    totals: Totals
    by_op: dict[str, int]
    latency: LatencyStats


def _without_histogram(stats: LatencyStats) -> LatencyStats:
    return stats.model_copy(update={"histogram": []})


def _disks(bpf: Any) -> list[Disk]:
    totals: defaultdict[int, Totals] = defaultdict(Totals)
    ops: defaultdict[int, dict[str, int]] = defaultdict(dict)
    for key, stat in bpf["devices"].items():
        dev = int(key.dev)
        totals[dev].add(stat)
        op = OPS[int(key.op)] if int(key.op) < len(OPS) else "other"
        ops[dev][op] = ops[dev].get(op, 0) + int(stat.count)
    hists: defaultdict[int, dict[int, int]] = defaultdict(dict)
    for key, value in bpf["dev_hist"].items():
        hists[int(key.dev)][int(key.slot)] = int(value.value)
    disks = [
        Disk(
            name=disk_name(dev),
            totals=total,
            by_op=ops[dev],
            latency=latency_from_log2(
                hists[dev], base_unit="ns", unit="ms", max_value=total.max_ns
            ),
        )
        for dev, total in totals.items()
    ]
    return sorted(disks, key=lambda d: (-d.totals.count, d.name))


def _disk_entry(disk: Disk) -> TopEntry:
    labels: dict[str, str | int | float] = {
        "p50_ms": disk.latency.p50 or 0.0,
        "max_ms": disk.latency.max or 0.0,
        "mb": round(disk.totals.bytes / 1e6, 3),
        "errors": disk.totals.errors,
    }
    labels.update(disk.by_op)
    return TopEntry(key=disk.name, count=disk.totals.count, value=disk.latency.p99, labels=labels)


def _processes(bpf: Any) -> list[TopEntry]:
    rows = []
    for key, stat in bpf["procs"].items():
        count = int(stat.count)
        comm = comm_text(key.comm)
        pid = int(key.pid)
        disk = disk_name(int(key.dev))
        rows.append(
            TopEntry(
                key=f"{proc_label(comm, pid)} on {disk}",
                count=count,
                value=round(int(stat.total_ns) / count / 1e6, 3) if count else 0.0,
                labels={
                    "pid": pid,
                    "disk": disk,
                    "mb": round(int(stat.bytes) / 1e6, 3),
                    "max_ms": round(int(stat.max_ns) / 1e6, 3),
                },
            )
        )
    return sorted(rows, key=lambda r: (-r.count, r.key))


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f} ms" if value >= 1 else f"{value:.3f} ms"


def _summary(elapsed_s: float, disks: list[Disk], procs: list[TopEntry]) -> str:
    count = sum(d.totals.count for d in disks)
    head = f"{plural(count, 'block I/O')} in {elapsed_s:.1f}s"
    if not count:
        return f"{head}: no block I/O completed"
    mb = sum(d.totals.bytes for d in disks) / 1e6
    parts = []
    for disk in disks[:2]:
        ops = ", ".join(f"{n} {op}" for op, n in sorted(disk.by_op.items(), key=lambda kv: -kv[1]))
        text = (
            f"{disk.name} p50 {_ms(disk.latency.p50)} p99 {_ms(disk.latency.p99)} "
            f"max {_ms(disk.latency.max)} ({ops})"
        )
        if disk.totals.errors:
            text += f", {plural(disk.totals.errors, 'error')}"
        parts.append(text)
    text = f"{head} ({mb:.1f} MB): " + "; ".join(parts)
    if procs:
        top = procs[0]
        text += f"; top submitter {top.key} with {plural(top.count, 'I/O')}"
    return text


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        disks = _disks(bpf)
        procs = _processes(bpf)
        # The busiest disk keeps its histogram; the others, and queue time, their percentiles
        # only: the result stays small however many disks the host has.
        latency = {
            f"device {d.name}": d.latency if i == 0 else _without_histogram(d.latency)
            for i, d in enumerate(disks[:3])
            if d.latency.count
        }
        queue = latency_from_log2(log2_buckets(bpf["queue_hist"]), base_unit="ns", unit="ms")
        if queue.count:
            latency["queue"] = _without_histogram(queue)
        count = sum(d.totals.count for d in disks)
        aggregates = Aggregates(
            totals={
                "ios": count,
                "mb": round(sum(d.totals.bytes for d in disks) / 1e6, 3),
                "errors": sum(d.totals.errors for d in disks),
            },
            top={
                "devices": [_disk_entry(d) for d in disks[:MAX_TOP]],
                "processes": procs[:MAX_TOP],
            },
            latency=latency,
        )
        return ReaderOutput(
            event_count=count,
            summary=_summary(elapsed_s, disks, procs),
            aggregates=aggregates,
        )
