"""Metrics after a real investigation: real Redis, a control worker (prefork, 2 children) and a
host worker, each exporting on its own port, scraped by Debian's Prometheus and read with
prometheus_client's parser. Also the docs' example alert rule, loaded by that Prometheus.

The control worker's tasks run in pool children: the counts must still add up in the parent's
exporter (multiprocess mode), which is what this test would catch losing.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cluster import Cluster, WorkerProcess, resolution
from tests.support.fakes.slack_api import FakeSlackApi
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROMETHEUS = shutil.which("prometheus")
DOCS_RULES = REPO / "docs" / "metrics.md"


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=5).text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


def _rule_file(tmp: Path) -> Path:
    """The example rule group of docs/metrics.md (the ```yaml block after 'Example alert')."""
    text = DOCS_RULES.read_text()
    block = re.search(r"## Example alert rules\n.*?```yaml\n(.*?)```", text, re.S)
    assert block, "docs/metrics.md has no example rule block"
    path = tmp / "rules.yml"
    path.write_text(block.group(1))
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, int]]]:
    server = RedisServer(tmp_path)
    server.start()
    cluster = Cluster(server.url, tmp_path)
    ports = {"control": free_port(), "alpha": free_port()}
    try:
        for name, args in (
            ("control", ["--control", "--concurrency", "2"]),
            ("alpha", ["--host", "alpha", "--concurrency", "1"]),
        ):
            env = {**cluster.env, "BPFSLEUTH_METRICS_PORT": str(ports[name])}
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            worker = WorkerProcess(name, args, env, tmp_path / f"worker-{name}.log")
            cluster.workers[name] = worker
            worker.start()
        cluster.wait_ready()
        yield cluster, ports
    finally:
        cluster.stop()
        server.stop()


@pytest.mark.ebpf
def test_an_investigation_is_counted_by_the_workers_and_scraped_by_prometheus(
    cluster: tuple[Cluster, dict[str, int]], tmp_path: Path
) -> None:
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed (scripts/setup.sh installs it)")
    world, ports = cluster
    denied = f"/tmp/bpfsleuth-never-{secrets.token_hex(3)}"
    world.script_replies(
        [
            {
                "response_type": "diagnostic",
                "reasoning": "look",
                "commands": [
                    {"id": "kernel", "command": "uname -r"},
                    {"id": "write", "command": f"touch {denied}"},
                ],
                "ebpf_programs": [
                    {"name": "connects", "type": "catalog", "target": "tcp_connect", "duration": 1}
                ],
            },
            resolution("counted"),
        ]
    )
    inv = world.start("metrics please", ["alpha"])
    done = world.follow(inv.id, timeout_s=90)
    assert done.resolution is not None and done.resolution.confidence == "High"

    control = _samples(f"http://127.0.0.1:{ports['control']}/metrics")
    host = _samples(f"http://127.0.0.1:{ports['alpha']}/metrics")
    # control side (pool children): started is counted by the test process, not a worker
    finished = _value(
        control, "bpfsleuth_investigations_finished_total", outcome="model", confidence="High"
    )
    assert finished == 1
    assert _value(control, "bpfsleuth_investigation_iterations_count") == 1
    assert _value(control, "bpfsleuth_investigation_iterations_sum") == 1
    assert _value(control, "bpfsleuth_step_duration_seconds_count", closed="complete") == 1
    assert _value(control, "bpfsleuth_model_calls_total", backend="scripted", outcome="ok") == 2
    assert _value(control, "bpfsleuth_model_call_seconds_count", backend="scripted") == 2
    # host side
    assert _value(host, "bpfsleuth_commands_total", verdict="allow", outcome="ran") == 1
    assert _value(host, "bpfsleuth_commands_total", verdict="deny", outcome="denied") == 1
    assert _value(host, "bpfsleuth_probe_runs_total", probe="tcp_connect", outcome="ok") == 1
    assert _value(host, "bpfsleuth_probe_compile_seconds_count", probe="tcp_connect") == 1
    assert _value(host, "bpfsleuth_probe_attach_seconds_count", probe="tcp_connect") == 1
    assert not Path(denied).exists()

    # a real Prometheus scrapes both and loads the documented alert rules
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(_rule_file(tmp_path))],
                "scrape_configs": [
                    {
                        "job_name": "bpfsleuth",
                        "static_configs": [
                            {
                                "targets": [
                                    f"127.0.0.1:{ports['control']}",
                                    f"127.0.0.1:{ports['alpha']}",
                                ]
                            }
                        ],
                    }
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    with log.open("ab") as out:
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        query = "sum(bpfsleuth_commands_total) + sum(bpfsleuth_investigations_finished_total)"
        deadline = time.monotonic() + 45
        value = None
        while time.monotonic() < deadline and value is None:
            assert prom.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                reply = httpx.get(f"{api}/query", params={"query": query}, timeout=2).json()
                value = float(reply["data"]["result"][0]["value"][1])
            time.sleep(0.3)
        assert value == 3, log.read_text()[-3000:]
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert rules and all(rule["health"] != "err" for rule in rules), rules
        assert {"BpfsleuthInvestigationsFailing", "BpfsleuthSlackRateLimited"} <= {
            rule["name"] for rule in rules
        }
    finally:
        prom.terminate()
        prom.wait(timeout=15)


def test_slack_calls_and_429s_are_counted(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from bot.settings import BotSettings
    from bot.slack_api.client import build_web_client

    slack = FakeSlackApi(channels={"C0MET": "metrics"}).start()
    try:
        client = build_web_client(
            BotSettings(
                SLACK_API_URL=slack.url, SLACK_BOT_TOKEN="xoxb-test", BPFSLEUTH_SLACK_MAX_RETRIES=2
            )
        )

        def count(name: str, **labels: str) -> float:
            return REGISTRY.get_sample_value(name, labels) or 0.0

        before_ok = count("bpfsleuth_slack_calls_total", method="chat.postMessage", status="200")
        before_429 = count("bpfsleuth_slack_rate_limited_total", method="chat.postMessage")
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)
        client.chat_postMessage(channel="C0MET", text="hello")
        assert (
            count("bpfsleuth_slack_calls_total", method="chat.postMessage", status="200")
            == before_ok + 1
        )
        assert (
            count("bpfsleuth_slack_rate_limited_total", method="chat.postMessage") == before_429 + 1
        )
    finally:
        slack.stop()
