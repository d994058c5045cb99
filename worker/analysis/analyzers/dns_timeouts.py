"""DNS queries nobody answers: the dns probe's unanswered queries by server, name and process.

Facts: the first dns run's unanswered and total queries, its top unanswered row (server, name,
asker) unless that server shows up among the slow answers (dns_answers covers it), the names
asked of that server, the longest wait, and /etc/resolv.conf and the sockets talking to the
server when they were read.
`score()`: `DEAD_MIN` or more unanswered queries making `DEAD_SHARE` or more of all queries
-> `DEAD`; one that waited `LONG_WAIT_MS` or more -> `LONG_WAIT`; at least one -> `UNANSWERED`.
`render()`: the server, the asker, the count, the names, the longest wait, whether resolv.conf
names the server (a server the client uses but resolv.conf does not name points at the
client's own configuration) and who talks to it.
Next: the sockets talking to that server (`ss -uanp 'dst = S'`) and the configured resolvers,
and, before calling the server dead, the asker watched `LONGER_S` more (a slow server's answer
may fall outside the first window).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import (
    ProbeRun,
    Proc,
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
from worker.protocol import CommandResult

DEAD_MIN, DEAD_SHARE, DEAD = 2, 0.5, 0.85  # this many unanswered, this share of all queries
LONG_WAIT_MS, LONG_WAIT = 1500.0, 0.7  # one query unanswered this long
UNANSWERED = 0.55  # at least one
LONGER_S = 6.0  # a second look at the asker: long enough to see a 2-5 s answer arrive
RESOLV_CONF, DNS_PEERS = "resolv_conf", "dns_peers"  # the commands' ids
_KEY_RE = re.compile(r"^(?P<name>\S+) (?P<type>\S+) to (?P<server>\S+) by (?P<proc>.+)$")


@dataclass
class SilenceFact:
    run: ProbeRun
    unanswered: int
    queries: int
    first: re.Match[str]  # the top unanswered row that reads as name, type, server and asker
    names: list[str]  # "name type" asked of the first row's server
    waited: float  # the longest wait, ms
    resolv: CommandResult | None  # /etc/resolv.conf, when it was read
    sockets: CommandResult | None  # `ss` of the sockets talking to the server, when it ran
    asker: Proc | None
    watched: bool  # the dns probe already ran more than once

    @property
    def server(self) -> str:
        return self.first["server"]

    @property
    def proc(self) -> str:
        return self.first["proc"]


def facts(evidence: Evidence) -> list[SilenceFact]:
    out = []
    runs = probe_runs(evidence, "dns")
    for run in runs[:1]:
        unanswered = int(total(run, "unanswered"))
        queries = int(total(run, "queries")) or unanswered
        rows = [m for row in top(run, "unanswered") if (m := _KEY_RE.match(row.key))]
        if not unanswered or not rows:
            continue
        first = rows[0]
        server = first["server"]
        slow = {row.labels.get("server") for r in runs for row in top(r, "slow")}
        if server in slow:
            continue  # it does answer, slowly: dns_answers says so
        names = sorted({f"{m['name']} {m['type']}" for m in rows if m["server"] == server})
        waited = max((float(row.value or 0.0) for row in top(run, "unanswered")), default=0.0)
        out.append(
            SilenceFact(
                run,
                unanswered,
                queries,
                first,
                names,
                waited,
                command_output(evidence, RESOLV_CONF),
                command_output(evidence, DNS_PEERS),
                parse_proc(first["proc"]),
                len(runs) != 1,
            )
        )
    return out


def score(fact: SilenceFact) -> float:
    if fact.unanswered >= DEAD_MIN and fact.unanswered >= DEAD_SHARE * fact.queries:
        return DEAD
    # one query left waiting: a long wait is already the delay people see
    return LONG_WAIT if fact.waited >= LONG_WAIT_MS else UNANSWERED


def next_step(fact: SilenceFact) -> NextStep | None:
    server = fact.server
    asks = (
        []
        if fact.sockets is not None
        else [cmd(DNS_PEERS, f"ss -uanp 'dst = {server}'", f"UDP sockets talking to {server}")]
    )
    if fact.resolv is None:
        asks.append(cmd(RESOLV_CONF, "cat /etc/resolv.conf", "configured resolvers"))
    asker = fact.asker
    watch = (
        [probe(f"dns_longer_{asker.pid}", "dns", "does it ever answer?", pid=asker.pid,
               duration=LONGER_S)]
        if asker is not None and not fact.watched
        else []
    )  # fmt: skip
    if not (asks or watch):
        return None
    return NextStep(
        why=f"who talks to {server}, is it a configured resolver, and does it answer "
        "late (slow) or never (dead)?",
        commands=asks,
        programs=watch,
    )


def render(fact: SilenceFact, strength: float, next_step: NextStep | None) -> Finding:
    run, server, proc, waited = fact.run, fact.server, fact.proc, fact.waited
    cause = (
        f"The DNS server {server} never answers {proc} on {run.host}: {fact.unanswered} of "
        f"{fact.queries} queries went unanswered in {seconds(run):.1f}s "
        f"({', '.join(fact.names[:4])}), so each lookup hangs until its timeout"
        + (f" (one waited {waited / 1000:.1f} s)." if waited else ".")
    )
    host_part = server.rsplit(":", 1)[0]
    if fact.resolv is not None:
        if host_part in fact.resolv.stdout:
            cause += f" /etc/resolv.conf names {host_part}."
        else:
            cause += (
                f" /etc/resolv.conf does not name {host_part}: {proc} uses its own "
                "resolver setting."
            )
    if fact.sockets is not None:
        users = sorted(set(re.findall(r'users:\(\("([^"]+)",pid=(\d+)', fact.sockets.stdout)))
        if users:
            cause += (
                " Sockets talking to it: "
                + ", ".join(f"{comm} (pid {pid})" for comm, pid in users[:4])
                + "."
            )
    return Finding(
        analyzer="dns_timeouts",
        category="dns",
        score=strength,
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
            f"{run.key} on {run.host}: {fact.unanswered} of {fact.queries} DNS queries "
            f"unanswered; top: {fact.first.string} x{top(run, 'unanswered')[0].count}. "
            f"{run.result.summary}"
        ),
        next=next_step,
    )


@register("dns_timeouts")
def dns_timeouts(evidence: Evidence) -> list[Finding]:
    return [render(fact, score(fact), next_step(fact)) for fact in facts(evidence)]
