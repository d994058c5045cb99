"""The offline runbook planner: categories, a triage plan the policy allows, conclusions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.models import Aggregates, TopEntry
from worker.loop.run import run_investigation
from worker.models.base import Evidence, ModelRequest
from worker.models.offline import OfflineBackend
from worker.models.offline.categories import categorise
from worker.models.offline.planner import conclude
from worker.models.offline.runbooks import BASELINE, RUNBOOKS, triage_plan
from worker.policy import evaluate
from worker.protocol import Diagnostic, EbpfResult, PlanResult, Resolution


def test_symptoms_fall_into_their_categories() -> None:
    assert categorise("app randomly fails to connect to the database")[0] == "network"
    assert categorise("DNS resolution is slow for db.example.com")[0] == "dns"
    assert categorise("java got OOM killed overnight")[0] == "memory"
    assert categorise("something is off") == ["cpu"]


def test_every_runbook_command_is_allowed_by_the_real_policy() -> None:
    commands = BASELINE + [c for book in RUNBOOKS.values() for c in book.commands]
    verdicts = {c.command: evaluate(c.command) for c in commands}
    refused = {cmd: d.reason for cmd, d in verdicts.items() if d.verdict != "allow"}
    assert refused == {}


def test_triage_asks_only_for_probes_the_catalog_has() -> None:
    commands, programs = triage_plan(["network"], {"tcp_connect"})
    assert [p.target for p in programs] == ["tcp_connect"]
    assert all(p.type == "catalog" for p in programs)
    assert {"uptime", "tcp_pending"} <= {c.id for c in commands}


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


def test_refused_connects_are_concluded_with_the_culprit_named() -> None:
    probe = EbpfResult(
        program_name="tcp_connect",
        probe="tcp_connect",
        event_count=40,
        summary="40 connects in 5.0s: 38 refused to 127.0.0.1:5999 by pyconn (pid 4242)",
        aggregates=Aggregates(
            totals={"attempts": 40, "refused": 38, "established": 2},
            top={
                "failures": [
                    TopEntry(
                        key="refused 127.0.0.1:5999 by pyconn (pid 4242)",
                        count=38,
                        labels={
                            "outcome": "refused",
                            "destination": "127.0.0.1:5999",
                            "pid": 4242,
                            "comm": "pyconn",
                        },
                    )
                ]
            },
        ),
    )
    evidence = Evidence(
        symptom="app cannot connect",
        step=2,
        max_steps=6,
        results=[PlanResult(host="web-1", step=1, ebpf_results={"tcp_connect_1": probe})],
    )
    resolution = conclude(evidence)
    assert resolution.confidence == "High"
    assert "pyconn (pid 4242)" in resolution.root_cause
    assert "127.0.0.1:5999" in resolution.root_cause
    assert "38 refused" in resolution.ebpf_evidence


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
    assert [t.step for t in inv.turns] == [1, 2]


def test_busy_process_reads_pidstat_rows_of_either_sysstat_layout() -> None:
    from worker.models.offline.analyzers.busy_process import pidstat_rows

    new = "Average:        0     12200   95.00    1.00    0.00    2.00   96.00     -  hog\n"
    old = "Average:        0     12201   40.00    1.00    0.00   41.00     -  other\n"
    assert pidstat_rows(old + new) == [("12200", "hog", 96.0), ("12201", "other", 41.0)]
