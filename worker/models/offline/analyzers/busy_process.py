"""A process burning CPU, from the triage's `ps ... --sort=-pcpu` listing."""

from __future__ import annotations

from worker.models.base import Evidence
from worker.models.offline.analyzers import Finding, register

BUSY_PCPU = 50.0


@register("busy_process")
def busy_process(evidence: Evidence) -> list[Finding]:
    findings = []
    for result in evidence.results:
        listing = result.command_results.get("top_cpu")
        if listing is None or not listing.ran:
            continue
        for line in listing.stdout.splitlines()[1:2]:  # sorted: the busiest comes first
            fields = line.split()
            if len(fields) < 3 or not fields[0].isdigit():
                continue
            pid, comm = fields[0], fields[1]
            try:
                pcpu = float(fields[2])
            except ValueError:
                continue
            if pcpu < BUSY_PCPU:
                continue
            findings.append(
                Finding(
                    analyzer="busy_process",
                    score=0.6 if pcpu >= 90 else 0.5,
                    culprit=f"{comm} (pid {pid})",
                    root_cause=(
                        f"{comm} (pid {pid}) on {result.host} uses {pcpu:g}% CPU, the most "
                        "of any process."
                    ),
                    resolution_plan=(
                        f"1. Profile {comm} (the cpu_profile probe with pid {pid}) to see "
                        "where its time goes.\n"
                        f"2. If it is runaway, restart or throttle it (a person's decision)."
                    ),
                    ebpf_evidence=f"`ps` on {result.host}: {line.strip()}",
                )
            )
    return findings
