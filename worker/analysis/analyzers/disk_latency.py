"""Slow block I/O: block_io_latency's per-device percentiles and top submitter.

Score: a device with p99 >= 100 ms -> 0.85; >= 20 ms -> 0.6; less -> no finding. Next: the
file_io probe filtered to the top submitter (which files it reads and writes).
"""

from __future__ import annotations

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import entry_proc, probe, probe_runs, seconds, top
from worker.backends.base import Evidence

STRONG_P99_MS = 100.0
WEAK_P99_MS = 20.0


@register("disk_latency")
def disk_latency(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "block_io_latency")[:1]:
        devices = sorted(top(run, "devices"), key=lambda d: -(d.value or 0))
        if not devices or (devices[0].value or 0) < WEAK_P99_MS:
            continue
        device, p99 = devices[0].key, float(devices[0].value or 0)
        submitters = [r for r in top(run, "processes") if r.labels.get("disk") == device]
        proc = entry_proc(submitters[0]) if submitters else None
        who = f"; top submitter {submitters[0].key} with {submitters[0].count} I/Os" if proc else ""
        score = 0.85 if p99 >= STRONG_P99_MS else 0.6
        name = f"file_io_pid_{proc.pid}" if proc and proc.pid else ""
        asked = any(r.result.program_name == name for r in probe_runs(evidence, "file_io"))
        next_step = (
            NextStep(
                why=f"which files {proc.label()} reads and writes",
                programs=[probe(name, "file_io", f"file I/O of pid {proc.pid}", pid=proc.pid)],
            )
            if proc and proc.pid and not asked
            else None
        )
        findings.append(
            Finding(
                analyzer="disk_latency",
                category="disk",
                score=score,
                culprit=f"{device}" + (f" ({proc.label()})" if proc else ""),
                root_cause=(
                    f"Block device {device} on {run.host} is slow: I/O p99 {p99:.1f} ms over "
                    f"{devices[0].count} I/Os in {seconds(run):.1f}s{who}."
                ),
                resolution_plan=(
                    f"1. Check {device}'s health and saturation (`iostat -x 1`, SMART, the "
                    "cloud volume's IOPS limit).\n"
                    "2. Throttle or reschedule the heaviest submitter; move hot files to a "
                    "faster volume."
                ),
                ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
                next=next_step,
            )
        )
    return findings
