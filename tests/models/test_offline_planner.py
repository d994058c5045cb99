"""The offline runbook planner: categories, a triage the policy allows, digging deeper, and
conclusions read from real probe output (the catalog's captured example.json files)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.models import Aggregates, LatencyStats, TopEntry
from tests.support.paths import CATALOG
from worker.analysis.analyzers import load_analyzers
from worker.analysis.categories import categorise
from worker.backends.base import Evidence, ModelRequest, PriorExchange
from worker.backends.offline.planner import OfflineBackend, conclude, plan_next
from worker.backends.offline.runbooks import RUNBOOKS, TRIAGE, triage_plan
from worker.loop.run import run_investigation
from worker.policy import evaluate
from worker.protocol import CommandResult, Diagnostic, EbpfResult, PlanResult, Resolution

ALL_PROBES = {p.name for p in CATALOG.iterdir() if (p / "probe.yaml").exists()}


@pytest.mark.parametrize(
    ("symptom", "category"),
    [
        ("the app keeps saying it can't reach its backend", "network"),
        ("app randomly fails to connect to the database", "network"),
        ("checkout gets connection refused from the payments service", "network"),
        ("upstream returns 502s", "network"),
        ("the service is slow to start and logs are full of config errors", "file_io"),
        ("it says it cannot open its settings file", "file_io"),
        ("latency spikes on the api box", "performance"),
        ("the box feels sluggish and the CPU is pegged", "performance"),
        ("workers are stuck", "locks"),
        ("threads seem deadlocked", "locks"),
        ("the job keeps restarting", "process"),
        ("the daemon crashes every few seconds", "process"),
        ("name lookups hang", "dns"),
        ("can't resolve db.internal", "dns"),
        ("the process disappeared", "process"),
        ("java got OOM killed overnight", "memory"),
        ("fsync takes forever on the db volume", "disk"),
    ],
)
def test_symptoms_as_on_call_says_them_fall_into_their_category(
    symptom: str, category: str
) -> None:
    assert categorise(symptom)[0] == category


def test_a_vanished_process_also_looks_for_an_oom_kill() -> None:
    assert {"process", "memory"} <= set(categorise("the process disappeared")[:2])


def test_a_symptom_without_cues_gets_the_general_set() -> None:
    assert categorise("something is off with web-3") == ["general"]
    _, programs = triage_plan(categorise("something is off"), ALL_PROBES)
    assert {"syscall_errors", "process_exits", "tcp_connect", "exec", "runq_latency"} <= {
        p.target for p in programs
    }


def test_every_runbook_command_is_allowed_by_the_real_policy() -> None:
    commands = TRIAGE + [c for book in RUNBOOKS.values() for c in book.commands]
    verdicts = {c.command: evaluate(c.command) for c in commands}
    refused = {cmd: d.reason for cmd, d in verdicts.items() if d.verdict != "allow"}
    assert refused == {}


def test_every_runbook_probe_is_in_the_catalog() -> None:
    named = {step.probe for book in RUNBOOKS.values() for step in book.probes}
    assert named - ALL_PROBES == set()


def test_triage_is_broad_and_asks_only_for_probes_the_catalog_has() -> None:
    commands, programs = triage_plan(["network"], {"tcp_connect"})
    assert [p.target for p in programs] == ["tcp_connect"]
    assert all(p.type == "catalog" for p in programs)
    ids = {c.id for c in commands}
    assert {"uptime", "kernel_log", "memory", "disk_free", "sockets", "top_cpu"} <= ids
    assert "tcp_pending" in ids


def test_first_step_is_a_triage_and_a_final_step_is_a_resolution() -> None:
    evidence = Evidence(symptom="connections refused to the db", step=1, max_steps=6)
    first = OfflineBackend(probes={"tcp_connect"}).ask(
        ModelRequest(system="", prompt="", evidence=evidence)
    )
    assert isinstance(first.reply, Diagnostic)
    final = OfflineBackend(probes={"tcp_connect"}).ask(
        ModelRequest(system="", prompt="", evidence=evidence, final=True)
    )
    assert isinstance(final.reply, Resolution) and final.reply.confidence == "Low"


def example(probe: str) -> EbpfResult:
    """A real captured result of `probe` (its example.json)."""
    return EbpfResult.model_validate_json((CATALOG / probe / "example.json").read_text())


def evidence_of(
    symptom: str, *results: EbpfResult, commands: dict[str, str] | None = None, step: int = 1
) -> Evidence:
    command_results = {
        id_: CommandResult(id=id_, command=id_, verdict="allow", ran=True, stdout=out)
        for id_, out in (commands or {}).items()
    }
    return Evidence(
        symptom=symptom,
        step=step + 1,
        max_steps=6,
        results=[
            PlanResult(
                host="web-1",
                step=step,
                ebpf_results={f"{r.probe}_{i}": r for i, r in enumerate(results)},
                command_results=command_results,
            )
        ],
    )


def refused(port: int = 5999) -> EbpfResult:
    return EbpfResult(
        program_name="tcp_connect",
        probe="tcp_connect",
        event_count=40,
        duration_s=3.0,
        summary=f"40 connects in 3.0s: 38 refused to 127.0.0.1:{port} by pyconn (pid 4242)",
        aggregates=Aggregates(
            totals={"attempts": 40, "refused": 38, "established": 2},
            top={
                "failures": [
                    TopEntry(
                        key=f"refused 127.0.0.1:{port} by pyconn (pid 4242)",
                        count=38,
                        labels={
                            "outcome": "refused",
                            "destination": f"127.0.0.1:{port}",
                            "pid": 4242,
                            "comm": "pyconn",
                        },
                    )
                ]
            },
        ),
    )


def test_refused_connects_lead_to_a_listener_check_then_a_resolution() -> None:
    triage = Diagnostic(commands=[TRIAGE[0]])
    history = [PriorExchange(prompt="", reply=triage)]
    step2 = plan_next(
        evidence_of("app cannot connect", refused()), history, ALL_PROBES, final=False
    )
    assert isinstance(step2, Diagnostic)
    assert [c.command for c in step2.commands] == ["ss -tlnp 'sport = :5999'"]
    assert evaluate(step2.commands[0].command).verdict == "allow"

    history.append(PriorExchange(prompt="", reply=step2))
    no_listener = "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
    evidence = evidence_of(
        "app cannot connect", refused(), commands={"listeners_5999": no_listener}
    )
    step3 = plan_next(evidence, history, ALL_PROBES, final=False)
    assert isinstance(step3, Resolution)
    assert step3.confidence == "High"
    assert "pyconn (pid 4242)" in step3.root_cause and "127.0.0.1:5999" in step3.root_cause
    assert "no listener on port 5999" in step3.root_cause
    assert "38 refused" in step3.ebpf_evidence


def test_a_listener_on_the_refused_port_lowers_the_confidence() -> None:
    listening = (
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        'LISTEN 129 128 0.0.0.0:5999 0.0.0.0:* users:(("srv",pid=7,fd=3))\n'
    )
    resolution = conclude(
        evidence_of("app cannot connect", refused(), commands={"listeners_5999": listening})
    )
    assert resolution.confidence == "Medium"
    assert "Yet a socket listens on port 5999" in resolution.root_cause


def test_an_enoent_storm_names_the_process_and_path_from_real_probe_output() -> None:
    result = example("file_opens")
    row = result.aggregates.top["failures"][0]
    finding = next(
        f for f in load_analyzers()["syscall_failures"](evidence_of("config errors", result))
    )
    assert str(row.labels["path"]) in finding.root_cause
    assert str(row.labels["top_process"]) in finding.root_cause
    assert finding.next is not None
    assert finding.next.commands[0].command.startswith("ls -la ")  # its directory's listing
    assert str(row.labels["path"]) in finding.ebpf_evidence


def test_an_exec_storm_names_the_parent_and_the_failing_child_from_real_probe_output() -> None:
    result = example("exec")
    parent = result.aggregates.top["parents"][0].key
    findings = load_analyzers()["exec_storm"](evidence_of("the job keeps restarting", result))
    assert findings and parent in findings[0].root_cause and parent in findings[0].ebpf_evidence


def test_unanswered_dns_names_the_server_and_client_from_real_probe_output() -> None:
    result = example("dns")
    server = result.aggregates.top["servers"][0].key
    client = result.aggregates.top["processes"][0].key
    resolution = conclude(evidence_of("name lookups hang", result))
    assert server in resolution.root_cause and client in resolution.root_cause
    assert server in resolution.ebpf_evidence and resolution.confidence == "High"


def test_futex_contention_names_the_waiting_process_from_real_probe_output() -> None:
    result = example("lock_contention")
    proc = result.aggregates.top["processes"][0].key
    resolution = conclude(evidence_of("workers are stuck", result))
    assert proc in resolution.root_cause and proc in resolution.ebpf_evidence


def test_an_oom_kill_names_the_victim_and_its_cgroup() -> None:
    result = example("oom_kills")
    victim = result.aggregates.top["victims"][0].key
    pid = victim.split("pid ")[1].rstrip(")")
    log = (
        "[ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        f"oom_memcg=/grp-1,task_memcg=/grp-1,task=python3,pid={pid},uid=0\n"
    )
    evidence = evidence_of("the process disappeared", result, commands={"oom_log": log})
    findings = load_analyzers()["oom_kill"](evidence)
    assert victim in findings[0].root_cause and "/grp-1" in findings[0].root_cause
    assert findings[0].next is not None
    check = findings[0].next.commands[0].command
    assert "/sys/fs/cgroup/grp-1/memory.max" in check and evaluate(check).verdict == "allow"
    limits = "/sys/fs/cgroup/memory/grp-1/memory.limit_in_bytes:67108864\n"
    evidence = evidence_of(
        "the process disappeared", result, commands={"oom_log": log, "memcg_limit": limits}
    )
    resolution = conclude(evidence)
    assert "64 MiB" in resolution.root_cause and resolution.confidence == "High"


def test_run_queue_latency_blames_the_processes_holding_the_cpus() -> None:
    result = EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        event_count=700,
        duration_s=3.0,
        summary="700 run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=700, p50=0.1, p99=31.0, max=60.0)},
            top={
                "waiters": [TopEntry(key="api (pid 10)", count=600, value=31.0)],
                "on_cpu": [
                    TopEntry(key="spin (pid 21)", count=300, labels={"pid": 21, "cpu_pct": 66}),
                    TopEntry(key="spin (pid 22)", count=300, labels={"pid": 22, "cpu_pct": 64}),
                ],
            },
        ),
    )
    resolution = conclude(evidence_of("latency spikes on the api box", result))
    assert "spin (pid 21)" in resolution.root_cause and "p99 31.0 ms" in resolution.root_cause
    assert "spin (pid 22)" in resolution.ebpf_evidence and resolution.confidence == "High"


def test_nothing_found_widens_the_net_before_giving_up() -> None:
    history = [PriorExchange(prompt="", reply=Diagnostic(commands=[TRIAGE[0]]))]
    quiet = EbpfResult(program_name="tcp_connect", probe="tcp_connect", summary="0 connects")
    reply = plan_next(evidence_of("app cannot connect", quiet), history, ALL_PROBES, final=False)
    assert isinstance(reply, Diagnostic)
    assert {"runq_latency", "exec"} <= {p.target for p in reply.ebpf_programs}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_cpu_hog_is_found_by_the_offline_loop_on_this_host() -> None:
    # niced up (as root) so that other work on a shared 2-core host starves it less
    hog = subprocess.Popen(["nice", "-n", "-10", sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        before, started = cpu_seconds(hog.pid), time.monotonic()
        inv = run_investigation(
            "the server is slow and the load is high",
            ["this-host"],
            OfflineBackend(probes=set()),
        )
        share = (cpu_seconds(hog.pid) - before) / (time.monotonic() - started)
    finally:
        hog.kill()
        hog.wait()
    if share < 0.7:
        pytest.skip(f"host too busy: the hog got {share:.0%} of a CPU, not a clear culprit")
    assert inv.resolution is not None and inv.resolution_source == "model"
    assert f"pid {hog.pid}" in inv.resolution.root_cause
    assert "pidstat (last second)" in inv.resolution.ebpf_evidence
    assert inv.resolution.confidence in {"Medium", "High"}


def test_busy_process_reads_pidstat_rows_of_either_sysstat_layout() -> None:
    from worker.analysis.analyzers.busy_process import pidstat_rows, ps_rows

    new = "Average:        0     12200   95.00    1.00    0.00    2.00   96.00     -  hog\n"
    old = "Average:        0     12201   40.00    1.00    0.00   41.00     -  other\n"
    assert pidstat_rows(old + new) == [("12200", "hog", 96.0), ("12201", "other", 41.0)]
    listing = (
        "    PID    PPID COMMAND         %CPU %MEM STAT ELAPSED\n"
        "     42       1 hog             99.0  0.1 R         12\n"
    )
    assert ps_rows(listing) == [("42", "hog", 99.0)]


def test_an_oom_kill_only_in_the_kernel_log_counts_less_the_older_it_is() -> None:
    def log_at(stamp: str) -> str:
        return (
            f"[{stamp}] Memory cgroup out of memory: Killed process 4711 (loader) "
            "total-vm:79452kB, anon-rss:65152kB\n"
        )

    clock = "Sun Nov 22 10:30:00 UTC 2026\n"
    recent_log = {"oom_log": log_at("Sun Nov 22 10:25:00 2026"), "clock": clock}
    old_log = {"oom_log": log_at("Sun Nov 22 08:00:00 2026"), "clock": clock}
    analyzer = load_analyzers()["oom_kill"]
    recent = analyzer(evidence_of("the process disappeared", commands=recent_log))
    old = analyzer(evidence_of("the process disappeared", commands=old_log))
    off_topic = analyzer(evidence_of("workers are stuck", commands=recent_log))
    assert "loader (pid 4711)" in recent[0].root_cause
    assert recent[0].score >= 0.5 > old[0].score
    assert off_topic[0].score < 0.5  # a recent kill, but the symptom is about something else
    assert "not in the last 15 minutes" in old[0].root_cause


def test_the_processes_waiters_waited_behind_are_blamed_before_other_cpu_users() -> None:
    result = EbpfResult(
        program_name="runq_latency",
        probe="runq_latency",
        event_count=900,
        duration_s=3.0,
        summary="900 run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=900, p50=0.1, p99=40.0, max=90.0)},
            top={
                "behind": [TopEntry(key="spin (pid 31)", count=300, value=2500.0)],
                "on_cpu": [
                    TopEntry(key="agent (pid 7)", count=50, labels={"pid": 7, "cpu_pct": 45}),
                ],
            },
        ),
    )
    finding = load_analyzers()["cpu_starvation"](evidence_of("latency spikes", result))[0]
    assert finding.culprit == "spin (pid 31)" and finding.score >= 0.8
    assert "mostly behind spin (pid 31) (2500 ms of waits)" in finding.root_cause
    assert finding.next is not None and finding.next.programs[0].filters.pid == 31


def _runq(name: str, p99: float, waiters: list[TopEntry], behind: list[TopEntry]) -> EbpfResult:
    return EbpfResult(
        program_name=name,
        probe="runq_latency",
        event_count=3000,
        duration_s=3.0,
        summary="run-queue waits",
        aggregates=Aggregates(
            latency={"runq": LatencyStats(unit="ms", count=3000, p50=0.01, p99=p99, max=60.0)},
            top={"waiters": waiters, "behind": behind},
        ),
    )


def test_a_niced_background_hog_is_not_the_main_hog_and_the_named_victims_waits_tie_it() -> None:
    """A low-priority VM at 110% of a CPU beside two normal-priority spinners: the spinners are
    the main hog, and the named service's own waits (a run filtered to it) tie the finding to
    the symptom."""
    vm, spin, victim = 5134, 21859, 21861
    top_cpu = (
        "  PID  PPID COMMAND         %CPU %MEM STAT ELAPSED\n"
        f" {vm}  2971 qemu-system-x86  111  7.9 SNsl    1543\n"
        f"{spin} 21706 ledger-proc     58.4  0.0 Rs         3\n"
        f"{victim} 21706 catalog-io     1.0  0.0 Ss         3\n"
    )
    pidstat = (
        f"Average:  0  {vm}  106.86  4.90  0.00  13.73  111.76  -  qemu-system-x86\n"
        f"Average:  0  {spin}  68.63  1.96  0.00  33.33  70.59  -  ledger-proc\n"
    )
    host_wide = _runq(
        "runq_latency",
        12.0,
        [TopEntry(key="python3 (pid 2971)", count=23, value=15.2)],
        [TopEntry(key=f"qemu-system-x86 (pid {vm})", count=2359, value=1370.0)],
    )
    focused = _runq(
        "focus_runq_latency_catalog-io",
        9.0,
        [TopEntry(key=f"catalog-io (pid {victim})", count=2700, value=9.0)],
        [
            TopEntry(key=f"qemu-system-x86 (pid {vm})", count=600, value=40.0),
            TopEntry(key=f"ledger-proc (pid {spin})", count=900, value=35.0),
        ],
    )
    commands = {"top_cpu": top_cpu, "cpu_now": pidstat}
    symptom = "catalog p99 went through the roof, box feels sluggish"
    analyzer = load_analyzers()["cpu_starvation"]
    alone = analyzer(evidence_of(symptom, host_wide, commands=commands))[0]
    assert alone.culprit == f"ledger-proc (pid {spin})"
    assert f"qemu-system-x86 (pid {vm}) runs at low priority" in alone.root_cause
    resolution = conclude(evidence_of(symptom, host_wide, focused, commands=commands))
    assert "The main hog is ledger-proc" in resolution.root_cause
    assert f"catalog-io (pid {victim}) itself waited p99 9.0 ms" in resolution.root_cause
    assert resolution.confidence in {"High", "Medium"}
    # the niced VM alone: starvation, but not a strong case (it yields to normal tasks)
    vm_only = {
        "top_cpu": "\n".join(top_cpu.splitlines()[:2]) + "\n",
        "cpu_now": pidstat.splitlines()[0] + "\n",
    }
    assert analyzer(evidence_of(symptom, host_wide, commands=vm_only))[0].score < 0.8
    # without the niced flag (a normal-priority VM), the VM the waits were charged to leads
    plain = {"top_cpu": top_cpu.replace("SNsl", "Ssl"), "cpu_now": pidstat}
    assert analyzer(evidence_of(symptom, host_wide, commands=plain))[0].culprit.startswith("qemu")


def test_a_named_service_that_waits_in_spikes_behind_spinners_ties_them_to_the_symptom() -> None:
    """Its p99 is low (most wake-ups run at once) but it spent a tenth of the window runnable
    and waiting, in spikes of tens of ms, behind two normal-priority spinners: their finding is
    about it. The same process waiting a little (a blocked service wakes rarely) is not."""
    vm, spin, other, victim = 30548, 30622, 30623, 30624
    top_cpu = (
        "  PID  PPID COMMAND         %CPU %MEM STAT ELAPSED\n"
        f"{vm} 30499 qemu-system-x86  130  3.6 SNsl      18\n"
        f"{spin} 30353 billing-srv     61.5  0.0 Rs         0\n"
        f"{other} 30353 billing-srv     52.7  0.0 Rs         0\n"
    )
    host_wide = _runq(
        "runq_latency",
        8.2,
        [TopEntry(key="kworker/1:3 (pid 21125)", count=6, value=54.4)],
        [TopEntry(key=f"qemu-system-x86 (pid {vm})", count=2918, value=1070.0)],
    )

    def focused(total_ms: float, max_ms: float) -> EbpfResult:
        return _runq(
            "focus_runq_latency_authz-io",
            3.5,
            [
                TopEntry(
                    key=f"authz-io (pid {victim})",
                    count=2341,
                    value=3.5,
                    labels={"pid": victim, "max_ms": max_ms, "total_wait_ms": total_ms},
                )
            ],
            [
                TopEntry(key=f"qemu-system-x86 (pid {vm})", count=558, value=137.0),
                TopEntry(key=f"billing-srv (pid {spin})", count=125, value=81.0),
                TopEntry(key="cron-agent (pid 4242)", count=40, value=10.0),  # not a hog
            ],
        )

    symptom = "latency spikes on the authz box"
    commands = {"top_cpu": top_cpu}
    starved = conclude(evidence_of(symptom, host_wide, focused(479.0, 80.0), commands=commands))
    assert f"The main hog is billing-srv (pid {spin})" in starved.root_cause
    assert f"authz-io (pid {victim}) itself waited" in starved.root_cause
    assert "cron-agent" not in starved.root_cause  # evidence only: it is not a hog
    assert "cron-agent (pid 4242) 10 ms" in starved.ebpf_evidence
    assert starved.confidence in {"High", "Medium"}
    barely = conclude(evidence_of(symptom, host_wide, focused(30.0, 4.0), commands=commands))
    assert "itself waited" not in barely.root_cause and barely.confidence == "Low"
