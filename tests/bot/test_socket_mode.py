"""`bpfsleuth bot` in Socket Mode (the default): envelopes over a WebSocket, acks back on it."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bot import BPFSLEUTH, all_text, bot_env, buttons
from tests.support.cluster import command_step, resolution
from tests.support.fakes.slack_api import FakeSocketMode
from tests.support.world import BotWorld

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def socket_bot(world: BotWorld, tmp_path: Path) -> Iterator[FakeSocketMode]:
    link = FakeSocketMode()
    world.slack.socket_mode = link
    env = bot_env(world.cluster.env, world.slack, world.redis.url, SLACK_APP_TOKEN="xapp-1-A0BPF-1")
    env.pop("SLACK_SIGNING_SECRET")
    log = tmp_path / "socket-bot.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BPFSLEUTH), "bot"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            link.wait_connected()
        except AssertionError as exc:
            raise AssertionError(f"{exc}; bot log:\n{log.read_text()[-3000:]}") from None
        yield link
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        world.slack.socket_mode = None
        link.stop()


def _command(text: str, channel: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": "T0001",
        "channel_id": channel,
        "channel_name": "inc-20",
        "user_id": "U0ALICE",
        "command": "/diagnose",
        "text": text,
        "api_app_id": "A0BPF",
        "response_url": "http://127.0.0.1:9/commands/1",
        "trigger_id": "trigger.socket",
    }


def test_slash_commands_over_socket_mode_are_acked_and_investigated(
    world_checked: BotWorld, socket_bot: FakeSocketMode
) -> None:
    world = world_checked
    helped = socket_bot.send("slash_commands", _command("help", "C0INC1"))
    body = helped.json()
    assert body["response_type"] == "ephemeral"
    assert "/diagnose [host,host] <symptom>" in html.unescape(body["text"])
    assert helped.elapsed_s < 3.0

    world.cluster.script_replies([command_step(("load", "uptime")), resolution("socket works")])
    started = socket_bot.send("slash_commands", _command("alpha over the socket", "C0INC20"))
    found = re.search(r"Investigation `([0-9a-f]+)` started", started.json()["text"])
    assert found, started.body
    root = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.channel_roots("C0INC20") if found.group(1) in all_text(m)),
            None,
        ),
        what="the root message",
    )
    card = world.slack.wait_for(
        lambda: next(
            (m for m in world.slack.thread("C0INC20", root.ts) if "dig_deeper" in buttons(m)),
            None,
        ),
        what="the resolution card",
    )
    assert "socket works" in all_text(card)


def test_events_over_socket_mode_are_acked_and_handled(
    world_checked: BotWorld, socket_bot: FakeSocketMode
) -> None:
    world = world_checked
    before = len(world.slack.channel_calls("C0INC2", "chat.postEphemeral"))
    wrapper = {
        "token": "legacy",
        "team_id": "T0001",
        "api_app_id": "A0BPF",
        "type": "event_callback",
        "event_id": "EvSOCKET1",
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": "U0BOB",
            "text": "<@UBOT> hi",
            "ts": "1700000001.000100",
            "channel": "C0INC2",
        },
    }
    acked = socket_bot.send("events_api", wrapper)
    assert acked.elapsed_s < 3.0
    replies = world.slack.wait_for(
        lambda: world.slack.channel_calls("C0INC2", "chat.postEphemeral")[before:],
        what="the pointer",
    )
    assert replies[0].args["user"] == "U0BOB"
