"""Failed TCP connects (refused, timed out, errno) seen by the tcp_connect probe.

Score: 0.9 when >= 3 of a process's connects fail to one destination, making >= half of that
process's attempts; 0.6 for >= 2 failures, else 0.4. Next: is anything listening on the
refused port here (`ss -tlnp 'sport = :P'`)? No listener confirms it (+0.05); a listener
makes a refusal odd (-0.2: a backlog overflow or a firewall reject instead).
"""

from __future__ import annotations

import re

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.analyzers.syscall_failures import listener_note
from worker.analysis.evidence import cmd, command_output, probe_runs, top, total
from worker.backends.base import Evidence

_ADVICE = {
    "refused": "nothing accepts connections on {dest} (connection refused: RST received)",
    "timeout": "{dest} does not answer (SYN timed out: a firewall drop or a dead host)",
}


QUEUE_FULL = 0.85  # timeouts to a local listener whose accept queue is full: explained
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


@register("connect_failures")
def connect_failures(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "tcp_connect"):
        attempts = int(total(run, "attempts") or run.result.event_count)
        rows = top(run, "failures")
        also = "; ".join(f"{r.key} x{r.count}" for r in rows[1:3] if r.count >= 3)
        for row in rows[:1]:
            labels = row.labels
            outcome = str(labels.get("outcome", "failed"))
            dest = str(labels.get("destination", "?"))
            port = dest.rsplit(":", 1)[-1]
            comm, pid = str(labels.get("comm", "?")), labels.get("pid", "?")
            own = next(
                (p.count for p in top(run, "processes") if p.key == f"{comm} (pid {pid})"),
                attempts,
            )
            share = row.count / own if own else 1.0
            why = _ADVICE.get(outcome, "connect() fails with {outcome}").format(
                dest=dest, outcome=outcome
            )
            score = 0.9 if share >= 0.5 and row.count >= 3 else 0.6 if row.count >= 2 else 0.4
            rate = row.count / (run.result.duration_s or 1.0)
            cause = (
                f"{comm} (pid {pid}) on {run.host} fails to connect to {dest}: {why}. "
                f"{row.count} of its {own} connect attempts failed this way "
                f"({rate:.1f}/s)."
            )
            if also:
                cause += f" Also failing: {also}."
            check_id = f"listeners_{port}"
            listeners = command_output(evidence, check_id)
            next_step = None
            elsewhere = ""
            if outcome == "refused":
                elsewhere = listener_note(evidence, "ECONNREFUSED", dest)
            if outcome == "timeout":
                elsewhere = full_queue_note(evidence, dest)
                waiting = sum(
                    p.count for p in top(run, "pending") if p.key == f"{dest} by {comm} (pid {pid})"
                )  # connects still unanswered at the end: the next timeouts
                if elsewhere:
                    cause += elsewhere
                    if row.count + waiting >= 2:
                        score = max(score, QUEUE_FULL)
            if "IS listening" in elsewhere:
                cause += elsewhere  # the decisive detail: the address the port does listen on
                score = min(1.0, score + 0.05)
            elif port.isdigit() and outcome == "refused":
                if listeners is None:
                    next_step = NextStep(
                        why=f"is anything listening on port {port}?",
                        commands=[
                            cmd(
                                check_id,
                                f"ss -tlnp 'sport = :{port}'",
                                f"listeners on port {port}",
                            )
                        ],
                    )
                elif _listener_lines(listeners.stdout):
                    score -= 0.2
                    cause += (
                        f" Yet a socket listens on port {port} here "
                        f"({_listener_lines(listeners.stdout)[0].split()[-1]}): its accept "
                        "backlog may overflow, or a firewall rejects the connects."
                    )
                else:
                    score = min(1.0, score + 0.05)
                    cause += f" `ss -tlnp` shows no listener on port {port} on {run.host}."
            findings.append(
                Finding(
                    analyzer="connect_failures",
                    category="network",
                    score=score,
                    culprit=f"{comm} (pid {pid}) -> {dest}",
                    root_cause=cause,
                    resolution_plan=(
                        f"1. Start or fix the service that should listen on {dest} "
                        f"(`ss -tlnp` on its host; `systemctl status` of the service).\n"
                        f"2. Check {comm}'s configured address and port for {dest}.\n"
                        "3. Check firewalls between the hosts if the outcome is a timeout."
                    ),
                    ebpf_evidence=(
                        f"{run.key} on {run.host}: {row.count} {outcome} connects to {dest} "
                        f"by {comm} (pid {pid}) of its {own} attempts ({attempts} on the host) in "
                        f"{run.result.duration_s:.1f}s. {run.result.summary}"
                        + (f" Also failing: {also}." if also else "")
                        + (f" Listeners:{elsewhere}" if elsewhere else "")
                    ),
                    next=next_step,
                )
            )
    return findings
