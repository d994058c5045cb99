"""Failed TCP connects (refused, timed out, errno) seen by the tcp_connect probe."""

from __future__ import annotations

from worker.models.base import Evidence
from worker.models.offline.analyzers import Finding, register
from worker.protocol import EbpfResult

_ADVICE = {
    "refused": "nothing listens on {dest} (connection refused: RST received)",
    "timeout": "{dest} does not answer (SYN timed out: a firewall drop or a dead host)",
}


def _connect_results(evidence: Evidence) -> list[tuple[str, str, EbpfResult]]:
    return [
        (result.host, key, probe)
        for result in evidence.results
        for key, probe in result.ebpf_results.items()
        if probe.probe == "tcp_connect" and not probe.error
    ]


@register("connect_failures")
def connect_failures(evidence: Evidence) -> list[Finding]:
    findings = []
    for host, key, probe in _connect_results(evidence):
        totals = probe.aggregates.totals
        attempts = int(totals.get("attempts", probe.event_count) or 0)
        for row in probe.aggregates.top.get("failures", [])[:1]:
            labels = row.labels
            outcome = str(labels.get("outcome", "failed"))
            dest = str(labels.get("destination", "?"))
            comm = str(labels.get("comm", "?"))
            pid = labels.get("pid", "?")
            share = row.count / attempts if attempts else 1.0
            why = _ADVICE.get(outcome, "connect() fails with {outcome}").format(
                dest=dest, outcome=outcome
            )
            score = 0.9 if share >= 0.5 and row.count >= 3 else 0.6 if row.count >= 2 else 0.4
            findings.append(
                Finding(
                    analyzer="connect_failures",
                    score=score,
                    culprit=f"{comm} (pid {pid}) -> {dest}",
                    root_cause=(
                        f"{comm} (pid {pid}) on {host} fails to connect to {dest}: {why}. "
                        f"{row.count} of {attempts} connect attempts failed this way."
                    ),
                    resolution_plan=(
                        f"1. Check the service that should listen on {dest} "
                        f"(`ss -tlnp` on its host) and start or fix it.\n"
                        f"2. Check {comm}'s configured address and port for {dest}.\n"
                        "3. Check firewalls between the hosts if the outcome is a timeout."
                    ),
                    ebpf_evidence=f"{key} on {host}: {probe.summary}",
                )
            )
    return findings
