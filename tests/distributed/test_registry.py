"""The host registry against a real redis-server: heartbeats, expiry, fail-fast lookups."""

from __future__ import annotations

import time

import pytest

from probes.capabilities import HostCapabilities
from tests.support.redis_server import RedisServer
from worker.distributed.registry import Heartbeat, HostNotLive, HostRecord, Registry, host_rows

pytestmark = pytest.mark.redis


def _caps(name: str) -> HostCapabilities:
    return HostCapabilities(
        hostname=name,
        kernel="6.18.0-test",
        arch="x86_64",
        is_root=True,
        tracefs=True,
        btf=True,
        program_types={"tracepoint": True, "kprobe": False},
        tracepoint_count=1234,
    )


def test_a_beating_host_is_live_and_drops_out_when_it_stops(redis_server: RedisServer) -> None:
    registry = Registry.from_url(redis_server.url)
    registry.client.flushdb()
    beat = Heartbeat(registry, HostRecord(name="web-1", capabilities=_caps("web-1")), 0.2, 1)
    beat.start()
    try:
        time.sleep(0.5)
        (record,) = registry.live_hosts()
        assert record.name == "web-1"
        assert record.age_s() < 0.5
        (row,) = host_rows([record])
        assert row.program_types == ["tracepoint"] and row.missing_program_types == ["kprobe"]
    finally:
        beat.stop()
    assert registry.live_hosts() == []  # a clean stop removes the key at once


def test_a_host_that_stops_beating_expires_after_its_ttl(redis_server: RedisServer) -> None:
    registry = Registry.from_url(redis_server.url)
    registry.client.flushdb()
    registry.beat(HostRecord(name="db-1", capabilities=_caps("db-1")), ttl_s=1)
    assert [r.name for r in registry.live_hosts()] == ["db-1"]
    time.sleep(1.3)
    assert registry.live_hosts() == []


def test_plans_for_hosts_that_are_not_live_fail_fast(redis_server: RedisServer) -> None:
    registry = Registry.from_url(redis_server.url)
    registry.client.flushdb()
    registry.beat(HostRecord(name="web-1", capabilities=_caps("web-1")), ttl_s=30)
    assert [r.name for r in registry.require_live(["web-1"])] == ["web-1"]
    with pytest.raises(
        HostNotLive, match=r"no live worker for host\(s\) web-2 \(live hosts: web-1\)"
    ):
        registry.require_live(["web-1", "web-2"])


def test_the_model_is_told_the_published_capabilities_of_the_hosts_in_play() -> None:
    from worker.distributed.control import _system_prompt

    web = _caps("web-1").model_copy(update={"kernel": "6.1.0-web", "measured_at": 1.0})
    db = _caps("db-1").model_copy(
        update={"kernel": "5.10.0-db", "program_types": {"tracepoint": True}, "measured_at": 2.0}
    )
    prompt = _system_prompt(("web-1", "db-1"), 6, (web, db))
    assert "web-1" in prompt and "6.1.0-web" in prompt
    assert "db-1" in prompt and "5.10.0-db" in prompt
    assert _system_prompt(("web-1", "db-1"), 6, (web, db)) is prompt  # rendered once
