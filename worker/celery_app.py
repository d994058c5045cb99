"""The Celery application: `celery -A worker.celery_app worker -Q control` (or `bpfsleuth worker`).

Importing this module builds the app from `worker.celery_config`; importing `worker.tasks`
registers the tasks (names `worker.tasks.<name>`). Only this module and `worker.tasks` import
Celery, and only the distributed paths import them.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from worker.celery_config import DistributedSettings, celery_settings
from worker.settings import WorkerSettings


class _App(Celery):  # type: ignore[misc]
    """No task of ours returns a result (the join lives in Redis, worker.store), so sending one
    never waits for it: without `ignore_result`, `send_task` SUBSCRIBEs to the task's result
    channel (and later UNSUBSCRIBEs), two Redis round trips per enqueue for nothing."""

    def send_task(self, name: str, *args: Any, **options: Any) -> Any:
        options.setdefault("ignore_result", True)
        return super().send_task(name, *args, **options)


def create_app(
    worker: WorkerSettings | None = None, dist: DistributedSettings | None = None
) -> Celery:
    app = _App("bpfsleuth", include=["worker.tasks"])
    app.conf.update(celery_settings(worker or WorkerSettings(), dist or DistributedSettings()))
    return app


app = create_app()
celery = app


_role_threads: list[Any] = []


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_role_threads(sender: Any, **_: Any) -> None:
    """Heartbeat for host queues, scanner for the control queue (worker.worker_main)."""
    from worker.worker_main import RoleThreads

    queues = [queue.name for queue in sender.task_consumer.queues]
    threads = RoleThreads(queues)
    threads.start()
    _role_threads.append(threads)


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_role_threads(**_: Any) -> None:
    while _role_threads:
        _role_threads.pop().stop()


KEEP_WARM = 2  # probe processes started ahead in each pool process of a host worker
# compiled probes kept per pool process: the catalog (precompiled at start) and other compiles
KEEP_COMPILED = 24


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _keep_probes_ready(**_: Any) -> None:
    """In each pool process of a host worker: keep probe processes started, compile the catalog
    in the background (one process per probe, at low priority, kept loaded: a request's filters
    and run-time parameters are map values, so any later request of a probe runs there without
    compiling), and keep compiled probes for repeated plans (probes.engine.runner). This runs in the
    pool process's main thread, the one that runs `run_plan`: a probe process dies with the
    thread that started it."""
    import os

    from worker.celery_config import host_queue

    host = os.environ.get("BPFSLEUTH_HOST", "")
    consumed = getattr(app.amqp.queues, "consume_from", None) or {}
    if not host or host_queue(host) not in consumed:
        return
    from probes.engine.runner import keep_compiled, keep_warm, precompile_catalog
    from worker.settings import get_settings

    keep_compiled(KEEP_COMPILED)
    keep_warm(KEEP_WARM)
    if get_settings().precompile:
        precompile_catalog()
