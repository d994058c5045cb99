"""syscall_errors on the real kernel: a program that keeps opening a missing file and connecting to
a closed port must come out as the top failure (openat ENOENT, with the path), by its pid."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.catalog.syscall_errors.syscall_table import parse_unistd, syscall_name
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.resolver import resolve_key
from probes.runner import run_probe
from tests.support.live_probe import save_example
from tests.support.paths import example_json
from tests.support.ports import free_port
from tests.support.workloads import compile_c, started

EXAMPLE = example_json("syscall_errors")


class Storm:
    def __init__(self, proc: subprocess.Popen[bytes], missing: str) -> None:
        self.proc = proc
        self.missing = missing


@pytest.fixture
def storm(tmp_path: Path) -> Iterator[Storm]:
    binary = compile_c("error_storm.c", tmp_path, "svc5")
    missing = f"/tmp/{secrets.token_hex(6)}/settings.conf"
    with started([str(binary), missing, str(free_port())]) as proc:
        time.sleep(0.2)
        yield Storm(proc, missing)


def _run(filters: ProbeFilters | None = None, params: dict[str, bool] | None = None) -> ProbeResult:
    request = ProbeRequest(
        probe="syscall_errors",
        duration_s=2,
        filters=filters or ProbeFilters(),
        params=dict(params or {}),
    )
    result = run_probe(request)
    assert result.error is None, result.error
    return result


@pytest.mark.ebpf
def test_enoent_storm_is_the_top_failure(storm: Storm) -> None:
    result = _run()

    top = result.aggregates.top["errors"][0]
    assert top.labels["pid"] == storm.proc.pid
    assert top.labels["comm"] == "svc5"
    assert top.labels["syscall"] == "openat"
    assert top.labels["errno"] == "ENOENT"
    assert top.labels["path"] == storm.missing
    assert top.count >= 1_000
    refused = [
        e
        for e in result.aggregates.top["errors"]
        if e.labels["pid"] == storm.proc.pid and e.labels["errno"] == "ECONNREFUSED"
    ]
    assert refused and refused[0].labels["syscall"] == "connect"
    # 100 opens per 5 connects
    assert 10 <= top.count / refused[0].count <= 30
    assert f"openat ENOENT by svc5 (pid {storm.proc.pid}) on {storm.missing}" in result.summary
    assert result.aggregates.totals["errors"] >= top.count + refused[0].count
    assert len(result.model_dump_json()) < 3_000
    save_example(result)


# A neighbour failing more often than the storm's connects, less than its opens: 20 rmdir("/proc")
# (EBUSY) per millisecond against 100 opens and 5 connects.
NEIGHBOUR_PY = r"""
import os, time
end = time.time() + 20
while time.time() < end:
    for _ in range(20):
        try:
            os.rmdir("/proc")
        except OSError:
            pass
    time.sleep(0.001)
"""


@pytest.mark.ebpf
def test_a_noisier_neighbour_does_not_hide_the_storms_second_failure(storm: Storm) -> None:
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR_PY])
    try:
        time.sleep(0.2)
        result = _run()
    finally:
        neighbour.kill()
        neighbour.wait()

    errors = result.aggregates.top["errors"]
    assert [(e.labels["pid"], e.labels["errno"]) for e in errors[:2]] == [
        (storm.proc.pid, "ENOENT"),
        (storm.proc.pid, "ECONNREFUSED"),
    ], errors
    # the summary still ranks by count: the neighbour's bigger failure is named next
    next_up = rf"; next rmdir EBUSY by \S+ \(pid {neighbour.pid}\) on /proc x\d+"
    assert re.search(next_up, result.summary), result.summary
    assert len(result.model_dump_json()) < 3_000


@pytest.mark.ebpf
def test_pid_filter_errors_only(storm: Storm) -> None:
    result = _run(filters=ProbeFilters(pid=storm.proc.pid), params={"errors_only": True})

    assert {e.labels["pid"] for e in result.aggregates.top["processes"]} == {storm.proc.pid}
    totals = result.aggregates.totals
    # only failing calls were counted (the maps are one snapshot, read after detaching)
    assert totals["calls"] > 1_000
    assert totals["calls"] == totals["errors"]
    assert {e.labels["errno"] for e in result.aggregates.top["errors"]} == {
        "ENOENT",
        "ECONNREFUSED",
    }
    # samples are the first failures seen: all of this process here, the opens with their path
    assert result.events and all(e["process_id"] == storm.proc.pid for e in result.events)
    opens = [e for e in result.events if e["data"]["syscall"] == "openat"]
    assert opens and all(e["data"]["path"] == storm.missing for e in opens)


def test_syscall_names() -> None:
    assert syscall_name(257) == "openat"
    assert syscall_name(42) == "connect"
    assert syscall_name(455) == "futex_wait"
    assert parse_unistd("#define __NR_read 0\n#define __NR_mseal 462\n") == {
        0: "read",
        462: "mseal",
    }


@pytest.mark.ebpf
def test_answers_resolve_to_this_probe() -> None:
    spec = load_catalog().probes["syscall_errors"]
    for answer in spec.answers:
        resolved = resolve_key(answer)
        assert resolved.probe == "syscall_errors", (answer, resolved.reason)


def test_example_is_a_real_result() -> None:
    example = ProbeResult.model_validate_json(EXAMPLE.read_text())
    assert example.probe == "syscall_errors"
    assert example.error is None
    assert example.aggregates.top["errors"][0].count > 0
