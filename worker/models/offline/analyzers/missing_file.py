"""Open storms on a path that fails (ENOENT: missing; EACCES/EPERM: not allowed), from the
file_opens probe (or syscall_errors when only it ran).

Score: one path failing >= 50 times at >= 10/s -> 0.85; >= 10 times -> 0.6; fewer -> 0.3.
Other storms (>= 50 failures at >= 10/s; a host can have more than one broken service) are named
too.
Next: the same probe filtered to the failing pid, and a listing of the path's directory. The
filtered run failing on the same path confirms it (+0.1); the listing is quoted as found.
"""

from __future__ import annotations

import posixpath
import shlex

from worker.models.base import Evidence
from worker.models.offline.analyzers import Finding, NextStep, register
from worker.models.offline.evidence import (
    ProbeRun,
    Proc,
    cmd,
    command_output,
    parse_proc,
    probe,
    probe_runs,
    seconds,
    top,
)

MAX_NAMED = 3
STORM_MIN = 50  # another storm named alongside: this many failures at STORM_RATE per second
STORM_RATE = 10.0
_MEANING = {
    "ENOENT": "does not exist",
    "ENOTDIR": "has a missing directory in its path",
    "EACCES": "is not readable by it (permission denied)",
    "EPERM": "is not allowed to it (operation not permitted)",
}


class _Storm:
    def __init__(self, run: ProbeRun, path: str, errno: str, count: int, proc: Proc) -> None:
        self.run, self.path, self.errno, self.count, self.proc = run, path, errno, count, proc

    @property
    def rate(self) -> float:
        return self.count / seconds(self.run)


def _storms(evidence: Evidence) -> list[_Storm]:
    storms = []
    wide = [r for r in probe_runs(evidence, "file_opens") if not _is_filtered(r)]
    for run in wide[:1]:
        for row in top(run, "failures")[:MAX_NAMED]:
            proc = parse_proc(str(row.labels.get("top_process", "")))
            errno = str(row.labels.get("errno", ""))
            if proc is not None and errno in _MEANING:
                storms.append(_Storm(run, str(row.labels.get("path", "")), errno, row.count, proc))
    for run in probe_runs(evidence, "syscall_errors")[:1]:
        for row in top(run, "errors")[:MAX_NAMED]:
            labels = row.labels
            errno, path = str(labels.get("errno", "")), str(labels.get("path", ""))
            pid = labels.get("pid")
            if errno in _MEANING and path and isinstance(pid, int):
                proc = Proc(str(labels.get("comm", "?")), pid)
                storms.append(_Storm(run, path, errno, row.count, proc))
    unique: dict[tuple[int | None, str], _Storm] = {}
    for storm in sorted(storms, key=lambda s: (s.run.result.probe != "file_opens", -s.count)):
        unique.setdefault((storm.proc.pid, storm.path), storm)
    return sorted(unique.values(), key=lambda s: -s.count)


def _is_filtered(run: ProbeRun) -> bool:
    return run.result.program_name.startswith("opens_pid_")


def _confirmed(evidence: Evidence, name: str, path: str) -> int:
    """Failures on `path` in the filtered run named `name` (-1 when it has not run)."""
    runs = [r for r in probe_runs(evidence, "file_opens") if r.result.program_name == name]
    if not runs:
        return -1
    return sum(row.count for row in top(runs[-1], "failures") if row.labels.get("path") == path)


@register("missing_file")
def missing_file(evidence: Evidence) -> list[Finding]:
    storms = _storms(evidence)
    if not storms:
        return []
    storm = storms[0]
    also = [s for s in storms[1:] if s.count >= STORM_MIN and s.rate >= STORM_RATE]
    proc, path, run = storm.proc, storm.path, storm.run
    score = 0.85 if storm.count >= 50 and storm.rate >= 10 else 0.6 if storm.count >= 10 else 0.3
    meaning = _MEANING[storm.errno]
    cause = (
        f"{proc.label()} on {run.host} keeps trying to open {path}, which {meaning}: "
        f"{storm.count} failed opens ({storm.errno}) in {seconds(run):.1f}s "
        f"({storm.rate:.0f}/s)."
    )
    evidence_lines = [
        f"{run.key} on {run.host}: {storm.count} opens of {path} failed with {storm.errno} "
        f"by {proc.label()} in {seconds(run):.1f}s. {run.result.summary}"
    ]
    if also:
        more = "; ".join(
            f"{s.proc.label()} on {s.path} ({s.errno}) x{s.count} ({s.rate:.0f}/s)" for s in also
        )
        cause += f" Also failing opens in a loop: {more}."
        evidence_lines.append(f"{run.key}: also {more}")
    name = f"opens_pid_{proc.pid}"
    directory = posixpath.dirname(path) or "/"
    listing_id = f"listing_pid_{proc.pid}"
    confirmed = _confirmed(evidence, name, path)
    next_step = None
    if confirmed < 0:
        next_step = NextStep(
            why=f"does {proc.label()} alone keep failing on {path}, and what is in {directory}?",
            commands=[cmd(listing_id, f"ls -la {shlex.quote(directory)}", "what exists there")],
            programs=[probe(name, "file_opens", f"opens by pid {proc.pid} only", pid=proc.pid)],
        )
    elif confirmed > 0:
        score = min(1.0, score + 0.1)
        cause += f" Filtered to pid {proc.pid}, the probe saw {confirmed} more failed opens."
        evidence_lines.append(f"{name} (pid {proc.pid} only): {confirmed} failed opens of {path}")
    listing = command_output(evidence, listing_id)
    if listing is not None:
        entries = [line.split()[-1] for line in listing.stdout.splitlines()[1:] if line.split()]
        shown = ", ".join(e for e in entries if e not in {".", ".."})[:300] or "nothing"
        cause += f" {directory} holds: {shown}."
    return [
        Finding(
            analyzer="missing_file",
            category="file_io",
            score=score,
            culprit=f"{proc.label()} -> {path}",
            root_cause=cause,
            resolution_plan=(
                f"1. Restore {path} (deploy the missing file or fix its permissions), or point "
                f"{proc.comm} at the right path in its configuration or arguments.\n"
                f"2. Check how {proc.comm} was started (`ps -o args -p {proc.pid}`) for a wrong "
                "working directory or path option.\n"
                "3. Make it back off between retries instead of spinning on the open."
            ),
            ebpf_evidence="\n".join(evidence_lines),
            next=next_step,
        )
    ]
