"""Threads of one process waiting on each other's locks: futex waits by pid (lock_contention).

Timed-out waits are left out (an idle pool polling with a timeout is not contention). Score:
>= 100 contended waits/s and >= 0.5 s of waiting per second (threads summed) -> 0.85; >= 20
waits/s -> 0.6; fewer -> no finding. Next: the probe filtered to that pid and its threads'
states (`ps -L ... wchan`); the filtered run seeing the same waits confirms it (+0.1).
"""

from __future__ import annotations

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    ProbeRun,
    cmd,
    command_output,
    entry_proc,
    probe,
    probe_runs,
    seconds,
    top,
)
from worker.backends.base import Evidence

STRONG_WAITS_PER_S = 100.0
WEAK_WAITS_PER_S = 20.0


def _timeouts(run: ProbeRun, pid: int) -> int:
    return sum(
        int(row.labels.get("timeouts", 0) or 0)
        for row in top(run, "futex_waiters")
        if row.labels.get("pid") == pid
    )


def _top_lock(run: ProbeRun, pid: int) -> str:
    for row in top(run, "futex_waiters"):
        if row.labels.get("pid") == pid:
            return row.key.split(") ", 1)[-1]
    return "?"


@register("lock_contention")
def lock_contention(evidence: Evidence) -> list[Finding]:
    runs = probe_runs(evidence, "lock_contention")
    wide = [r for r in runs if not r.result.program_name.startswith("locks_pid_")]
    if not wide:
        return []
    run = wide[0]
    candidates = []
    for row in top(run, "processes"):
        proc = entry_proc(row)
        if proc is None or proc.pid is None:
            continue
        contended = row.count - _timeouts(run, proc.pid)
        candidates.append((row, contended / seconds(run), proc, contended))
    candidates.sort(key=lambda c: -c[1])
    if not candidates or candidates[0][1] < WEAK_WAITS_PER_S:
        return []
    row, rate, proc, contended = candidates[0]
    also = "; ".join(
        f"{p.label()} {r:.0f} waits/s" for _, r, p, _ in candidates[1:3] if r >= STRONG_WAITS_PER_S
    )
    wait_ms = float(row.value or 0.0)
    waiting_share = wait_ms / 1000 / seconds(run)
    score = 0.85 if rate >= STRONG_WAITS_PER_S and waiting_share >= 0.5 else 0.6
    lock = _top_lock(run, proc.pid or 0)
    p99 = row.labels.get("p99_ms", "?")
    cause = (
        f"Lock contention in {proc.label()} on {run.host}: its threads waited "
        f"{wait_ms / 1000:.1f} s in {contended} futex waits in {seconds(run):.1f}s "
        f"({rate:.0f}/s, p99 {p99} ms), mostly on {lock}: they serialise on one lock "
        "instead of working."
    )
    lines = [
        f"{run.key} on {run.host}: {proc.label()} {contended} contended futex waits, "
        f"{wait_ms:.0f} ms waited (p99 {p99} ms), top lock {lock}. {run.result.summary}"
    ]
    if also:
        cause += f" Also contended: {also}."
        lines.append(f"{run.key}: also contended: {also}")
    name = f"locks_pid_{proc.pid}"
    threads_id = f"threads_{proc.pid}"
    filtered = [r for r in runs if r.result.program_name == name]
    next_step = None
    if not filtered:
        next_step = NextStep(
            why=f"do {proc.label()}'s threads keep waiting on the same lock, and in what state?",
            commands=[
                cmd(
                    threads_id,
                    f"ps -L -o tid,comm,stat,pcpu,wchan:32 -p {proc.pid}",
                    "its threads and where they wait",
                )
            ],
            programs=[probe(name, "lock_contention", f"waits of pid {proc.pid}", pid=proc.pid)],
        )
    else:
        again = int(filtered[-1].result.aggregates.totals.get("futex_waits", 0) or 0)
        if again >= WEAK_WAITS_PER_S * seconds(filtered[-1]):
            score = min(1.0, score + 0.1)
            lines.append(f"{name} (pid {proc.pid} only): {filtered[-1].result.summary}")
            cause += f" Filtered to pid {proc.pid}, the probe saw {again} more futex waits."
    threads = command_output(evidence, threads_id)
    if threads is not None:
        rows = threads.stdout.splitlines()[1:]
        in_futex = sum(1 for line in rows if "futex" in line)
        cause += f" {in_futex} of its {len(rows)} threads sat in a futex wait when listed."
    return [
        Finding(
            analyzer="lock_contention",
            category="locks",
            score=score,
            culprit=f"{proc.label()} {lock}",
            root_cause=cause,
            resolution_plan=(
                f"1. Find the lock in {proc.comm}'s code (address {lock}; a stack of a waiting "
                "thread with gdb or the cpu_profile probe) and what is done while holding it.\n"
                "2. Shorten the critical section or split the lock; fewer worker threads "
                "relieve it meanwhile."
            ),
            ebpf_evidence="\n".join(lines),
            next=next_step,
        )
    ]
