"""Processes the OOM killer chose: the oom_kills probe, joined with the kernel log by pid for
the memory cgroup, then the cgroup's limit.

Facts: the probe's `victims` rows (comm, pid, anon RSS), else the kernel log's last
`Killed process` line; the victims grouped by memory cgroup (from the kernel log's `oom-kill`
lines), the main group (the most victims), whether its last kill is recent, and the cgroup's
limit once read.
`score()`: a kill the probe saw -> `SEEN` (with the cgroup limit read: + `LIMIT_READ`, at most
`MAX_SCORE`); a kill only in the kernel log (`dmesg -T`, dated against the host's `date`) within
the last `RECENT_S` seconds -> `LOG_RECENT_ON_TOPIC` when the symptom is about memory or a
process going away (`ON_TOPIC`), else `LOG_RECENT`; older or undated -> `LOG_OLD` (it may have
nothing to do with the symptom).
`render()`: who was killed in which cgroup, the probe's and the kernel log's lines, the limit.
Next: the kernel log's OOM lines now, then the cgroup's limit and OOM counters (v2
memory.max/events, v1 memory.limit_in_bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.categories import categorise
from worker.analysis.evidence import cmd, command_output, parse_proc, probe_runs, seconds, top
from worker.backends.base import Evidence

_OOM_LINE = re.compile(
    r"oom-kill:\S*?oom_memcg=(?P<memcg>[^,]*),task_memcg=[^,]*,task=(?P<comm>[^,]*),pid=(?P<pid>\d+)"
)
_KILLED = re.compile(r"Killed process (?P<pid>\d+) \((?P<comm>[^)]*)\)")
_STAMP = re.compile(r"^\[(?P<stamp>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\]")
RECENT_S = 15 * 60
SEEN = 0.9
LOG_RECENT_ON_TOPIC, LOG_RECENT, LOG_OLD = 0.6, 0.45, 0.35
LIMIT_READ = 0.05
MAX_SCORE = 1.0
ON_TOPIC = frozenset({"memory", "process"})
SHOWN_ROWS = 4  # probe rows, and pids per cgroup in the root cause
SHOWN_CGROUP_PIDS = 6  # pids per cgroup in the evidence lines
SHOWN_LOG_LINES = 2
_SAFE_CGROUP = re.compile(r"^/[A-Za-z0-9_.@:/-]*$")
_LOG_IDS = ("oom_log", "kernel_log", "oom_log_now")
LOG_NOW = "dmesg -T | grep -E 'oom-kill|Killed process' | tail -n 20"


Victim = tuple[str, int, float, str]  # comm, pid, anon MB, evidence key


def _kernel_log(evidence: Evidence) -> str:
    return "\n".join(
        result.stdout for id_ in _LOG_IDS if (result := command_output(evidence, id_)) is not None
    )


def _stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None


def _host_now(evidence: Evidence) -> datetime | None:
    """The host's local time at the triage (`date`), as a naive datetime like `dmesg -T`'s."""
    clock = command_output(evidence, "clock")
    words = clock.stdout.split() if clock is not None else []
    if len(words) < 5:
        return None
    return _stamp(" ".join(words[:4] + words[-1:]))


def _recent(log: str, pid: int, now: datetime | None) -> bool:
    """Whether the kernel log's kill of `pid` happened within RECENT_S of the host's `date`."""
    for line in log.splitlines():
        if f"Killed process {pid} " not in line:
            continue
        match = _STAMP.match(line.strip())
        when = _stamp(match["stamp"]) if match else None
        if when is not None and now is not None:
            return abs((now - when).total_seconds()) <= RECENT_S
    return False


def _memcgs(log: str) -> dict[int, str]:
    return {int(m["pid"]): m["memcg"] for m in _OOM_LINE.finditer(log)}


_LIMIT_FILES = ("memory.max", "memory.limit_in_bytes")


def limit_command(memcg: str) -> str:
    """The cgroup's limit and OOM counters, v2 (memory.max) or v1 (memory.limit_in_bytes)."""
    v2, v1 = f"/sys/fs/cgroup{memcg}", f"/sys/fs/cgroup/memory{memcg}"
    files = [f"{v2}/memory.max", f"{v2}/memory.events", f"{v1}/memory.limit_in_bytes"]
    return "grep -s -H '' " + " ".join(files)


def _limit(evidence: Evidence, memcg: str) -> str | None:
    result = command_output(evidence, "memcg_limit")
    if result is None:
        return None
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        path, _, value = line.partition(":")
        name = path.rsplit("/", 1)[-1]
        key = f"{name}:{value.split()[0]}" if name == "memory.events" and value else name
        values[key] = value.split()[-1] if value.split() else ""
    raw = next((values[name] for name in _LIMIT_FILES if name in values), None)
    if raw is None:
        return None
    text = "no limit" if raw == "max" or len(raw) >= 19 else f"{int(raw) / 2**20:.0f} MiB"
    kills = values.get("memory.events:oom_kill")
    if kills:
        text += f", {kills} OOM kills counted in {memcg}"
    return text


def _memcg_of(comm: str, pid: int, memcgs: dict[int, str], log: str, *, refreshed: bool) -> str:
    """The kill's memory cgroup from the kernel log; once the log was read again after the
    probe, a kill it still lacks gets the cgroup of the same program's last logged kill."""
    if pid in memcgs:
        return memcgs[pid]
    if refreshed:
        same = [m["memcg"] for m in _OOM_LINE.finditer(log) if m["comm"] == comm]
        return same[-1] if same else ""
    return ""


@dataclass
class OomFacts:
    log: str
    seen: list[Victim]
    victims: list[Victim]
    probe_lines: list[str]
    refreshed: bool
    groups: dict[tuple[str, str], list[int]]
    comm: str
    memcg: str
    pid: int
    recent: bool
    on_topic: bool
    limit: str | None
    limit_asked: bool

    @property
    def safe_memcg(self) -> bool:
        memcg = self.memcg
        return bool(memcg and memcg != "/" and _SAFE_CGROUP.match(memcg) and ".." not in memcg)

    @property
    def limit_known(self) -> bool:
        return self.safe_memcg and self.limit is not None


def _probe_victims(evidence: Evidence) -> tuple[list[Victim], list[str]]:
    seen: list[Victim] = []
    lines = []
    for run in probe_runs(evidence, "oom_kills"):
        rows = top(run, "victims")
        for row in rows:
            proc = parse_proc(row.key)
            if proc is not None and proc.pid is not None:
                seen.append((proc.comm, proc.pid, float(row.value or 0), run.key))
        if rows:
            lines.append(
                f"{run.key} on {run.host}: {len(rows)} OOM kill(s) in {seconds(run):.1f}s: "
                + ", ".join(
                    f"{r.key} with {r.value:.1f} MB anon RSS"
                    if r.value is not None
                    else f"{r.key} (RSS not traced on this kernel)"
                    for r in rows[:SHOWN_ROWS]
                )
            )
    return seen, lines


def facts(evidence: Evidence) -> OomFacts | None:
    log = _kernel_log(evidence)
    memcgs = _memcgs(log)
    seen, lines = _probe_victims(evidence)
    from_log = [(m["comm"], int(m["pid"]), 0.0, "kernel log") for m in _KILLED.finditer(log)]
    if not seen and not from_log:
        return None
    victims = seen or from_log[-1:]
    refreshed = command_output(evidence, "oom_log_now") is not None
    groups: dict[tuple[str, str], list[int]] = {}
    for victim_comm, victim_pid, _, _ in victims:
        where = _memcg_of(victim_comm, victim_pid, memcgs, log, refreshed=refreshed)
        groups.setdefault((victim_comm, where), []).append(victim_pid)
    (comm, memcg), pids_of_main = max(groups.items(), key=lambda item: len(item[1]))
    pid = pids_of_main[-1]
    return OomFacts(
        log=log,
        seen=seen,
        victims=victims,
        probe_lines=lines,
        refreshed=refreshed,
        groups=groups,
        comm=comm,
        memcg=memcg,
        pid=pid,
        recent=_recent(log, pid, _host_now(evidence)),
        on_topic=bool(ON_TOPIC & set(categorise(evidence.symptom))),
        limit=_limit(evidence, memcg) if memcg else None,
        limit_asked=command_output(evidence, "memcg_limit") is not None,
    )


def score(fact: OomFacts) -> float:
    if fact.seen:
        strength = SEEN
    elif not fact.recent:
        strength = LOG_OLD
    else:
        strength = LOG_RECENT_ON_TOPIC if fact.on_topic else LOG_RECENT
    if fact.limit_known:
        strength = min(MAX_SCORE, strength + LIMIT_READ)
    return strength


def next_step(fact: OomFacts) -> NextStep | None:
    memcg = fact.memcg
    if fact.safe_memcg and fact.limit is None and not fact.limit_asked:
        return NextStep(
            why=f"what memory limit does cgroup {memcg} set?",
            commands=[
                cmd("memcg_limit", limit_command(memcg), "the cgroup's limit and its OOM counters")
            ],
        )
    if any(not where for _, where in fact.groups) and not fact.refreshed:
        return NextStep(
            why="which cgroup did the kill happen in (the kernel log now)?",
            commands=[cmd("oom_log_now", LOG_NOW, "OOM kills the kernel logged, now")],
        )
    return None


def _cause(fact: OomFacts) -> str:
    who = "; ".join(
        ", ".join(f"{c} (pid {p})" for p in group_pids[:SHOWN_ROWS])
        + (f" in memory cgroup {where}" if where and where != "/" else "")
        for (c, where), group_pids in fact.groups.items()
    )
    cause = (
        f"The kernel's OOM killer killed {who}"
        + (
            ""
            if fact.seen
            else " (found in the kernel log; no kill during the probe"
            + ("" if fact.recent else "; not in the last 15 minutes")
            + ")"
        )
        + ": the process did not crash, it was killed for memory."
    )
    if fact.limit_known:
        cause += f" The memory limit of {fact.memcg} is {fact.limit}."
    return cause


def _evidence_lines(fact: OomFacts) -> list[str]:
    pids = {p for _, p, _, _ in fact.victims}
    log_lines = [
        line.strip()
        for line in fact.log.splitlines()
        if any(f"pid={p}," in line or f"process {p} " in line for p in pids)
    ]
    lines = list(fact.probe_lines)
    limit = fact.limit
    for (c, where), group_pids in fact.groups.items():
        if where and where != "/":
            lines.append(
                f"memory cgroup {where} (kernel log): {c} pids "
                + ", ".join(str(p) for p in group_pids[:SHOWN_CGROUP_PIDS])
                + (f"; limit {limit}" if limit and where == fact.memcg else "")
            )
    lines.extend(log_lines[-SHOWN_LOG_LINES:])
    return lines


def render(fact: OomFacts, strength: float, next_: NextStep | None) -> Finding:
    comm, memcg = fact.comm, fact.memcg
    return Finding(
        analyzer="oom_kill",
        category="memory",
        score=strength,
        culprit=f"{comm} (pid {fact.pid})" + (f" in {memcg}" if memcg else ""),
        root_cause=_cause(fact),
        resolution_plan=(
            f"1. Decide whether {comm} needs more memory (raise memory.max of "
            f"{memcg or 'its cgroup'}) or leaks (watch its RSS grow: the memory_alloc probe "
            "with its pid).\n"
            "2. Restart it under a supervisor with a sane limit; alert on memory.events "
            "oom_kill."
        ),
        ebpf_evidence="\n".join(_evidence_lines(fact))
        or "No OOM kill during the probe; kernel log only.",
        next=next_,
    )


@register("oom_kill")
def oom_kill(evidence: Evidence) -> list[Finding]:
    fact = facts(evidence)
    if fact is None:
        return []
    return [render(fact, score(fact), next_step(fact))]
