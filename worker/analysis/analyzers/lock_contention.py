"""Threads of one process waiting on each other's locks: futex waits by pid (lock_contention).

Facts: from the first system-wide run, the process with the most contended futex waits per
second (timed-out waits are left out: an idle pool polling with a timeout is not contention):
its waits, the time waited, p99, the lock it waits on most, the next processes above
`STRONG_WAITS_PER_S`; the run filtered to its pid (`locks_pid_<pid>`) and its threads' listing
(`threads_<pid>`) when they ran.
`score()`: `STRONG_WAITS_PER_S` or more waits/s and `WAITING_SHARE` s or more of waiting per
second (threads summed) -> `CONTENDED`; `WEAK_WAITS_PER_S` or more -> `SOME`; fewer -> no
finding (no fact). The filtered run seeing `WEAK_WAITS_PER_S` again confirms it (+`CONFIRMED`,
at most `SCORE_MAX`).
`render()`: the process, its waits and the time waited, the lock, what the filtered run and the
threads' states add. Next: the probe filtered to that pid and its threads' states
(`ps -L ... wchan`).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    ProbeRun,
    Proc,
    cmd,
    command_output,
    entry_proc,
    probe,
    probe_runs,
    seconds,
    top,
)
from worker.backends.base import Evidence
from worker.protocol import CommandResult

STRONG_WAITS_PER_S = 100.0
WEAK_WAITS_PER_S = 20.0
WAITING_SHARE = 0.5  # seconds waited per second of the window, threads summed
CONTENDED, SOME = 0.85, 0.6
CONFIRMED, SCORE_MAX = 0.1, 1.0
ALSO_SHOWN = 2  # the next contended processes named beside the first


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


@dataclass
class LockFact:
    run: ProbeRun
    proc: Proc
    rate: float  # contended waits per second
    contended: int  # futex waits, timed-out ones left out
    wait_ms: float  # time waited, threads summed
    p99: str | int | float
    lock: str  # the lock (futex address) waited on most
    also: str  # the next processes above STRONG_WAITS_PER_S, "proc N waits/s; ..."
    filtered: ProbeRun | None  # the last run filtered to the pid
    threads: CommandResult | None  # `ps -L ... wchan` of the pid

    @property
    def probe_name(self) -> str:
        return f"locks_pid_{self.proc.pid}"

    @property
    def threads_id(self) -> str:
        return f"threads_{self.proc.pid}"

    @property
    def waiting_share(self) -> float:
        return self.wait_ms / 1000 / seconds(self.run)

    @property
    def again(self) -> int:
        """Futex waits the filtered run saw."""
        if self.filtered is None:
            return 0
        return int(self.filtered.result.aggregates.totals.get("futex_waits", 0) or 0)

    @property
    def confirmed(self) -> bool:
        return self.filtered is not None and self.again >= WEAK_WAITS_PER_S * seconds(self.filtered)


def facts(evidence: Evidence) -> list[LockFact]:
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
    filtered = [r for r in runs if r.result.program_name == f"locks_pid_{proc.pid}"]
    return [
        LockFact(
            run=run,
            proc=proc,
            rate=rate,
            contended=contended,
            wait_ms=float(row.value or 0.0),
            p99=row.labels.get("p99_ms", "?"),
            lock=_top_lock(run, proc.pid or 0),
            also="; ".join(
                f"{p.label()} {r:.0f} waits/s"
                for _, r, p, _ in candidates[1 : 1 + ALSO_SHOWN]
                if r >= STRONG_WAITS_PER_S
            ),
            filtered=filtered[-1] if filtered else None,
            threads=command_output(evidence, f"threads_{proc.pid}"),
        )
    ]


def score(fact: LockFact) -> float:
    strength = (
        CONTENDED
        if fact.rate >= STRONG_WAITS_PER_S and fact.waiting_share >= WAITING_SHARE
        else SOME
    )
    if fact.confirmed:
        strength = min(SCORE_MAX, strength + CONFIRMED)
    return strength


def next_step(fact: LockFact) -> NextStep | None:
    """Without a run filtered to the pid: that run and its threads' states."""
    if fact.filtered is not None:
        return None
    proc = fact.proc
    return NextStep(
        why=f"do {proc.label()}'s threads keep waiting on the same lock, and in what state?",
        commands=[
            cmd(
                fact.threads_id,
                f"ps -L -o tid,comm,stat,pcpu,wchan:32 -p {proc.pid}",
                "its threads and where they wait",
            )
        ],
        programs=[
            probe(fact.probe_name, "lock_contention", f"waits of pid {proc.pid}", pid=proc.pid)
        ],
    )


def render(fact: LockFact, strength: float, step: NextStep | None) -> Finding:
    run, proc, lock, p99 = fact.run, fact.proc, fact.lock, fact.p99
    cause = (
        f"Lock contention in {proc.label()} on {run.host}: its threads waited "
        f"{fact.wait_ms / 1000:.1f} s in {fact.contended} futex waits in {seconds(run):.1f}s "
        f"({fact.rate:.0f}/s, p99 {p99} ms), mostly on {lock}: they serialise on one lock "
        "instead of working."
    )
    lines = [
        f"{run.key} on {run.host}: {proc.label()} {fact.contended} contended futex waits, "
        f"{fact.wait_ms:.0f} ms waited (p99 {p99} ms), top lock {lock}. {run.result.summary}"
    ]
    if fact.also:
        cause += f" Also contended: {fact.also}."
        lines.append(f"{run.key}: also contended: {fact.also}")
    if fact.filtered is not None and fact.confirmed:
        lines.append(f"{fact.probe_name} (pid {proc.pid} only): {fact.filtered.result.summary}")
        cause += f" Filtered to pid {proc.pid}, the probe saw {fact.again} more futex waits."
    if fact.threads is not None:
        rows = fact.threads.stdout.splitlines()[1:]
        in_futex = sum(1 for line in rows if "futex" in line)
        cause += f" {in_futex} of its {len(rows)} threads sat in a futex wait when listed."
    return Finding(
        analyzer="lock_contention",
        category="locks",
        score=strength,
        culprit=f"{proc.label()} {lock}",
        root_cause=cause,
        resolution_plan=(
            f"1. Find the lock in {proc.comm}'s code (address {lock}; a stack of a waiting "
            "thread with gdb or the cpu_profile probe) and what is done while holding it.\n"
            "2. Shorten the critical section or split the lock; fewer worker threads "
            "relieve it meanwhile."
        ),
        ebpf_evidence="\n".join(lines),
        next=step,
    )


@register("lock_contention")
def lock_contention(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact), next_step(fact)) for fact in facts(evidence)]
