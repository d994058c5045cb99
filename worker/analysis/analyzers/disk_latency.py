"""Slow block I/O: block_io_latency's per-device percentiles and top submitter.

Facts: the first block_io_latency run's slowest device (by p99) when its p99 is `WEAK_P99_MS`
or more, and the top process submitting I/O to it.
`score()`: p99 >= `STRONG_P99_MS` -> `STRONG`; else `WEAK`.
`render()`: the device, its p99 over how many I/Os, the top submitter.
Next: the file_io probe filtered to the top submitter (which files it reads and writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.models import TopEntry
from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import ProbeRun, Proc, entry_proc, probe, probe_runs, seconds, top
from worker.backends.base import Evidence

STRONG_P99_MS = 100.0
WEAK_P99_MS = 20.0
STRONG, WEAK = 0.85, 0.6


@dataclass
class SlowDiskFact:
    run: ProbeRun
    device: TopEntry  # the slowest device: key, I/O count, p99 (ms) as value
    submitter: TopEntry | None  # its top submitter's row
    proc: Proc | None  # that submitter's process
    asked: bool  # the file_io probe filtered to it already ran

    @property
    def p99(self) -> float:
        return float(self.device.value or 0)


def _file_io_name(proc: Proc | None) -> str:
    return f"file_io_pid_{proc.pid}" if proc and proc.pid else ""


def facts(evidence: Evidence) -> list[SlowDiskFact]:
    out = []
    for run in probe_runs(evidence, "block_io_latency")[:1]:
        devices = sorted(top(run, "devices"), key=lambda d: -(d.value or 0))
        if not devices or (devices[0].value or 0) < WEAK_P99_MS:
            continue
        submitters = [r for r in top(run, "processes") if r.labels.get("disk") == devices[0].key]
        submitter = submitters[0] if submitters else None
        proc = entry_proc(submitter) if submitter else None
        name = _file_io_name(proc)
        asked = any(r.result.program_name == name for r in probe_runs(evidence, "file_io"))
        out.append(SlowDiskFact(run, devices[0], submitter, proc, asked))
    return out


def score(fact: SlowDiskFact) -> float:
    return STRONG if fact.p99 >= STRONG_P99_MS else WEAK


def next_step(fact: SlowDiskFact) -> NextStep | None:
    proc = fact.proc
    if not (proc and proc.pid and not fact.asked):
        return None
    return NextStep(
        why=f"which files {proc.label()} reads and writes",
        programs=[
            probe(_file_io_name(proc), "file_io", f"file I/O of pid {proc.pid}", pid=proc.pid)
        ],
    )


def render(fact: SlowDiskFact, strength: float, next_step: NextStep | None) -> Finding:
    run, device, proc, submitter = fact.run, fact.device.key, fact.proc, fact.submitter
    who = (
        f"; top submitter {submitter.key} with {submitter.count} I/Os" if proc and submitter else ""
    )
    return Finding(
        analyzer="disk_latency",
        category="disk",
        score=strength,
        culprit=f"{device}" + (f" ({proc.label()})" if proc else ""),
        root_cause=(
            f"Block device {device} on {run.host} is slow: I/O p99 {fact.p99:.1f} ms over "
            f"{fact.device.count} I/Os in {seconds(run):.1f}s{who}."
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


@register("disk_latency")
def disk_latency(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact), next_step(fact)) for fact in facts(evidence)]
