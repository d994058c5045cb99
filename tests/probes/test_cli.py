"""`bpfsleuth probes ...` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.paths import BPFSLEUTH


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BPFSLEUTH, "probes", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_list_json_names_every_probe_and_its_availability() -> None:
    out = _run("list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = {p["name"]: p for p in data["probes"]}
    assert "tcp_connect" in names and "kprobe:tcp_connect" in names["tcp_connect"]["answers"]
    assert all(isinstance(p["available"], bool) for p in data["probes"])


def test_resolve_kprobe_tcp_connect() -> None:
    out = _run("resolve", "kprobe:tcp_connect")
    assert out.returncode == 0
    assert json.loads(out.stdout)["probe"] == "tcp_connect"
    out = _run("resolve", "--type", "tracepoint", "--target", "syscalls:sys_enter_openat")
    assert json.loads(out.stdout)["probe"] == "file_opens"


def test_resolve_refusal_exits_non_zero() -> None:
    out = _run("resolve", "kprobe:no_such_function_here")
    assert out.returncode == 1
    assert json.loads(out.stdout)["how"] == "refused"


def test_show_unknown_probe_suggests() -> None:
    out = _run("show", "tcp_conect")
    assert out.returncode == 2 and "tcp_connect" in out.stdout


def test_run_rejects_bad_requests_before_loading() -> None:
    out = _run("run", "tcp_connect", "--duration", "3600")
    assert out.returncode == 2 and "duration" in out.stderr
    out = _run("run", "tcp_connect", "--comm", "x" * 100)
    assert out.returncode == 2 and "comm" in out.stderr
    out = _run("run", "tcp_connect", "--pid", "-1")
    assert out.returncode == 2
    out = _run("run", "tcp_connect", "--param", "sample_limit=999999")
    assert out.returncode == 2 and "out of range" in out.stderr


@pytest.mark.ebpf
def test_run_json_prints_a_probe_result() -> None:
    out = _run(
        "run", "tracepoint", "-d", "1", "-p", "tracepoint=sched/sched_process_fork", "--json"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["probe"] == "tracepoint"
    assert result["attach_points"] == ["tracepoint:sched:sched_process_fork"]
    assert "kprobe_events" not in out.stdout


def test_doctor_lists_each_catalog_probe() -> None:
    out = subprocess.run(
        [BPFSLEUTH, "doctor", "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    for name in ("tcp_connect", "dns", "file_opens", "exec", "oom_kills", "tracepoint"):
        check = checks[f"probe {name}"]
        assert check["status"] in ("ok", "warn")
        if check["status"] == "warn":
            assert check["detail"]  # why not
