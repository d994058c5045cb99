"""Processes burning CPU, from the triage's `ps ... --sort=-pcpu` listing (busiest first)."""

from __future__ import annotations

from worker.models.base import Evidence
from worker.models.offline.analyzers import Finding, register

BUSY_PCPU = 50.0
MAX_NAMED = 3


def _busy_rows(stdout: str) -> list[tuple[str, str, float]]:
    rows = []
    for line in stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        try:
            pcpu = float(fields[2])
        except ValueError:
            continue
        if pcpu < BUSY_PCPU:
            break  # sorted by CPU: the rest are quieter
        rows.append((fields[0], fields[1], pcpu))
    return rows[:MAX_NAMED]


@register("busy_process")
def busy_process(evidence: Evidence) -> list[Finding]:
    findings = []
    for result in evidence.results:
        listing = result.command_results.get("top_cpu")
        if listing is None or not listing.ran:
            continue
        rows = _busy_rows(listing.stdout)
        if not rows:
            continue
        pid, comm, pcpu = rows[0]
        others = "; ".join(f"{c} (pid {p}) {u:g}%" for p, c, u in rows[1:])
        findings.append(
            Finding(
                analyzer="busy_process",
                score=0.6 if pcpu >= 90 else 0.5,
                culprit=f"{comm} (pid {pid})",
                root_cause=(
                    f"{comm} (pid {pid}) on {result.host} uses {pcpu:g}% CPU, the most of any "
                    "process" + (f"; also busy: {others}." if others else ".")
                ),
                resolution_plan=(
                    f"1. Profile {comm} (the cpu_profile probe with pid {pid}) to see where its "
                    "time goes.\n"
                    "2. If it is runaway, restart or throttle it (a person's decision)."
                ),
                ebpf_evidence=f"`ps` on {result.host} (lifetime CPU share): "
                + "; ".join(f"{c} (pid {p}) {u:g}%" for p, c, u in rows),
            )
        )
    return findings
