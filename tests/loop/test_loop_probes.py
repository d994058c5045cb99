"""The loop with real probes on this kernel: the seed's eBPF requests, answered by catalog
probes on tracepoints, with a workload that connects to a closed port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakes.anthropic_api import FakeAnthropic
from tests.support.paths import BPFSLEUTH
from tests.support.ports import free_port
from tests.support.workloads import refused_client
from worker.backends.anthropic import AnthropicBackend
from worker.backends.offline.planner import OfflineBackend
from worker.loop.events import ProbeRefused, ProbeStarted, ProgressEvent
from worker.loop.investigation import Budgets
from worker.loop.run import run_investigation

pytestmark = pytest.mark.ebpf


@pytest.fixture
def myapp() -> Iterator[tuple[int, int]]:
    """A process named `myapp` connecting to a closed port 20 times a second: (pid, port)."""
    port = free_port()
    with refused_client("myapp", port) as proc:
        yield proc.pid, port


def seed_programs(duration: float) -> dict[str, Any]:
    """The seed's example diagnostic (06), with short probes and one request no probe answers."""
    return {
        "reply": {
            "response_type": "diagnostic",
            "reasoning": "Database connection failures: watch connects and connect syscalls.",
            "commands": [{"id": "sockets", "command": "ss -s", "description": "socket totals"}],
            "ebpf_programs": [
                {
                    "name": "tcp_connect_db",
                    "type": "kprobe",
                    "target": "tcp_connect",
                    "duration": duration,
                    "filters": {"comm": "myapp"},
                    "description": "Monitor TCP connection attempts from application",
                },
                {
                    "name": "dns_queries",
                    "type": "tracepoint",
                    "target": "syscalls/sys_enter_connect",
                    "duration": duration,
                    "description": "Monitor network system calls for DNS resolution",
                },
                {
                    "name": "forks",
                    "type": "kprobe",
                    "target": "frobnicate_widgets",
                    "duration": duration,
                },
            ],
        }
    }


RESOLUTION = {
    "reply": {
        "response_type": "resolution",
        "root_cause": "myapp connects to a closed port",
        "resolution_plan": "1. start the service",
        "confidence": "High",
        "ebpf_evidence": "refused connects",
    }
}


def test_the_seed_requests_get_real_results_from_tracepoint_probes(myapp) -> None:
    pid, port = myapp
    events: list[ProgressEvent] = []
    with FakeAnthropic([seed_programs(2), RESOLUTION]) as fake:
        backend = AnthropicBackend(api_key="k", model="claude-test", base_url=fake.url)
        inv = run_investigation(
            "app fails to connect to the db", ["web-1"], backend, on_event=events.append
        )
        assert fake.violations == []
        step2 = fake.user_texts(1)[-1]
    results = inv.results[0].ebpf_results
    by_name = {r.program_name: r for r in results.values()}
    assert set(by_name) == {"tcp_connect_db", "dns_queries", "forks"}
    assert all(key.startswith(f"{r.program_name}_") for key, r in results.items())

    filtered = by_name["tcp_connect_db"]
    assert filtered.error is None and filtered.probe == "tcp_connect"
    assert filtered.resolved_from == "kprobe:tcp_connect"
    assert "tracepoint:sock:inet_sock_set_state" in filtered.attach_points
    failures = filtered.aggregates.top["failures"]
    assert failures[0].labels["comm"] == "myapp" and failures[0].labels["pid"] == pid
    assert failures[0].labels["destination"] == f"127.0.0.1:{port}"
    assert failures[0].labels["outcome"] == "refused" and failures[0].count >= 10
    processes = filtered.aggregates.top["processes"]
    assert all(row.key.startswith("myapp") for row in processes)  # the comm filter held

    unfiltered = by_name["dns_queries"]
    assert unfiltered.error is None and unfiltered.resolved_from == "syscalls/sys_enter_connect"
    assert int(unfiltered.aggregates.totals["refused"]) >= 10

    assert by_name["forks"].error and "nearest probes" in by_name["forks"].error
    refused = [e for e in events if isinstance(e, ProbeRefused)]
    assert [e.requested for e in refused] == ["kprobe:frobnicate_widgets"]
    started = {e.name: e for e in events if isinstance(e, ProbeStarted)}
    assert set(started) == {"tcp_connect_db", "dns_queries"}
    assert started["tcp_connect_db"].attach_points and started["tcp_connect_db"].ends_at

    assert f"127.0.0.1:{port}" in step2 and 'requested="kprobe:tcp_connect"' in step2
    assert "kprobe:frobnicate_widgets" in step2 and "nearest probes" in step2


def test_the_offline_planner_names_the_process_and_port(myapp) -> None:
    pid, port = myapp
    inv = run_investigation(
        "the app randomly fails to connect to the database",
        ["web-1"],
        OfflineBackend(),
        budgets=Budgets(max_iterations=4),
    )
    assert inv.resolution is not None and inv.resolution_source == "model"
    assert f"myapp (pid {pid})" in inv.resolution.root_cause
    assert f"127.0.0.1:{port}" in inv.resolution.root_cause
    assert "refused" in inv.resolution.ebpf_evidence
    assert inv.resolution.confidence == "High"


def test_ctrl_c_during_a_probe_detaches_it_and_exits_130() -> None:
    script = {
        "reply": {
            "response_type": "diagnostic",
            "reasoning": "watch",
            "ebpf_programs": [
                {"name": "long", "type": "kprobe", "target": "tcp_connect", "duration": 30}
            ],
        }
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    with FakeAnthropic([script]) as fake:
        proc = subprocess.Popen(
            [str(BPFSLEUTH), "diagnose", "x", "--model", "anthropic", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake.url},
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if "long attached" in line or time.monotonic() > deadline:
                break
        children = subprocess.run(
            ["pgrep", "-f", f"probes.engine.child {proc.pid}"], capture_output=True, text=True
        ).stdout.split()
        assert children, "the probe child should be running"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130 and "interrupted" in rest
    assert time.monotonic() - started < 15  # did not wait for the 30 s probe
    for child in children:
        assert not Path(f"/proc/{child}").exists()
