"""TCP retransmits and resets by endpoint (tcp_retransmits), with the owning process.

Facts: the first tcp_retransmits run's top `retransmits to` endpoint (remote, owner, count),
when it has `RETRANSMITS_MIN` retransmits or more.
`score()`: `MANY` retransmits to one endpoint or more -> `LOSSY`; `SOME` -> `LOSSY_SOME`; else
(`RETRANSMITS_MIN` or more) -> `LOSSY_FEW`; resets received alone count as refusals
(connect_failures covers those with the culprit).
`render()`: the remote, the owner, the retransmits and the probe's summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import ProbeRun, probe_runs, seconds, top
from worker.backends.base import Evidence

PREFIX = "retransmits to "
RETRANSMITS_MIN = 3
MANY, SOME = 50, 10
LOSSY, LOSSY_SOME, LOSSY_FEW = 0.8, 0.6, 0.4
RUNS = 1  # only the first run counts


@dataclass
class RetransmitFact:
    run: ProbeRun
    remote: str
    owner: str
    count: int


def facts(evidence: Evidence) -> list[RetransmitFact]:
    out = []
    for run in probe_runs(evidence, "tcp_retransmits")[:RUNS]:
        rows = [r for r in top(run, "endpoints") if r.key.startswith(PREFIX)]
        if not rows or rows[0].count < RETRANSMITS_MIN:
            continue
        row = rows[0]
        owner = str(row.labels.get("owner", "an unknown process"))
        out.append(RetransmitFact(run, row.key.removeprefix(PREFIX), owner, row.count))
    return out


def score(fact: RetransmitFact) -> float:
    if fact.count >= MANY:
        return LOSSY
    return LOSSY_SOME if fact.count >= SOME else LOSSY_FEW


def render(fact: RetransmitFact, strength: float) -> Finding:
    run, remote, owner = fact.run, fact.remote, fact.owner
    return Finding(
        analyzer="retransmits",
        category="network",
        score=strength,
        culprit=f"{owner} -> {remote}",
        root_cause=(
            f"Packets to {remote} are lost: {fact.count} TCP retransmits in "
            f"{seconds(run):.1f}s on {run.host} (owner {owner})."
        ),
        resolution_plan=(
            f"1. Check the path to {remote} (interface errors `ip -s link`, "
            "`ss -ti` for its connections, a firewall dropping packets).\n"
            f"2. Check that {remote} is up and not overloaded."
        ),
        ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
    )


@register("retransmits")
def retransmits(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
