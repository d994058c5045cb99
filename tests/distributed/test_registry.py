"""The host registry against a real redis-server: heartbeats, expiry, fail-fast lookups."""

from __future__ import annotations

import time

import pytest

from probes.capabilities import HostCapabilities
from tests.redis_fixture import RedisServer, redis_server  # noqa: F401
from worker.registry import Heartbeat, HostNotLive, HostRecord, Registry
from worker.worker_main import host_rows

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


def test_a_beating_host_is_live_and_drops_out_when_it_stops(redis_server: RedisServer) -> None:  # noqa: F811
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


def test_a_host_that_stops_beating_expires_after_its_ttl(redis_server: RedisServer) -> None:  # noqa: F811
    registry = Registry.from_url(redis_server.url)
    registry.client.flushdb()
    registry.beat(HostRecord(name="db-1", capabilities=_caps("db-1")), ttl_s=1)
    assert [r.name for r in registry.live_hosts()] == ["db-1"]
    time.sleep(1.3)
    assert registry.live_hosts() == []


def test_plans_for_hosts_that_are_not_live_fail_fast(redis_server: RedisServer) -> None:  # noqa: F811
    registry = Registry.from_url(redis_server.url)
    registry.client.flushdb()
    registry.beat(HostRecord(name="web-1", capabilities=_caps("web-1")), ttl_s=30)
    assert [r.name for r in registry.require_live(["web-1"])] == ["web-1"]
    with pytest.raises(
        HostNotLive, match=r"no live worker for host\(s\) web-2 \(live hosts: web-1\)"
    ):
        registry.require_live(["web-1", "web-2"])
