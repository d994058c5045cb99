"""Triage plans per category: real read-only commands plus the catalog probes that fit.

A probe is only asked for when this host's catalog has it, so a plan never names a probe that
cannot run (a probe missing from a host's catalog is left out);
the other requests in the seed's form (`kprobe:tcp_connect`, ...) are the model's.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from worker.models.offline.categories import Category
from worker.protocol import CommandRequest, EbpfProgramRequest

PROBE_DURATION_S = 5.0


class ProbeStep(BaseModel):
    probe: str
    duration_s: float = PROBE_DURATION_S
    params: dict[str, int | float | bool | str] = Field(default_factory=dict)
    why: str


class Runbook(BaseModel):
    category: Category
    commands: list[CommandRequest]
    probes: list[ProbeStep]


def _cmd(id_: str, command: str, description: str) -> CommandRequest:
    return CommandRequest(id=id_, command=command, description=description)


BASELINE = [
    _cmd("uptime", "uptime", "load averages"),
    _cmd("top_cpu", "ps -eo pid,comm,pcpu,pmem,stat --sort=-pcpu", "busiest processes"),
    _cmd(
        "cpu_now",
        "pidstat -u 1 1 | grep Average: | sort -rn -k8 | head -n 15",
        "busiest processes over the last second",
    ),
]

RUNBOOKS: dict[Category, Runbook] = {
    "network": Runbook(
        category="network",
        commands=[
            _cmd("tcp_pending", "ss -tnp state syn-sent", "connects waiting for an answer"),
            _cmd("tcp_summary", "ss -s", "socket totals"),
        ],
        probes=[
            ProbeStep(probe="tcp_connect", why="connect attempts and their outcomes"),
            ProbeStep(probe="tcp_retransmits", why="retransmits and resets by connection"),
        ],
    ),
    "dns": Runbook(
        category="dns",
        commands=[_cmd("resolv_conf", "cat /etc/resolv.conf", "configured resolvers")],
        probes=[
            ProbeStep(probe="dns", why="DNS queries by process, name, answer and latency"),
            ProbeStep(probe="tcp_connect", why="connects that follow the lookups"),
        ],
    ),
    "file_io": Runbook(
        category="file_io",
        commands=[_cmd("disk_free", "df -h", "free space per filesystem")],
        probes=[
            ProbeStep(probe="file_opens", why="opens by process, path and errno"),
            ProbeStep(probe="syscall_errors", why="failing system calls by errno and path"),
        ],
    ),
    "disk": Runbook(
        category="disk",
        commands=[
            _cmd("disk_free", "df -h", "free space per filesystem"),
            _cmd("disk_stats", "cat /proc/diskstats", "block device counters"),
        ],
        probes=[
            ProbeStep(probe="block_io_latency", why="block I/O latency by device"),
            ProbeStep(probe="file_io", why="reads and writes by process and file"),
        ],
    ),
    "cpu": Runbook(
        category="cpu",
        commands=[_cmd("pressure_cpu", "cat /proc/pressure/cpu", "CPU pressure stall info")],
        probes=[
            ProbeStep(probe="cpu_profile", why="where the CPU time goes"),
            ProbeStep(probe="runq_latency", why="how long runnable tasks wait for a CPU"),
        ],
    ),
    "memory": Runbook(
        category="memory",
        commands=[
            _cmd("memory", "free -m", "memory and swap"),
            _cmd("meminfo", "cat /proc/meminfo", "kernel memory counters"),
        ],
        probes=[
            ProbeStep(probe="oom_kills", why="processes the OOM killer chose"),
            ProbeStep(probe="memory_alloc", why="who allocates memory, and how fast"),
        ],
    ),
    "process": Runbook(
        category="process",
        commands=[_cmd("procs", "ps -eo pid,ppid,comm,stat,etimes --sort=etimes", "newest first")],
        probes=[ProbeStep(probe="exec", why="programs started and exits, with codes")],
    ),
    "locks": Runbook(
        category="locks",
        commands=[_cmd("blocked", "ps -eo pid,comm,stat,wchan:32", "task states and wait points")],
        probes=[
            ProbeStep(probe="lock_contention", why="futex and kernel lock waits by process"),
        ],
    ),
}


def triage_plan(
    categories: list[Category], available_probes: set[str], *, max_categories: int = 2
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """Commands and probes for the best categories, without duplicates."""
    commands: dict[str, CommandRequest] = {c.id: c for c in BASELINE}
    programs: dict[str, EbpfProgramRequest] = {}
    for category in categories[:max_categories]:
        book = RUNBOOKS[category]
        for command in book.commands:
            commands.setdefault(command.id, command)
        for step in book.probes:
            if step.probe in available_probes and step.probe not in programs:
                programs[step.probe] = EbpfProgramRequest(
                    name=step.probe,
                    type="catalog",
                    target=step.probe,
                    duration=step.duration_s,
                    params=step.params,
                    description=step.why,
                )
    return list(commands.values()), list(programs.values())
