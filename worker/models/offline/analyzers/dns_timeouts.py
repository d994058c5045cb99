"""DNS queries nobody answers: the dns probe's unanswered queries by server, name and process.

Score: >= 2 unanswered queries making >= half of all queries -> 0.85; at least one -> 0.55.
Next: the sockets talking to that server (`ss -uanp 'dst = S'`) and the configured resolvers
(/etc/resolv.conf), quoted in the conclusion (a server the client uses but resolv.conf does not
name points at the client's own configuration).
"""

from __future__ import annotations

import re

from worker.backends.base import Evidence
from worker.models.offline.analyzers import Finding, NextStep, register
from worker.models.offline.evidence import cmd, command_output, probe_runs, seconds, top, total

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
        names = sorted({f"{m['name']} {m['type']}" for m in rows if m["server"] == server})
        score = 0.85 if unanswered >= 2 and unanswered * 2 >= queries else 0.55
        cause = (
            f"The DNS server {server} never answers {proc} on {run.host}: {unanswered} of "
            f"{queries} queries went unanswered in {seconds(run):.1f}s "
            f"({', '.join(names[:4])}), so each lookup hangs until its timeout."
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
        next_step = (
            NextStep(why=f"who talks to {server}, and is it a configured resolver?", commands=asks)
            if asks
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
