"""Compiled probes kept for repeated plans (runner.keep_compiled): the same request again runs
without compiling and counts only its own run's events (maps cleared); released processes exit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes.engine import runner
from probes.engine.runner import ProbeProgress, keep_compiled, run_probes
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from tests.support.live_probe import Workload

pytestmark = pytest.mark.ebpf

COMM = "svc-kept"
CALLS = r"""
import ctypes, json, os, sys
ctypes.CDLL(None).prctl(15, sys.argv[2].encode(), 0, 0, 0)  # PR_SET_NAME
print(json.dumps({}), flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[1])):
    os.getppid()
print(json.dumps({}), flush=True)
"""
REQUEST = ProbeRequest(
    probe="tracepoint",
    duration_s=1.5,
    filters=ProbeFilters(comm=COMM),
    params={"tracepoint": "syscalls:sys_enter_getppid"},
)


@pytest.fixture
def kept() -> Iterator[None]:
    keep_compiled(2)
    yield
    keep_compiled(0)


def _count(calls: int) -> ProbeResult:
    """Run REQUEST from this (main) thread, releasing a workload of `calls` getppid() once
    attached. Kept processes die with the thread that started them (PR_SET_PDEATHSIG)."""
    workload = Workload(CALLS, str(calls), COMM)
    assert workload.comm == COMM

    def on_progress(progress: ProbeProgress) -> None:
        if progress.phase == "attached":
            workload.go()

    try:
        [result] = run_probes([REQUEST], on_progress=on_progress)
        workload.finish()
    finally:
        workload.kill()
    return result


def test_a_repeated_request_reuses_its_compiled_probe_with_fresh_maps(kept: None) -> None:
    first = _count(700)
    assert first.error is None and first.compile_s > 0
    assert first.event_count == 700
    [proc] = runner._KEPT.idle.values()
    second = _count(300)
    assert second.error is None, second.error
    assert second.compile_s == 0.0  # no compile: the kept probe ran again
    assert second.event_count == 300  # only this run's calls: the maps were cleared
    assert second.attach_points == first.attach_points and second.duration_s >= 1.4
    assert list(runner._KEPT.idle.values()) == [proc]
    keep_compiled(0)
    assert not runner._KEPT.idle
    assert proc.wait(timeout=10) == 0  # a released process exits by itself
