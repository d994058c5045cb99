"""Processes the OOM killer chose: the oom_kills probe, joined with the kernel log by pid for
the memory cgroup, then the cgroup's limit.

Score: a kill the probe saw -> 0.9 (with the cgroup limit read: 0.95); a kill only in the
kernel log (`dmesg -T`, dated against the host's `date`) within the last 15 minutes -> 0.6
when the symptom is about memory or a process going away, else 0.45; older or undated -> 0.35
(it may have nothing to do with the symptom). Next: the kernel log's
OOM lines now, then the cgroup's limit and OOM counters (v2 memory.max/events, v1
memory.limit_in_bytes).
"""

from __future__ import annotations

import re
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
_SAFE_CGROUP = re.compile(r"^/[A-Za-z0-9_.@:/-]*$")
_LOG_IDS = ("oom_log", "kernel_log", "oom_log_now")
LOG_NOW = "dmesg -T | grep -E 'oom-kill|Killed process' | tail -n 20"


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


@register("oom_kill")
def oom_kill(evidence: Evidence) -> list[Finding]:
    log = _kernel_log(evidence)
    memcgs = _memcgs(log)
    seen: list[tuple[str, int, float, str]] = []  # comm, pid, anon MB, evidence key
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
                    for r in rows[:4]
                )
            )
    from_log = [(m["comm"], int(m["pid"]), 0.0, "kernel log") for m in _KILLED.finditer(log)]
    if not seen and not from_log:
        return []
    victims = seen or from_log[-1:]
    refreshed = command_output(evidence, "oom_log_now") is not None
    groups: dict[tuple[str, str], list[int]] = {}
    for victim_comm, victim_pid, _, _ in victims:
        where = _memcg_of(victim_comm, victim_pid, memcgs, log, refreshed=refreshed)
        groups.setdefault((victim_comm, where), []).append(victim_pid)
    (comm, memcg), pids_of_main = max(groups.items(), key=lambda item: len(item[1]))
    pid = pids_of_main[-1]
    recent = _recent(log, pid, _host_now(evidence))
    on_topic = bool({"memory", "process"} & set(categorise(evidence.symptom)))
    score = 0.9 if seen else 0.35 if not recent else 0.6 if on_topic else 0.45
    who = "; ".join(
        ", ".join(f"{c} (pid {p})" for p in group_pids[:4])
        + (f" in memory cgroup {where}" if where and where != "/" else "")
        for (c, where), group_pids in groups.items()
    )
    cause = (
        f"The kernel's OOM killer killed {who}"
        + (
            ""
            if seen
            else " (found in the kernel log; no kill during the probe"
            + ("" if recent else "; not in the last 15 minutes")
            + ")"
        )
        + ": the process did not crash, it was killed for memory."
    )
    next_step = None
    limit = _limit(evidence, memcg) if memcg else None
    if memcg and memcg != "/" and _SAFE_CGROUP.match(memcg) and ".." not in memcg:
        if limit is None and command_output(evidence, "memcg_limit") is None:
            next_step = NextStep(
                why=f"what memory limit does cgroup {memcg} set?",
                commands=[
                    cmd(
                        "memcg_limit",
                        limit_command(memcg),
                        "the cgroup's limit and its OOM counters",
                    )
                ],
            )
        elif limit is not None:
            score = min(1.0, score + 0.05)
            cause += f" The memory limit of {memcg} is {limit}."
    if any(not where for _, where in groups) and not refreshed and next_step is None:
        next_step = NextStep(
            why="which cgroup did the kill happen in (the kernel log now)?",
            commands=[cmd("oom_log_now", LOG_NOW, "OOM kills the kernel logged, now")],
        )
    pids = {p for _, p, _, _ in victims}
    log_lines = [
        line.strip()
        for line in log.splitlines()
        if any(f"pid={p}," in line or f"process {p} " in line for p in pids)
    ]
    for (c, where), group_pids in groups.items():
        if where and where != "/":
            lines.append(
                f"memory cgroup {where} (kernel log): {c} pids "
                + ", ".join(str(p) for p in group_pids[:6])
                + (f"; limit {limit}" if limit and where == memcg else "")
            )
    lines.extend(log_lines[-2:])
    return [
        Finding(
            analyzer="oom_kill",
            category="memory",
            score=score,
            culprit=f"{comm} (pid {pid})" + (f" in {memcg}" if memcg else ""),
            root_cause=cause,
            resolution_plan=(
                f"1. Decide whether {comm} needs more memory (raise memory.max of "
                f"{memcg or 'its cgroup'}) or leaks (watch its RSS grow: the memory_alloc probe "
                "with its pid).\n"
                "2. Restart it under a supervisor with a sane limit; alert on memory.events "
                "oom_kill."
            ),
            ebpf_evidence="\n".join(lines) or "No OOM kill during the probe; kernel log only.",
            next=next_step,
        )
    ]
