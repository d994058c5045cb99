"""Runbooks as data: the broad triage, then per category the commands and catalog probes to run.

Step 1 of every investigation is `TRIAGE` (what an SRE runs in the first minute: load, the kernel
log's tail, memory, disk, a socket summary, the top processes) plus the runbooks of the symptom's
best categories. A probe is only asked for when this host's catalog has it, so a plan never names
a probe that cannot run; requests in the seed's form (`kprobe:tcp_connect`, ...) are the
model's. Runbooks are plain data (lists of steps) so they can come from YAML flows later.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from worker.models.offline.categories import Category
from worker.protocol import CommandRequest, EbpfProgramRequest

PROBE_DURATION_S = 3.0


class ProbeStep(BaseModel):
    probe: str
    duration_s: float = PROBE_DURATION_S
    params: dict[str, int | float | bool | str] = Field(default_factory=dict)
    why: str

    def request(self) -> EbpfProgramRequest:
        return EbpfProgramRequest(
            name=self.probe,
            type="catalog",
            target=self.probe,
            duration=self.duration_s,
            params=self.params,
            description=self.why,
        )


class Runbook(BaseModel):
    category: Category
    commands: list[CommandRequest] = Field(default_factory=list)
    probes: list[ProbeStep] = Field(default_factory=list)


def _cmd(id_: str, command: str, description: str) -> CommandRequest:
    return CommandRequest(id=id_, command=command, description=description)


def _probe(probe: str, why: str) -> ProbeStep:
    return ProbeStep(probe=probe, why=why)


TRIAGE = [
    _cmd("uptime", "uptime", "load averages"),
    _cmd("clock", "date", "the host's clock, to date the kernel log's lines"),
    _cmd("kernel_log", "dmesg -T | tail -n 25", "the kernel log's latest lines"),
    _cmd("memory", "free -m", "memory and swap"),
    _cmd("disk_free", "df -h", "free space per filesystem"),
    _cmd("sockets", "ss -s", "socket totals"),
    _cmd(
        "top_cpu",
        "ps -eo pid,ppid,comm,pcpu,pmem,stat,etimes --sort=-pcpu | head -n 15",
        "busiest processes (lifetime CPU share)",
    ),
    _cmd(
        "cpu_now",
        "pidstat -u 1 1 | grep Average: | sort -rn -k8 | head -n 15",
        "busiest processes over the last second",
    ),
]
BASELINE = TRIAGE  # the name the first planner used

RUNBOOKS: dict[Category, Runbook] = {
    "network": Runbook(
        category="network",
        commands=[
            _cmd("tcp_pending", "ss -tnp state syn-sent", "connects waiting for an answer"),
            _cmd("listeners", "ss -tlnp", "listening TCP sockets and their processes"),
        ],
        probes=[
            _probe("tcp_connect", "connect attempts and their outcomes"),
            _probe("tcp_retransmits", "retransmits and resets by connection"),
        ],
    ),
    "dns": Runbook(
        category="dns",
        commands=[_cmd("resolv_conf", "cat /etc/resolv.conf", "configured resolvers")],
        probes=[
            _probe("dns", "DNS queries by process, name, server, answer and latency"),
            _probe("tcp_connect", "connects that follow the lookups"),
        ],
    ),
    "file_io": Runbook(
        category="file_io",
        probes=[
            _probe("file_opens", "opens by process, path and errno"),
            _probe("syscall_errors", "failing system calls by errno and path"),
        ],
    ),
    "disk": Runbook(
        category="disk",
        commands=[
            _cmd("disk_stats", "iostat -x 1 1", "per-device utilisation and wait"),
            _cmd("pressure_io", "cat /proc/pressure/io", "I/O pressure stall info"),
        ],
        probes=[
            _probe("block_io_latency", "block I/O latency by device and submitter"),
            _probe("file_io", "reads and writes by process and file"),
        ],
    ),
    "performance": Runbook(
        category="performance",
        commands=[_cmd("pressure_cpu", "cat /proc/pressure/cpu", "CPU pressure stall info")],
        probes=[
            _probe("runq_latency", "how long runnable tasks wait for a CPU, and who holds it"),
            _probe("cpu_profile", "where the CPU time goes"),
        ],
    ),
    "memory": Runbook(
        category="memory",
        commands=[
            _cmd(
                "oom_log",
                "dmesg -T | grep -E 'oom-kill|Killed process' | tail -n 10",
                "OOM kills the kernel logged",
            ),
            _cmd("pressure_memory", "cat /proc/pressure/memory", "memory pressure stall info"),
        ],
        probes=[
            _probe("oom_kills", "processes the OOM killer chose"),
            _probe("memory_alloc", "who allocates memory, and how fast"),
        ],
    ),
    "process": Runbook(
        category="process",
        commands=[
            _cmd(
                "newest_procs",
                "ps -eo pid,ppid,comm,stat,etimes --sort=etimes | head -n 15",
                "newest processes first",
            ),
            _cmd(
                "oom_log",
                "dmesg -T | grep -E 'oom-kill|Killed process' | tail -n 10",
                "OOM kills the kernel logged",
            ),
        ],
        probes=[
            _probe("exec", "programs started, their parents and exit codes"),
            _probe("oom_kills", "processes the OOM killer chose"),
        ],
    ),
    "locks": Runbook(
        category="locks",
        commands=[
            _cmd("blocked", "ps -eo pid,comm,stat,wchan:32 --sort=stat", "task states, waits")
        ],
        probes=[
            _probe("lock_contention", "futex and kernel lock waits by process"),
            _probe("runq_latency", "whether the waiting is for a CPU instead"),
        ],
    ),
    "general": Runbook(
        category="general",
        commands=[
            _cmd(
                "oom_log",
                "dmesg -T | grep -E 'oom-kill|Killed process' | tail -n 10",
                "OOM kills the kernel logged",
            ),
        ],
        probes=[
            _probe("tcp_connect", "connect attempts and their outcomes"),
            _probe("file_opens", "opens by process, path and errno"),
            _probe("exec", "programs started, their parents and exit codes"),
            _probe("runq_latency", "how long runnable tasks wait for a CPU, and who holds it"),
            _probe("oom_kills", "processes the OOM killer chose"),
        ],
    ),
}

MAX_TRIAGE_PROBES = 5


def triage_plan(
    categories: list[Category], available_probes: set[str], *, max_categories: int = 2
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """The triage commands plus the runbooks of the best categories (and `general` when it is
    among them), without duplicates, at most `MAX_TRIAGE_PROBES` probes."""
    chosen = categories[:max_categories]
    if "general" in categories and "general" not in chosen:
        chosen.append("general")
    commands: dict[str, CommandRequest] = {c.id: c for c in TRIAGE}
    programs: dict[str, EbpfProgramRequest] = {}
    for category in chosen:
        book = RUNBOOKS[category]
        for command in book.commands:
            commands.setdefault(command.id, command)
        for step in book.probes:
            if step.probe in available_probes and len(programs) < MAX_TRIAGE_PROBES:
                programs.setdefault(step.probe, step.request())
    return list(commands.values()), list(programs.values())


def broadening_plan(
    already: set[str], available_probes: set[str]
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """The general set's commands and probes not asked yet: the next net when nothing stood out."""
    book = RUNBOOKS["general"]
    commands = [c for c in book.commands if c.id not in already]
    programs = [
        step.request()
        for step in book.probes
        if step.probe in available_probes and step.probe not in already
    ]
    return commands, programs
