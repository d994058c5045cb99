"""Runnable tasks waiting for a CPU (runq_latency) while a few processes hold the CPUs.

Score: run-queue p99 (all waits, or the worst waiter's own when it waited `WAITER_MIN_WAITS`
times or more) >= 10 ms with a holder at >= 40% of
a CPU -> 0.85; >= 5 ms with a holder at >= 30% -> 0.6; otherwise no finding (busy_process covers
a hog nobody waits behind). The culprits are the processes the waiters waited behind (the
probe's `behind` table: who was preempted to let them run; >= 25% of the window charged to one
counts like a 40% holder, < 10% not at all), then the on-CPU table (both trimmed to the top
row when the result had to be shortened).
Next: a CPU profile of the top holder (cpu_profile filtered to its pid) and `ps` of the holders;
a profile that lands in the holder confirms it (+0.05) and names its hottest function.
"""

from __future__ import annotations

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.analyzers.busy_process import pidstat_rows
from worker.analysis.evidence import (
    Proc,
    cmd,
    entry_proc,
    own_commands,
    probe,
    probe_runs,
    seconds,
    top,
)
from worker.backends.base import Evidence

STRONG_P99_MS = 10.0
STRONG_HOLDER_PCT = 40.0
WEAK_P99_MS = 5.0
HOLDER_PCT = 30.0
BEHIND_SHARE = 0.25  # waits charged to one process, as a share of the probe window
BEHIND_MIN_SHARE = 0.1  # below this, waiting behind it is not starvation
WAITER_MIN_WAITS = 50
FILTERED_PREFIXES = ("profile_pid_", "focus_")  # the planner's runs filtered to one process


def _holders(rows: list[tuple[Proc, float]]) -> str:
    return ", ".join(f"{proc.label()} {pct:.0f}% of a CPU" for proc, pct in rows)


def _profile_line(evidence: Evidence, name: str) -> str | None:
    runs = [r for r in probe_runs(evidence, "cpu_profile") if r.result.program_name == name]
    if not runs:
        return None
    functions = top(runs[-1], "functions")
    hottest = (
        f"hottest function {functions[0].key} ({functions[0].value or 0:.0f}% of samples)"
        if functions
        else "no function resolved"
    )
    return f"{name}: {runs[-1].result.event_count} samples, {hottest}"


def profiled_holders(evidence: Evidence) -> list[tuple[Proc, float]]:
    """Processes at `STRONG_HOLDER_PCT` or more of a CPU in the host-wide CPU profile, or in the
    triage's `pidstat` second: the run-queue result's own on-CPU table keeps only its top row
    when it had to be shortened, and a second hog as busy as the first must not go unnamed."""
    out: dict[Proc, float] = {}
    for result in evidence.results:
        now = result.command_results.get("cpu_now")
        if now is not None and now.ran:
            for pid, comm, pct in pidstat_rows(now.stdout):
                if pct >= STRONG_HOLDER_PCT and comm not in own_commands(evidence):
                    sampled = Proc(comm[:15], int(pid))
                    out[sampled] = max(pct, out.get(sampled, 0.0))
    for run in probe_runs(evidence, "cpu_profile"):
        if run.result.program_name.startswith(FILTERED_PREFIXES):
            continue  # a profile filtered to one process says nothing about the others
        for row in top(run, "processes"):
            proc = entry_proc(row)
            pct = float(row.labels.get("cpu_pct", 0) or 0)
            if proc is not None and proc.pid and pct >= STRONG_HOLDER_PCT:
                out[proc] = max(pct, out.get(proc, 0.0))
    return list(out.items())


@register("cpu_starvation")
def cpu_starvation(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "runq_latency")[:1]:
        stats = run.result.aggregates.latency.get("runq")
        p99 = (stats.p99 or 0.0) if stats is not None else 0.0
        holders = []
        for row in top(run, "on_cpu"):
            proc = entry_proc(row)
            pct = float(row.labels.get("cpu_pct", 0) or 0)
            if proc is not None and proc.pid and pct >= HOLDER_PCT:
                holders.append((proc, pct))
        holders += [h for h in profiled_holders(evidence) if h[0] not in {p for p, _ in holders}]
        holders.sort(key=lambda h: -h[1])
        window_ms = seconds(run) * 1000
        behind = [
            (proc, float(row.value or 0))
            for row in top(run, "behind")
            if (proc := entry_proc(row))
            and proc.pid
            and float(row.value or 0) >= BEHIND_MIN_SHARE * window_ms
        ]
        waiters = top(run, "waiters")
        # a waiter's own p99 counts when it waited often enough for a p99 to mean something (a
        # short-lived child with a dozen waits is not a starved service)
        worst_p99 = max(
            [p99, *(float(w.value or 0) for w in waiters[:1] if w.count >= WAITER_MIN_WAITS)]
        )
        if not (holders or behind) or worst_p99 < WEAK_P99_MS:
            continue
        strong = worst_p99 >= STRONG_P99_MS and (
            (holders and holders[0][1] >= STRONG_HOLDER_PCT)
            or (behind and behind[0][1] >= BEHIND_SHARE * window_ms)
        )
        score = 0.85 if strong else 0.6
        worst = (
            f"; worst waiter {waiters[0].key} p99 {waiters[0].value or 0:.1f} ms" if waiters else ""
        )
        lead = behind[0][0] if behind else holders[0][0]
        culprits = [p for p, _ in behind] + [
            p for p, _ in holders if p not in {b for b, _ in behind}
        ]
        named = _holders(holders[:4])
        cause = (
            f"CPU starvation on {run.host}: runnable tasks wait for a CPU "
            f"(run-queue p99 {p99:.1f} ms{worst})"
        )
        if behind:
            cause += ", mostly behind " + ", ".join(
                f"{proc.label()} ({ms:.0f} ms of waits)" for proc, ms in behind[:3]
            )
        if named:
            cause += f"; on CPU: {named}"
        cause += f". The main hog is {lead.label()}."
        profile_name = f"profile_pid_{lead.pid}"
        profile = _profile_line(evidence, profile_name)
        if profile is not None:
            score = min(1.0, score + 0.05)
            cause += f" Its profile: {profile.split(': ', 1)[1]}."
        pids = ",".join(str(p.pid) for p in culprits[:4])
        next_step = (
            NextStep(
                why=f"what {lead.label()} spends its CPU on, and what the hogs are",
                commands=[
                    cmd(
                        f"hogs_{lead.pid}",
                        f"ps -o pid,ppid,comm,pcpu,nice,etimes,args -p {pids}",
                        "the processes holding the CPUs",
                    )
                ],
                programs=[
                    probe(profile_name, "cpu_profile", f"profile of pid {lead.pid}", pid=lead.pid)
                ],
            )
            if profile is None
            else None
        )
        behind_text = ", ".join(f"{p.label()} {ms:.0f} ms" for p, ms in behind[:3])
        lines = [
            f"{run.key} on {run.host}: run-queue p99 {p99:.1f} ms over "
            f"{int(stats.count if stats else 0)} waits in {run.result.duration_s:.1f}s; "
            f"waits behind: {behind_text or '?'}; "
            f"on CPU: {named or '?'}. {run.result.summary}"
        ]
        if profile is not None:
            lines.append(profile)
        findings.append(
            Finding(
                analyzer="cpu_starvation",
                category="performance",
                score=score,
                culprit=lead.label(),
                root_cause=cause,
                resolution_plan=(
                    f"1. Find out why {lead.comm} spins (its profile; is it stuck in a loop?).\n"
                    f"2. Throttle or lower it (`renice`, a CPU quota in its cgroup) or restart "
                    "it: a person's decision.\n"
                    "3. Give latency-sensitive services reserved CPUs if hogs are expected."
                ),
                ebpf_evidence="\n".join(lines),
                next=next_step,
            )
        )
    return findings
