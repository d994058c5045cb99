"""memory_growth reader: per process, RSS gained over the window (anon + file + shmem)."""

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


class Growth(BaseModel):
    pid: int
    comm: str
    first: int = 0
    last: int = 0
    anon_delta: int = 0
    updates: int = 0

    @property
    def delta(self) -> int:
        return self.last - self.first


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
            if member == 1:
                g.anon_delta += int(v.last) - int(v.first)
        growers = sorted(procs.values(), key=lambda g: -g.delta)
        growing = [g for g in growers if g.delta > 0][:TOP_N]
        top: dict[str, list[TopEntry]] = {}
        if growing:
            top["growers"] = [
                TopEntry(
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
                    },
                )
                for g in growing
            ]
        text = f"RSS changes in {elapsed_s:.1f}s: {len(procs)} processes"
        if growing:
            g = growing[0]
            text += (
                f"; grows most {proc_label(g.comm, g.pid)} +{g.delta / MB:.1f} MB "
                f"({g.delta / MB / seconds:.1f} MB/s, now {g.last / MB:.0f} MB)"
            )
        return ReaderOutput(
            event_count=sum(g.updates for g in procs.values()),
            summary=text,
            aggregates=Aggregates(
                totals={
                    "processes": len(procs),
                    "growing": len([g for g in growers if g.delta > 0]),
                    "growth_mb": round(sum(max(g.delta, 0) for g in procs.values()) / MB, 1),
                },
                top=top,
            ),
        )
