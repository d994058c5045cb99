"""Where investigations live in Slack, kept in (real) Redis: channels, threads, running ones."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from bot.store.dedupe import event_keys, first_time
from bot.store.threads import SlackThread, ThreadDirectory
from tests.support.redis_server import RedisServer
from worker.distributed.store import Store

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url, decode_responses=True)
    conn.flushdb()
    yield conn
    conn.close()


def _thread(
    investigation_id: str, channel: str = "C1", started_at: float | None = None
) -> SlackThread:
    return SlackThread(
        investigation_id=investigation_id,
        channel_id=channel,
        requested_by="U1",
        symptom="slow",
        hosts=["web-1"],
        started_at=started_at or time.time(),
    )


def test_a_registered_investigation_is_found_by_its_thread_once_its_root_is_posted(
    client: redis.Redis,
) -> None:
    threads = ThreadDirectory(client, ttl_s=60)
    threads.register(_thread("a"))
    assert threads.get("a") is not None and threads.get("a").thread_ts is None  # type: ignore[union-attr]
    assert threads.by_thread("C1", "111.1") is None
    threads.set_root("a", "111.1")
    assert threads.by_thread("C1", "111.1") == "a"
    assert threads.by_thread("C2", "111.1") is None
    assert 0 < client.ttl("bpfsleuth:slack:inv:a") <= 60


def test_running_in_channel_lists_started_not_retired_newest_first(client: redis.Redis) -> None:
    threads = ThreadDirectory(client, ttl_s=60)
    now = time.time()
    for i, channel in enumerate(["C1", "C1", "C2", "C1"]):
        threads.register(_thread(f"i{i}", channel, started_at=now + i))
    threads.retire("i1")
    assert threads.running_in_channel("C1") == ["i3", "i0"]
    assert threads.in_channel("C1") == ["i3", "i1", "i0"]
    assert threads.running_in_channel("C9") == []


def test_investigations_silent_for_too_long_stop_counting_as_running(client: redis.Redis) -> None:
    threads = ThreadDirectory(client, ttl_s=3600)
    now = time.time()
    threads.register(_thread("fresh", started_at=now - 2000))
    threads.register(_thread("stale", started_at=now - 2000))
    threads.register(_thread("quiet-start", started_at=now - 2000))
    threads.register(_thread("new", started_at=now))
    # progress events: one a second ago, one twenty minutes ago (stream ids are ms timestamps)
    client.xadd(Store.progress_key("fresh"), {"event": "{}"}, id=f"{int((now - 1) * 1000)}-0")
    client.xadd(Store.progress_key("stale"), {"event": "{}"}, id=f"{int((now - 1200) * 1000)}-0")
    alive = threads.prune_silent(["fresh", "stale", "quiet-start", "new"], silent_for_s=900)
    assert alive == ["fresh", "new"]
    assert threads.running_in_channel("C1") == ["new", "fresh"]


def test_a_delivery_is_first_once_per_key(client: redis.Redis) -> None:
    keys = event_keys("Ev1", "C1", "123.4")
    assert keys == ["event:Ev1", "msg:C1:123.4"]
    assert all(first_time(client, key, 60) for key in keys)
    assert not any(first_time(client, key, 60) for key in keys)
    assert 0 < client.ttl("bpfsleuth:slack:seen:event:Ev1") <= 60
    assert event_keys(None, None, None) == []
