"""Look at the process the symptom names when nothing about it stood out yet.

A symptom usually names a service ("ledger throughput dropped to nothing"). When the triage's
best finding is weak, or only Medium and about another process, the named process may be
quiet in the host-wide probes: threads asleep on a lock, a job blocked on a file lock, a
process whose failures were lost among a busy host's. Two steps, each asked once:

1. `ps -eo comm --sort=comm | uniq`: every process name on the host, so that a named process
   that uses no CPU (absent from the busiest lists) is known to exist (`relevance.view`).
2. For the named processes (up to `FOCUS_MAX`, the one named earliest first; by comm: the
   probes' comm filter, in the kernel): their threads and where they sleep (`ps -L ... wchan`),
   their futex waits (`lock_contention`), their system calls, failing or slow (`syscall_errors`,
   every call timed: on a busy host the host-wide tables keep the loudest processes' rows, and a
   quiet service's few refused connects or broken pipes may not make the cut), their connects
   (`tcp_connect`: the peer of its resets and broken pipes) and their waits for a CPU
   (`runq_latency`: behind which processes; on a busy host the host-wide tables keep the loudest
   waiters, not the service).
"""

from __future__ import annotations

import re

from worker.analysis.analyzers import HIGH, MEDIUM, Finding
from worker.analysis.evidence import cmd, probe
from worker.analysis.relevance import STOPWORDS, SymptomView, named_first, view
from worker.backends.base import Evidence
from worker.protocol import (
    MAX_COMMANDS_PER_STEP,
    MAX_PROGRAMS_PER_STEP,
    CommandRequest,
    Diagnostic,
    EbpfProgramRequest,
)

NAMES_ID = "process_names"
NAMES_COMMAND = "ps -eo comm --sort=comm | uniq"
FOCUS_PROBES = (
    ("syscall_errors", "its system calls: which fail, which are slow (where it blocks)"),
    ("tcp_connect", "where it connects: the peer of its resets and broken pipes"),
    ("lock_contention", "its futex waits: threads serialised on a lock"),
    ("runq_latency", "its waits for a CPU: how long, and behind which processes"),
)
FOCUS_MAX = 2  # named processes a focus step looks at
_WORD_RE = re.compile(r"^[a-z][a-z0-9_-]{3,31}$")


def _candidate_words(symptom: SymptomView) -> list[str]:
    """Words that could name a service: letters first, not a stop word."""
    return [t for t in sorted(symptom.tokens) if _WORD_RE.match(t) and t not in STOPWORDS]


def about_named(finding: Finding, symptom: SymptomView) -> bool:
    """The finding is about a process the symptom names (or its parent or child)."""
    subject = finding.subject
    comms = [subject.comm, *subject.related] if subject is not None else []
    if any(c in symptom.named for c in comms if c):
        return True
    return any(f"{c} (pid" in finding.root_cause for c in symptom.named)


def focus_step(
    evidence: Evidence, findings: list[Finding], asked: set[str], probes: set[str]
) -> Diagnostic | None:
    """The next request about the named process, or None when it is not needed or done."""
    symptom = view(evidence)
    if any(f.score >= MEDIUM and about_named(f, symptom) for f in findings):
        return None  # something Medium or better is about the named process: nothing to add
    if not symptom.named:
        best = findings[0] if findings else None
        if best is not None and best.score >= HIGH:
            return None  # a strong finding and no process named: nothing to look for
        if NAMES_ID in asked or not _candidate_words(symptom):
            return None
        return Diagnostic(
            reasoning=(
                "Nothing found so far is about the service the symptom names; listing every "
                "process name to find it (a process that waits uses no CPU and is in no "
                "busiest list)."
            ),
            commands=[cmd(NAMES_ID, NAMES_COMMAND, "every process name on the host")],
        )
    chosen = named_first(symptom)[:FOCUS_MAX]
    programs: list[EbpfProgramRequest] = []
    commands: list[CommandRequest] = []
    for comm in chosen:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", comm)
        for target, why in FOCUS_PROBES:
            name = f"focus_{target}_{safe}"[:64]
            if target in probes and name not in asked:
                programs.append(probe(name, target, f"{comm}: {why}", comm=comm[:15]))
        threads_id = f"threads_{safe}"[:64]
        if re.fullmatch(r"[A-Za-z0-9_.-]+", comm) and threads_id not in asked:
            threads = cmd(
                threads_id, f"ps -L -o pid,tid,comm,stat,pcpu,wchan:32 -C {comm}", "threads"
            )
            commands.append(threads)
    if not programs and not commands:
        return None
    shown = ", ".join(chosen)
    return Diagnostic(
        reasoning=(
            f"The symptom names {shown}, and nothing found so far is about it: looking at "
            f"{shown} itself (its threads' states, its system calls, its connects, its lock "
            "waits), filtered to it in the kernel."
        ),
        commands=commands,
        ebpf_programs=programs,
    )


def merged(first: Diagnostic | None, second: Diagnostic) -> Diagnostic:
    """`first`'s requests plus `second`'s (no duplicate ids, within the per-step limits)."""
    if first is None:
        return second
    commands = {c.id: c for c in first.commands}
    for c in second.commands:
        if len(commands) < MAX_COMMANDS_PER_STEP:
            commands.setdefault(c.id, c)
    programs = {p.name: p for p in first.ebpf_programs}
    for prog in second.ebpf_programs:
        if len(programs) < MAX_PROGRAMS_PER_STEP:
            programs.setdefault(prog.name, prog)
    return Diagnostic(
        reasoning=f"{first.reasoning} {second.reasoning}",
        commands=list(commands.values()),
        ebpf_programs=list(programs.values()),
    )
