"""The loop through Celery: real redis-server, real `bpfsleuth worker` processes, a scripted model.

Module-scoped: one Redis, one control worker and two host workers (alpha, beta) serve every test
here; each test writes the model's script, starts an investigation through the broker and
follows its progress stream as the CLI does.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Iterator

import pytest

from probes.capabilities import HostCapabilities
from tests.support.cluster import Cluster, command_step, resolution
from tests.support.paths import BPFSLEUTH
from tests.support.redis_server import RedisServer
from worker.distributed.registry import HostNotLive, HostRecord, Registry
from worker.loop.events import ProgressEvent, StepStarted

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    cluster = Cluster(redis_server.url, tmp_path_factory.mktemp("cluster"))
    try:
        cluster.add_control()
        cluster.add_host("alpha")
        cluster.add_host("beta")
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


def _audit_for(cluster: Cluster, investigation_id: str) -> list[tuple[str, str, str]]:
    return [
        (entry.host, entry.argv, entry.asked_by)
        for entry in cluster.runtime.store.audit_entries(10_000)
        if entry.investigation_id == investigation_id
    ]


def test_hosts_command_lists_both_live_host_workers_with_their_kernel(cluster: Cluster) -> None:
    done = subprocess.run(
        [str(BPFSLEUTH), "hosts", "--json"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(rows) >= {"alpha", "beta"}
    for row in rows.values():
        assert row["kernel"] == platform.release()
        assert row["heartbeat_age_s"] < 3.5  # beats every second, expires after 3
    assert "control" not in rows
    table = subprocess.run(
        [str(BPFSLEUTH), "hosts"],
        env={**cluster.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if "alpha" in line or "beta" in line]
    assert len(lines) == 2 and all(platform.release() in line for line in lines)
    assert all("s ago" in line for line in lines)


def test_a_plan_for_one_host_runs_on_that_host_only(cluster: Cluster) -> None:
    cluster.script_replies([command_step(("kernel", "uname -r")), resolution()])
    inv = cluster.start("which kernel is this", ["alpha"])
    done = cluster.follow(inv.id)
    assert done.status == "resolved" and done.resolution_source == "model"
    (result,) = done.results
    assert result.host == "alpha" and result.step == 1
    kernel = result.command_results["kernel"]
    assert kernel.ran and kernel.exit_code == 0
    assert kernel.stdout.strip() == platform.release()
    assert kernel.sandbox.startswith("seccomp+"), kernel.sandbox  # ran in the sandbox
    audit = _audit_for(cluster, inv.id)
    assert audit == [("alpha", "uname -r", "test:distributed")]
    entries = [
        e for e in cluster.runtime.store.audit_entries(10_000) if e.investigation_id == inv.id
    ]
    assert [e.sandbox for e in entries] == [kernel.sandbox]


def test_a_fan_out_to_two_hosts_merges_both_results_in_one_step(cluster: Cluster) -> None:
    cluster.script_replies(
        [command_step(("kernel", "uname -r"), ("uptime", "cat /proc/uptime")), resolution()]
    )
    events: list[ProgressEvent] = []
    inv = cluster.start("compare two hosts", ["alpha", "beta"])
    done = cluster.follow(inv.id, events.append)
    assert done.status == "resolved"
    assert len(done.plans) == 1 and len(done.turns) == 2
    by_host = {r.host: r for r in done.results}
    assert set(by_host) == {"alpha", "beta"}
    for result in by_host.values():
        assert result.step == 1
        assert result.command_results["kernel"].stdout.strip() == platform.release()
        assert result.command_results["uptime"].exit_code == 0
    assert sorted(h for h, _, _ in _audit_for(cluster, inv.id)) == ["alpha"] * 2 + ["beta"] * 2
    assert [e.step for e in events if isinstance(e, StepStarted)] == [1]
    assert events[-1].kind == "resolution"


def test_a_host_that_never_answers_ends_the_step_at_its_deadline(cluster: Cluster) -> None:
    # "ghost" beats (so the plan is sent) but no worker consumes its queue
    registry = Registry.from_url(cluster.redis_url)
    ghost = HostRecord(name="ghost", capabilities=cluster_caps(registry))
    registry.beat(ghost, ttl_s=120)
    try:
        cluster.script_replies([command_step(("kernel", "uname -r")), resolution()])
        started = time.monotonic()
        inv = cluster.start("one host is silent", ["alpha", "ghost"])
        done = cluster.follow(inv.id, timeout_s=60)
        elapsed = time.monotonic() - started
    finally:
        registry.remove("ghost")
    deadline_s = cluster.settings.command_timeout_s + 2.0 + cluster.dist.step_grace_s
    assert elapsed >= deadline_s - 0.5
    assert done.status == "resolved"
    by_host = {r.host: r for r in done.results}
    assert by_host["alpha"].command_results["kernel"].ran
    assert by_host["ghost"].command_results == {}
    assert f"host ghost did not answer within {deadline_s:.0f} s" in by_host["ghost"].notes[0]
    assert len(done.plans) == 1  # the step advanced exactly once
    # ghost's worker comes up late: the plan has expired and is dropped, not run
    late = cluster.add_host("ghost")
    try:
        cluster.wait_ready()
        dropped = "Discarding revoked task: worker.tasks.run_plan"  # Celery's words for expired
        deadline = time.monotonic() + 15
        while dropped not in late.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dropped in late.log_text()
        assert "run_plan" not in late.log_text().split(dropped)[1].split("\n", 1)[1]
        assert [h for h, _, _ in _audit_for(cluster, inv.id)] == ["alpha"]
    finally:
        late.stop()
        del cluster.workers["ghost"]


def test_an_investigation_for_a_host_without_a_worker_fails_fast(cluster: Cluster) -> None:
    with pytest.raises(HostNotLive, match=r"no live worker for host\(s\) nowhere"):
        cluster.start("symptom", ["alpha", "nowhere"])


def cluster_caps(registry: Registry) -> HostCapabilities:
    record = registry.get("alpha")
    assert record is not None
    return record.capabilities.model_copy(update={"hostname": "ghost"})


def test_diagnose_via_celery_prints_progress_and_the_same_json(cluster: Cluster) -> None:
    cluster.script_replies([command_step(("kernel", "uname -r")), resolution("the cause")])
    done = subprocess.run(
        [str(BPFSLEUTH), "diagnose", "--via", "celery", "--hosts", "alpha,beta", "--json", "slow"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["resolution"]["root_cause"] == "the cause"
    assert out["resolution_source"] == "model"
    results = out["transcript"]["results"]
    assert sorted(r["host"] for r in results) == ["alpha", "beta"]
    assert all(r["command_results"]["kernel"]["exit_code"] == 0 for r in results)
    assert "alpha, beta through Celery" in done.stderr
    assert "uname -r" in done.stderr  # the live progress, rendered as in process


def test_diagnose_via_celery_names_hosts_without_a_worker(cluster: Cluster) -> None:
    done = subprocess.run(
        [str(BPFSLEUTH), "diagnose", "--via", "celery", "--hosts", "alpha,nowhere", "slow"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no live worker for host(s) nowhere" in done.stderr
    assert "bpfsleuth worker --host NAME" in done.stderr
