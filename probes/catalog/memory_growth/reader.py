"""memory_growth reader: per process, RSS gained over the window (anon + file + shmem).

A process that gave back at least as much as it gained over the window (`freed` >= net growth)
is a churner, not a grower: its first and last values are two points of a sawtooth, and where
the window happens to end in its cycle says nothing about a leak. Churners are listed apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from probes.engine.reader import ProbeReader, ReaderOutput
from probes.engine.summarise import comm_text, proc_label
from probes.models import Aggregates, TopEntry

MEMBERS = {0: "file", 1: "anon", 2: "swap", 3: "shmem"}
RESIDENT = {0, 1, 3}
TOP_N = 4
MB = 1024 * 1024
CHURN_MIN = MB  # a process that freed less than this in the window is not worth a row


class Growth(BaseModel):
    pid: int
    comm: str
    first: int = 0
    last: int = 0
    anon_delta: int = 0
    freed: int = 0
    updates: int = 0

    @property
    def delta(self) -> int:
        return self.last - self.first

    @property
    def churns(self) -> bool:
        """It released at least as much as it kept: allocate-and-free, not growth."""
        return self.freed >= self.delta


class Reader(ProbeReader):
    def collect(self, bpf: Any, elapsed_s: float) -> ReaderOutput:
        seconds = max(elapsed_s, 0.001)
        procs: dict[int, Growth] = {}
        for k, v in bpf["rss"].items():
            member = int(k.member)
            if member not in RESIDENT:
                continue
            pid = int(k.pid)
            g = procs.setdefault(pid, Growth(pid=pid, comm=comm_text(v.comm)))
            g.first += int(v.first)
            g.last += int(v.last)
            g.updates += int(v.updates)
            g.freed += int(v.freed)
            if member == 1:
                g.anon_delta += int(v.last) - int(v.first)
        growers = sorted(procs.values(), key=lambda g: -g.delta)
        growing = [g for g in growers if g.delta > 0 and not g.churns][:TOP_N]
        churning = sorted(
            (g for g in procs.values() if g.freed >= CHURN_MIN and g.churns), key=lambda g: -g.freed
        )[:TOP_N]
        top: dict[str, list[TopEntry]] = {}
        if growing:
            top["growers"] = [_grower_row(g, seconds) for g in growing]
        if churning:
            top["churners"] = [_churner_row(g, seconds) for g in churning]
        text = f"RSS changes in {elapsed_s:.1f}s: {len(procs)} processes"
        if growing:
            g = growing[0]
            text += (
                f"; grows most {proc_label(g.comm, g.pid)} +{g.delta / MB:.1f} MB "
                f"({g.delta / MB / seconds:.1f} MB/s, now {g.last / MB:.0f} MB)"
            )
        if churning:
            c = churning[0]
            text += (
                f"; churns most {proc_label(c.comm, c.pid)} (frees {c.freed / MB:.1f} MB, "
                f"net {c.delta / MB:+.1f} MB)"
            )
        return ReaderOutput(
            event_count=sum(g.updates for g in procs.values()),
            summary=text,
            aggregates=Aggregates(
                totals={
                    "processes": len(procs),
                    "growing": len([g for g in growers if g.delta > 0 and not g.churns]),
                    "churning": len(
                        [g for g in procs.values() if g.freed >= CHURN_MIN and g.churns]
                    ),
                    "growth_mb": round(sum(max(g.delta, 0) for g in procs.values()) / MB, 1),
                },
                top=top,
            ),
        )


def _grower_row(g: Growth, seconds: float) -> TopEntry:
    return TopEntry(
        key=proc_label(g.comm, g.pid),
        count=g.delta // 1024,
        value=round(g.delta / MB / seconds, 2),
        labels={
            "pid": g.pid,
            "comm": g.comm,
            "growth_mb": round(g.delta / MB, 1),
            "mb_per_s": round(g.delta / MB / seconds, 2),
            "rss_mb": round(g.last / MB, 1),
            "anon_growth_mb": round(g.anon_delta / MB, 1),
            "freed_mb": round(g.freed / MB, 1),
        },
    )


def _churner_row(g: Growth, seconds: float) -> TopEntry:
    return TopEntry(
        key=proc_label(g.comm, g.pid),
        count=g.freed // 1024,
        value=round(g.freed / MB / seconds, 2),
        labels={
            "pid": g.pid,
            "comm": g.comm,
            "freed_mb": round(g.freed / MB, 1),
            "net_mb": round(g.delta / MB, 1),
            "rss_mb": round(g.last / MB, 1),
        },
    )
