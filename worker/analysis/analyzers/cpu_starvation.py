"""Runnable tasks waiting for a CPU (runq_latency) while a few processes hold the CPUs.

Facts: the first runq_latency run's run-queue p99 (all waits, or the worst waiter's own when it
waited `WAITER_MIN_WAITS` times or more); the holders (its on-CPU table at `HOLDER_PCT` or more,
plus the host-wide CPU profile's and pidstat's at `STRONG_HOLDER_PCT` or more); the processes the
waiters waited behind (the probe's `behind` table: who was preempted to let them run; under
`BEHIND_MIN_SHARE` of the window charged to one not at all), both trimmed to the top row when
the result had to be shortened; and the profile of the lead culprit if the planner ran it. No
holder and nobody waited behind, or a p99 under `WEAK_P99_MS` -> no fact (busy_process covers
a hog nobody waits behind).
`score()`: p99 >= `STRONG_P99_MS` with a holder at `STRONG_HOLDER_PCT` of a CPU or one charged
`BEHIND_SHARE` of the window -> `STRONG`; else `WEAK`; a profile that lands in the lead confirms
it (+`PROFILED`).
`render()`: the p99, who the waiters waited behind, who is on CPU, the main hog (behind first,
then the on-CPU table) and its hottest function.
Next: a CPU profile of the lead (cpu_profile filtered to its pid) and `ps` of the culprits,
unless that profile already ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.models import TopEntry
from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.analyzers.busy_process import pidstat_rows
from worker.analysis.evidence import (
    ProbeRun,
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
STRONG, WEAK = 0.85, 0.6
PROFILED = 0.05  # a profile of the lead that confirms it
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


@dataclass
class StarvationFact:
    run: ProbeRun
    p99: float  # run-queue p99 of all waits
    waits: int
    worst_p99: float  # the larger of `p99` and the worst waiter's own (when it waited often)
    holders: list[tuple[Proc, float]]  # on CPU, % of a CPU, busiest first
    behind: list[tuple[Proc, float]]  # waited behind, ms of waits
    waiters: list[TopEntry]
    profile: str | None  # the lead's profile line, when the planner already ran it

    @property
    def window_ms(self) -> float:
        return seconds(self.run) * 1000

    @property
    def lead(self) -> Proc:
        return self.behind[0][0] if self.behind else self.holders[0][0]

    @property
    def culprits(self) -> list[Proc]:
        behind = [p for p, _ in self.behind]
        return behind + [p for p, _ in self.holders if p not in set(behind)]


def _profile_name(proc: Proc) -> str:
    return f"profile_pid_{proc.pid}"


def facts(evidence: Evidence) -> list[StarvationFact]:
    out = []
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
        lead = behind[0][0] if behind else holders[0][0]
        profile = _profile_line(evidence, _profile_name(lead))
        waits = int(stats.count if stats else 0)
        out.append(StarvationFact(run, p99, waits, worst_p99, holders, behind, waiters, profile))
    return out


def score(fact: StarvationFact) -> float:
    strong = fact.worst_p99 >= STRONG_P99_MS and (
        (fact.holders and fact.holders[0][1] >= STRONG_HOLDER_PCT)
        or (fact.behind and fact.behind[0][1] >= BEHIND_SHARE * fact.window_ms)
    )
    strength = STRONG if strong else WEAK
    if fact.profile is not None:
        strength = min(1.0, strength + PROFILED)
    return strength


def next_step(fact: StarvationFact) -> NextStep | None:
    if fact.profile is not None:
        return None
    lead = fact.lead
    pids = ",".join(str(p.pid) for p in fact.culprits[:4])
    return NextStep(
        why=f"what {lead.label()} spends its CPU on, and what the hogs are",
        commands=[
            cmd(
                f"hogs_{lead.pid}",
                f"ps -o pid,ppid,comm,pcpu,nice,etimes,args -p {pids}",
                "the processes holding the CPUs",
            )
        ],
        programs=[
            probe(_profile_name(lead), "cpu_profile", f"profile of pid {lead.pid}", pid=lead.pid)
        ],
    )


def render(fact: StarvationFact, strength: float, next_step: NextStep | None) -> Finding:
    run, lead, waiters = fact.run, fact.lead, fact.waiters
    worst = f"; worst waiter {waiters[0].key} p99 {waiters[0].value or 0:.1f} ms" if waiters else ""
    named = _holders(fact.holders[:4])
    cause = (
        f"CPU starvation on {run.host}: runnable tasks wait for a CPU "
        f"(run-queue p99 {fact.p99:.1f} ms{worst})"
    )
    if fact.behind:
        cause += ", mostly behind " + ", ".join(
            f"{proc.label()} ({ms:.0f} ms of waits)" for proc, ms in fact.behind[:3]
        )
    if named:
        cause += f"; on CPU: {named}"
    cause += f". The main hog is {lead.label()}."
    if fact.profile is not None:
        cause += f" Its profile: {fact.profile.split(': ', 1)[1]}."
    behind_text = ", ".join(f"{p.label()} {ms:.0f} ms" for p, ms in fact.behind[:3])
    lines = [
        f"{run.key} on {run.host}: run-queue p99 {fact.p99:.1f} ms over "
        f"{fact.waits} waits in {run.result.duration_s:.1f}s; "
        f"waits behind: {behind_text or '?'}; "
        f"on CPU: {named or '?'}. {run.result.summary}"
    ]
    if fact.profile is not None:
        lines.append(fact.profile)
    return Finding(
        analyzer="cpu_starvation",
        category="performance",
        score=strength,
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


@register("cpu_starvation")
def cpu_starvation(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact), next_step(fact)) for fact in facts(evidence)]
