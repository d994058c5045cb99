"""DNS queries nobody answers: the dns probe's unanswered queries by server, name and process.

Score: >= 2 unanswered queries making >= half of all queries -> 0.85; one that waited
`LONG_WAIT_MS` or more -> `LONG_WAIT`; at least one -> 0.55. Before calling the server dead, the
asker is watched `LONGER_S` more (a slow server's answer may fall outside the first window).
Next: the sockets talking to that server (`ss -uanp 'dst = S'`) and the configured resolvers
(/etc/resolv.conf), quoted in the conclusion (a server the client uses but resolv.conf does not
name points at the client's own configuration).
"""

from __future__ import annotations

import re

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    cmd,
    command_output,
    parse_proc,
    probe,
    probe_runs,
    seconds,
    top,
    total,
)
from worker.backends.base import Evidence

LONG_WAIT_MS, LONG_WAIT = 1500.0, 0.7  # one query unanswered this long
LONGER_S = 6.0  # a second look at the asker: long enough to see a 2-5 s answer arrive
_KEY_RE = re.compile(r"^(?P<name>\S+) (?P<type>\S+) to (?P<server>\S+) by (?P<proc>.+)$")


@register("dns_timeouts")
def dns_timeouts(evidence: Evidence) -> list[Finding]:
    findings = []
    for run in probe_runs(evidence, "dns")[:1]:
        unanswered = int(total(run, "unanswered"))
        queries = int(total(run, "queries")) or unanswered
        rows = [m for row in top(run, "unanswered") if (m := _KEY_RE.match(row.key))]
        if not unanswered or not rows:
            continue
        first = rows[0]
        server, proc = first["server"], first["proc"]
        slow = {
            row.labels.get("server") for r in probe_runs(evidence, "dns") for row in top(r, "slow")
        }
        if server in slow:
            continue  # it does answer, slowly: dns_answers says so
        names = sorted({f"{m['name']} {m['type']}" for m in rows if m["server"] == server})
        waited = max((float(row.value or 0.0) for row in top(run, "unanswered")), default=0.0)
        if unanswered >= 2 and unanswered * 2 >= queries:
            score = 0.85
        else:  # one query left waiting: a long wait is already the delay people see
            score = LONG_WAIT if waited >= LONG_WAIT_MS else 0.55
        cause = (
            f"The DNS server {server} never answers {proc} on {run.host}: {unanswered} of "
            f"{queries} queries went unanswered in {seconds(run):.1f}s "
            f"({', '.join(names[:4])}), so each lookup hangs until its timeout"
            + (f" (one waited {waited / 1000:.1f} s)." if waited else ".")
        )
        host_part = server.rsplit(":", 1)[0]
        resolv = command_output(evidence, "resolv_conf")
        if resolv is not None:
            if host_part in resolv.stdout:
                cause += f" /etc/resolv.conf names {host_part}."
            else:
                cause += (
                    f" /etc/resolv.conf does not name {host_part}: {proc} uses its own "
                    "resolver setting."
                )
        sockets_id = "dns_peers"
        sockets = command_output(evidence, sockets_id)
        if sockets is not None:
            users = sorted(set(re.findall(r'users:\(\("([^"]+)",pid=(\d+)', sockets.stdout)))
            if users:
                cause += (
                    " Sockets talking to it: "
                    + ", ".join(f"{comm} (pid {pid})" for comm, pid in users[:4])
                    + "."
                )
        asks = (
            []
            if sockets is not None
            else [cmd(sockets_id, f"ss -uanp 'dst = {server}'", f"UDP sockets talking to {server}")]
        )
        if resolv is None:
            asks.append(cmd("resolv_conf", "cat /etc/resolv.conf", "configured resolvers"))
        asker = parse_proc(proc)
        watch = (
            [probe(f"dns_longer_{asker.pid}", "dns", "does it ever answer?", pid=asker.pid,
                   duration=LONGER_S)]
            if asker is not None and len(probe_runs(evidence, "dns")) == 1
            else []
        )  # fmt: skip
        next_step = (
            NextStep(
                why=f"who talks to {server}, is it a configured resolver, and does it answer "
                "late (slow) or never (dead)?",
                commands=asks,
                programs=watch,
            )
            if asks or watch
            else None
        )
        findings.append(
            Finding(
                analyzer="dns_timeouts",
                category="dns",
                score=score,
                culprit=f"{server} <- {proc}",
                root_cause=cause,
                resolution_plan=(
                    f"1. Check the resolver at {server}: is it up, reachable, listening "
                    "(firewall on UDP/TCP 53)?\n"
                    f"2. Point {proc.split(' (pid')[0]} at a working resolver (/etc/resolv.conf "
                    "or the application's own DNS setting).\n"
                    "3. Lower resolver timeouts/attempts so a dead server fails fast."
                ),
                ebpf_evidence=(
                    f"{run.key} on {run.host}: {unanswered} of {queries} DNS queries unanswered; "
                    f"top: {first.string} x{top(run, 'unanswered')[0].count}. "
                    f"{run.result.summary}"
                ),
                next=next_step,
            )
        )
    return findings
