"""Package-scoped real parts for the bot's integration tests (started only when a test asks).

One redis-server, one control worker and one host worker (`alpha`) with a scripted model, the
fake Slack Web API, and the bot in HTTP mode. Tests use their own channel ids so they do not
see each other's investigations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.bot.harness import SIGNING_SECRET, BotProcess, bot_env
from tests.distributed.cluster import Cluster
from tests.fakes.slack_api import FakeSlackApi, SlackRequests
from tests.redis_fixture import RedisServer

ALERT_TOKEN = "alert-token-for-the-http-bot"
CHANNELS = {f"C0INC{i}": f"inc-{i}" for i in range(1, 20)} | {"C0GEN": "general"}


@dataclass
class BotWorld:
    redis: RedisServer
    client: redis.Redis
    cluster: Cluster
    slack: FakeSlackApi
    bot: BotProcess
    requests: SlackRequests


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotWorld]:
    directory = tmp_path_factory.mktemp("bot-world")
    server = RedisServer(directory)
    server.start()
    slack = FakeSlackApi(
        channels=CHANNELS | {"C0OUT": "inc-uninvited"},
        usergroups={"S0ONCALL": ["U0CAROL"]},
        not_member={"C0OUT"},
    ).start()
    cluster = Cluster(server.url, directory)
    env = bot_env(cluster.env, slack, server.url, BPFSLEUTH_ALERT_TOKEN=ALERT_TOKEN)
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


@pytest.fixture
def world_checked(world: BotWorld) -> Iterator[BotWorld]:
    """The world, and after the test: no call the bot made broke Slack's spec."""
    before = len(world.slack.violations)
    yield world
    assert world.slack.violations[before:] == [], world.slack.violations[before:]
