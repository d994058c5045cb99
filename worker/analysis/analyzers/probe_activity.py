"""The fallback: what each probe saw, as a weak finding (it never names a cause by itself)."""

from __future__ import annotations

from worker.analysis.analyzers import Finding, register
from worker.backends.base import Evidence


@register("probe_activity")
def probe_activity(evidence: Evidence) -> list[Finding]:
    lines = []
    for result in evidence.results:
        for key, probe in result.ebpf_results.items():
            text = f"error: {probe.error}" if probe.error else probe.summary
            lines.append(f"{key} on {result.host}: {text}")
    if not lines:
        return []
    return [
        Finding(
            analyzer="probe_activity",
            score=0.2,
            root_cause=(
                "No single cause stands out in the evidence; the probes saw the activity "
                "listed in the eBPF evidence."
            ),
            resolution_plan=(
                "1. Re-run with a narrower symptom or a pid/comm filter.\n"
                "2. Compare with the same probes on a healthy host."
            ),
            ebpf_evidence="\n".join(lines),
        )
    ]
