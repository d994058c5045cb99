"""Live hosts: each host worker publishes its capabilities and a heartbeat to Redis.

`bpfsleuth:host:<name>` holds a `HostRecord` and expires `3 x` the heartbeat interval after the
last beat, so a host that stops beating (killed, partitioned) drops out on its own; the set
`bpfsleuth:hosts` lists the names ever seen, so listing needs no KEYS/SCAN.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import cast

import redis
from pydantic import BaseModel, Field

from probes.capabilities import HostCapabilities
from worker import keys
from worker.distributed.store import StoreUnavailable, connect

log = logging.getLogger(__name__)
HOSTS_SET = keys.HOSTS
# Capability bits (linux/capability.h). CAP_SYS_ADMIN alone is enough on every kernel; from 5.8
# CAP_BPF with CAP_PERFMON is.
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def missing_privileges(status: str | None = None) -> list[str]:
    """The capabilities eBPF needs that this process lacks (empty: none lacks), read from
    /proc/self/status: a root process in a container started without privileges has uid 0 but
    neither CAP_SYS_ADMIN nor CAP_BPF/CAP_PERFMON."""
    if status is None:
        with open("/proc/self/status") as handle:
            status = handle.read()
    effective = next(
        (int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")),
        None,
    )
    if effective is None:
        return []

    def has(bit: int) -> bool:
        return bool(effective >> bit & 1)

    if has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON)):
        return []
    return [
        name for bit, name in ((_CAP_BPF, "CAP_BPF"), (_CAP_PERFMON, "CAP_PERFMON")) if not has(bit)
    ] + ["CAP_SYS_ADMIN"]


class HostRecord(BaseModel):
    """What a host worker says about itself."""

    name: str
    capabilities: HostCapabilities
    pid: int = Field(default_factory=os.getpid)
    started_at: float = Field(default_factory=time.time)
    last_seen: float = Field(default_factory=time.time)
    # What the worker lacks to load probes (missing_privileges()); set by the worker itself.
    missing_privileges: list[str] = Field(default_factory=list)

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.last_seen)


class HostNotLive(RuntimeError):
    """A plan named hosts with no live worker; the message lists them and the live ones."""


def host_key(name: str) -> str:
    return keys.host(name)


class Registry:
    def __init__(self, client: redis.Redis, url: str = "") -> None:
        self.client = client
        self.url = url

    @classmethod
    def from_url(cls, url: str) -> Registry:
        return cls(connect(url), url)

    def beat(self, record: HostRecord, ttl_s: int) -> None:
        record.last_seen = time.time()
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.set(host_key(record.name), record.model_dump_json(), ex=ttl_s)
                pipe.sadd(HOSTS_SET, record.name)
                pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis at {self.url} is not reachable ({exc})") from exc

    def remove(self, name: str) -> None:
        with contextlib.suppress(redis.exceptions.RedisError):
            self.client.delete(host_key(name))

    def live_hosts(self) -> list[HostRecord]:
        """Every host whose heartbeat has not expired, by name."""
        try:
            names = sorted(cast(set[str], self.client.smembers(HOSTS_SET)))
            if not names:
                return []
            raws = cast(list[str | None], self.client.mget([host_key(n) for n in names]))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailable(
                f"Redis at {self.url} is not reachable ({exc}); start redis-server or fix REDIS_URL"
            ) from exc
        records = [HostRecord.model_validate_json(raw) for raw in raws if raw]
        gone = [n for n, raw in zip(names, raws, strict=True) if raw is None]
        if gone:
            with contextlib.suppress(redis.exceptions.RedisError):
                self.client.srem(HOSTS_SET, *gone)
        return records

    def records(self, names: list[str]) -> dict[str, HostRecord]:
        """The live records of just these hosts (one MGET), by name."""
        if not names:
            return {}
        try:
            raws = cast(list[str | None], self.client.mget([host_key(n) for n in names]))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis at {self.url} is not reachable ({exc})") from exc
        return {
            name: HostRecord.model_validate_json(raw)
            for name, raw in zip(names, raws, strict=True)
            if raw
        }

    def get(self, name: str) -> HostRecord | None:
        raw = cast(str | None, self.client.get(host_key(name)))
        return HostRecord.model_validate_json(raw) if raw else None

    def require_live(self, names: list[str]) -> list[HostRecord]:
        """The records of `names`, or `HostNotLive` naming every host without a heartbeat."""
        live = self.records(names)
        missing = [name for name in names if name not in live]
        if missing:
            known = ", ".join(sorted(r.name for r in self.live_hosts())) or "none"
            raise HostNotLive(
                f"no live worker for host(s) {', '.join(missing)} (live hosts: {known}); "
                "start one there with `bpfsleuth worker --host NAME`"
            )
        return [live[name] for name in names]


class Heartbeat:
    """A daemon thread that re-publishes `record` every `interval_s` until stopped."""

    def __init__(self, registry: Registry, record: HostRecord, interval_s: float, ttl_s: int):
        self.registry = registry
        self.record = record
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{record.name}", daemon=True
        )

    def start(self) -> None:
        self._beat_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 1)
        self.registry.remove(self.record.name)

    def _beat_once(self) -> None:
        try:
            self.registry.beat(self.record, self.ttl_s)
        except StoreUnavailable as exc:
            log.warning("heartbeat of %s failed: %s", self.record.name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._beat_once()


class HostRow(BaseModel):
    """One live host as people see it: a line of `bpfsleuth hosts`, of `/diagnose hosts`."""

    name: str
    heartbeat_age_s: float
    kernel: str
    arch: str
    program_types: list[str]
    missing_program_types: list[str]
    tracepoints: int
    bcc: str | None
    headers: str
    pid: int
    missing_privileges: list[str] = []


def host_rows(records: list[HostRecord], now: float | None = None) -> list[HostRow]:
    now = now if now is not None else time.time()
    rows = []
    for record in records:
        caps = record.capabilities
        rows.append(
            HostRow(
                name=record.name,
                heartbeat_age_s=round(record.age_s(now), 2),
                kernel=caps.kernel,
                arch=caps.arch,
                program_types=sorted(t for t, ok in caps.program_types.items() if ok),
                missing_program_types=sorted(t for t, ok in caps.program_types.items() if not ok),
                tracepoints=caps.tracepoint_count,
                bcc=caps.bcc_version,
                headers=caps.headers,
                pid=record.pid,
                missing_privileges=record.missing_privileges,
            )
        )
    return rows
