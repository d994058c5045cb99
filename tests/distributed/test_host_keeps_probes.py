"""A host worker keeps probe processes ready (probes.engine.runner keep_warm / keep_compiled /
precompile_catalog, set in each pool process): processes wait before any plan, one per catalog
probe compiles it ahead, and probe steps with different filters and parameters run in that
compiled probe without compiling."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from probes.engine.runner import precompilable
from tests.support.cluster import Cluster, probe_step, resolution
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.ebpf, pytest.mark.slow]


def _children(pid: int, *, probes: bool) -> set[int]:
    """Child processes of `pid`: the probe processes, or the others."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and (b"probes.engine.child" in cmdline) == probes:  # 4: ppid
            found.add(int(entry.name))
    return found


def _cpu_ticks(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def _wait_idle(pids: set[int], timeout_s: float = 300.0) -> None:
    """Until the processes stop using CPU for 3 s (their precompiles done, in the background)."""
    deadline = time.monotonic() + timeout_s
    last, still_since = _cpu_ticks(pids), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_ticks(pids)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 3.0:
            return
    raise AssertionError("the precompiles did not finish")


def test_a_host_worker_precompiles_the_catalog_and_steps_with_other_filters_skip_the_compile(
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    cluster = Cluster(redis_server.url, tmp_path, BPFSLEUTH_PRECOMPILE="1")
    try:
        cluster.add_control()
        host = cluster.add_host("alpha")
        cluster.wait_ready()
        [pool] = _children(host.pid, probes=False)  # concurrency 1
        # started before any plan: two warm processes and one precompile per catalog probe
        expected = 2 + len(precompilable())
        deadline = time.monotonic() + 60  # the pool process's init may end after worker_ready
        while len(children := _children(pool, probes=True)) < expected:
            assert time.monotonic() < deadline, (len(children), expected)
            time.sleep(0.2)
        assert len(children) == expected
        _wait_idle(children)
        steps: list[dict[str, Any]] = [
            probe_step("opens", "file_opens", 1.5),
            probe_step("opens", "file_opens", 1.5, failures_only=True),
        ]
        steps[0]["ebpf_programs"][0]["filters"] = {"pid": os.getpid()}
        steps[1]["ebpf_programs"][0]["filters"] = {"comm": f"c{random.randint(0, 10**9)}"}
        for step in steps:
            cluster.script_replies([step, resolution()])
            inv = cluster.follow(cluster.start("alpha opens", ["alpha"], max_iterations=3).id)
            [result] = inv.results_of(1)
            assert result.ebpf_results, result
            for probe in result.ebpf_results.values():
                assert probe.error is None, probe.error
                assert probe.compile_s == 0.0  # ran in the precompiled probe
    finally:
        cluster.stop()
