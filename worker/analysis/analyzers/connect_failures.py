"""Failed TCP connects (refused, timed out, errno) seen by the tcp_connect probe.

Facts: per tcp_connect run, its loudest failure row: the process, the destination, the outcome,
how many of the process's own attempts failed that way (and the host's), the next loudest
failures, the connects still pending to that destination, what other evidence says of the
destination (the port listening on another address, a local listener with a full accept
queue), and the `ss -tlnp 'sport = :P'` listing of the refused port when it ran.
`score()`: `FAILURES_MANY` or more failures that make `SHARE_MOST` or more of the process's
attempts -> `MOSTLY_FAILING`; `FAILURES_REPEATED` or more -> `REPEATED`; else `ONCE`. Timeouts
to a listener with a full accept queue -> at least `QUEUE_FULL`. The port listening elsewhere,
or no listener on the refused port -> + `CONFIRMED` (at most `SCORE_MAX`); a listener on it
makes a refusal odd -> - `LISTENER_ODD` (a backlog overflow or a firewall reject instead).
`render()`: the process, the destination, why it fails, the share and rate, the listener check.
Next: is anything listening on the refused port here (`ss -tlnp 'sport = :P'`)?
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.analyzers.syscall_failures import listener_note
from worker.analysis.evidence import ProbeRun, cmd, command_output, probe_runs, top, total
from worker.backends.base import Evidence
from worker.protocol import CommandResult

FAILURES_MANY, FAILURES_REPEATED = 3, 2
SHARE_MOST = 0.5
MOSTLY_FAILING, REPEATED, ONCE = 0.9, 0.6, 0.4
QUEUE_FULL = 0.85  # timeouts to a local listener whose accept queue is full: explained
CONFIRMED, LISTENER_ODD = 0.05, 0.2
SCORE_MAX = 1.0
ALSO_SHOWN = 2  # the next loudest failures named beside the first, when FAILURES_MANY or more

_ADVICE = {
    "refused": "nothing accepts connections on {dest} (connection refused: RST received)",
    "timeout": "{dest} does not answer (SYN timed out: a firewall drop or a dead host)",
}
_QUEUE_RE = re.compile(
    r"^LISTEN\s+(?P<recvq>\d+)\s+(?P<sendq>\d+)\s+(?P<local>\S+)\s+\S+(?:\s+(?P<users>.*))?$"
)
ANY_HOST = frozenset({"*", "0.0.0.0", "[::]"})  # noqa: S104 - a listing's wildcard, not a bind


def full_queue_note(evidence: Evidence, dest: str) -> str:
    """For connects to `dest` that time out: a local listener on it whose accept queue is full
    (`ss -tlnp`: Recv-Q above the backlog in Send-Q), which makes the kernel drop new SYNs."""
    host, _, port = dest.rpartition(":")
    for result in evidence.results:
        for command_id, command in result.command_results.items():
            if not command.ran or not (
                command_id == "listeners" or command_id.startswith("listeners_")
            ):
                continue
            for line in command.stdout.splitlines():
                m = _QUEUE_RE.match(line.strip())
                if m is None or int(m["recvq"]) <= int(m["sendq"]):
                    continue
                local_host, _, local_port = m["local"].rpartition(":")
                if local_port == port and local_host in {host, *ANY_HOST}:
                    owner = re.search(r'\("([^"]+)",pid=(\d+)', m["users"] or "")
                    who = f" by {owner[1]} (pid {owner[2]})" if owner else ""
                    return (
                        f" A socket listens on {m['local']}{who}, but its accept queue is full "
                        f"({m['recvq']} connections waiting, backlog {m['sendq']}): it does not "
                        "accept() them, so the kernel drops new SYNs and connects time out."
                    )
    return ""


def _listener_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines()[1:] if line.strip()]


@dataclass
class ConnectFact:
    """The loudest failure of one tcp_connect run."""

    run: ProbeRun
    comm: str
    pid: str | int | float
    dest: str
    outcome: str
    count: int  # failed connects of this process to dest
    own: int  # the process's connect attempts (the host's when the probe did not split them)
    attempts: int  # the host's connect attempts
    also: str  # the next loudest failures, "key xN; ..."
    waiting: int  # connects to dest still unanswered at the end: the next timeouts
    elsewhere: str  # what other evidence says of dest (listening elsewhere, accept queue full)
    listeners: CommandResult | None  # `ss -tlnp 'sport = :P'` of the refused port, if it ran

    @property
    def port(self) -> str:
        return self.dest.rsplit(":", 1)[-1]

    @property
    def share(self) -> float:
        return self.count / self.own if self.own else 1.0

    @property
    def checks_listener(self) -> bool:
        """A refusal whose port the listener check can look at (and the port not known to
        listen elsewhere)."""
        return (
            "IS listening" not in self.elsewhere
            and self.port.isdigit()
            and self.outcome == "refused"
        )


def facts(evidence: Evidence) -> list[ConnectFact]:
    out = []
    for run in probe_runs(evidence, "tcp_connect"):
        attempts = int(total(run, "attempts") or run.result.event_count)
        rows = top(run, "failures")
        also = "; ".join(
            f"{r.key} x{r.count}" for r in rows[1 : 1 + ALSO_SHOWN] if r.count >= FAILURES_MANY
        )
        for row in rows[:1]:
            labels = row.labels
            outcome = str(labels.get("outcome", "failed"))
            dest = str(labels.get("destination", "?"))
            comm, pid = str(labels.get("comm", "?")), labels.get("pid", "?")
            own = next(
                (p.count for p in top(run, "processes") if p.key == f"{comm} (pid {pid})"),
                attempts,
            )
            elsewhere = ""
            if outcome == "refused":
                elsewhere = listener_note(evidence, "ECONNREFUSED", dest)
            if outcome == "timeout":
                elsewhere = full_queue_note(evidence, dest)
            out.append(
                ConnectFact(
                    run=run,
                    comm=comm,
                    pid=pid,
                    dest=dest,
                    outcome=outcome,
                    count=row.count,
                    own=own,
                    attempts=attempts,
                    also=also,
                    waiting=sum(
                        p.count
                        for p in top(run, "pending")
                        if p.key == f"{dest} by {comm} (pid {pid})"
                    ),
                    elsewhere=elsewhere,
                    listeners=command_output(evidence, f"listeners_{dest.rsplit(':', 1)[-1]}"),
                )
            )
    return out


def score(fact: ConnectFact) -> float:
    strength = (
        MOSTLY_FAILING
        if fact.share >= SHARE_MOST and fact.count >= FAILURES_MANY
        else REPEATED
        if fact.count >= FAILURES_REPEATED
        else ONCE
    )
    queue_full = fact.outcome == "timeout" and fact.elsewhere  # a full accept queue explains it
    if queue_full and fact.count + fact.waiting >= FAILURES_REPEATED:
        strength = max(strength, QUEUE_FULL)
    if "IS listening" in fact.elsewhere:
        strength = min(SCORE_MAX, strength + CONFIRMED)
    elif fact.checks_listener and fact.listeners is not None:
        if _listener_lines(fact.listeners.stdout):
            strength -= LISTENER_ODD
        else:
            strength = min(SCORE_MAX, strength + CONFIRMED)
    return strength


def next_step(fact: ConnectFact) -> NextStep | None:
    """Is anything listening on the refused port?"""
    if not fact.checks_listener or fact.listeners is not None:
        return None
    port = fact.port
    return NextStep(
        why=f"is anything listening on port {port}?",
        commands=[
            cmd(f"listeners_{port}", f"ss -tlnp 'sport = :{port}'", f"listeners on port {port}")
        ],
    )


def _cause(fact: ConnectFact) -> str:
    run, dest, port = fact.run, fact.dest, fact.port
    why = _ADVICE.get(fact.outcome, "connect() fails with {outcome}").format(
        dest=dest, outcome=fact.outcome
    )
    rate = fact.count / (run.result.duration_s or 1.0)
    cause = (
        f"{fact.comm} (pid {fact.pid}) on {run.host} fails to connect to {dest}: {why}. "
        f"{fact.count} of its {fact.own} connect attempts failed this way "
        f"({rate:.1f}/s)."
    )
    if fact.also:
        cause += f" Also failing: {fact.also}."
    if fact.outcome == "timeout" and fact.elsewhere:
        cause += fact.elsewhere
    if "IS listening" in fact.elsewhere:
        cause += fact.elsewhere  # the decisive detail: the address the port does listen on
    elif fact.checks_listener and fact.listeners is not None:
        lines = _listener_lines(fact.listeners.stdout)
        if lines:
            cause += (
                f" Yet a socket listens on port {port} here ({lines[0].split()[-1]}): its "
                "accept backlog may overflow, or a firewall rejects the connects."
            )
        else:
            cause += f" `ss -tlnp` shows no listener on port {port} on {run.host}."
    return cause


def render(fact: ConnectFact, strength: float, step: NextStep | None) -> Finding:
    run, comm, pid, dest = fact.run, fact.comm, fact.pid, fact.dest
    return Finding(
        analyzer="connect_failures",
        category="network",
        score=strength,
        culprit=f"{comm} (pid {pid}) -> {dest}",
        root_cause=_cause(fact),
        resolution_plan=(
            f"1. Start or fix the service that should listen on {dest} "
            f"(`ss -tlnp` on its host; `systemctl status` of the service).\n"
            f"2. Check {comm}'s configured address and port for {dest}.\n"
            "3. Check firewalls between the hosts if the outcome is a timeout."
        ),
        ebpf_evidence=(
            f"{run.key} on {run.host}: {fact.count} {fact.outcome} connects to {dest} "
            f"by {comm} (pid {pid}) of its {fact.own} attempts ({fact.attempts} on the host) "
            f"in {run.result.duration_s:.1f}s. {run.result.summary}"
            + (f" Also failing: {fact.also}." if fact.also else "")
            + (f" Listeners:{fact.elsewhere}" if fact.elsewhere else "")
        ),
        next=step,
    )


@register("connect_failures")
def connect_failures(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact), next_step(fact)) for fact in facts(evidence)]
