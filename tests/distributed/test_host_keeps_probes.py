"""A host worker keeps probe processes ready (probes.runner keep_warm / keep_compiled, set in
each pool process): processes wait before any plan, and a second identical probe step attaches
without compiling again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distributed.cluster import Cluster, probe_step, resolution
from tests.helpers import require_ebpf
from tests.redis_fixture import RedisServer, redis_server  # noqa: F401
from worker.loop.events import ProbeStarted, StepStarted

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
        if int(fields[1]) == pid and (b"probes.child" in cmdline) == probes:  # 4: ppid
            found.add(int(entry.name))
    return found


def _attach_delay_s(cluster: Cluster, investigation_id: str) -> float:
    """From step 1 starting to its probe attached, by the progress stream's entry times."""
    events = cluster.runtime.store.read_progress(investigation_id)
    started = next(i for i, e in events if isinstance(e, StepStarted) and e.step == 1)
    attached = next(i for i, e in events if isinstance(e, ProbeStarted))
    return (int(attached.split("-")[0]) - int(started.split("-")[0])) / 1000


def test_a_host_worker_keeps_probes_ready_and_a_repeated_probe_skips_the_compile(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_ebpf()
    cluster = Cluster(redis_server.url, tmp_path)
    try:
        cluster.add_control()
        host = cluster.add_host("alpha")
        cluster.wait_ready()
        [pool] = _children(host.pid, probes=False)  # concurrency 1
        assert len(_children(pool, probes=True)) == 2  # started ahead, before any plan
        cluster.script_replies([probe_step("opens", "file_opens", 1.5), resolution()])
        delays = []
        for _ in range(2):
            inv = cluster.follow(cluster.start("alpha opens", ["alpha"], max_iterations=3).id)
            [result] = inv.results_of(1)
            assert result.ebpf_results and all(
                p.error is None for p in result.ebpf_results.values()
            ), result
            delays.append(_attach_delay_s(cluster, inv.id))
        first, second = delays
        # the first compiles (seconds with bcc); the second runs in the kept, compiled process
        assert second < first / 2, delays
    finally:
        cluster.stop()
