"""A worker process's role: which queues it serves and what it runs beside Celery.

`run_worker` is `bpfsleuth worker`; `wire(app)` connects the Celery signals that start a role's
threads (heartbeat for a host queue, deadline scanner for the control queue) and keep a host
worker's probes ready, so `bpfsleuth worker` and a plain `celery -A worker.distributed.app worker
-Q ...` behave the same, and a host is only announced once it consumes its queue.
"""

from __future__ import annotations

import platform
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown
from pydantic import BaseModel

from probes.capabilities import detect_capabilities
from probes.engine.runner import keep_ready_as_a_host_worker
from worker.distributed.config import CONTROL_QUEUE, BpfsleuthApp, create_app, host_queue
from worker.distributed.registry import Heartbeat, HostRecord, Registry, missing_privileges
from worker.distributed.runtime import build_runtime
from worker.distributed.scanner import DeadlineScanner
from worker.metrics import start_exporter
from worker.settings import DistributedSettings, MetricsSettings, WorkerSettings


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


def run_worker(
    role: WorkerRole,
    *,
    concurrency: int,
    loglevel: str,
    pool: str = "prefork",
    metrics: MetricsSettings | None = None,
) -> None:
    """Run a Celery worker for `role` until it is stopped. The host name goes to the tasks in
    the app's settings (they know which host they are on from it). `metrics`: from
    `worker.metrics_env.prepare()`, which must run before prometheus_client is imported."""
    settings = WorkerSettings()
    if role.host:
        settings = settings.model_copy(update={"host_name": role.host})
    app = create_app(settings, DistributedSettings())
    wire(app)
    if metrics is not None and metrics.port:
        start_exporter(metrics.port, metrics.bind)
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


class RoleThreads:
    """What a worker process runs beside Celery, by the queues it consumes.

    - `control`: the deadline and stall scanner (worker.distributed.scanner);
    - `host.<host name>`: the heartbeat publishing this host's capabilities.
    """

    def __init__(
        self, queues: list[str], settings: WorkerSettings, dist: DistributedSettings
    ) -> None:
        self.scanner: DeadlineScanner | None = None
        self.heartbeat: Heartbeat | None = None
        if CONTROL_QUEUE in queues:
            self.scanner = DeadlineScanner(build_runtime(settings, dist), dist.deadline_scan_s)
        host = settings.host_name
        if host_queue(host) in queues:
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


def wire(app: BpfsleuthApp) -> None:
    """Connect the signals that give `app`'s worker processes their role (one app per worker
    process: the handlers stay connected for the life of the process)."""
    threads: list[RoleThreads] = []

    def start_role_threads(sender: Any, **_: Any) -> None:
        """Heartbeat for host queues, scanner for the control queue."""
        queues = [queue.name for queue in sender.task_consumer.queues]
        role = RoleThreads(queues, app.settings, app.dist)
        role.start()
        threads.append(role)

    def stop_role_threads(**_: Any) -> None:
        while threads:
            threads.pop().stop()

    def keep_probes_ready(**_: Any) -> None:
        """In each pool process of a host worker: keep probe processes started, compile the
        catalog in the background (one process per probe, at low priority, kept loaded: a
        request's filters and run-time parameters are map values, so any later request of a
        probe runs there without compiling), and keep compiled probes for repeated plans
        (probes.engine.runner). This runs in the pool process's main thread, the one that runs
        `run_plan`: a probe process dies with the thread that started it."""
        consumed = getattr(app.amqp.queues, "consume_from", None) or {}
        if host_queue(app.settings.host_name) not in consumed:
            return
        keep_ready_as_a_host_worker(precompile=app.settings.precompile)

    worker_ready.connect(start_role_threads, weak=False)
    worker_shutdown.connect(stop_role_threads, weak=False)
    worker_process_init.connect(keep_probes_ready, weak=False)
