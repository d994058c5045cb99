"""TCP retransmits and resets by endpoint (tcp_retransmits), with the owning process.

Score: >= 50 retransmits to one endpoint -> 0.8; >= 10 -> 0.6; >= 3 -> 0.4; resets received
alone count as refusals (connect_failures covers those with the culprit).
"""

from __future__ import annotations

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import probe_runs, seconds, top
from worker.backends.base import Evidence


@register("retransmits")
def retransmits(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "tcp_retransmits")[:1]:
        rows = [r for r in top(run, "endpoints") if r.key.startswith("retransmits to ")]
        if not rows or rows[0].count < 3:
            continue
        row = rows[0]
        remote = row.key.removeprefix("retransmits to ")
        owner = str(row.labels.get("owner", "an unknown process"))
        score = 0.8 if row.count >= 50 else 0.6 if row.count >= 10 else 0.4
        findings.append(
            Finding(
                analyzer="retransmits",
                category="network",
                score=score,
                culprit=f"{owner} -> {remote}",
                root_cause=(
                    f"Packets to {remote} are lost: {row.count} TCP retransmits in "
                    f"{seconds(run):.1f}s on {run.host} (owner {owner})."
                ),
                resolution_plan=(
                    f"1. Check the path to {remote} (interface errors `ip -s link`, "
                    "`ss -ti` for its connections, a firewall dropping packets).\n"
                    f"2. Check that {remote} is up and not overloaded."
                ),
                ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
            )
        )
    return findings
