"""Memory running short: `free -m` available below 10% (or PSI memory some avg10 >= 10%) with
memory_alloc naming the process allocating fastest.

Facts: the share of memory available (`free -m`), PSI memory `some avg10` (`pressure_memory`),
and the first memory_alloc run's fastest page allocator when it allocates `FAST_PAGES_PER_S` or
more.
`score()`: memory low (available under `LOW_AVAILABLE`, or PSI some avg10 `PSI_HIGH`% or more)
and a fast allocator -> `BOTH`; low memory alone -> `LOW_ONLY`; the allocator alone ->
`ALLOCATOR_ONLY`; neither -> no finding (no fact).
`render()`: the available share, the pressure, the fastest allocator and its rate. No
follow-up: the oom_kills probe and the allocator's pid are the next move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probes.models import TopEntry
from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import ProbeRun, command_output, entry_proc, probe_runs, top
from worker.backends.base import Evidence

LOW_AVAILABLE = 0.10
PSI_HIGH = 10  # % of the last 10 s some task stalled on memory
FAST_PAGES_PER_S = 20_000.0
BOTH, LOW_ONLY, ALLOCATOR_ONLY = 0.75, 0.55, 0.5


def _available_share(evidence: Evidence) -> float | None:
    result = command_output(evidence, "memory")
    if result is None:
        return None
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == "Mem:" and len(fields) >= 7 and fields[1].isdigit():
            return int(fields[6]) / max(int(fields[1]), 1)
    return None


def _psi_some(evidence: Evidence) -> float | None:
    result = command_output(evidence, "pressure_memory")
    match = re.search(r"some avg10=([\d.]+)", result.stdout) if result else None
    return float(match[1]) if match else None


@dataclass
class PressureFact:
    share: float | None  # of memory available
    psi: float | None  # PSI memory some avg10, %
    allocator: tuple[ProbeRun, TopEntry] | None  # the fastest page allocator, when fast

    @property
    def low(self) -> bool:
        return (self.share is not None and self.share < LOW_AVAILABLE) or (
            self.psi is not None and self.psi >= PSI_HIGH
        )


def facts(evidence: Evidence) -> list[PressureFact]:
    allocator = None
    for run in probe_runs(evidence, "memory_alloc")[:1]:
        rows = top(run, "page_allocators")
        if rows and float(rows[0].labels.get("pages_per_s", 0) or 0) >= FAST_PAGES_PER_S:
            allocator = (run, rows[0])
    fact = PressureFact(_available_share(evidence), _psi_some(evidence), allocator)
    return [fact] if fact.low or fact.allocator is not None else []


def score(fact: PressureFact) -> float:
    return BOTH if fact.low and fact.allocator else LOW_ONLY if fact.low else ALLOCATOR_ONLY


def render(fact: PressureFact, strength: float) -> Finding:
    share, psi, allocator = fact.share, fact.psi, fact.allocator
    parts = []
    if share is not None:
        parts.append(f"{share:.0%} of memory available")
    if psi is not None:
        parts.append(f"memory pressure some avg10 {psi:.1f}%")
    proc = entry_proc(allocator[1]) if allocator else None
    cause = "Memory pressure: " + (", ".join(parts) or "allocation rate high")
    if allocator and proc:
        row = allocator[1]
        cause += (
            f"; the fastest allocator is {proc.label()} at "
            f"{float(row.labels.get('pages_per_s', 0)):.0f} pages/s ({row.value or 0:.0f} MiB)"
        )
    return Finding(
        analyzer="memory_pressure",
        category="memory",
        score=strength,
        culprit=proc.label() if proc else "",
        root_cause=cause + ".",
        resolution_plan=(
            "1. Confirm which process grows (its RSS over a minute; memory_alloc with its "
            "pid).\n2. Cap it (cgroup memory.max) or restart it; add memory if the load is "
            "legitimate."
        ),
        ebpf_evidence=(
            f"{allocator[0].key} on {allocator[0].host}: {allocator[0].result.summary}"
            if allocator
            else ""
        ),
    )


@register("memory_pressure")
def memory_pressure(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
