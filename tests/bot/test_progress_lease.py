"""One progress consumer at a time: the Redis lease two bot replicas compete for.

Real Redis, real `BotServices` (the Slack client is never called by the lease). The lease is a
redis-py `Lock`: taken with SET NX PX, renewed and released by Lua that checks the owner, so a
consumer whose lease expired and was taken over can neither renew nor delete the new owner's.
"""

from __future__ import annotations

import secrets
import time

import redis
from slack_sdk.web import WebClient

from bot.progress.consumer import LEASE_KEY, ProgressConsumer
from bot.services import BotServices
from bot.settings import BotSettings
from tests.support.redis_server import RedisServer

LEASE_S = 5


def _consumer(url: str) -> ProgressConsumer:
    settings = BotSettings(REDIS_URL=url, BPFSLEUTH_SLACK_LEASE_S=LEASE_S)
    client = WebClient(token=f"xoxb-{secrets.token_hex(8)}", base_url="http://127.0.0.1:9/")
    return ProgressConsumer(BotServices.create(settings, client))


def test_one_consumer_holds_the_lease_renews_it_and_gives_it_back(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(LEASE_KEY)
    first, second = _consumer(redis_server.url), _consumer(redis_server.url)
    assert first._hold_lease()
    assert not second._hold_lease()
    client.pexpire(LEASE_KEY, 700)  # most of the lease has gone by
    assert first._hold_lease()  # renewing resets it to the whole lease
    assert client.pttl(LEASE_KEY) > (LEASE_S - 1) * 1000
    assert not second._hold_lease()
    second.stop()  # the one without the lease deletes nothing
    assert client.exists(LEASE_KEY)
    first.stop()
    assert not client.exists(LEASE_KEY)
    assert second._hold_lease()
    second.stop()


def test_an_expired_lease_goes_to_the_other_consumer_for_good(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(LEASE_KEY)
    stalled, standby = _consumer(redis_server.url), _consumer(redis_server.url)
    assert stalled._hold_lease()
    client.pexpire(LEASE_KEY, 1)  # the holder stalled past its lease
    time.sleep(0.05)
    assert standby._hold_lease()
    owner = client.get(LEASE_KEY)
    assert not stalled._hold_lease()  # cannot renew what is no longer its own
    stalled.stop()  # nor give it back
    assert client.get(LEASE_KEY) == owner
    assert standby._hold_lease()
    standby.stop()
    assert not client.exists(LEASE_KEY)
