"""Runnable tasks waiting for a CPU (runq_latency) while a few processes hold the CPUs.

Facts: the first runq_latency run's run-queue p99 (all waits, or the worst waiter's own when it
waited `WAITER_MIN_WAITS` times or more); the holders (its on-CPU table at `HOLDER_PCT` or more,
plus the host-wide CPU profile's and pidstat's at `STRONG_HOLDER_PCT` or more); the processes the
waiters waited behind (the probe's `behind` table: who was preempted to let them run; under
`BEHIND_MIN_SHARE` of the window charged to one not at all), both trimmed to the top row when
the result had to be shortened; and the profile of the lead culprit if the planner ran it. No
holder and nobody waited behind, or a p99 under `WEAK_P99_MS` -> no fact (busy_process covers
a hog nobody waits behind).
`score()`: p99 >= `STRONG_P99_MS` with a normal-priority holder at `STRONG_HOLDER_PCT` of a CPU
or one charged `BEHIND_SHARE` of the window -> `STRONG`; else `WEAK`; a profile that lands in the
lead confirms it (+`PROFILED`).
`render()`: the p99, who the waiters waited behind, who is on CPU, the main hog (behind first,
then the on-CPU table; a process running at low priority, nice > 0 by `ps`, comes after the
normal-priority hogs: it was set to yield, and the scheduler preempts it for them, so it is rarely
what starves a normal service) and its hottest function.
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
VICTIM_MIN_WAITS = 20  # a filtered run's process: fewer waits, each of them its own
VICTIM_WAIT_SHARE = 0.05  # of the window spent runnable but waiting: a starved process
STRONG, WEAK = 0.85, 0.6
PROFILED = 0.05  # a profile of the lead that confirms it
FILTERED_PREFIXES = ("profile_pid_", "focus_")  # the planner's runs filtered to one process


def niced_pids(evidence: Evidence) -> set[int]:
    """Pids a `ps` listing shows running at low priority: `N` in STAT, or NI above 0."""
    out: set[int] = set()
    for result in evidence.results:
        for command in result.command_results.values():
            lines = command.stdout.splitlines() if command.ran else []
            header = lines[0].split() if lines else []
            if "PID" not in header or not ({"STAT", "NI"} & set(header)):
                continue
            at = header.index("PID")
            for line in lines[1:]:
                fields = line.split()
                if len(fields) < len(header) or not fields[at].isdigit():
                    continue
                stat = fields[header.index("STAT")] if "STAT" in header else ""
                nice = fields[header.index("NI")] if "NI" in header else "0"
                if "N" in stat or (nice.lstrip("-").isdigit() and int(nice) > 0):
                    out.add(int(fields[at]))
    return out


def _normal_first(rows: list[tuple[Proc, float]], niced: set[int]) -> list[tuple[Proc, float]]:
    """The same rows, normal-priority processes first (a stable sort: each group keeps its
    order)."""
    return sorted(rows, key=lambda row: row[0].pid in niced)


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
class VictimWaits:
    """A run-queue run filtered to one process (the planner's focus on the process a symptom
    names): its own waits for a CPU and whom it waited behind."""

    proc: Proc
    p99: float
    waits: int
    behind: list[tuple[Proc, float]]
    total_ms: float = 0.0
    max_ms: float = 0.0


def _starved(p99: float, total_ms: float, max_ms: float, window_ms: float) -> bool:
    """A process's own waits for a CPU that hurt: a p99 of `WEAK_P99_MS` or more, or
    `VICTIM_WAIT_SHARE` of the window spent runnable but waiting, with spikes of
    `STRONG_P99_MS` or more."""
    if p99 >= WEAK_P99_MS:
        return True
    return total_ms >= VICTIM_WAIT_SHARE * window_ms and max_ms >= STRONG_P99_MS


def victim_waits(evidence: Evidence) -> list[VictimWaits]:
    """The filtered runs' waiters whose waits hurt (`_starved`) behind someone, longest p99
    first."""
    out = []
    for run in probe_runs(evidence, "runq_latency"):
        if not run.result.program_name.startswith(FILTERED_PREFIXES):
            continue
        waiters = top(run, "waiters")
        proc = entry_proc(waiters[0]) if waiters else None
        behind = [
            (who, float(row.value or 0))
            for row in top(run, "behind")
            if (who := entry_proc(row)) and who.pid
        ]
        if proc is None or not behind:
            continue
        labels = waiters[0].labels
        p99 = float(waiters[0].value or 0)
        total = float(labels.get("total_wait_ms", 0) or 0)
        worst = float(labels.get("max_ms", 0) or 0)
        if _starved(p99, total, worst, seconds(run) * 1000):
            out.append(VictimWaits(proc, p99, waiters[0].count, behind, total, worst))
    return sorted(out, key=lambda v: -v.p99)


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
    niced: set[int]  # pids running at low priority (nice > 0)
    victim: VictimWaits | None = None  # a process the planner looked at, waiting for a CPU

    @property
    def window_ms(self) -> float:
        return seconds(self.run) * 1000

    @property
    def lead(self) -> Proc:
        if self.victim is not None:  # whom the process in question waited behind, first
            return lead_of(self.victim.behind, self.holders, self.niced)
        return lead_of(self.behind, self.holders, self.niced)

    @property
    def culprits(self) -> list[Proc]:
        behind = [p for p, _ in (self.victim.behind if self.victim else [])]
        behind += [p for p, _ in self.behind if p not in set(behind)]
        everyone = behind + [p for p, _ in self.holders if p not in set(behind)]
        lead = self.lead
        return [lead, *(p for p in everyone if p != lead)]


def lead_of(
    behind: list[tuple[Proc, float]], holders: list[tuple[Proc, float]], niced: set[int]
) -> Proc:
    """The main hog: the first normal-priority process waited behind, else the first
    normal-priority holder at `STRONG_HOLDER_PCT`, else whoever was waited behind most (or the
    busiest holder)."""
    for proc, _ in behind:
        if proc.pid not in niced:
            return proc
    for proc, pct in holders:
        if proc.pid not in niced and pct >= STRONG_HOLDER_PCT:
            return proc
    return behind[0][0] if behind else holders[0][0]


def _profile_name(proc: Proc) -> str:
    return f"profile_pid_{proc.pid}"


def facts(evidence: Evidence) -> list[StarvationFact]:
    out = []
    host_wide = [
        run
        for run in probe_runs(evidence, "runq_latency")
        if not run.result.program_name.startswith(FILTERED_PREFIXES)
    ]
    victims = victim_waits(evidence)
    for run in host_wide[:1]:
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
        victim = next((v for v in victims if v.waits >= VICTIM_MIN_WAITS), None)
        worst_p99 = max(
            [
                p99,
                *(float(w.value or 0) for w in waiters[:1] if w.count >= WAITER_MIN_WAITS),
                *([victim.p99] if victim is not None else []),
            ]
        )
        if not (holders or behind) or (worst_p99 < WEAK_P99_MS and victim is None):
            continue
        niced = niced_pids(evidence)
        lead = lead_of(victim.behind if victim else behind, holders, niced)
        profile = _profile_line(evidence, _profile_name(lead))
        waits = int(stats.count if stats else 0)
        out.append(
            StarvationFact(
                run, p99, waits, worst_p99, holders, behind, waiters, profile, niced, victim
            )
        )
    return out


def score(fact: StarvationFact) -> float:
    """`STRONG` needs a normal-priority hog: one at low priority (nice > 0) yields its CPU to
    normal tasks as soon as they wake, so it alone does not make a strong case of starvation."""
    holders = [pct for proc, pct in fact.holders if proc.pid not in fact.niced]
    behind = [ms for proc, ms in fact.behind if proc.pid not in fact.niced]
    strong = fact.worst_p99 >= STRONG_P99_MS and (
        any(pct >= STRONG_HOLDER_PCT for pct in holders)
        or any(ms >= BEHIND_SHARE * fact.window_ms for ms in behind)
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
    cause += "."
    victim = fact.victim
    if victim is not None:
        # the hogs it waited behind; the others it waited behind a little are in the evidence
        hogs = {p for p, _ in fact.holders} | {lead}
        shown = [(p, ms) for p, ms in victim.behind if p in hogs][:3] or victim.behind[:1]
        cause += (
            f" {victim.proc.label()} itself waited p99 {victim.p99:.1f} ms (max "
            f"{victim.max_ms:.0f} ms, {victim.total_ms:.0f} ms in all) for a CPU over "
            f"{victim.waits} waits, behind "
            + ", ".join(f"{p.label()} ({ms:.0f} ms)" for p, ms in shown)
            + "."
        )
    cause += f" The main hog is {lead.label()}."
    low = [p.label() for p in fact.culprits if p.pid in fact.niced and p != lead]
    if low:
        cause += (
            f" {', '.join(low[:2])} run{'s' if len(low) == 1 else ''} at low priority (nice > 0):"
            " the scheduler preempts it for normal-priority tasks."
        )
    if fact.profile is not None:
        cause += f" Its profile: {fact.profile.split(': ', 1)[1]}."
    behind_text = ", ".join(f"{p.label()} {ms:.0f} ms" for p, ms in fact.behind[:3])
    lines = [
        f"{run.key} on {run.host}: run-queue p99 {fact.p99:.1f} ms over "
        f"{fact.waits} waits in {run.result.duration_s:.1f}s; "
        f"waits behind: {behind_text or '?'}; "
        f"on CPU: {named or '?'}. {run.result.summary}"
    ]
    if victim is not None:
        lines.append(
            f"runq_latency filtered to {victim.proc.label()}: p99 {victim.p99:.1f} ms, max "
            f"{victim.max_ms:.0f} ms, {victim.total_ms:.0f} ms waited over {victim.waits} "
            "waits; behind " + ", ".join(f"{p.label()} {ms:.0f} ms" for p, ms in victim.behind[:3])
        )
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
