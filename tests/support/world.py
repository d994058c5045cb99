"""The cluster "world" the bot's integration tests run against, built from settings.

One redis-server, one control worker and one host worker (`alpha`) with a scripted model, the
fake Slack Web API, and the bot in HTTP mode. `cluster_settings` and `bot_settings` are
environment variables for the workers and the bot (`BPFSLEUTH_APPROVAL_WAIT_S`,
`BPFSLEUTH_ALERT_TOKEN`, ...). Tests use their own channel ids so they do not see each other's
investigations; `C0OUT` is a channel the bot was never invited to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.bot import SIGNING_SECRET, BotProcess, bot_env
from tests.support.cluster import Cluster
from tests.support.fakes.slack_api import FakeSlackApi, SlackRequests
from tests.support.redis_server import RedisServer

ALERT_TOKEN = "alert-token-for-the-http-bot"
CHANNELS = {f"C0INC{i}": f"inc-{i}" for i in range(1, 20)} | {"C0GEN": "general"}
UNINVITED = {"C0OUT": "inc-uninvited"}


@dataclass
class BotWorld:
    redis: RedisServer
    client: redis.Redis
    cluster: Cluster
    slack: FakeSlackApi
    bot: BotProcess
    requests: SlackRequests


@contextmanager
def bot_world(
    directory: Path,
    *,
    cluster_settings: Mapping[str, str] | None = None,
    bot_settings: Mapping[str, str] | None = None,
) -> Iterator[BotWorld]:
    """Start every part in `directory` (logs, Redis data), yield the world, stop it all."""
    server = RedisServer(directory)
    server.start()
    slack = FakeSlackApi(
        channels=CHANNELS | UNINVITED,
        usergroups={"S0ONCALL": ["U0CAROL"]},
        not_member=set(UNINVITED),
    ).start()
    cluster = Cluster(server.url, directory, **dict(cluster_settings or {}))
    env = bot_env(cluster.env, slack, server.url, **dict(bot_settings or {}))
    bot = BotProcess(env, directory / "bot.log")
    try:
        cluster.add_control()
        cluster.add_host("alpha")
        cluster.wait_ready()
        bot.start()
        yield BotWorld(
            redis=server,
            client=redis.Redis.from_url(server.url, decode_responses=True),
            cluster=cluster,
            slack=slack,
            bot=bot,
            requests=SlackRequests(bot.url, SIGNING_SECRET, response_base=slack.base),
        )
    finally:
        bot.stop()
        cluster.stop()
        slack.stop()
        server.stop()
