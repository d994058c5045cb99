"""Alert-triggered investigations with the real Alertmanager (Debian's prometheus-alertmanager).

The test configures Alertmanager with a webhook receiver (bearer token) pointing at
`bpfsleuth alerts`, feeds it alerts through its v2 API for a real fault on this host (a process
with a random comm connecting to a closed 127.0.0.1 port), and watches the fake Slack: the
thread appears with the culprit named by the probe, a repeat of the group is a note in the same
thread, the resolution is noted; an alert for a host without a worker gets a thread saying so
(in the channel its label routes to); bad requests get a clear 4xx and change nothing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.alerts.service import PREFIX as ALERTS_PREFIX
from bot.alerts.service import group_id
from tests.support.bot import BPFSLEUTH, all_text, bot_env, buttons, investigation_keys
from tests.support.cluster import resolution
from tests.support.ports import free_port
from tests.support.workloads import refused_client
from tests.support.world import BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CHANNEL = "C0INC17"
ROUTED_CHANNEL = "C0INC16"


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def receiver(world: BotWorld, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(webhook URL, token, metrics URL) of a `bpfsleuth alerts` process."""
    token = secrets.token_urlsafe(24)
    port = free_port()
    metrics_port = free_port()
    env = bot_env(
        world.cluster.env,
        world.slack,
        world.redis.url,
        BPFSLEUTH_ALERT_TOKEN=token,
        BPFSLEUTH_ALERT_CHANNEL=CHANNEL,
        BPFSLEUTH_ALERT_GROUP_RATE="30",
        BPFSLEUTH_ALERT_LOCK_WAIT_S="1",
        BPFSLEUTH_METRICS_PORT=str(metrics_port),
    )
    log = tmp_path / "alerts.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BPFSLEUTH), "alerts", "--bind", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", process, log, "bpfsleuth alerts")
        yield (
            f"http://127.0.0.1:{port}/alerts",
            token,
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        _stop(process)


@pytest.fixture
def alertmanager(receiver: tuple[str, str, str], tmp_path: Path) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not installed (scripts/setup.sh installs it)")
    url, token, _metrics = receiver
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "route": {
                    "receiver": "bpfsleuth",
                    "group_by": ["alertname"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "bpfsleuth",
                        "webhook_configs": [
                            {
                                "url": url,
                                "send_resolved": True,
                                "http_config": {
                                    "authorization": {"type": "Bearer", "credentials": token}
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/-/ready", process, log, "alertmanager")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _post_alerts(am: str, alerts: list[dict[str, Any]]) -> None:
    reply = httpx.post(f"{am}/api/v2/alerts", json=alerts, timeout=5)
    assert reply.status_code == 200, reply.text


def _alert(name: str, instance: str, *, ends: bool = False, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "instance": instance, "severity": "page", **labels},
        "annotations": {
            "summary": f"connections from {instance} are refused",
            "description": "clients cannot reach their backend",
        },
        "startsAt": (now - timedelta(seconds=30)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    if ends:
        alert["endsAt"] = now.isoformat()
    return alert


def _roots(world: BotWorld, channel: str, marker: str) -> list[Any]:
    return [m for m in world.slack.channel_roots(channel) if marker in all_text(m)]


@pytest.mark.ebpf
def test_an_alert_starts_an_investigation_thread_that_names_the_culprit(
    world_checked: BotWorld, alertmanager: str, receiver: tuple[str, str, str], tmp_path: Path
) -> None:
    world = world_checked
    name = "ConnRefused" + secrets.token_hex(3)
    comm = "al" + secrets.token_hex(4)
    port = free_port()
    world.cluster.script_replies(
        [
            {
                "response_type": "diagnostic",
                "reasoning": "trace connection attempts on the alerting host",
                "ebpf_programs": [
                    {"name": "connects", "type": "catalog", "target": "tcp_connect", "duration": 3}
                ],
            },
            {**resolution("a client keeps connecting to a closed port"), "delay_s": 6},
        ]
    )
    with refused_client(comm, port) as workload:
        _post_alerts(alertmanager, [_alert(name, "alpha:9100")])
        root = world.slack.wait_for(
            lambda: next(iter(_roots(world, CHANNEL, name)), None), timeout=30, what="the root"
        )
        assert "connections from alpha:9100 are refused" in all_text(root)
        assert "alpha" in all_text(root)
        # the same group again (a second alert joins it) while the investigation runs
        _post_alerts(alertmanager, [_alert(name, "alpha:9100"), _alert(name, "beta-gone:9100")])
        world.slack.wait_for(
            lambda: next(
                (m for m in world.slack.thread(CHANNEL, root.ts) if "still firing" in all_text(m)),
                None,
            ),
            timeout=30,
            what="the repeat noted in the thread",
        )
        card = world.slack.wait_for(
            lambda: next(
                (m for m in world.slack.thread(CHANNEL, root.ts) if "dig_deeper" in buttons(m)),
                None,
            ),
            timeout=90,
            what="the resolution card",
        )
    assert "a client keeps connecting to a closed port" in all_text(card)
    assert len(_roots(world, CHANNEL, name)) == 1  # the repeat started nothing new
    thread_text = "\n".join(all_text(m) for m in world.slack.thread(CHANNEL, root.ts))
    # the culprit, from the real probe: the closed port, the comm and the pid
    assert f"refused to 127.0.0.1:{port}" in thread_text
    assert comm in thread_text
    assert f"pid {workload.pid}" in thread_text
    assert "alpha:9100" in thread_text  # the alerts listed in the thread

    # resolved: Alertmanager sends it once every alert of the group has ended
    _post_alerts(
        alertmanager,
        [_alert(name, "alpha:9100", ends=True), _alert(name, "beta-gone:9100", ends=True)],
    )
    world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread(CHANNEL, root.ts) if "resolved" in all_text(m)), None
        ),
        timeout=30,
        what="the resolution noted in the thread",
    )

    # an alert for a host with no worker, routed to another channel by its label
    ghost = "ghost-" + secrets.token_hex(3)
    other = "NodeDown" + secrets.token_hex(3)
    _post_alerts(
        alertmanager, [_alert(other, f"{ghost}.example:9100", slack_channel=ROUTED_CHANNEL)]
    )
    lonely = world.slack.wait_for(
        lambda: next(iter(_roots(world, ROUTED_CHANNEL, other)), None),
        timeout=30,
        what="the unknown-host thread",
    )
    assert "no live bpfsleuth worker" in all_text(lonely)
    assert ghost in all_text(lonely)
    assert _roots(world, CHANNEL, other) == []

    # the receiver's own /metrics (Socket-Mode deployments run it beside the bot): the
    # investigation it started and its Slack posts are counted there
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(httpx.get(receiver[2], timeout=5).text)
        for sample in family.samples
    }
    started = ("bpfsleuth_investigations_started_total", (("kind", "model"),))
    posts = (
        "bpfsleuth_slack_calls_total",
        (("method", "chat.postMessage"), ("status", "200")),
    )
    assert samples.get(started) == 1, samples
    assert samples.get(posts, 0) >= 5  # two roots, the alert lists, the repeat, the resolution


def test_bad_webhook_requests_get_a_clear_4xx_and_change_nothing(
    world_checked: BotWorld, receiver: tuple[str, str, str]
) -> None:
    world = world_checked
    url, token, _metrics = receiver
    good = {
        "version": "4",
        "groupKey": '{}:{alertname="Bad' + secrets.token_hex(3) + '"}',
        "status": "firing",
        "receiver": "bpfsleuth",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [{"status": "firing", "labels": {"alertname": "Bad", "instance": "alpha:1"}}],
    }
    before_inv = investigation_keys(world.client)
    before_roots = len(world.slack.channel_roots(CHANNEL))
    auth = {"Authorization": f"Bearer {token}"}

    def post(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=10
        )

    body = json.dumps(good).encode()
    assert post(body, {}).status_code == 401
    wrong = post(body, {"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]
    big = post(b"{" + b" " * (300 * 1024) + b"}", auth)
    assert big.status_code == 413 and "larger than" in big.json()["error"]
    broken = post(b'{"version": "4", "alerts": [', auth)
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]
    v3 = post(json.dumps({**good, "version": "3"}).encode(), auth)
    assert v3.status_code == 422 and "version" in v3.json()["error"]
    empty = post(json.dumps({**good, "alerts": []}).encode(), auth)
    assert empty.status_code == 422 and "alerts" in empty.json()["error"]
    assert investigation_keys(world.client) == before_inv
    assert len(world.slack.channel_roots(CHANNEL)) == before_roots

    # another notification of the same group still being handled (its lock held): 503, which
    # Alertmanager retries (a 4xx it would drop), and nothing starts
    busy_key = '{}:{alertname="Busy' + secrets.token_hex(3) + '"}'
    lock = f"{ALERTS_PREFIX}:lock:{group_id(busy_key)}"
    world.client.set(lock, "held-by-the-test", ex=30)
    try:
        busy = post(json.dumps({**good, "groupKey": busy_key}).encode(), auth)
    finally:
        world.client.delete(lock)
    assert busy.status_code == 503 and "being handled" in busy.json()["error"]
    assert int(busy.headers["Retry-After"]) >= 1
    assert investigation_keys(world.client) == before_inv
    assert len(world.slack.channel_roots(CHANNEL)) == before_roots

    # rate limit per group: resolved notices for a group with no thread change nothing, and
    # the 31st in a minute is refused (BPFSLEUTH_ALERT_GROUP_RATE=30)
    resolved = json.dumps({**good, "status": "resolved"}).encode()
    codes = [post(resolved, auth).status_code for _ in range(31)]
    if codes.count(429) == 0:  # the minute window turned over mid-way: one more round
        codes = [post(resolved, auth).status_code for _ in range(31)]
    assert codes[0] == 200 and 429 in codes
    limited = post(resolved, auth)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert investigation_keys(world.client) == before_inv
