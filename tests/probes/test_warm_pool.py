"""Warm probe processes (runner.keep_warm): a plan's probes run in processes started ahead, the
pool is refilled for the next plan, and released processes exit."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.engine import runner
from probes.engine.runner import keep_warm, run_probes
from probes.models import ProbeRequest

pytestmark = pytest.mark.ebpf


@pytest.fixture
def warm_pool() -> Iterator[None]:
    keep_warm(2)
    yield
    keep_warm(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def test_a_plan_runs_in_the_warm_processes_and_the_pool_is_refilled(warm_pool: None) -> None:
    warm = [p.pid for p in runner._POOL.procs]
    assert len(warm) == 2 and all(_alive(pid) for pid in warm)
    results = run_probes(
        [
            ProbeRequest(
                probe="tracepoint", duration_s=1, params={"tracepoint": "sched/sched_process_fork"}
            ),
            ProbeRequest(probe="exec", duration_s=1),
        ]
    )
    assert [r.error for r in results] == [None, None]
    assert all(r.attach_points and r.duration_s >= 0.9 for r in results)
    assert not any(_alive(pid) for pid in warm)  # both ran a probe and exited
    refilled = [p.pid for p in runner._POOL.procs]
    assert len(refilled) == 2 and not set(refilled) & set(warm)
    keep_warm(0)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in refilled) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in refilled)
