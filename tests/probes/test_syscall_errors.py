"""syscall_errors on the real kernel: a program that keeps opening a missing file and connecting to
a closed port must come out as the top failure (openat ENOENT, with the path), by its pid."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.catalog import load_catalog
from probes.catalog.syscall_errors.syscall_table import parse_unistd, syscall_name
from probes.engine.runner import run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from probes.resolver import resolve_key
from tests.support.ebpf import scaled
from tests.support.live_probe import save_example
from tests.support.workloads import compile_c

pytestmark = pytest.mark.ebpf

EXAMPLE = Path(__file__).resolve().parents[2] / "probes/catalog/syscall_errors/example.json"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Storm:
    def __init__(self, proc: subprocess.Popen[bytes], missing: str) -> None:
        self.proc = proc
        self.missing = missing


@pytest.fixture
def storm(tmp_path: Path) -> Iterator[Storm]:
    binary = compile_c("error_storm.c", tmp_path, "svc5", defines={"LIFETIME_S": int(scaled(20))})
    missing = f"/tmp/{secrets.token_hex(6)}/settings.conf"
    proc = subprocess.Popen([str(binary), missing, str(_closed_port())])
    time.sleep(0.2)
    try:
        yield Storm(proc, missing)
    finally:
        proc.kill()
        proc.wait()


def _run(filters: ProbeFilters | None = None, params: dict[str, bool] | None = None) -> ProbeResult:
    request = ProbeRequest(
        probe="syscall_errors",
        duration_s=scaled(2),
        filters=filters or ProbeFilters(),
        params=dict(params or {}),
    )
    result = run_probe(request)
    assert result.error is None, result.error
    return result


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


# A neighbour failing more often than the storm's connects, less than its opens: 10 rmdir("/proc")
# (EBUSY) per round of ~1 ms against the storm's 100 opens and 5 connects per round. In C like the
# storm, so that their rates keep their order on an emulated CPU too (the kernel matrix's guests).
NEIGHBOUR = r"""
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    time_t end = time(0) + atoi(argv[1]);
    while (time(0) < end) {
        for (int i = 0; i < 10; i++) rmdir("/proc");
        usleep(1000);
    }
    return 0;
}
"""


def test_a_noisier_neighbour_does_not_hide_the_storms_second_failure(
    storm: Storm, tmp_path: Path
) -> None:
    (tmp_path / "neighbour.c").write_text(NEIGHBOUR)
    binary = tmp_path / f"n{secrets.token_hex(3)}"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(tmp_path / "neighbour.c")], check=True)
    neighbour = subprocess.Popen([str(binary), str(int(scaled(20)))])
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
    next_up = rf"; next rmdir EBUSY by \S+ \(pid {neighbour.pid}\) x\d+"
    assert re.search(next_up, result.summary), result.summary
    assert len(result.model_dump_json()) < 3_000


def test_pid_filter_errors_only(storm: Storm) -> None:
    result = _run(filters=ProbeFilters(pid=storm.proc.pid), params={"errors_only": True})

    assert {e.labels["pid"] for e in result.aggregates.top["errors"]} == {storm.proc.pid}
    assert "processes" not in result.aggregates.top  # only failures counted: no "busiest" table
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
    # a path the kernel could not read from user memory at that moment is left out of its event
    paths = [e["data"]["path"] for e in opens if "path" in e["data"]]
    assert paths and all(path == storm.missing for path in paths)


def test_syscall_names() -> None:
    assert syscall_name(257) == "openat"
    assert syscall_name(42) == "connect"
    assert syscall_name(455) == "futex_wait"
    assert parse_unistd("#define __NR_read 0\n#define __NR_mseal 462\n") == {
        0: "read",
        462: "mseal",
    }


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
