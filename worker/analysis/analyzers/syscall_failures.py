"""Failing system calls of any kind: which process, which call, which errno, on which object.

Facts: the rows of syscall_errors (`errors`, not `routine_errors`: pid, comm, syscall, errno, the
path or socket address) and of file_opens (`failures`: path, errno, the top process), one fact
per (process, call, errno), with the host's baseline: how many failures with the same errno, of
the same kind of call (open, stat, rename, write...), other processes had in the same window.

`score()`: the rate sets the strength (`RATE_HIGH`/s -> `STRONG`, `RATE_SOME`/s -> `STEADY`,
`COUNT_FEW` failures -> `FEW`, else `FAINT`), scaled by how unusual the errno is for a healthy
program (`errnos.TABLE` weight: EAGAIN 0.5, ENOENT on a file 0.7, ENOSPC/EMFILE/EROFS 1.2) and
by how much louder it is than the loudest other process failing the same way (`share`:
`BASELINE_FLOOR` when another fails as often; many processes failing a few times each, such as a
package manager's, do not add up against one process's loop). The planner then weighs it by
relevance to the symptom (`relevance`).
`render()`: the finding names the process, the call, the errno and its meaning, the object, the
rate and the window, the other processes failing the same way, and for a refused connect the
listener the port does have (`ss -tlnp` of the triage: "port 8080 IS listening on 127.0.0.3").
Next: for a refused inet address without a listener listing, `ss -tlnp` on its port; for a path,
the listing of its directory.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.errnos import SOCKET_CALLS, Explanation, explain
from worker.analysis.evidence import (
    Proc,
    cmd,
    command_output,
    own_commands,
    parse_proc,
    probe,
    probe_runs,
    seconds,
    top,
)
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

RATE_HIGH = 5.0  # failures per second
RATE_SOME = 1.0
COUNT_FEW = 3
STRONG, STEADY, FEW, FAINT = 0.9, 0.75, 0.55, 0.3
BASELINE_FLOOR = 0.7  # strength kept when every process on the host fails the same way
CONFIRMED = 0.1  # added when the listener check ran and explains the refusal (none, or elsewhere)
MAX_FINDINGS = 8
PEER_ERRNOS = frozenset({"ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED"})
MAX_OTHERS = 2
# Errnos healthy programs get while searching (a path list, an import path): when such a row's
# failures are spread over many objects, only those on its most frequent object count as a loop.
SEARCH_ERRNOS = frozenset({"ENOENT", "ENOTDIR"})
# Calls that do the same thing, for the baseline (a package manager's 10,000 rename() ENOENTs
# say nothing about how unusual a service's open() ENOENT loop is).
_FAMILIES = {
    "open": ("open", "openat", "openat2", "creat"),
    "stat": ("stat", "lstat", "newfstatat", "statx", "fstatat64", "newlstat", "newstat"),
    "access": ("access", "faccessat", "faccessat2"),
    "rename": ("rename", "renameat", "renameat2"),
    "unlink": ("unlink", "unlinkat", "rmdir"),
    "mkdir": ("mkdir", "mkdirat"),
    "readlink": ("readlink", "readlinkat"),
    "exec": ("execve", "execveat"),
    "clone": ("clone", "clone3", "fork", "vfork"),
    "write": ("write", "writev", "pwrite64", "pwritev", "pwritev2"),
    "read": ("read", "readv", "pread64", "preadv", "preadv2"),
    "send": ("sendto", "sendmsg", "sendmmsg"),
    "recv": ("recvfrom", "recvmsg", "recvmmsg"),
}
FAMILY = {call: family for family, calls in _FAMILIES.items() for call in calls}
LISTENER_COMMANDS = ("listeners",)
ANY_ADDRESS = frozenset({"*", "0.0.0.0", "[::]"})  # noqa: S104 - a listing's wildcard, not a bind
_LISTEN_RE = re.compile(r"^LISTEN\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+(?:\s+(?P<users>.*))?$")


@dataclass
class FailureFact:
    proc: Proc
    call: str
    errno: str
    obj: str
    count: int
    window_s: float
    host: str
    source: str
    others: int = 0  # same errno, other processes, same window (all of them)
    loudest_other: int = 0  # the loudest of them
    other_procs: list[str] = field(default_factory=list)
    objects: int = 1  # distinct objects its failures were on (when the probe counted them)
    repeat: int = 0  # failures on its most frequent object (0: not counted)

    @property
    def searching(self) -> bool:
        """Failures spread over several paths with an errno of searching (ENOENT): a lookup
        along a search path, not a loop on one object."""
        return self.errno in SEARCH_ERRNOS and self.objects > 1 and 0 < self.repeat < self.count

    @property
    def loud(self) -> int:
        """The failures that look like one loop: on its most frequent object when searching."""
        return self.repeat if self.searching else self.count

    @property
    def rate(self) -> float:
        return self.loud / self.window_s if self.window_s else float(self.loud)

    @property
    def explanation(self) -> Explanation:
        return explain(self.errno, self.call, self.obj)

    @property
    def share(self) -> float:
        """Its part of its own and the loudest other process's failures of the same kind."""
        total = self.loud + self.loudest_other
        return self.loud / total if total else 1.0


def facts(evidence: Evidence) -> list[FailureFact]:
    found: dict[tuple[str, int | None, str, str], FailureFact] = {}
    ours = own_commands(evidence)

    def add(fact: FailureFact) -> None:
        if fact.proc.comm in ours:
            return
        key = (fact.host, fact.proc.pid, fact.call, fact.errno)
        known = found.get(key)
        if known is None or fact.rate > known.rate:
            if known is not None and not fact.obj:
                fact.obj = known.obj
            found[key] = fact
        elif not known.obj and fact.obj:
            known.obj = fact.obj

    for run in probe_runs(evidence, "syscall_errors"):
        for table in ("errors",):  # routine_errors (futex timeouts, EAGAIN) are never causes
            for row in top(run, table):
                labels = row.labels
                pid = labels.get("pid")
                if not isinstance(pid, int):
                    continue
                obj = str(labels.get("path") or labels.get("address") or "")
                objects, repeat = labels.get("objects", 1), labels.get("repeat", 0)
                add(
                    FailureFact(
                        Proc(str(labels.get("comm", "?")), pid),
                        str(labels.get("syscall", "?")),
                        str(labels.get("errno", "?")),
                        obj,
                        row.count,
                        seconds(run),
                        run.host,
                        run.key,
                        objects=objects if isinstance(objects, int) else 1,
                        repeat=repeat if isinstance(repeat, int) else 0,
                    )
                )
    for run in probe_runs(evidence, "file_opens"):
        for row in top(run, "failures"):
            proc = parse_proc(str(row.labels.get("top_process", "")))
            if proc is None:
                continue
            add(
                FailureFact(
                    proc,
                    "open",
                    str(row.labels.get("errno", "?")),
                    str(row.labels.get("path", "")),
                    row.count,
                    seconds(run),
                    run.host,
                    run.key,
                )
            )
    out = list(found.values())
    for fact in out:
        if not fact.obj and fact.errno in PEER_ERRNOS:
            peer = peer_of(evidence, fact.proc.pid)
            fact.obj = f"its connection to {peer}" if peer else ""
        kind = FAMILY.get(fact.call, fact.call)
        same = [
            f
            for f in out
            if f is not fact
            and f.errno == fact.errno
            and FAMILY.get(f.call, f.call) == kind
            and f.proc.pid != fact.proc.pid
        ]
        fact.others = sum(f.loud for f in same)
        fact.loudest_other = max((f.loud for f in same), default=0)
        fact.other_procs = [f"{f.proc.label()} x{f.count}" for f in same][:MAX_OTHERS]
    return out


def peer_of(evidence: Evidence, pid: int | None) -> str:
    """The address a process connected to, from tcp_connect's samples and failures: the peer of
    its failing reads and writes (ECONNRESET, EPIPE), which those calls do not name."""
    seen: Counter[str] = Counter()
    for run in probe_runs(evidence, "tcp_connect"):
        for event in run.result.events:
            data = event.get("data") or {}
            if event.get("process_id") == pid and isinstance(data, dict):
                seen[str(data.get("destination", ""))] += 1
        for row in top(run, "failures"):
            if row.labels.get("pid") == pid:
                seen[str(row.labels.get("destination", ""))] += row.count
    seen.pop("", None)
    return seen.most_common(1)[0][0] if seen else ""


def score(fact: FailureFact) -> float:
    if fact.rate >= RATE_HIGH:
        base = STRONG
    elif fact.rate >= RATE_SOME:
        base = STEADY
    elif fact.count >= COUNT_FEW:
        base = FEW
    else:
        base = FAINT
    baseline = BASELINE_FLOOR + (1 - BASELINE_FLOOR) * fact.share
    return round(min(1.0, base * fact.explanation.weight * baseline), 3)


def listeners(evidence: Evidence) -> list[tuple[str, str]]:
    """(local address, users) of every LISTEN line of the `ss -tlnp` outputs collected."""
    out = []
    for result in evidence.results:
        for command_id, command in result.command_results.items():
            if not command.ran:
                continue
            if command_id in LISTENER_COMMANDS or command_id.startswith("listeners_"):
                for line in command.stdout.splitlines():
                    match = _LISTEN_RE.match(line.strip())
                    if match:
                        out.append((match["local"], match["users"] or ""))
    return out


def _port_of(address: str) -> str:
    if ":" not in address or address.startswith("unix:"):
        return ""
    return address.rsplit(":", 1)[-1]


def listener_note(evidence: Evidence, errno: str, address: str) -> str:
    """`_listener_note` for another analyzer's refused connect to `address`."""
    fact = FailureFact(Proc("?", None), "connect", errno, address, 0, 1.0, "", "")
    return _listener_note(evidence, fact)


def _listener_note(evidence: Evidence, fact: FailureFact) -> str:
    """For a refused inet connect: where the port does listen, or that nothing does; for a
    bind that finds its address in use: who holds it."""
    port = _port_of(fact.obj)
    if fact.errno in PEER_ERRNOS and port.isdigit():
        return _peer_note(evidence, fact.obj.rsplit(" ", 1)[-1], port)
    if fact.errno not in {"ECONNREFUSED", "EADDRINUSE"} or not port.isdigit():
        return ""
    seen = listeners(evidence)
    if not seen:
        return ""
    same_port = [(local, users) for local, users in seen if _port_of(local) == port]
    if fact.errno == "EADDRINUSE":
        if not same_port:
            return ""
        local, users = same_port[0]
        owner = re.search(r'\("([^"]+)",pid=(\d+)', users)
        holder = f"{owner[1]} (pid {owner[2]})" if owner else "another socket"
        return f" Port {port} is held by {holder}, listening on {local}."
    if not same_port:
        return f" `ss -tlnp` shows no listener on port {port} on this host."
    local, users = same_port[0]
    owner = re.search(r'\("([^"]+)",pid=(\d+)', users)
    who = f" by {owner[1]} (pid {owner[2]})" if owner else ""
    host = fact.obj.rsplit(":", 1)[0]
    if local.rsplit(":", 1)[0] not in {host, *ANY_ADDRESS}:
        return (
            f" Port {port} IS listening, on {local}{who}, not on {fact.obj}: the client "
            "uses the wrong address, or the server binds the wrong one."
        )
    return f" A socket listens on {local}{who}: its accept backlog may overflow."


def _peer_note(evidence: Evidence, address: str, port: str) -> str:
    """For a reset or broken pipe on a connection to a local address: the process serving it
    (`ss -tlnp`), the other side of the failure."""
    host = address.rsplit(":", 1)[0]
    for local, users in listeners(evidence):
        if _port_of(local) == port and local.rsplit(":", 1)[0] in {host, *ANY_ADDRESS}:
            owner = re.search(r'\("([^"]+)",pid=(\d+)', users)
            if owner:
                return f" The peer {address} is served here by {owner[1]} (pid {owner[2]})."
    return ""


def _next(evidence: Evidence, fact: FailureFact) -> NextStep | None:
    port = _port_of(fact.obj)
    if fact.errno in PEER_ERRNOS and not fact.obj and fact.proc.pid is not None:
        return NextStep(
            why=f"which peer does {fact.proc.label()} talk to when its {fact.call}() fails?",
            programs=[
                probe(
                    f"peers_pid_{fact.proc.pid}",
                    "tcp_connect",
                    "its connects: the peer of its failing reads and writes",
                    pid=fact.proc.pid,
                )
            ],
        )
    if fact.errno in {"ECONNREFUSED", "EADDRINUSE"} and port.isdigit() and not listeners(evidence):
        return NextStep(
            why=f"what listens on port {port}, and on which address?",
            commands=[cmd(f"listeners_{port}", f"ss -tlnp 'sport = :{port}'", "listeners")],
        )
    if fact.obj.startswith("/") and fact.call not in SOCKET_CALLS:
        directory = posixpath.dirname(fact.obj) or "/"
        listing_id = f"listing_pid_{fact.proc.pid}"
        if command_output(evidence, listing_id) is None:
            return NextStep(
                why=f"what is in {directory} (owner, mode)?",
                commands=[cmd(listing_id, f"ls -la {shlex.quote(directory)}", "what is there")],
            )
    return None


def _host_share(fact: FailureFact) -> str:
    total = fact.loud + fact.others
    return f"{fact.loud / total:.0%}" if total else "100%"


def render(evidence: Evidence, fact: FailureFact, strength: float) -> Finding:
    row = fact.explanation
    obj = fact.obj or f"its {fact.call} target"
    meaning = row.meaning.format(obj=obj, call=fact.call, errno=fact.errno)
    label = f" ({row.label})" if row.label else ""
    per_s = fact.count / (fact.window_s or 1)
    cause = (
        f"{fact.proc.label()} on {fact.host}: {fact.call}() fails with {fact.errno}{label}"
        + (f" on {fact.obj}" if fact.obj else "")
        + f", {fact.count} times in {fact.window_s:.1f}s ({per_s:.1f}/s)"
        + (
            f" on {fact.objects} different paths (at most {fact.repeat} on one: a search, "
            "not a loop)"
            if fact.searching
            else ""
        )
        + f": {meaning}."
    )
    note = _listener_note(evidence, fact)
    cause += note
    if fact.errno == "ECONNREFUSED" and ("no listener" in note or "IS listening" in note):
        strength = min(1.0, round(strength + CONFIRMED, 3))  # the confirmation agreed
    listing = command_output(evidence, f"listing_pid_{fact.proc.pid}")
    if listing is not None and listing.stdout.strip():
        cause += f" Listing: {' | '.join(listing.stdout.splitlines()[1:5])[:300]}."
    values = {
        "comm": fact.proc.comm,
        "pid": fact.proc.pid,
        "obj": obj,
        "call": fact.call,
        "errno": fact.errno,
    }
    plan = "\n".join(f"{i}. {step.format(**values)}" for i, step in enumerate(row.plan, start=1))
    kind = FAMILY.get(fact.call, fact.call)
    evidence_line = (
        f"{fact.source} on {fact.host}: {fact.count} {fact.call}() failures with "
        f"{fact.errno} by {fact.proc.label()}"
        + (f" on {fact.obj}" if fact.obj else "")
        + f" in {fact.window_s:.1f}s ({_host_share(fact)} of the host's {kind}() {fact.errno} "
        "failures)."
        + (f" `ss -tlnp`:{note}" if note else "")
        # the baseline is evidence, not the cause: other processes stay out of the root cause
        + (
            f" Also failing with {fact.errno}: {'; '.join(fact.other_procs)}."
            if fact.other_procs
            else ""
        )
    )
    objects = [fact.obj] if fact.obj else []
    return Finding(
        analyzer="syscall_failures",
        category="network" if fact.call in SOCKET_CALLS else "file_io",
        score=strength,
        culprit=f"{fact.proc.label()} -> {fact.errno} {fact.obj}".strip(),
        root_cause=cause,
        resolution_plan=plan,
        ebpf_evidence=evidence_line,
        next=_next(evidence, fact),
        subject=Subject(
            comm=fact.proc.comm,
            pid=fact.proc.pid,
            objects=[*objects, fact.errno.lower()],
            themes=list(row.themes),
        ),
    )


@register("syscall_failures")
def syscall_failures(evidence: Evidence) -> list[Finding]:
    scored = sorted(((score(f), f) for f in facts(evidence)), key=lambda p: -p[0])
    return [render(evidence, fact, strength) for strength, fact in scored[:MAX_FINDINGS]]
