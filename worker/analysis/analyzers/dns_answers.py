"""DNS answers that are errors or slow: which process asks which server for which name.

Facts: the dns probe's `failed` rows (NXDOMAIN, SERVFAIL, REFUSED... per asker, server, name)
and `slow` rows (answers that took >= the probe's SLOW_MS, per asker and server, with the
slowest in ms and the queries still waiting that long at the end).

`score()`: an error answer repeated `REPEATED` times in the window -> `FAILING`, fewer ->
`FAILED_ONCE` (SERVFAIL/REFUSED count like NXDOMAIN: a name the server will not give); a slow
answer of `VERY_SLOW_MS` or more seen `REPEATED` times (answered or still waiting) ->
`SLOW_REPEATED`, once -> `SLOW_ONCE`, a slow answer under `VERY_SLOW_MS` -> `SLOWISH`.
`render()`: the process, the server, the name, the answer (or the latency), the rate; the
configured resolvers when `cat /etc/resolv.conf` ran. Next: /etc/resolv.conf and the UDP sockets
talking to that server.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.analysis.analyzers import Finding, NextStep, register
from worker.analysis.evidence import ProbeRun, cmd, command_output, probe_runs, seconds, top
from worker.analysis.relevance import Subject
from worker.backends.base import Evidence

REPEATED = 2
FAILING, FAILED_ONCE = 0.85, 0.6
VERY_SLOW_MS = 1000.0
SLOW_REPEATED, SLOW_ONCE, SLOWISH = 0.85, 0.7, 0.5
RCODE_MEANING = {
    "NXDOMAIN": "the name does not exist in DNS (NXDOMAIN)",
    "SERVFAIL": "the server fails to resolve it (SERVFAIL: its upstream or DNSSEC is broken)",
    "REFUSED": "the server refuses to answer this client (REFUSED)",
}
_DNS_THEMES = (
    "resolv",
    "dns",
    "lookup",
    "look up",
    "host",
    "unknown host",
    "can't find",
    "not found",
    "name",
    "connect",
    "reach",
    "backend",
)
_SLOW_THEMES = ("slow", "delay", "takes", "latency", "ages", "seconds", "wait", "hang", "timeout")


def _asks(evidence: Evidence, server: str) -> NextStep | None:
    commands = []
    if command_output(evidence, "resolv_conf") is None:
        commands.append(cmd("resolv_conf", "cat /etc/resolv.conf", "configured resolvers"))
    if command_output(evidence, "dns_peers") is None:
        commands.append(
            cmd("dns_peers", f"ss -uanp 'dst = {server}'", f"UDP sockets talking to {server}")
        )
    if not commands:
        return None
    why = f"is {server} a configured resolver, and who talks to it?"
    return NextStep(why=why, commands=commands)


def _resolv_note(evidence: Evidence, server: str) -> str:
    resolv = command_output(evidence, "resolv_conf")
    if resolv is None:
        return ""
    host = server.rsplit(":", 1)[0]
    if host in resolv.stdout:
        return f" /etc/resolv.conf names {host}."
    return f" /etc/resolv.conf does not name {host}: the process uses its own resolver setting."


@dataclass
class DnsFact:
    """One `failed` row (`rcode` set) or `slow` row (`slowest` ms) of a dns probe run."""

    run: ProbeRun
    comm: str
    pid: str | int | float | None
    server: str
    name: str
    count: int
    rcode: str = ""
    slowest: float = 0.0
    waiting: int = 0
    answered: int = 0
    resolv_note: str = ""  # what /etc/resolv.conf says of the server, when it ran

    @property
    def proc(self) -> str:
        return f"{self.comm} (pid {self.pid})"

    @property
    def window(self) -> float:
        return seconds(self.run)


def facts(evidence: Evidence) -> list[DnsFact]:
    """The error answers of every run, then the slow answers of every run."""
    failed, slow = [], []
    for run in probe_runs(evidence, "dns"):
        for row in top(run, "failed"):
            labels, server = row.labels, str(row.labels.get("server", "?"))
            failed.append(
                DnsFact(
                    run=run,
                    comm=str(labels.get("comm", "?")),
                    pid=labels.get("pid"),
                    server=server,
                    name=str(labels.get("name", "?")),
                    count=row.count,
                    rcode=str(labels.get("rcode", "?")),
                    resolv_note=_resolv_note(evidence, server),
                )
            )
    for run in probe_runs(evidence, "dns"):
        for row in top(run, "slow"):
            labels, server = row.labels, str(row.labels.get("server", "?"))
            slow.append(
                DnsFact(
                    run=run,
                    comm=str(labels.get("comm", "?")),
                    pid=labels.get("pid"),
                    server=server,
                    name=str(labels.get("name", "")),
                    count=row.count,
                    slowest=float(row.value or 0.0),
                    waiting=int(labels.get("still_waiting", 0) or 0),
                    answered=int(labels.get("answered_slowly", 0) or 0),
                    resolv_note=_resolv_note(evidence, server),
                )
            )
    return [*failed, *slow]


def score(fact: DnsFact) -> float:
    if fact.rcode:
        return FAILING if fact.count >= REPEATED else FAILED_ONCE
    if fact.slowest >= VERY_SLOW_MS:
        return SLOW_REPEATED if fact.count >= REPEATED else SLOW_ONCE
    return SLOWISH


def _render_failed(fact: DnsFact, strength: float, next_step: NextStep | None) -> Finding:
    run, proc, server, name, rcode = fact.run, fact.proc, fact.server, fact.name, fact.rcode
    meaning = RCODE_MEANING.get(rcode, f"the server answers {rcode}")
    cause = (
        f"{proc} on {run.host} asks the DNS server {server} for {name} and gets "
        f"{rcode}: {meaning}. {fact.count} such answers in {fact.window:.1f}s "
        f"({fact.count / fact.window:.1f}/s), so every lookup of {name} fails and the "
        "process cannot find its peer."
    ) + fact.resolv_note
    return Finding(
        analyzer="dns_answers",
        category="dns",
        score=strength,
        culprit=f"{proc} -> {rcode} {name} from {server}",
        root_cause=cause,
        resolution_plan=(
            f"1. Check the name {name}: is it spelled right in the configuration of "
            f"{fact.comm}, and does the zone have it (`dig @{server.rsplit(':', 1)[0]} "
            f"{name}`)?\n"
            f"2. Check the resolver {server} (its zones, forwarders; /etc/resolv.conf "
            "or the application's own DNS setting): a migration that dropped or "
            "renamed the record, or a search domain that changed.\n"
            "3. Restore the record, or point the process at the right name/resolver."
        ),
        ebpf_evidence=(
            f"{run.key} on {run.host}: {fact.count} {rcode} answers for {name} from "
            f"{server} to {proc} in {fact.window:.1f}s. {run.result.summary}"
        ),
        next=next_step,
        subject=Subject(
            comm=fact.comm,
            pid=fact.pid if isinstance(fact.pid, int) else None,
            objects=[server, name, rcode.lower()],
            themes=[*_DNS_THEMES, rcode.lower()],
        ),
    )


def _render_slow(fact: DnsFact, strength: float, next_step: NextStep | None) -> Finding:
    run, proc, server, name = fact.run, fact.proc, fact.server, fact.name
    asked = f" for {name}" if name else ""
    resolver = server.rsplit(":", 1)[0]
    cause = (
        f"{proc} on {run.host} waits for DNS: the server {server} answers its "
        f"lookups{asked} after up to {fact.slowest / 1000:.1f} s "
        f"({fact.answered} slow answers"
        + (f", {fact.waiting} more still waiting" if fact.waiting else "")
        + f" in {fact.window:.1f}s), so each request that resolves a name first is delayed "
        f"by that much."
    ) + fact.resolv_note
    return Finding(
        analyzer="dns_answers",
        category="dns",
        score=strength,
        culprit=f"{proc} -> slow DNS {server}",
        root_cause=cause,
        resolution_plan=(
            f"1. Time the resolver: `dig @{resolver} {name or '<name>'}`"
            " (is it overloaded, forwarding to a dead upstream, or rate-limiting?).\n"
            f"2. Point {fact.comm} at a faster resolver, or add a local caching resolver "
            "(nscd, systemd-resolved, dnsmasq).\n"
            "3. Check resolv.conf options (timeout, attempts, rotate) and the search "
            "list: a first server that is slow or dead delays every lookup."
        ),
        ebpf_evidence=(
            f"{run.key} on {run.host}: DNS answers from {server} to {proc}{asked} "
            f"took up to {fact.slowest:.0f} ms ({fact.count} slow in {fact.window:.1f}s). "
            f"{run.result.summary}"
        ),
        next=next_step,
        subject=Subject(
            comm=fact.comm,
            pid=fact.pid if isinstance(fact.pid, int) else None,
            objects=[server, *([name] if name else [])],
            themes=[*_DNS_THEMES, *_SLOW_THEMES],
        ),
    )


def render(fact: DnsFact, strength: float, next_step: NextStep | None) -> Finding:
    if fact.rcode:
        return _render_failed(fact, strength, next_step)
    return _render_slow(fact, strength, next_step)


@register("dns_answers")
def dns_answers(evidence: Evidence) -> list[Finding]:
    """One finding per culprit (a second, longer look at the same asker replaces the first
    when it is stronger)."""
    best: dict[str, Finding] = {}
    for fact in facts(evidence):
        finding = render(fact, score(fact), _asks(evidence, fact.server))
        known = best.get(finding.culprit)
        if known is None or finding.score > known.score:
            best[finding.culprit] = finding
    return list(best.values())
