"""Network and DNS faults the offline planner was not written for, on evidence built from
probe-shaped rows with names, servers, ports and rates drawn at random on each run:

- DNS error answers (NXDOMAIN/SERVFAIL/REFUSED) and slow answers of the process the symptom
  names win over louder unrelated failures, and say the server, the name and the answer;
- a slow server is not called a dead one; a lone NXDOMAIN of an unrelated process stays Low;
- syscall_errors keeps each process's most telling failure at the top of its table (what the
  result budget trims last), and a retry loop on one path above a compiler's search-path ENOENTs;
- step 1 asks `pgrep` which processes the symptom's words name (policy-allowed), and a focus
  step probes the named process alone when nothing found so far is about it.
"""

from __future__ import annotations

import random
import secrets

from probes.catalog.syscall_errors.reader import Failure, _by_loudness, _spread
from probes.models import Aggregates, TopEntry
from tests.models.test_relevance import error_row, errors_run, evidence, pid, service
from worker.analysis.analyzers import Finding
from worker.analysis.evidence import cmd
from worker.analysis.relevance import UNRELATED, named_first, view
from worker.backends.base import Evidence, PriorExchange
from worker.backends.offline.planner import (
    NAMED_PROCESSES,
    conclude,
    findings_for,
    named_processes_command,
    plan_next,
    rank,
)
from worker.policy import evaluate
from worker.protocol import Diagnostic, EbpfResult

ALL_PROBES = {"syscall_errors", "process_exits", "dns", "tcp_connect", "tcp_retransmits", "exec"}
NR = {"openat": 257, "newfstatat": 262, "connect": 42, "bind": 49, "sendto": 44}


def loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"


def hostname() -> str:
    zone = random.choice(["svc.internal", "prod.internal", "corp.example"])
    return f"{random.choice(['db', 'cache', 'quota', 'auth'])}-{secrets.token_hex(2)}.{zone}"


def dns_run(failed: list[TopEntry] = (), slow: list[TopEntry] = (), **extra: object) -> EbpfResult:  # type: ignore[assignment]
    top = {"failed": list(failed), "slow": list(slow)}
    unanswered = extra.get("unanswered")
    if isinstance(unanswered, list):
        top["unanswered"] = unanswered
    return EbpfResult(
        program_name="dns",
        probe="dns",
        duration_s=3.0,
        summary="DNS queries",
        aggregates=Aggregates(
            totals={"queries": 10, "unanswered": len(top.get("unanswered", []))}, top=top
        ),
    )


def failed_row(comm: str, p: int, server: str, name: str, rcode: str, count: int) -> TopEntry:
    return TopEntry(
        key=f"{rcode} for {name} A from {server} to {comm} (pid {p})",
        count=count,
        labels={
            "rcode": rcode,
            "name": name,
            "type": "A",
            "server": server,
            "comm": comm,
            "pid": p,
        },
    )


def slow_row(comm: str, p: int, server: str, name: str, ms: float, count: int) -> TopEntry:
    return TopEntry(
        key=f"answers from {server} to {comm} (pid {p}) took up to {ms:.0f} ms",
        count=count,
        value=ms,
        labels={"server": server, "comm": comm, "pid": p, "answered_slowly": 1, "name": name},
    )


def with_pgrep(ev: Evidence, *procs: tuple[str, int]) -> Evidence:
    result = ev.results[0]
    listing = "".join(f"{p} {comm}\n" for comm, p in procs)
    commands = dict(result.command_results)
    commands[NAMED_PROCESSES] = commands.get(NAMED_PROCESSES) or next(
        iter(evidence("x", commands={NAMED_PROCESSES: listing}).results[0].command_results.values())
    )
    return ev.model_copy(
        update={"results": [result.model_copy(update={"command_results": commands})]}
    )


def test_dns_error_answers_of_the_named_process_beat_louder_noise() -> None:
    comm, word = service()
    noise, _ = service()
    p, q = pid(), pid()
    server, name = f"{loopback()}:53", hostname()
    rcode = random.choice(["NXDOMAIN", "SERVFAIL", "REFUSED"])
    count = random.randint(4, 30)
    runs = [
        dns_run([failed_row(comm, p, server, name, rcode, count)]),
        errors_run([error_row(noise, q, "openat", "ENOENT", count * 3, path="/etc/x/local.conf")]),
    ]
    symptom = random.choice(
        [f"{word} can't find the db host", f"{word} logs say unknown host", f"{word} is down"]
    )
    resolution = conclude(evidence(symptom, *runs))
    for text in (resolution.root_cause, resolution.ebpf_evidence):
        assert f"{comm} (pid {p})" in text, text
        assert server in text and name in text and rcode in text
    assert resolution.confidence == "High"


def test_slow_answers_are_slowness_not_a_dead_server() -> None:
    comm, word = service()
    p = pid()
    server, name = f"{loopback()}:53", hostname()
    ms = random.uniform(1500, 2600)
    waiting = TopEntry(key=f"{name} A to {server} by {comm} (pid {p})", count=1)
    run = dns_run(slow=[slow_row(comm, p, server, name, ms, 2)], unanswered=[waiting])
    symptom = random.choice([f"every request from {word} takes 2 seconds extra", f"{word} slow"])
    ranked = findings_for(evidence(symptom, run))
    assert ranked[0].analyzer == "dns_answers"
    assert all(f.analyzer != "dns_timeouts" for f in ranked)  # it answers, slowly
    resolution = conclude(evidence(symptom, run))
    assert f"{comm} (pid {p})" in resolution.root_cause and server in resolution.root_cause
    assert f"{ms / 1000:.1f} s" in resolution.root_cause
    assert server in resolution.ebpf_evidence and resolution.confidence == "High"


def test_a_lone_nxdomain_of_an_unrelated_process_stays_low() -> None:
    comm, word = service()
    noise, _ = service()
    run = dns_run([failed_row(noise, pid(), f"{loopback()}:53", hostname(), "NXDOMAIN", 1)])
    ev = with_pgrep(evidence(f"{word} is broken since the deploy", run), (comm, pid()))
    assert view(ev).named == {comm}
    resolution = conclude(ev)
    assert resolution.confidence == "Low"
    assert noise not in resolution.root_cause.split("weak lead")[0]


RARE_PROCS = 4  # other processes' telling failures expected right after the loudest row


def _each_process_first(failures: list[Failure]) -> list[Failure]:
    """The errors table's order (the reader's `_top`)."""
    return _spread(_by_loudness(failures))


def failure(comm: str, p: int, call: str, err: int, count: int, **obj: str | int) -> Failure:
    return Failure(pid=p, comm=comm, nr=NR[call], err=err, count=count, **obj)  # type: ignore[arg-type]


def test_each_process_keeps_its_most_telling_failure_at_the_top() -> None:
    quiet, _ = service()
    looper, _ = service()
    busy = [
        failure(f"cc{i}", pid(), "newfstatat", 2, random.randint(200, 900), path=f"/usr/x{i}")
        for i in range(random.randint(4, 8))
    ]
    for f in busy:
        f.repeat = random.randint(1, 4)  # a search: many paths, each once or twice
    rare_err = random.choice([111, 104, 32, 98])  # ECONNREFUSED, ECONNRESET, EPIPE, EADDRINUSE
    rare = failure(quiet, pid(), "connect", rare_err, random.randint(2, 9), address="unix:/run/a")
    loop_count = random.randint(10, 20)
    loop = failure(looper, pid(), "openat", 2, loop_count, path="/etc/a.conf", repeat=loop_count)
    cut = [  # a path the probe cut at its limit: many search paths may share it
        failure(f"ld{i}", pid(), "openat", 2, random.randint(900, 5000), path="/p" * 40)
        for i in range(2)
    ]
    for f in cut:
        f.repeat = f.count
    ordered = sorted([*busy, *cut, rare, loop], key=lambda f: -f.count)
    kept = _each_process_first(ordered)
    assert kept[0] is loop  # a retry loop on one path is the loudest, not a search
    assert rare in kept[: 1 + RARE_PROCS]
    assert kept.index(loop) < min(kept.index(f) for f in [*busy, *cut])


def test_step_one_asks_pgrep_for_the_symptoms_words_within_the_policy() -> None:
    _, word = service()
    command = named_processes_command(f"{word} can't reach $(rm -rf /) ; pricing-api")
    assert command is not None and command.id == NAMED_PROCESSES
    assert word in command.command and "pricing-api" in command.command
    assert "rm" not in command.command.split("'")[1].split("|")
    assert evaluate(command.command).verdict == "allow"
    first = plan_next(evidence(f"{word} is down"), [], ALL_PROBES, final=False)
    assert isinstance(first, Diagnostic)
    assert any(c.id == NAMED_PROCESSES for c in first.commands)


def test_a_named_process_without_a_finding_gets_a_focus_step() -> None:
    comm, word = service()
    noise, _ = service()
    p = pid()
    run = errors_run([error_row(noise, pid(), "openat", "ENOENT", 14, path="/opt/n/x.conf")])
    ev = with_pgrep(evidence(f"{word} can't talk to its local agent", run), (comm, p))
    triage = Diagnostic(reasoning="triage", commands=[cmd("uptime", "uptime", "load")])
    history = [PriorExchange(prompt="step 1", reply=triage)]
    step = plan_next(ev, history, ALL_PROBES, final=False)
    assert isinstance(step, Diagnostic), step
    focused = {(p_.target, p_.filters.comm) for p_ in step.ebpf_programs}
    assert ("syscall_errors", comm) in focused and ("tcp_connect", comm) in focused
    # once its own failure shows, no more focus: the finding is about it
    mine = errors_run(
        [error_row(comm, p, "connect", "ENOENT", 30, address=f"unix:/run/{word}.sock")]
    )
    ev2 = with_pgrep(evidence(f"{word} can't talk to its local agent", run, mine), (comm, p))
    after = plan_next(ev2, history, ALL_PROBES, final=False)
    programs = after.ebpf_programs if isinstance(after, Diagnostic) else []
    assert not any(p_.name.startswith("focus_") for p_ in programs)
    resolution = conclude(ev2)
    assert f"{comm} (pid {p})" in resolution.root_cause and f"/run/{word}.sock" in (
        resolution.root_cause
    )
    assert resolution.confidence == "High"


def test_focus_goes_to_the_process_named_first_never_a_kernel_thread() -> None:
    first, word = service()
    second, other = service()
    listing = f"{pid()} {second}\n{pid()} migration/{random.randint(0, 7)}\n{pid()} {first}\n"
    ev = evidence(
        f"{word} can't reach {other} since the migration",
        commands={NAMED_PROCESSES: listing},
    )
    assert named_first(view(ev)) == [first, second]


def test_an_unanswered_lookup_is_watched_longer_before_calling_the_server_dead() -> None:
    comm, word = service()
    p = pid()
    server, name = f"{loopback()}:53", hostname()
    waited = random.uniform(1600, 2900)
    waiting = TopEntry(key=f"{name} A to {server} by {comm} (pid {p})", count=1, value=waited)
    ev = evidence(f"weird fixed delay on {word} calls", dns_run(unanswered=[waiting]))
    first = findings_for(ev)[0]
    assert first.analyzer == "dns_timeouts" and first.score >= 0.7  # a long wait is Medium+
    assert f"{waited / 1000:.1f} s" in first.root_cause
    triage = Diagnostic(reasoning="triage", commands=[cmd("uptime", "uptime", "load")])
    step = plan_next(ev, [PriorExchange(prompt="1", reply=triage)], ALL_PROBES, final=False)
    assert isinstance(step, Diagnostic), step
    longer = [p_ for p_ in step.ebpf_programs if p_.target == "dns"]
    assert longer and longer[0].filters.pid == p and longer[0].duration > 3


def test_a_reset_without_a_peer_asks_whom_the_process_talks_to_then_names_it() -> None:
    comm, word = service()
    p = pid()
    errno = random.choice(["ECONNRESET", "EPIPE"])
    call = "recvfrom" if errno == "ECONNRESET" else "sendto"
    rows = errors_run([error_row(comm, p, call, errno, random.randint(15, 60))])
    ev = evidence(f"{word} calls die in the middle of the request", rows)
    triage = Diagnostic(reasoning="triage", commands=[cmd("uptime", "uptime", "load")])
    step = plan_next(ev, [PriorExchange(prompt="1", reply=triage)], ALL_PROBES, final=False)
    assert isinstance(step, Diagnostic), step
    asked = [p_ for p_ in step.ebpf_programs if p_.target == "tcp_connect"]
    assert asked and asked[0].filters.pid == p
    peer = f"127.0.0.1:{random.randint(20000, 60000)}"
    connects = EbpfResult(
        program_name=asked[0].name,
        probe="tcp_connect",
        duration_s=3.0,
        summary="connects",
        events=[{"process_id": p, "data": {"destination": peer}}],
    )
    server, _ = service()
    s_pid = pid()
    listing = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        f'LISTEN 0 64 {peer} 0.0.0.0:* users:(("{server}",pid={s_pid},fd=3))\n'
    )
    symptom = f"{word} calls die in the middle of the request"
    resolution = conclude(evidence(symptom, rows, connects, commands={"listeners": listing}))
    assert f"{comm} (pid {p})" in resolution.root_cause and peer in resolution.root_cause
    assert f"served here by {server} (pid {s_pid})" in resolution.root_cause
    assert errno in resolution.ebpf_evidence and peer in resolution.ebpf_evidence
    assert resolution.confidence == "High"


def test_the_category_bonus_never_lifts_a_finding_about_another_process() -> None:
    named_score = random.uniform(0.5, 0.6)
    elsewhere = Finding(
        analyzer="cpu_starvation",
        category="performance",
        score=named_score - random.uniform(0.001, 0.05),
        relevance=UNRELATED,
        root_cause="a hog elsewhere",
        resolution_plan="-",
    )
    mine = Finding(
        analyzer="dns_timeouts",
        category="dns",
        score=named_score,
        root_cause="the named service waits for DNS",
        resolution_plan="-",
    )
    assert rank([elsewhere, mine], ["performance", "general"])[0] is mine
    # without a penalty, the category still wins a near tie
    themed = elsewhere.model_copy(update={"relevance": 0.95})
    assert rank([themed, mine], ["performance", "general"])[0] is themed


def test_connect_timeouts_to_a_listener_with_a_full_accept_queue_name_it() -> None:
    comm, word = service()
    server, _ = service()
    p, s_pid = pid(), pid()
    dest = f"127.0.0.1:{random.randint(20000, 60000)}"
    count = 1  # what a 3 s window holds of a client with a 1-1.5 s timeout, and one waiting
    connects = EbpfResult(
        program_name="tcp_connect",
        probe="tcp_connect",
        duration_s=3.0,
        summary="connects",
        aggregates=Aggregates(
            totals={"attempts": count},
            top={
                "failures": [
                    TopEntry(
                        key=f"{comm} (pid {p}) -> {dest} timeout",
                        count=count,
                        labels={"outcome": "timeout", "destination": dest, "comm": comm, "pid": p},
                    )
                ],
                "processes": [TopEntry(key=f"{comm} (pid {p})", count=count)],
                "pending": [TopEntry(key=f"{dest} by {comm} (pid {p})", count=1)],
            },
        ),
    )
    backlog = random.randint(0, 8)
    listing = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        f'LISTEN {backlog + 1} {backlog} {dest} 0.0.0.0:* users:(("{server}",pid={s_pid},fd=3))\n'
    )
    symptom = f"calls from {word} just sit there until the timeout"
    resolution = conclude(evidence(symptom, connects, commands={"listeners": listing}))
    assert f"{comm} (pid {p})" in resolution.root_cause and dest in resolution.root_cause
    assert f"{server} (pid {s_pid})" in resolution.root_cause and "accept queue is full" in (
        resolution.ebpf_evidence
    )
    assert resolution.confidence == "High"
    # the same timeouts with a listener that keeps up: not explained, not High
    calm = listing.replace(f"LISTEN {backlog + 1} {backlog}", f"LISTEN 0 {backlog + 1}")
    assert conclude(evidence(symptom, connects, commands={"listeners": calm})).confidence != "High"


def test_glibcs_nscd_probe_never_outranks_a_refused_backend() -> None:
    comm, _ = service()
    other = random.choice(["dpkg", "apt-get", "sshd", "cron"])
    p, q = pid(), pid()
    dest = f"127.0.0.1:{random.randint(20000, 60000)}"
    nscd = random.choice(["unix:/var/run/nscd/socket", "unix:/run/nscd/socket"])
    refused = random.randint(10, 30)
    rows = errors_run(
        [
            error_row(other, q, "connect", "ENOENT", refused * 3, address=nscd),
            error_row(comm, p, "connect", "ECONNREFUSED", refused, address=dest),
        ]
    )
    resolution = conclude(evidence("the app keeps saying it can't reach its backend", rows))
    assert f"{comm} (pid {p})" in resolution.root_cause and dest in resolution.root_cause
    loud = failure(other, q, "connect", 2, refused * 3, address=nscd, repeat=refused * 3)
    mine = failure(comm, p, "connect", 111, refused, address=dest, repeat=refused)
    assert _each_process_first([loud, mine])[:2] == [mine, loud]
