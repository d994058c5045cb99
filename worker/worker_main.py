"""`bpfsleuth worker` and `bpfsleuth hosts`: start a Celery worker in a role, list live hosts."""

from __future__ import annotations

import os
import platform
import time

from pydantic import BaseModel

from worker.celery_config import CONTROL_QUEUE, DistributedSettings, host_queue
from worker.registry import HostRecord


class WorkerRole(BaseModel):
    """Which queues this process serves."""

    host: str | None = None
    control: bool = False

    @property
    def queues(self) -> list[str]:
        out = [CONTROL_QUEUE] if self.control else []
        if self.host:
            out.append(host_queue(self.host))
        return out

    @property
    def node_name(self) -> str:
        parts = (["control"] if self.control else []) + ([self.host] if self.host else [])
        return f"{'+'.join(parts)}@{platform.node()}"


def run_worker(role: WorkerRole, *, concurrency: int, loglevel: str, pool: str = "prefork") -> None:
    """Run a Celery worker for `role` until it is stopped; host workers beat to the registry."""
    if role.host:
        # before anything reads settings: tasks use it to know which host they are on
        os.environ["BPFSLEUTH_HOST"] = role.host
    from probes.capabilities import detect_capabilities
    from worker.celery_app import app
    from worker.distributed import build_runtime
    from worker.registry import Heartbeat, Registry
    from worker.scanner import DeadlineScanner
    from worker.settings import WorkerSettings, get_settings

    get_settings.cache_clear()
    settings = WorkerSettings()
    dist = DistributedSettings()
    heartbeat: Heartbeat | None = None
    scanner: DeadlineScanner | None = None
    if role.control:
        scanner = DeadlineScanner(build_runtime(settings, dist), dist.deadline_scan_s)
        scanner.start()
    if role.host:
        capabilities = detect_capabilities().model_copy(update={"hostname": role.host})
        record = HostRecord(name=role.host, capabilities=capabilities)
        heartbeat = Heartbeat(
            Registry.from_url(settings.redis_url),
            record,
            interval_s=dist.heartbeat_interval_s,
            ttl_s=dist.heartbeat_ttl_s,
        )
        heartbeat.start()
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                ",".join(role.queues),
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--loglevel",
                loglevel,
                "--hostname",
                role.node_name,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        if scanner is not None:
            scanner.stop()


class HostRow(BaseModel):
    """One line of `bpfsleuth hosts`."""

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
            )
        )
    return rows
