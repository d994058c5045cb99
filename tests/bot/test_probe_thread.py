"""A real eBPF probe in the live thread: what was asked, what attached, where, for how long."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import pytest

from tests.support.bot import all_text, buttons
from tests.support.cluster import resolution
from tests.support.ports import free_port
from tests.support.world import BotWorld

pytestmark = [pytest.mark.ebpf, pytest.mark.redis, pytest.mark.slow]


def _refused_connects(stop: threading.Event) -> None:
    port = free_port()  # nothing listens there: every connect is refused
    while not stop.is_set():
        with socket.socket() as sock:
            sock.settimeout(0.2)
            with contextlib.suppress(OSError):
                sock.connect(("127.0.0.1", port))
        time.sleep(0.02)


def test_a_probe_step_shows_attach_point_host_duration_and_result(
    world_checked: BotWorld,
) -> None:
    world = world_checked
    world.cluster.script_replies(
        [
            {
                "response_type": "diagnostic",
                "reasoning": "trace connection attempts",
                "ebpf_programs": [
                    {"name": "connects", "type": "kprobe", "target": "tcp_connect", "duration": 3}
                ],
            },
            resolution("connections to a closed port are refused"),
        ]
    )
    stop = threading.Event()
    workload = threading.Thread(target=_refused_connects, args=(stop,), daemon=True)
    workload.start()
    try:
        sent = world.requests.slash_command(
            "alpha connections fail", channel_id="C0INC18", channel_name="inc-18"
        )
        investigation_id = re.search(r"`([0-9a-f]+)`", sent.json()["text"]).group(1)  # type: ignore[union-attr]
        root = world.slack.wait_for(
            lambda: next(
                (
                    m
                    for m in world.slack.channel_roots("C0INC18")
                    if investigation_id in all_text(m)
                ),
                None,
            ),
            what="the root message",
        )
        card = world.slack.wait_for(
            lambda: next(
                (m for m in world.slack.thread("C0INC18", root.ts) if "dig_deeper" in buttons(m)),
                None,
            ),
            timeout=90,
            what="the resolution card",
        )
    finally:
        stop.set()
        workload.join(timeout=5)
    assert "connections to a closed port are refused" in all_text(card)
    step = next(m for m in world.slack.thread("C0INC18", root.ts) if "Step 1" in all_text(m))
    text = all_text(step)
    assert "trace connection attempts" in text
    line = next(line for line in text.splitlines() if "probe *tcp_connect*" in line)
    assert "asked `kprobe:tcp_connect`" in line
    assert "on *alpha*" in line
    assert "`tracepoint:sock:inet_sock_set_state`" in line
    assert ", 3.0s — " in line
    assert "refused to 127.0.0.1:" in line
    events = re.search(r"— (\d+) events", line)
    assert events and int(events.group(1)) > 0, line
