"""The bot as a user runs it: `bpfsleuth bot --http` in a subprocess, against a fake Slack.

Real Redis, real `bpfsleuth worker` processes (tests.support.cluster, scripted model), the
bot in HTTP mode on a free port; requests to it are signed as Slack signs them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests.support.fakes.slack_api import FakeSlackApi, Message, SlackRequests
from tests.support.paths import BPFSLEUTH
from tests.support.ports import free_port

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-bot-token"
READY_TIMEOUT_S = 30.0


class BotProcess:
    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        workers: int = 1,
        threads: int | None = None,
        command: list[str] | None = None,
    ) -> None:
        """`command` replaces `bpfsleuth bot` (the bench runs an older server that way); the
        HTTP options follow it."""
        self.port = free_port()
        self.workers = workers
        self.threads = threads
        self.command = command or [str(BPFSLEUTH), "bot"]
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *self.command,
                    "--http",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    *([] if self.threads is None else ["--threads", str(self.threads)]),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bot exited:\n{self.log_text()[-3000:]}")
            if self.log_text().count("listening on") >= self.workers:
                return
            time.sleep(0.05)
        raise RuntimeError(f"bot not ready:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no cleanup runs."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def bot_env(
    base: dict[str, str], slack: FakeSlackApi, redis_url: str, **extra: str
) -> dict[str, str]:
    """The bot's environment: HTTP mode against the fake Slack; `extra` overrides or adds."""
    env = {k: v for k, v in base.items() if k != "SLACK_APP_TOKEN"}
    env.update(
        {
            "REDIS_URL": redis_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.url,
            "BPFSLEUTH_CHANNELS": "inc-*",
            "BPFSLEUTH_USERS": "U0ALICE,U0BOB,U0CAROL",
            "BPFSLEUTH_RESPONDERS": "U0BOB,S0ONCALL",
            "BPFSLEUTH_MAX_PER_CHANNEL": "2",
            "BPFSLEUTH_SLACK_UPDATE_INTERVAL_S": "0.3",
            "BPFSLEUTH_SLACK_MAX_RETRIES": "3",
            "BPFSLEUTH_SLACK_LEASE_S": "3",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def investigation_keys(client: redis.Redis) -> set[str]:
    """Ids of every stored investigation (`bpfsleuth:inv:<id>`, sub-keys excluded)."""
    keys = client.keys("bpfsleuth:inv:*")
    return {k.split(":")[2] for k in keys if k.count(":") == 2}


def all_text(message: Message) -> str:
    """A message's fallback text and every text in its blocks."""
    out = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return "\n".join(out)


def buttons(message: Message) -> dict[str, str]:
    """action_id -> value of every button in the message."""
    found: dict[str, str] = {}
    for block in message.blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                found[element["action_id"]] = element.get("value", "")
    return found


__all__ = [
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "BotProcess",
    "SlackRequests",
    "all_text",
    "bot_env",
    "buttons",
    "investigation_keys",
]
