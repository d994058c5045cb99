"""Processes blocked on a file lock (flock, POSIX or OFD lock) that another process holds, from
`lslocks` (the triage's `file_locks` command: `lslocks --raw -o COMMAND,PID,TYPE,MODE,BLOCKER,
PATH`).

A process waiting in flock()/fcntl(F_SETLKW) makes no failing system call and burns no CPU: the
probes see nothing, but the kernel's lock table shows the waiter (mode with `*`) and the pid of
the process that blocks it. Facts: per blocking pid, its lock's path and type, its own command,
and the waiters (commands and pids).
`score()`: `WAITERS_MANY` or more waiters -> `MANY`; one or more -> `SOME`.
`render()`: the holder, the lock, the waiters, and how to see what the holder is doing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from worker.analysis.analyzers import Finding, register
from worker.analysis.evidence import command_output
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

COMMAND_ID = "file_locks"
WAITERS_MANY = 2
MANY, SOME = 0.75, 0.55
MAX_SHOWN = 3
# lock words only: "never finishes" or "keeps starting" fit a restart loop as well
THEMES = ("lock", "stuck", "hang", "hung", "blocked", "wedged", "frozen", "waiting")
_COLUMNS = ("COMMAND", "PID", "TYPE", "MODE", "BLOCKER", "PATH")


@dataclass
class LockRow:
    comm: str
    pid: int
    kind: str
    mode: str
    blocker: int | None
    path: str


@dataclass
class Blocking:
    holder: int
    path: str = ""
    kind: str = ""
    holder_comm: str = ""
    waiters: list[LockRow] = field(default_factory=list)


def _unescape(text: str) -> str:
    """lslocks --raw writes a space in a field as \\x20."""
    return text.replace("\\x20", " ").replace("\\x5c", "\\")


def parse(stdout: str) -> list[LockRow]:
    """The rows of `lslocks --raw -o COMMAND,PID,TYPE,MODE,BLOCKER,PATH` (empty fields kept)."""
    rows = []
    for line in stdout.splitlines():
        fields = line.split(" ")
        if len(fields) < len(_COLUMNS) or fields[0] == "COMMAND":
            continue
        comm, pid, kind, mode, blocker = fields[:5]
        path = " ".join(fields[5:])
        if not pid.lstrip("-").isdigit():
            continue
        rows.append(
            LockRow(
                comm=_unescape(comm),
                pid=int(pid),
                kind=kind,
                mode=mode,
                blocker=int(blocker) if blocker.isdigit() else None,
                path=_unescape(path),
            )
        )
    return rows


def facts(evidence: Evidence) -> list[Blocking]:
    command = command_output(evidence, COMMAND_ID)
    if command is None:
        return []
    rows = parse(command.stdout)
    by_holder: dict[int, Blocking] = {}
    held: dict[int, list[LockRow]] = defaultdict(list)
    for row in rows:
        if row.blocker is None:
            held[row.pid].append(row)
    for row in rows:
        if row.blocker is None or row.blocker == row.pid:
            continue
        blocking = by_holder.setdefault(row.blocker, Blocking(holder=row.blocker))
        blocking.waiters.append(row)
        own = next((h for h in held.get(row.blocker, []) if h.path == row.path), None)
        blocking.path = blocking.path or row.path
        blocking.kind = blocking.kind or row.kind
        if own is not None or held.get(row.blocker):
            blocking.holder_comm = (own or held[row.blocker][0]).comm
    return sorted(by_holder.values(), key=lambda b: -len(b.waiters))


def score(fact: Blocking) -> float:
    return MANY if len(fact.waiters) >= WAITERS_MANY else SOME


def render(fact: Blocking, strength: float) -> Finding:
    holder = f"{fact.holder_comm or 'pid'} (pid {fact.holder})"
    waiter_comms = list(dict.fromkeys(w.comm for w in fact.waiters))
    shown = ", ".join(f"{w.comm} (pid {w.pid})" for w in fact.waiters[:MAX_SHOWN])
    more = len(fact.waiters) - MAX_SHOWN
    waiters = shown + (f" and {more} more" if more > 0 else "")
    lock = f"{fact.kind} lock on {fact.path}" if fact.path else f"{fact.kind} lock"
    cause = (
        f"{holder} holds the {lock} and {len(fact.waiters)} process(es) wait for it: {waiters}. "
        "A process blocked on a file lock makes no failing call and uses no CPU; it waits "
        f"until {holder} releases the lock or exits."
    )
    return Finding(
        analyzer="file_locks",
        category="locks",
        score=strength,
        culprit=holder + (f" -> {fact.path}" if fact.path else ""),
        root_cause=cause,
        resolution_plan=(
            f"1. See what {holder} is doing while it holds the lock: `ps -o pid,stat,etimes,"
            f"wchan:32,args -p {fact.holder}` (a hung job, a job that never ends, a stale "
            "holder).\n"
            f"2. If it is stuck or should not hold the lock, stop it (a person's decision); the "
            "waiters then proceed one by one.\n"
            "3. Make the waiters take the lock with a timeout (`flock -w`, LOCK_NB with a "
            "retry) so that they fail loudly instead of piling up."
        ),
        ebpf_evidence=(
            f"lslocks: {holder} holds {lock}; waiting (mode with *, blocker {fact.holder}): "
            f"{waiters}."
        ),
        subject=Subject(
            comm=fact.holder_comm,
            pid=fact.holder,
            related=waiter_comms,
            objects=[fact.path] if fact.path else [],
            themes=list(THEMES),
        ),
    )


@register("file_locks")
def file_locks(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact)) for fact in facts(evidence)]
