"""The fallback: what each probe saw, as a weak finding (it never names a cause by itself).

Facts: one line per probe run (its key, host, and summary or error).
`score()`: always `WEAK`.
`render()`: no cause, the probes' lines as the evidence, and how to narrow the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.backends.base import Evidence

WEAK = 0.2


@dataclass
class ActivityFacts:
    lines: list[str]


def facts(evidence: Evidence) -> ActivityFacts | None:
    lines = []
    for result in evidence.results:
        for key, probe in result.ebpf_results.items():
            text = f"error: {probe.error}" if probe.error else probe.summary
            lines.append(f"{key} on {result.host}: {text}")
    return ActivityFacts(lines) if lines else None


def score(fact: ActivityFacts) -> float:
    return WEAK


def render(fact: ActivityFacts, strength: float) -> Finding:
    return Finding(
        analyzer="probe_activity",
        score=strength,
        root_cause=(
            "No single cause stands out in the evidence; the probes saw the activity "
            "listed in the eBPF evidence."
        ),
        resolution_plan=(
            "1. Re-run with a narrower symptom or a pid/comm filter.\n"
            "2. Compare with the same probes on a healthy host."
        ),
        ebpf_evidence="\n".join(fact.lines),
    )


@register("probe_activity")
def probe_activity(evidence: Evidence) -> list[Finding]:
    fact = facts(evidence)
    if fact is None:
        return []
    return [render(fact, score(fact))]
