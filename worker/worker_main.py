"""`bpfsleuth worker` and `bpfsleuth hosts`: start a Celery worker in a role, list live hosts."""

from __future__ import annotations

import os
import platform
import time

from pydantic import BaseModel

from worker.celery_config import CONTROL_QUEUE, DistributedSettings, host_queue
from worker.registry import HostRecord, missing_privileges


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
    """Run a Celery worker for `role` until it is stopped (roles' threads: `RoleThreads`)."""
    if role.host:
        # before anything reads settings: tasks use it to know which host they are on
        os.environ["BPFSLEUTH_HOST"] = role.host
    from worker.metrics_env import cleanup, prepare

    metrics = prepare()  # before prometheus_client is imported: the pool children share it
    from worker.celery_app import app
    from worker.settings import get_settings

    if metrics.port:
        from worker.metrics import start_exporter

        start_exporter(metrics.port, metrics.bind)

    get_settings.cache_clear()
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
    cleanup(metrics)


class RoleThreads:
    """What a worker process runs beside Celery, by the queues it consumes.

    - `control`: the deadline and stall scanner (worker.scanner);
    - `host.<BPFSLEUTH_HOST>`: the heartbeat publishing this host's capabilities.

    Started from Celery's `worker_ready` signal (worker.celery_app), so `bpfsleuth worker` and a
    plain `celery -A worker.celery_app worker -Q ...` behave the same, and a host is only
    announced once it consumes its queue.
    """

    def __init__(self, queues: list[str]) -> None:
        from worker.distributed import build_runtime
        from worker.registry import Heartbeat, Registry
        from worker.scanner import DeadlineScanner
        from worker.settings import WorkerSettings

        settings = WorkerSettings()
        dist = DistributedSettings()
        self.scanner: DeadlineScanner | None = None
        self.heartbeat: Heartbeat | None = None
        if CONTROL_QUEUE in queues:
            self.scanner = DeadlineScanner(build_runtime(settings, dist), dist.deadline_scan_s)
        host = os.environ.get("BPFSLEUTH_HOST", "")
        if host and host_queue(host) in queues:
            from probes.capabilities import detect_capabilities

            capabilities = detect_capabilities().model_copy(update={"hostname": host})
            self.heartbeat = Heartbeat(
                Registry.from_url(settings.redis_url),
                HostRecord(
                    name=host,
                    capabilities=capabilities,
                    missing_privileges=missing_privileges(),
                ),
                interval_s=dist.heartbeat_interval_s,
                ttl_s=dist.heartbeat_ttl_s,
            )

    def start(self) -> None:
        if self.scanner is not None:
            self.scanner.start()
        if self.heartbeat is not None:
            self.heartbeat.start()

    def stop(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.scanner is not None:
            self.scanner.stop()


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
