"""Processes whose resident memory climbs during the window, from the memory_growth probe.

Facts: the probe's `growers` rows: process, MB gained, MB/s, RSS now, of which anonymous.
`score()`: `RATE_FAST` MB/s or more -> `FAST`, `RATE_STEADY` MB/s -> `STEADY`, else `SLOW`;
times `ANON_FACTOR` when little of the growth is anonymous memory (page cache comes and goes).
`render()`: the process, its growth over the window, the rate, its RSS now, the anon share.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import ProbeRun, probe_runs, seconds, top
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

RATE_FAST, RATE_STEADY = 5.0, 1.0  # MB/s
FAST, STEADY, SLOW = 0.85, 0.6, 0.25
ANON_SHARE_MIN, ANON_FACTOR = 0.5, 0.7
THEMES = (
    "memory", "leak", "rss", "grow", "climb", "ram", "swap", "oom", "heap", "free memory",
    "dropping", "degrad", "over time",
)  # fmt: skip


@dataclass
class GrowthFact:
    run: ProbeRun
    comm: str
    pid: int
    growth_mb: float
    rate: float
    rss_mb: float
    anon_mb: float


def facts(evidence: Evidence) -> list[GrowthFact]:
    out = []
    for run in probe_runs(evidence, "memory_growth"):
        for row in top(run, "growers"):
            labels = row.labels
            pid = labels.get("pid")
            if isinstance(pid, int):
                out.append(
                    GrowthFact(
                        run,
                        str(labels.get("comm", "?")),
                        pid,
                        float(labels.get("growth_mb", 0) or 0),
                        float(labels.get("mb_per_s", 0) or 0),
                        float(labels.get("rss_mb", 0) or 0),
                        float(labels.get("anon_growth_mb", 0) or 0),
                    )
                )
    return out


def score(fact: GrowthFact) -> float:
    base = FAST if fact.rate >= RATE_FAST else STEADY if fact.rate >= RATE_STEADY else SLOW
    anon_share = fact.anon_mb / fact.growth_mb if fact.growth_mb > 0 else 0.0
    return base if anon_share >= ANON_SHARE_MIN else base * ANON_FACTOR


def render(fact: GrowthFact, strength: float) -> Finding:
    run = fact.run
    label = f"{fact.comm} (pid {fact.pid})"
    return Finding(
        analyzer="memory_growth",
        category="memory",
        score=strength,
        culprit=label,
        root_cause=(
            f"{label} on {run.host} grows its resident memory by {fact.growth_mb:.1f} MB in "
            f"{seconds(run):.1f}s ({fact.rate:.1f} MB/s; {fact.anon_mb:.1f} MB of it anonymous "
            f"heap), now {fact.rss_mb:.0f} MB resident: at this rate it exhausts memory (or its "
            "limit) and is OOM-killed or slows the host with reclaim and swap."
        ),
        resolution_plan=(
            f"1. Confirm the trend: `ps -o rss=,vsz= -p {fact.pid}` a few times, or "
            f"`grep -E 'VmRSS|RssAnon' /proc/{fact.pid}/status`.\n"
            f"2. Find what holds the memory: a heap profile of {fact.comm} (its runtime's "
            "profiler, or the memory_alloc probe filtered to its pid), an unbounded cache or "
            "queue, a missing free/close.\n"
            f"3. Until fixed: a memory limit (MemoryMax) with restarts, before the host is "
            "affected."
        ),
        ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
        subject=Subject(comm=fact.comm, pid=fact.pid, themes=list(THEMES)),
    )


@register("memory_growth")
def memory_growth(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
