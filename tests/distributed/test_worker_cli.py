"""`bpfsleuth worker` and `bpfsleuth hosts` as a user runs them."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, command_step, resolution
from tests.support.paths import BPFSLEUTH
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BPFSLEUTH), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env or dict(os.environ),
    )


def test_worker_needs_a_role() -> None:
    done = run("worker")
    assert done.returncode != 0
    assert "pass --host NAME, --control, or both" in done.stderr


def test_worker_refuses_a_host_name_that_is_not_a_queue_name() -> None:
    done = run("worker", "--host", "web 1;rm")
    assert done.returncode != 0
    assert "host names are letters, digits" in done.stderr


def test_hosts_without_redis_says_which_redis_is_unreachable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run("hosts", env={**os.environ, "REDIS_URL": url})
    assert done.returncode == 2
    assert f"Redis at {url} is not reachable" in done.stderr


def test_diagnose_via_celery_without_redis_says_so() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run(
        "diagnose",
        "--via",
        "celery",
        "--hosts",
        "web-1",
        "slow",
        env={**os.environ, "REDIS_URL": url},
    )
    assert done.returncode == 2
    assert f"Redis at {url} is not reachable" in done.stderr


@pytest.fixture(scope="module")
def single_machine(
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    cluster = Cluster(redis_server.url, tmp_path_factory.mktemp("single"))
    try:
        cluster.add("solo", "--control", "--host", "solo", "--concurrency", "2")
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.redis
def test_one_process_serving_both_roles_runs_a_whole_investigation(
    single_machine: Cluster,
) -> None:
    single_machine.script_replies([command_step(("kernel", "uname -r")), resolution()])
    inv = single_machine.start("single machine", ["solo"])
    done = single_machine.follow(inv.id, timeout_s=60)
    assert done.status == "resolved"
    (result,) = done.results
    assert result.host == "solo"
    assert result.command_results["kernel"].stdout.strip() == platform.release()
    listed = run("hosts", "--json", env=single_machine.env)
    assert '"name": "solo"' in listed.stdout


@pytest.mark.redis
def test_a_plain_celery_worker_on_a_host_queue_announces_itself_and_runs_plans(
    single_machine: Cluster, tmp_path: Path
) -> None:
    import signal
    import time

    from worker.distributed.registry import Registry

    log = (tmp_path / "gamma.log").open("wb")
    celery = subprocess.Popen(
        [
            str(BPFSLEUTH.parent / "celery"),
            "-A",
            "worker.distributed.app",
            "worker",
            "-Q",
            "host.gamma",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
        ],
        env={**single_machine.env, "BPFSLEUTH_HOST": "gamma"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        registry = Registry.from_url(single_machine.redis_url)
        deadline = time.monotonic() + 60
        while registry.get("gamma") is None:
            assert time.monotonic() < deadline, (tmp_path / "gamma.log").read_text()[-2000:]
            assert celery.poll() is None, (tmp_path / "gamma.log").read_text()[-2000:]
            time.sleep(0.2)
        single_machine.script_replies([command_step(("kernel", "uname -r")), resolution()])
        inv = single_machine.start("plain celery worker", ["gamma"])
        done = single_machine.follow(inv.id, timeout_s=60)
        (result,) = done.results
        assert result.host == "gamma" and result.command_results["kernel"].exit_code == 0
    finally:
        os.killpg(celery.pid, signal.SIGTERM)
        try:
            celery.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(celery.pid, signal.SIGKILL)
            celery.wait(timeout=10)
        log.close()
    # a warm shutdown takes the host out of the registry at once
    assert Registry.from_url(single_machine.redis_url).get("gamma") is None
