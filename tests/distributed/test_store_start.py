"""`Store.start`: an investigation stored, who asked, and watched, in one round trip."""

from __future__ import annotations

import time

import pytest

from tests.support.redis_server import RedisServer
from worker.distributed.store import Store, VersionConflict
from worker.loop.investigation import Investigation

pytestmark = [pytest.mark.redis]


def test_start_stores_asker_and_watch_and_refuses_a_second_start(
    redis_server: RedisServer,
) -> None:
    store = Store(redis_server.url, ttl_s=600)
    inv = Investigation(symptom="slow disk", hosts=["alpha"])
    now = time.time()
    store.start(inv, asked_by="slack:U0BOB", watch_at=now)
    assert store.load(inv.id).investigation.symptom == "slow disk"
    assert store.client.get(Store.origin_key(inv.id)) == "slack:U0BOB"
    assert 0 < int(store.client.ttl(Store.investigation_key(inv.id))) <= 600
    assert 0 < int(store.client.ttl(Store.origin_key(inv.id))) <= 600
    assert inv.id in store.claim_watched(now + 1, recheck_s=60)
    with pytest.raises(VersionConflict):
        store.start(inv, asked_by="slack:U0EVE", watch_at=now)
    assert store.client.get(Store.origin_key(inv.id)) == "slack:U0BOB"
