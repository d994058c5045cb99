"""Faults in the distributed loop, with real Redis and real worker processes.

- a host worker SIGKILLed in the middle of a probe: nothing stays attached, and the step ends
  at its deadline with the other host's results;
- Redis restarted mid-investigation (with its data): the client says so, everything resumes,
  and no step is run or recorded twice;
- Redis restarted empty: the client fails with a clear message, and the workers keep serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, command_step, probe_step, resolution
from tests.support.redis_server import RedisServer
from worker.distributed.follow import FollowError
from worker.loop.events import Notice, ProbeStarted, ProgressEvent
from worker.loop.investigation import Investigation

pytestmark = [pytest.mark.redis, pytest.mark.slow]
VISIBILITY_TIMEOUT_S = 30
STALL_S = 6


@pytest.fixture(scope="module")
def cluster(
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    # a short visibility timeout (above the hard limit) so a killed worker's task is redelivered
    # within the test, as it would be after an hour in production
    cluster = Cluster(
        redis_server.url,
        tmp_path_factory.mktemp("faults"),
        BPFSLEUTH_TASK_SOFT_LIMIT_S="20",
        BPFSLEUTH_TASK_HARD_LIMIT_S="25",
        BPFSLEUTH_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        BPFSLEUTH_REDELIVERY_SWEEP_S="1",
        BPFSLEUTH_STALL_S=str(STALL_S),
    )
    try:
        cluster.add_control()
        cluster.add_host("alpha")
        cluster.add_host("beta")
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


class Follower:
    """Follows an investigation in a thread, as the CLI does, keeping every event."""

    def __init__(self, cluster: Cluster, inv: Investigation, timeout_s: float = 90) -> None:
        self.events: list[ProgressEvent] = []
        self.result: Investigation | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(cluster, inv, timeout_s))
        self._thread.start()

    def _run(self, cluster: Cluster, inv: Investigation, timeout_s: float) -> None:
        try:
            self.result = cluster.follow(inv.id, self.events.append, timeout_s=timeout_s)
        except BaseException as exc:
            self.error = exc

    def wait_for(
        self, predicate: Callable[[ProgressEvent], bool], timeout_s: float = 30
    ) -> ProgressEvent:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.05)
        got = "\n".join(e.model_dump_json()[:300] for e in self.events)
        raise AssertionError(f"no such event; got:\n{got}")

    def join(self) -> Investigation:
        self._thread.join(timeout=120)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _bpf_prog_ids_held_by(pids: set[int]) -> set[int]:
    """IDs of the BPF programs these processes hold open (from /proc/<pid>/fdinfo)."""
    ids: set[int] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) != "anon_inode:bpf-prog":
                        continue
                    info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                    for line in info.splitlines():
                        if line.startswith("prog_id:"):
                            ids.add(int(line.split()[1]))
    return ids


def _loaded_prog_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "prog", "list", "--json"], capture_output=True, text=True, check=True
    )
    return {prog["id"] for prog in json.loads(out.stdout)}


def _steps_are_unique(inv: Investigation) -> None:
    assert [plan.step for plan in inv.plans] == list(range(1, len(inv.plans) + 1))
    pairs = Counter((r.host, r.step) for r in inv.results)
    assert all(count == 1 for count in pairs.values()), pairs


@pytest.mark.ebpf
def test_a_host_killed_mid_probe_leaves_nothing_attached_and_the_loop_goes_on(
    cluster: Cluster,
) -> None:
    cluster.script_replies([probe_step("connects", "tcp_connect", 4), resolution()])
    inv = cluster.start("connections fail", ["alpha", "beta"])
    follower = Follower(cluster, inv)
    follower.wait_for(lambda e: isinstance(e, ProbeStarted) and e.host == "alpha")
    alpha = cluster.workers["alpha"]
    held: set[int] = set()
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        held = _bpf_prog_ids_held_by(alpha.group_pids())
        time.sleep(0.05)
    assert held, "alpha's worker holds no BPF program while its probe runs"
    assert held <= _loaded_prog_ids()
    alpha.kill()  # SIGKILL to the worker's whole process group, mid-probe
    killed_at = time.monotonic()
    done = follower.join()
    assert not held & _loaded_prog_ids(), "programs of the killed worker are still loaded"
    assert done.status == "resolved"
    by_host = {r.host: r for r in done.results}
    assert "host alpha did not answer within" in by_host["alpha"].notes[0]
    (beta_probe,) = by_host["beta"].ebpf_results.values()
    assert beta_probe.error is None and beta_probe.probe == "tcp_connect"
    _steps_are_unique(done)
    assert any(
        isinstance(e, Notice) and "host alpha did not answer" in e.message for e in follower.events
    )
    # acks_late: the killed task was never acknowledged, so Redis redelivers it after the
    # visibility timeout; by then the plan has expired (and its step is closed): not run again
    restarted = cluster.restart("alpha")
    restarted.wait_ready()
    redelivered = "received"
    dropped = "Discarding revoked task: worker.tasks.run_plan"
    noop = f"run_plan {inv.id} step 1 on alpha: step is closed; nothing to do"
    deadline = killed_at + VISIBILITY_TIMEOUT_S + 30
    while time.monotonic() < deadline:
        log = restarted.log_text()
        if redelivered in log and (dropped in log or noop in log):
            break
        time.sleep(0.5)
    log = restarted.log_text()
    assert "Task worker.tasks.run_plan[" in log and redelivered in log, log[-2000:]
    assert dropped in log or noop in log, log[-2000:]
    assert not [e for e in cluster.runtime.store.audit_entries(10_000) if e.host == "alpha"]
    assert not held & _loaded_prog_ids()


@pytest.mark.ebpf
def test_redis_restarted_mid_investigation_resumes_without_duplicated_steps(
    cluster: Cluster,
    redis_server: RedisServer,
) -> None:
    cluster.wait_ready()
    cluster.script_replies(
        [
            probe_step("connects", "tcp_connect", 3),
            command_step(("kernel", "uname -r")),
            resolution(),
        ]
    )
    inv = cluster.start("connections fail", ["alpha"])
    follower = Follower(cluster, inv)
    follower.wait_for(lambda e: isinstance(e, ProbeStarted) and e.host == "alpha")
    redis_server.restart(keep_data=True, down_s=1.0)
    done = follower.join()
    assert done.status == "resolved" and done.resolution_source == "model"
    _steps_are_unique(done)
    assert len(done.plans) == 2
    assert done.results[1].command_results["kernel"].stdout.strip() == platform.release()
    messages = [e.message for e in follower.events if isinstance(e, Notice)]
    assert any(m.startswith("lost Redis") for m in messages), messages
    assert any(m.startswith("Redis is back") for m in messages), messages
    audit = [e for e in cluster.runtime.store.audit_entries(10_000) if e.investigation_id == inv.id]
    assert Counter((e.step, e.kind) for e in audit) == {(1, "probe"): 1, (2, "command"): 1}


def test_redis_restarted_empty_fails_the_investigation_with_a_clear_error(
    cluster: Cluster,
    redis_server: RedisServer,
) -> None:
    cluster.wait_ready()
    cluster.script_replies([command_step(("kernel", "uname -r")), resolution()])
    inv = cluster.start("anything", ["alpha"])
    redis_server.restart(keep_data=False)
    with pytest.raises(FollowError, match=f"investigation {inv.id} is not in Redis"):
        cluster.follow(inv.id, timeout_s=30)
    # the workers reconnect and serve the next investigation
    cluster.wait_ready()
    again = cluster.start("anything", ["alpha"])
    done = cluster.follow(again.id, timeout_s=60)
    assert done.status == "resolved"
    assert done.results[0].command_results["kernel"].ran


def test_a_control_worker_killed_mid_model_call_does_not_strand_the_investigation(
    cluster: Cluster,
) -> None:
    cluster.wait_ready()
    slow_model = {**command_step(("kernel", "uname -r")), "delay_s": 3}
    cluster.script_replies([slow_model, resolution()])
    control = cluster.workers["control"]
    received_before = control.log_text().count("worker.tasks.advance[")
    started = time.monotonic()
    inv = cluster.start("the model is slow", ["alpha"])
    while control.log_text().count("worker.tasks.advance[") == received_before:
        assert time.monotonic() - started < 10, "the control worker never took the advance"
        time.sleep(0.05)
    time.sleep(0.5)  # inside the 3 s model call
    control.kill()
    cluster.restart("control").wait_ready()
    done = cluster.follow(inv.id, timeout_s=60)
    assert done.status == "resolved" and done.resolution_source == "model"
    assert time.monotonic() - started >= STALL_S  # rescued by the stall watchdog
    _steps_are_unique(done)
    assert done.results[0].command_results["kernel"].stdout.strip() == platform.release()
    assert "stalled while deciding; advancing" in cluster.workers["control"].log_text()
