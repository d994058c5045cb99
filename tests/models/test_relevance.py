"""Relevance and the generic analyzers' scoring, on evidence built from probe-shaped rows with
names, paths, ports and rates drawn at random on each run: a finding about the process or object
the symptom names beats a louder one about an unrelated process; noise alone stays Low; every
errno row carries its decisive detail (errno word, object, listener address, signal, core)."""

from __future__ import annotations

import random
import secrets

import pytest

from probes.models import Aggregates, TopEntry
from worker.analysis.analyzers.process_exits import process_exits
from worker.analysis.analyzers.syscall_failures import syscall_failures
from worker.analysis.errnos import TABLE, explain
from worker.analysis.relevance import Subject, names, relevance, view
from worker.backends.base import Evidence
from worker.backends.offline.planner import conclude, findings_for
from worker.protocol import CommandResult, EbpfResult, PlanResult

PREFIXES = ("orders", "billing", "ledger", "quota", "vault", "intake", "tally", "relay")
SUFFIXES = ("-api", "-svc", "d", "-wkr", "-sync")
CORE_TEXT = {"yes": "core dumped", "no": "no core dump"}


def service() -> tuple[str, str]:
    word = random.choice(PREFIXES) + secrets.token_hex(1)
    return (word + random.choice(SUFFIXES))[:15], word


def pid() -> int:
    return random.randint(1000, 400000)


def error_row(comm: str, p: int, call: str, errno: str, count: int, **obj: str) -> TopEntry:
    labels: dict[str, str | int | float] = {"pid": p, "comm": comm, "syscall": call}
    labels["errno"] = errno
    labels.update(obj)
    return TopEntry(key=f"{call} {errno} by {comm} (pid {p})", count=count, labels=labels)


def errors_run(rows: list[TopEntry], seconds: float = 3.0) -> EbpfResult:
    return EbpfResult(
        program_name="syscall_errors",
        probe="syscall_errors",
        duration_s=seconds,
        summary="Syscalls",
        aggregates=Aggregates(top={"errors": rows}),
    )


def evidence(symptom: str, *runs: EbpfResult, commands: dict[str, str] | None = None) -> Evidence:
    result = PlanResult(
        plan_id="p",
        host="web-1",
        step=1,
        ebpf_results={run.program_name: run for run in runs},
        command_results={
            k: CommandResult(id=k, command=k, verdict="allow", ran=True, stdout=v)
            for k, v in (commands or {}).items()
        },
    )
    return Evidence(symptom=symptom, hosts=["web-1"], step=2, max_steps=6, results=[result])


@pytest.mark.parametrize("errno", ["EACCES", "ENOSPC", "EMFILE", "EROFS", "EPIPE", "ENOMEM"])
def test_the_named_process_beats_a_louder_unrelated_enoent_loop(errno: str) -> None:
    comm, word = service()
    noise, _ = service()
    p, q = pid(), pid()
    path = f"/srv/{secrets.token_hex(3)}/data.{random.choice(['log', 'conf', 'db'])}"
    fault_rate = random.uniform(2, 8)
    noise_rate = fault_rate * random.uniform(1.5, 3.0)  # the noise is louder
    runs = errors_run(
        [
            error_row(noise, q, "openat", "ENOENT", int(noise_rate * 3), path="/opt/x/local.conf"),
            error_row(comm, p, "write", errno, int(fault_rate * 3), path=path),
        ]
    )
    symptom = f"{word} {random.choice(['is failing', 'has problems since noon', 'broke'])}"
    ranked = findings_for(evidence(symptom, runs))
    assert ranked[0].subject is not None and ranked[0].subject.comm == comm, ranked[0].root_cause
    resolution = conclude(evidence(symptom, runs))
    assert f"{comm} (pid {p})" in resolution.root_cause
    assert errno in resolution.root_cause and errno in resolution.ebpf_evidence
    assert resolution.confidence in {"High", "Medium"}


def test_noise_alone_is_low_and_says_so() -> None:
    noise, _ = service()
    _, word = service()
    q = pid()
    runs = errors_run(
        [error_row(noise, q, "openat", "ENOENT", random.randint(12, 15), path="/opt/a/b.conf")]
    )
    resolution = conclude(evidence(f"{word} is slow today", runs))
    assert resolution.confidence == "Low"
    assert "weak lead" in resolution.root_cause
    assert "could not see" in resolution.root_cause


def test_a_symptom_word_names_a_comm_only_as_a_prefix_or_the_cut_name() -> None:
    comm, word = service()
    assert names(word, comm)
    assert not names("the", "the-api")  # stopwords never name a process
    assert names("payments-api-worker", "payments-api-wo")  # the comm is cut to 15
    assert not names("pay", "payroll-api")
    assert not names(secrets.token_hex(3), comm)


def test_relevance_orders_named_then_object_then_theme_then_other() -> None:
    comm, word = service()
    other, _ = service()
    symptom = view(evidence(f"{word} can't write to /data/{word}.db, disk full?"))
    named = relevance(symptom, Subject(comm=comm))
    obj = relevance(symptom, Subject(comm=other, objects=[f"/data/{word}.db"]))
    theme = relevance(symptom, Subject(comm=other, themes=["disk"]))
    unrelated = relevance(symptom, Subject(comm=other, themes=["reset"]))
    assert named.factor >= obj.factor >= theme.factor > unrelated.factor
    assert "names" in named.text()


def test_refused_connect_names_the_address_the_port_does_listen_on() -> None:
    comm, word = service()
    server, _ = service()
    p, port = pid(), random.randint(2000, 60000)
    listen = f"127.{random.randint(1, 200)}.{random.randint(1, 200)}.{random.randint(2, 200)}"
    runs = errors_run(
        [error_row(comm, p, "connect", "ECONNREFUSED", 40, address=f"127.0.0.1:{port}")]
    )
    ss = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        f'LISTEN 0 128 {listen}:{port} 0.0.0.0:* users:(("{server}",pid=77,fd=3))\n'
    )
    resolution = conclude(
        evidence(f"{word} can't reach its backend", runs, commands={"listeners": ss})
    )
    assert f"IS listening, on {listen}:{port} by {server} (pid 77)" in resolution.root_cause
    assert f"127.0.0.1:{port}" in resolution.root_cause
    assert f"{listen}:{port}" in resolution.ebpf_evidence


def test_missing_unix_socket_is_not_a_missing_file() -> None:
    sock = f"unix:/run/{secrets.token_hex(3)}.sock"
    assert explain("ENOENT", "connect", sock) is TABLE["ENOENT_SOCKET"]
    assert explain("ENOENT", "openat", "/etc/x") is TABLE["ENOENT"]
    comm, word = service()
    runs = errors_run([error_row(comm, pid(), "connect", "ENOENT", 30, address=sock)])
    finding = syscall_failures(evidence(f"{word} can't talk to its daemon", runs))[0]
    assert "unix socket" in finding.root_cause and sock in finding.root_cause


def test_crash_loop_names_signal_core_and_parent() -> None:
    child, word = service()
    parent, _ = service()
    ppid, count = pid(), random.randint(4, 30)
    core = random.choice(["yes", "no"])
    run = EbpfResult(
        program_name="process_exits",
        probe="process_exits",
        duration_s=3.0,
        summary="Processes",
        aggregates=Aggregates(
            top={
                "exits": [
                    TopEntry(
                        key="x",
                        count=count,
                        labels={
                            "comm": child,
                            "parent": f"{parent} (pid {ppid})",
                            "outcome": f"killed by SIGSEGV, {CORE_TEXT[core]}",
                            "signal": "SIGSEGV",
                            "core_dumped": core,
                            "last_pid": pid(),
                            "mean_life_ms": 12.0,
                        },
                    )
                ],
                "spawners": [
                    TopEntry(
                        key=f"{parent} (pid {ppid})",
                        count=count,
                        labels={"pid": ppid, "comm": parent},
                    )
                ],
            }
        ),
    )
    resolution = conclude(evidence(f"{word} keeps crashing", run))
    assert "SIGSEGV" in resolution.root_cause and child in resolution.root_cause
    assert f"{parent} (pid {ppid})" in resolution.root_cause
    assert f"core dumped: {core}" in resolution.ebpf_evidence
    assert resolution.confidence == "High"
    assert process_exits(evidence("x", run))


@pytest.mark.parametrize("errno", [*TABLE, "EWHATEVER"])
def test_every_errno_row_renders_with_its_detail(errno: str) -> None:
    comm, word = service()
    p = pid()
    name = errno.split("_")[0]
    call = {"ENOENT_SOCKET": "connect", "EAGAIN_CLONE": "clone"}.get(errno, "openat")
    obj = f"unix:/run/{word}.sock" if errno == "ENOENT_SOCKET" else f"/srv/{word}/x.conf"
    runs = errors_run([error_row(comm, p, call, name, 30, path=obj)])
    findings = syscall_failures(evidence(f"{word} broke", runs))
    assert findings, errno
    finding = findings[0]
    assert name in finding.root_cause and obj in finding.root_cause
    assert f"{comm} (pid {p})" in finding.root_cause
    assert finding.resolution_plan.startswith("1. ")


def test_an_fsync_storm_of_the_named_writer_is_high() -> None:
    comm, word = service()
    p, rate = pid(), random.uniform(25, 200)
    count = int(rate * 3)
    row = TopEntry(
        key=f"fsync by {comm} (pid {p})",
        count=count,
        value=round(rate, 1),
        labels={"pid": p, "comm": comm, "call": "fsync", "total_ms": 300.0, "mean_ms": 0.1}
        | {"max_ms": 4.0, "errors": 0},
    )
    run = EbpfResult(
        program_name="file_sync",
        probe="file_sync",
        duration_s=3.0,
        summary=f"Sync calls in 3.0s: {count} calls",
        aggregates=Aggregates(top={"syncers": [row]}),
    )
    resolution = conclude(evidence(f"{word} commit latency went up a lot", run))
    assert f"{comm} (pid {p})" in resolution.root_cause and "fsync" in resolution.root_cause
    assert resolution.confidence == "High"


def test_memory_growth_of_the_named_service_beats_a_faster_unnamed_one() -> None:
    comm, word = service()
    other, _ = service()
    p, q = pid(), pid()

    def grower(name: str, proc: int, mb_s: float) -> TopEntry:
        labels = {"pid": proc, "comm": name, "growth_mb": mb_s * 3, "mb_per_s": mb_s}
        labels |= {"rss_mb": 400.0, "anon_growth_mb": mb_s * 3}
        return TopEntry(key=f"{name} (pid {proc})", count=int(mb_s * 3072), labels=labels)

    run = EbpfResult(
        program_name="memory_growth",
        probe="memory_growth",
        duration_s=3.0,
        summary="RSS changes",
        aggregates=Aggregates(
            top={"growers": [grower(other, q, random.uniform(12, 20)), grower(comm, p, 6.0)]}
        ),
    )
    resolution = conclude(evidence(f"{word} memory keeps climbing", run))
    assert f"{comm} (pid {p})" in resolution.root_cause
    assert resolution.confidence == "High"


def test_a_loop_on_one_missing_file_beats_a_busy_host_of_small_failures_and_a_hog() -> None:
    """A package manager's many processes failing a few opens each (on a busy host) do not add
    up against one service's loop on its missing config; a VM at 150% CPU beside it loses."""
    comm, word = service()
    p = pid()
    path = f"/tmp/w{secrets.token_hex(4)}/etc/{word}/{word}.{random.choice(['yaml', 'conf'])}"
    loop = int(3 * random.uniform(20, 100))
    rows = [error_row(comm, p, "openat", "ENOENT", loop, path=path)]
    crowd = random.randint(20, 40)
    rows += [
        error_row(
            f"dpkg-{i}", pid(), "openat", "ENOENT", loop // random.randint(3, 6), path=f"/x{i}"
        )
        for i in range(crowd)
    ]
    hog = f"qemu-{secrets.token_hex(2)}"
    pidstat = f"Average:  0  {pid()}  150.00  0.00  0.00  0.00  150.00  -  {hog}\n"
    symptom = random.choice(
        [f"{word} is slow to start and its config is wrong?", f"{word} won't come up"]
    )
    ev = evidence(symptom, errors_run(rows), commands={"cpu_now": pidstat})
    resolution = conclude(ev)
    assert f"{comm} (pid {p})" in resolution.root_cause and path in resolution.root_cause
    assert resolution.confidence in {"High", "Medium"}
    assert hog not in resolution.root_cause
