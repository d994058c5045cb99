"""Every Celery and distributed-loop setting in one place (docs/architecture.md §2, issue 5).

Why these values:
- `task_acks_late` + `task_reject_on_worker_lost` + prefetch 1: a task is acknowledged only when
  it has finished, so a worker killed mid-task leaves its message to be redelivered, and a worker
  holds at most one message it has not started.
- Time limits: a step runs at most 60 s of probes plus a few commands; the soft limit raises
  inside the task (which turns it into a PlanResult note), the hard limit kills the child.
- `visibility_timeout` must exceed the hard limit, or Redis redelivers a task that is still
  running. Celery reads it from three places (the broker transport, the result backend transport
  and the top-level key used by the redis result backend's chord/ETA code); we set all three.
- JSON only: tasks carry IDs and `model_dump(mode="json")` payloads, validated on entry.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from worker.settings import DistributedSettings, WorkerSettings

CONTROL_QUEUE = "control"
HOST_QUEUE_PREFIX = "host."
TASK_PREFIX = "worker.tasks."


def host_queue(host: str) -> str:
    """The queue whose only consumers are the workers of host `host`."""
    return f"{HOST_QUEUE_PREFIX}{host}"


def celery_settings(worker: WorkerSettings, dist: DistributedSettings) -> dict[str, Any]:
    """The Celery configuration mapping (lower-case setting names)."""
    transport = {"visibility_timeout": dist.visibility_timeout_s}
    broker_transport = {
        **transport,
        # how often a worker sweeps unacknowledged messages older than the visibility timeout
        # back to their queue (kombu's default is 10 s x throttle 10 = 100 s)
        "unacked_restore_interval": dist.redelivery_sweep_s,
        "unacked_restore_throttle": 1,
        # a broker that vanishes without closing TCP must not hang a publish forever
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
    }
    return {
        "broker_url": worker.redis_url,
        "result_backend": worker.redis_url,
        "broker_transport_options": broker_transport,
        "result_backend_transport_options": dict(transport),
        "visibility_timeout": dist.visibility_timeout_s,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "redis_backend_health_check_interval": 10,
        "redis_socket_keepalive": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": 3600,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": dist.task_soft_time_limit_s,
        "task_time_limit": dist.task_time_limit_s,
        "task_default_queue": CONTROL_QUEUE,
        "task_create_missing_queues": True,
        "task_routes": {
            f"{TASK_PREFIX}advance": {"queue": CONTROL_QUEUE},
        },
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "enable_utc": True,
    }


class BpfsleuthApp(Celery):  # type: ignore[misc]
    """A Celery app that carries the settings it was built from (tasks and the roles' threads
    read them from the app, not from the environment).

    No task of ours returns a result (the join lives in Redis, worker.distributed.store), so
    sending one never waits for it: without `ignore_result`, `send_task` SUBSCRIBEs to the
    task's result channel (and later UNSUBSCRIBEs), two Redis round trips per enqueue for nothing.
    """

    def __init__(self, settings: WorkerSettings, dist: DistributedSettings, **kw: Any) -> None:
        super().__init__("bpfsleuth", include=["worker.distributed.tasks"], **kw)
        self.settings = settings
        self.dist = dist
        self.conf.update(celery_settings(settings, dist))

    def send_task(self, name: str, *args: Any, **options: Any) -> Any:
        options.setdefault("ignore_result", True)
        return super().send_task(name, *args, **options)


def create_app(
    settings: WorkerSettings | None = None,
    dist: DistributedSettings | None = None,
    *,
    set_as_current: bool = True,
) -> BpfsleuthApp:
    """A Celery app for these settings (by default, the environment's)."""
    return BpfsleuthApp(
        settings or WorkerSettings(), dist or DistributedSettings(), set_as_current=set_as_current
    )
