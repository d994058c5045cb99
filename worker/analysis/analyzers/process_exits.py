"""How processes end and who spawns them, from the process_exits probe: crash loops (which
signal, core dumped or not, who respawns), exit-code loops, and spawn churn by parent.

Facts: the probe's `exits` rows (comm, parent, outcome, signal, core, count, rate, lifetime)
and `spawners` rows (parent, forks, rate).
`score()`:
- a death by a crash signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL): `CRASH_REPEATED` when it
  happened `REPEAT_MIN` times or more, else `CRASH_ONCE`; SIGKILL (the OOM killer or an operator)
  and SIGTERM weigh `KILL_FACTOR` of that;
- a non-zero exit code repeated `REPEAT_MIN` times: `EXIT_LOOP` (`EXIT_LOOP_FAST` at
  `CHURN_FAST`/s or more);
- spawn churn: forks per second by one parent: `CHURN_FAST`/s -> `CHURN_HIGH`, `CHURN_SOME`/s ->
  `CHURN_MID`, else `CHURN_LOW` (an exec a second is background).
`render()`: the child, its parent, the outcome with the signal and the core bit, the count, the
rate and the mean lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import ProbeRun, parse_proc, probe_runs, seconds, top
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGSYS"})
KILL_SIGNALS = frozenset({"SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGPIPE"})
REPEAT_MIN = 3
CRASH_REPEATED, CRASH_ONCE = 0.9, 0.6
KILL_FACTOR = 0.6
EXIT_LOOP, EXIT_LOOP_FAST = 0.6, 0.75
CHURN_FAST, CHURN_SOME = 20.0, 5.0
CHURN_HIGH, CHURN_MID, CHURN_LOW = 0.8, 0.6, 0.3
CRASH_THEMES = (
    "crash", "segfault", "core", "dump", "dies", "died", "dying", "restart", "respawn", "flap",
    "killed", "signal", "keeps", "loop", "exit",
)  # fmt: skip
CHURN_THEMES = (
    "fork", "spawn", "process", "exec", "load", "slow", "cpu", "busy", "churn", "script",
    "short-lived", "cron",
)  # fmt: skip


@dataclass
class ExitFact:
    run: ProbeRun
    comm: str
    parent: str
    outcome: str
    signal: str
    core: str
    exit_code: int | None
    count: int
    mean_life_ms: float | None
    last_pid: int

    @property
    def rate(self) -> float:
        return self.count / seconds(self.run)


@dataclass
class SpawnFact:
    run: ProbeRun
    parent: str
    pid: int
    comm: str
    forks: int

    @property
    def rate(self) -> float:
        return self.forks / seconds(self.run)


def exit_facts(evidence: Evidence) -> list[ExitFact]:
    out = []
    for run in probe_runs(evidence, "process_exits"):
        for row in top(run, "exits"):
            labels = row.labels
            code = labels.get("exit_code")
            life = labels.get("mean_life_ms")
            last = labels.get("last_pid")
            out.append(
                ExitFact(
                    run,
                    str(labels.get("comm", "?")),
                    str(labels.get("parent", "unknown parent")),
                    str(labels.get("outcome", "")),
                    str(labels.get("signal", "")),
                    str(labels.get("core_dumped", "")),
                    code if isinstance(code, int) else None,
                    row.count,
                    float(life) if isinstance(life, int | float) else None,
                    last if isinstance(last, int) else 0,
                )
            )
    return out


def spawn_facts(evidence: Evidence) -> list[SpawnFact]:
    out = []
    for run in probe_runs(evidence, "process_exits"):
        for row in top(run, "spawners"):
            pid = row.labels.get("pid")
            if isinstance(pid, int):
                comm = str(row.labels.get("comm", "?"))
                out.append(SpawnFact(run, row.key, pid, comm, row.count))
    return out


def score_exit(fact: ExitFact) -> float:
    if fact.signal in CRASH_SIGNALS:
        return CRASH_REPEATED if fact.count >= REPEAT_MIN else CRASH_ONCE
    if fact.signal in KILL_SIGNALS:
        return (CRASH_REPEATED if fact.count >= REPEAT_MIN else CRASH_ONCE) * KILL_FACTOR
    if fact.exit_code and fact.count >= REPEAT_MIN:
        return EXIT_LOOP_FAST if fact.rate >= CHURN_SOME else EXIT_LOOP
    return 0.0


def score_spawn(fact: SpawnFact) -> float:
    if fact.rate >= CHURN_FAST:
        return CHURN_HIGH
    if fact.rate >= CHURN_SOME:
        return CHURN_MID
    return CHURN_LOW


def _life(fact: ExitFact) -> str:
    return f", living {fact.mean_life_ms:.0f} ms on average" if fact.mean_life_ms else ""


def render_exit(fact: ExitFact, strength: float) -> Finding:
    run = fact.run
    parent = parse_proc(fact.parent)
    crash = bool(fact.signal)
    what = (
        f"{fact.comm} (last pid {fact.last_pid}), started by {fact.parent}, was {fact.outcome} "
        f"{fact.count} times in {seconds(run):.1f}s ({fact.rate:.1f}/s{_life(fact)})"
    )
    if fact.signal in CRASH_SIGNALS:
        meaning = (
            f"it crashes: {fact.signal} is a fault in the program itself (a bad memory access, "
            "an abort), and its parent keeps restarting it"
        )
        plan = (
            f"1. Get the crash's stack: enable core dumps for {fact.comm} (`ulimit -c "
            f"unlimited` / LimitCORE=infinity; `coredumpctl list`) and open one in gdb.\n"
            f"2. Check what changed: the binary or library version of {fact.comm}, its input "
            "or configuration since the crashes began.\n"
            f"3. Stop the restart loop ({fact.parent}) while it is fixed, or roll back."
        )
    elif crash:
        meaning = f"something kills it with {fact.signal} and its parent restarts it"
        plan = (
            f"1. Find the sender of {fact.signal} (the probe's `signals` table; the OOM killer "
            "for SIGKILL: `dmesg | grep -i oom`).\n"
            f"2. Stop that, or fix what makes {fact.comm} a target."
        )
    else:
        meaning = f"it fails on start with exit code {fact.exit_code} and is restarted"
        plan = (
            f"1. Run {fact.comm} by hand as its parent does and read its error output.\n"
            f"2. Fix its configuration or dependency; add a backoff to {fact.parent}."
        )
    core = f" (core dumped: {fact.core})" if fact.core else ""
    return Finding(
        analyzer="process_exits",
        category="process",
        score=strength,
        culprit=f"{fact.comm} from {fact.parent}",
        root_cause=f"On {run.host}, {what}: {meaning}.",
        resolution_plan=plan,
        ebpf_evidence=(
            f"{run.key} on {run.host}: {fact.count} exits of {fact.comm} from {fact.parent}: "
            f"{fact.outcome}{core}. {run.result.summary}"
        ),
        subject=Subject(
            comm=fact.comm,
            pid=fact.last_pid or None,
            related=[parent.comm] if parent else [],
            objects=[fact.signal.lower()] if fact.signal else [],
            themes=list(CRASH_THEMES),
        ),
    )


def render_spawn(fact: SpawnFact, strength: float, exits: list[ExitFact]) -> Finding:
    run = fact.run
    children = [e for e in exits if e.parent == fact.parent]
    kids = ", ".join(f"{e.comm} x{e.count} ({e.outcome}{_life(e)})" for e in children[:2])
    cause = (
        f"{fact.parent} on {run.host} forks {fact.forks} processes in {seconds(run):.1f}s "
        f"({fact.rate:.1f}/s)" + (f": {kids}" if kids else "") + "."
    )
    return Finding(
        analyzer="process_exits",
        category="process",
        score=strength,
        culprit=fact.parent,
        root_cause=cause
        + " Short-lived processes at this rate cost fork/exec and CPU time on every run.",
        resolution_plan=(
            f"1. See what {fact.parent} runs (`ps -o args -p {fact.pid}`; the exec probe's "
            "argv).\n"
            "2. Replace the per-item process with a loop inside one process, a builtin, or a "
            "batch; or slow the loop down."
        ),
        ebpf_evidence=f"{run.key} on {run.host}: {run.result.summary}",
        subject=Subject(
            comm=fact.comm,
            pid=fact.pid,
            related=[e.comm for e in children[:2]],
            themes=list(CHURN_THEMES),
        ),
    )


@register("process_exits")
def process_exits(evidence: Evidence) -> list[Finding]:
    exits = exit_facts(evidence)
    findings = []
    for fact in exits:
        strength = score_exit(fact)
        if strength > 0:
            findings.append(render_exit(fact, strength))
    for spawn in spawn_facts(evidence):
        findings.append(render_spawn(spawn, score_spawn(spawn), exits))
    return findings
