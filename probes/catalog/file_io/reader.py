"""file_io reader: in-kernel per-(process, fd, direction) sums -> top processes and files."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, ClassVar

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import (
    SampleEvent,
    Samples,
    c_string,
    comm_text,
    fmt_ms,
    fullest_buckets,
    latency_from_log2,
    plural,
    proc_label,
)
from probes.models import Aggregates, LatencyStats, TopEntry

DIRECTIONS = ("read", "write")
TOP_N = 3
HIST_KEEP = 6


def fmt_bytes(count: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


class Io(BaseModel):
    """One in-kernel row: a process's reads or writes on one fd."""

    pid: int
    comm: str
    fd: int
    opened: int
    opened_path: str
    direction: str
    calls: int
    bytes: int
    errors: int
    total_ns: int
    max_ns: int

    @property
    def proc(self) -> str:
        return proc_label(self.comm, self.pid)


class Usage(BaseModel):
    """Reads and writes summed for a process or a file."""

    pid: int
    comm: str
    path: str = ""
    calls: int = 0
    errors: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    reads: int = 0
    writes: int = 0
    max_ns: int = 0

    @property
    def bytes(self) -> int:
        return self.read_bytes + self.write_bytes

    def add(self, row: Io) -> None:
        self.calls += row.calls
        self.errors += row.errors
        self.max_ns = max(self.max_ns, row.max_ns)
        if row.direction == "read":
            self.read_bytes += row.bytes
            self.reads += row.calls
        else:
            self.write_bytes += row.bytes
            self.writes += row.calls

    def entry(self, key: str) -> TopEntry:
        labels: dict[str, str | int | float] = {"pid": self.pid, "comm": self.comm}
        if self.path:
            labels["path"] = self.path
        figures = {
            "read_bytes": self.read_bytes,
            "write_bytes": self.write_bytes,
            "reads": self.reads,
            "writes": self.writes,
            "errors": self.errors,
        }
        labels |= {name: value for name, value in figures.items() if value}
        labels["max_ms"] = round(self.max_ns / 1e6, 3)
        return TopEntry(key=key, count=self.calls, value=float(self.bytes), labels=labels)

    def describe(self) -> str:
        parts = []
        if self.write_bytes or self.writes:
            parts.append(f"wrote {fmt_bytes(self.write_bytes)} in {plural(self.writes, 'write')}")
        if self.read_bytes or self.reads:
            parts.append(f"read {fmt_bytes(self.read_bytes)} in {plural(self.reads, 'read')}")
        return " and ".join(parts)


class OpenedFiles:
    """Names rows: the openat path for fds opened during the probe, else /proc/<pid>/fd."""

    def __init__(self, reopened: set[tuple[int, int]]) -> None:
        self.reopened = reopened

    @classmethod
    def from_maps(cls, bpf: Any) -> OpenedFiles:
        return cls({(int(k.pid), int(k.fd)) for k in bpf["fd_opened"]})  # open now, opened lately

    def name(self, row: Io) -> str:
        if row.opened:
            return row.opened_path
        if (row.pid, row.fd) in self.reopened:
            return ""  # the fd now names a file opened later; this one's name is unknown
        return proc_fd_path(row.pid, row.fd)


def proc_fd_path(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""


class Reader(ProbeReader):
    rings: ClassVar[tuple[str, ...]] = ("events",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples = Samples(limit=3)

    def on_event(self, ring: str, event: Any) -> None:
        direction = DIRECTIONS[int(event.dir) & 1]
        pid, fd = int(event.pid), int(event.fd)
        self.samples.offer(
            SampleEvent(
                timestamp=self.clock.unix_ns(event.ts),
                process_id=pid,
                process_name=comm_text(event.comm),
                event_type=f"slow_{direction}",
                data={
                    "fd": fd,
                    "path": proc_fd_path(pid, fd),
                    "ret": int(event.ret),
                    "latency_ms": round(int(event.lat_ns) / 1e6, 3),
                },
            )
        )

    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        rows = [
            Io(
                pid=int(k.pid),
                comm=comm_text(k.comm),
                fd=int(k.fd),
                opened=int(k.opened),
                opened_path=c_string(v.path.name),
                direction=DIRECTIONS[int(k.dir) & 1],
                calls=int(v.calls),
                bytes=int(v.bytes),
                errors=int(v.errors),
                total_ns=int(v.total_ns),
                max_ns=int(v.max_ns),
            )
            for k, v in bpf["io"].items()
        ]
        names = OpenedFiles.from_maps(bpf)
        procs: dict[str, Usage] = {}
        files: dict[str, Usage] = {}
        for row in rows:
            procs.setdefault(row.proc, Usage(pid=row.pid, comm=row.comm)).add(row)
            path = names.name(row)
            # the file's base name keeps keys short and apart; the full path is a label
            file_key = f"{row.proc} fd {row.fd}" + (f" {os.path.basename(path)}" if path else "")
            files.setdefault(file_key, Usage(pid=row.pid, comm=row.comm, path=path)).add(row)
        buckets: dict[str, dict[int, int]] = defaultdict(dict)
        for key, val in bpf["lat_hist"].items():
            if int(val.value):
                buckets[DIRECTIONS[int(key.dir) & 1]][int(key.slot)] = int(val.value)
        latency: dict[str, LatencyStats] = {}
        for direction in DIRECTIONS:
            biggest = max((r.max_ns for r in rows if r.direction == direction), default=0)
            stats = latency_from_log2(
                buckets[direction], base_unit="ns", unit="us", max_value=biggest or None
            )
            if stats.count:
                latency[direction] = fullest_buckets(stats, HIST_KEEP)
        top = {
            "processes": _ranked(procs),
            "files": _ranked(files),
        }
        totals: dict[str, int | float] = {
            "calls": sum(r.calls for r in rows),
            "read_bytes": sum(r.bytes for r in rows if r.direction == "read"),
            "write_bytes": sum(r.bytes for r in rows if r.direction == "write"),
            "reads": sum(r.calls for r in rows if r.direction == "read"),
            "writes": sum(r.calls for r in rows if r.direction == "write"),
            "errors": sum(r.errors for r in rows),
        }
        return ReaderOutput(
            event_count=int(totals["calls"]),
            events=self.samples.dumps(),
            summary=_summary(elapsed_s, totals, procs, files, latency),
            aggregates=Aggregates(
                totals=totals, top={k: v for k, v in top.items() if v}, latency=latency
            ),
        )


def _order(usage: dict[str, Usage]) -> list[tuple[str, Usage]]:
    """Most bytes first, then most calls, then by name (stable across the result)."""
    return sorted(usage.items(), key=lambda item: (-item[1].bytes, -item[1].calls, item[0]))


def _ranked(usage: dict[str, Usage]) -> list[TopEntry]:
    return [u.entry(key) for key, u in _order(usage)[:TOP_N]]


def _summary(
    elapsed_s: float,
    totals: dict[str, int | float],
    procs: dict[str, Usage],
    files: dict[str, Usage],
    latency: dict[str, LatencyStats],
) -> str:
    head = f"File I/O in {elapsed_s:.1f}s"
    if not totals["calls"]:
        return f"{head}: no read/write calls seen"
    text = (
        f"{head}: {plural(int(totals['calls']), 'call')}, "
        f"{fmt_bytes(totals['write_bytes'])} written, {fmt_bytes(totals['read_bytes'])} read"
    )
    name, lead = _order(procs)[0]
    text += f"; top {name} {lead.describe()}"
    theirs = [(k, u) for k, u in files.items() if u.pid == lead.pid]
    if theirs:
        busiest = _order(dict(theirs))[0][1]
        if busiest.path:
            text += f", mostly {busiest.path}"
    for direction in DIRECTIONS:
        stats = latency.get(direction)
        if stats is not None and stats.p99 is not None:
            text += f"; {direction} p99 {fmt_ms(stats.p99 * 1e3)}"
    return text
