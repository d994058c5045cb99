"""The bot's Bolt app in the test process, for listener tests that need no cluster.

Requests are signed as Slack signs them and handed to `App.dispatch` (Bolt's own seam, the one
its HTTP adapters call) instead of going through the HTTP server; the app is built by
`bot.app.build_app` as each HTTP worker builds it, on a real Redis and the fake Slack Web API.
No worker runs: a live host is the heartbeat a host worker writes to the registry.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import App, BoltRequest

from bot.app import build_app
from bot.services import BotServices
from bot.settings import BotSettings
from probes.capabilities import HostCapabilities
from tests.support.bot import SIGNING_SECRET, bot_env
from tests.support.fakes.slack_api import FakeSlackApi, SlackRequests
from worker.distributed.registry import HostRecord, Registry

HOST_TTL_S = 300


def dispatch_to(app: App) -> Callable[[bytes, dict[str, str]], tuple[int, str]]:
    def send(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        response = app.dispatch(BoltRequest(body=body.decode(), headers=dict(headers)))
        return response.status, response.body

    return send


@dataclass
class InProcessBot:
    app: App
    services: BotServices
    requests: SlackRequests
    registry: Registry

    def beat(self, name: str, kernel: str | None = None) -> HostRecord:
        """`name` is a live host (as its worker's heartbeat says), with `kernel`."""
        record = HostRecord(
            name=name,
            capabilities=HostCapabilities(
                hostname=name,
                kernel=kernel or platform.release(),
                arch=platform.machine(),
                is_root=True,
                tracefs=True,
                btf=True,
            ),
        )
        self.registry.beat(record, HOST_TTL_S)
        self.services.live_hosts(fresh=True)
        return record


def in_process_bot(slack: FakeSlackApi, redis_url: str, **settings: str) -> InProcessBot:
    """The bot's app as `bpfsleuth bot --http` builds it, with the test environment of
    tests/support/bot.py (`settings` override or add variables)."""
    env = bot_env({}, slack, redis_url, **settings)
    app, services = build_app(BotSettings(**env), http=True)  # type: ignore[arg-type]
    requests = SlackRequests(
        "in-process", SIGNING_SECRET, response_base=slack.base, send=dispatch_to(app)
    )
    return InProcessBot(app, services, requests, Registry.from_url(redis_url))
