"""Look at the process the symptom names when nothing about it stood out yet.

A symptom usually names a service ("ledger throughput dropped to nothing"). When the triage's
best finding is weak, or only Medium and about another process, the named process may be
quiet in the host-wide probes: threads asleep on a lock, a job blocked on a file lock, a
process whose failures were lost among a busy host's. Two steps, each asked once:

1. `ps -eo comm --sort=comm | uniq`: every process name on the host, so that a named process
   that uses no CPU (absent from the busiest lists) is known to exist (`relevance.view`).
2. For the named process (by comm: the probes' comm filter): its threads and where they sleep
   (`ps -L ... wchan`), its futex waits (`lock_contention`) and its system calls, failing or
   slow (`syscall_errors`, every call timed).
"""

from __future__ import annotations

import re

from worker.models.base import Evidence
from worker.models.offline.analyzers import HIGH, MEDIUM, Finding
from worker.models.offline.evidence import cmd, probe
from worker.models.offline.relevance import STOPWORDS, SymptomView, view
from worker.protocol import MAX_COMMANDS_PER_STEP, MAX_PROGRAMS_PER_STEP, Diagnostic

NAMES_ID = "process_names"
NAMES_COMMAND = "ps -eo comm --sort=comm | uniq"
FOCUS_PROBES = (
    ("lock_contention", "its futex waits: threads serialised on a lock"),
    ("syscall_errors", "its system calls: which fail, which are slow (where it blocks)"),
)
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
    best = findings[0] if findings else None
    if best is not None and (
        best.score >= HIGH or (best.score >= MEDIUM and about_named(best, symptom))
    ):
        return None  # a strong finding, or one about the named process: nothing to add
    if not symptom.named:
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
    comm = sorted(symptom.named, key=lambda c: (len(c), c))[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", comm)
    names = {f"focus_{target}_{safe}"[:64] for target, _ in FOCUS_PROBES}
    if names & asked:
        return None
    programs = [
        probe(f"focus_{target}_{safe}"[:64], target, f"{comm}: {why}", comm=comm)
        for target, why in FOCUS_PROBES
        if target in probes
    ]
    threads_id = f"threads_{safe}"[:64]
    commands = (
        [cmd(threads_id, f"ps -L -o pid,tid,comm,stat,pcpu,wchan:32 -C {comm}", "its threads")]
        if re.fullmatch(r"[A-Za-z0-9_.-]+", comm) and threads_id not in asked
        else []
    )
    if not programs and not commands:
        return None
    return Diagnostic(
        reasoning=(
            f"The symptom names {comm}, and nothing found so far is about it: looking at "
            f"{comm} itself (its threads' states, its lock waits, its system calls)."
        ),
        commands=commands,
        ebpf_programs=programs,
    )


def merged(first: Diagnostic, second: Diagnostic | None) -> Diagnostic:
    """`first`'s requests plus `second`'s (no duplicate ids, within the per-step limits)."""
    if second is None:
        return first
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
