"""Processes that sync to disk too often or wait long on it, from the file_sync probe.

Facts: the probe's `syncers` and `slowest` rows: process, call (fsync, fdatasync, ...), count,
time spent, longest call, failures.
`score()`: the rate of sync calls (`RATE_STORM`/s -> `STORM`, `RATE_OFTEN`/s -> `OFTEN`) or the
share of the window spent waiting in them (`BLOCKED_SHARE` or more -> `BLOCKED`), whichever is
higher; else `FEW`.
`render()`: the process, the call, its rate, the time in total, the mean and longest call.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import ProbeRun, probe_runs, seconds, top
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

RATE_STORM, RATE_OFTEN = 20.0, 5.0
STORM, OFTEN, FEW = 0.85, 0.6, 0.3
BLOCKED_SHARE, BLOCKED = 0.3, 0.85
THEMES = (
    "write", "slow", "disk", "latency", "commit", "fsync", "sync", "i/o", "io", "storage",
    "iowait", "flush", "durab",
)  # fmt: skip


@dataclass
class SyncFact:
    run: ProbeRun
    comm: str
    pid: int
    call: str
    count: int
    total_ms: float
    mean_ms: float
    max_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.count / seconds(self.run)

    @property
    def waiting_share(self) -> float:
        return self.total_ms / 1000 / seconds(self.run)


def facts(evidence: Evidence) -> list[SyncFact]:
    out: dict[tuple[str, int, str], SyncFact] = {}
    for run in probe_runs(evidence, "file_sync"):
        for table in ("syncers", "slowest"):
            for row in top(run, table):
                labels = row.labels
                pid = labels.get("pid")
                if not isinstance(pid, int):
                    continue
                fact = SyncFact(
                    run,
                    str(labels.get("comm", "?")),
                    pid,
                    str(labels.get("call", "fsync")),
                    row.count,
                    float(labels.get("total_ms", 0) or 0),
                    float(labels.get("mean_ms", 0) or 0),
                    float(labels.get("max_ms", 0) or 0),
                    int(labels.get("errors", 0) or 0),
                )
                out[(run.host, pid, fact.call)] = fact
    return list(out.values())


def score(fact: SyncFact) -> float:
    by_rate = STORM if fact.rate >= RATE_STORM else OFTEN if fact.rate >= RATE_OFTEN else FEW
    by_wait = BLOCKED if fact.waiting_share >= BLOCKED_SHARE else 0.0
    return max(by_rate, by_wait)


def render(fact: SyncFact, strength: float) -> Finding:
    run = fact.run
    label = f"{fact.comm} (pid {fact.pid})"
    cause = (
        f"{label} on {run.host} calls {fact.call}() {fact.count} times in "
        f"{seconds(run):.1f}s ({fact.rate:.0f}/s), waiting {fact.total_ms:.0f} ms in total "
        f"({fact.waiting_share:.0%} of the window; mean {fact.mean_ms:.2f} ms, longest "
        f"{fact.max_ms:.1f} ms): every sync waits for the device, so its writes are only as "
        "fast as the disk's flushes, and it loads the disk for everyone."
    )
    if fact.errors:
        cause += f" {fact.errors} of the calls failed."
    return Finding(
        analyzer="sync_writers",
        category="disk",
        score=strength,
        culprit=label,
        root_cause=cause,
        resolution_plan=(
            f"1. Batch {label}'s writes and sync once per batch (group commit), or use "
            "fdatasync / sync_file_range where full durability per record is not needed.\n"
            "2. Check the device's flush latency (`iostat -x 1`, the block_io_latency probe); "
            "a disk with a write cache that honours flushes is slow at this.\n"
            f"3. If the durability setting was changed, revert it (e.g. the {fact.comm} "
            "option that syncs on every write)."
        ),
        ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
        subject=Subject(comm=fact.comm, pid=fact.pid, objects=[fact.call], themes=list(THEMES)),
    )


@register("sync_writers")
def sync_writers(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
