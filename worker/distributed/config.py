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
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.settings import WorkerSettings

CONTROL_QUEUE = "control"
HOST_QUEUE_PREFIX = "host."
TASK_PREFIX = "worker.tasks."


def host_queue(host: str) -> str:
    """The queue whose only consumers are the workers of host `host`."""
    return f"{HOST_QUEUE_PREFIX}{host}"


class DistributedSettings(BaseSettings):
    """Knobs of the distributed loop; defaults suit production, tests shorten the timers."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    state_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, alias="BPFSLEUTH_STATE_TTL_S")
    task_soft_time_limit_s: int = Field(default=240, ge=5, alias="BPFSLEUTH_TASK_SOFT_LIMIT_S")
    task_time_limit_s: int = Field(default=300, ge=10, alias="BPFSLEUTH_TASK_HARD_LIMIT_S")
    visibility_timeout_s: int = Field(default=3600, ge=30, alias="BPFSLEUTH_VISIBILITY_TIMEOUT_S")
    redelivery_sweep_s: int = Field(
        default=30,
        ge=1,
        le=600,
        alias="BPFSLEUTH_REDELIVERY_SWEEP_S",
        description="Seconds between sweeps that redeliver tasks of dead workers.",
    )
    step_grace_s: float = Field(
        default=30.0,
        gt=0,
        alias="BPFSLEUTH_STEP_GRACE_S",
        description="A step's deadline is its longest probe plus its commands plus this grace.",
    )
    plan_expiry_margin_s: float = Field(
        default=5.0,
        ge=0,
        alias="BPFSLEUTH_PLAN_EXPIRY_MARGIN_S",
        description="run_plan expires this long after the step deadline (late = stale).",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, alias="BPFSLEUTH_HEARTBEAT_S")
    heartbeat_ttl_factor: float = Field(default=3.0, ge=1.5)
    scripted_replies: str | None = Field(
        default=None,
        alias="BPFSLEUTH_SCRIPTED_REPLIES",
        description="A JSON file of replies to replay instead of calling the model.",
    )
    stall_s: float | None = Field(
        default=None,
        gt=0,
        alias="BPFSLEUTH_STALL_S",
        description="An investigation deciding this long without a write lost its advance "
        "(a control worker died); default: the hard time limit + 60 s.",
    )
    deadline_scan_s: float = Field(default=0.5, gt=0, le=10, alias="BPFSLEUTH_DEADLINE_SCAN_S")
    control_concurrency: int = Field(default=2, ge=1, le=64, alias="BPFSLEUTH_CONTROL_CONCURRENCY")

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> DistributedSettings:
        if not self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise ValueError(
                "need soft time limit < hard time limit < visibility timeout, got "
                f"{self.task_soft_time_limit_s} / {self.task_time_limit_s} / "
                f"{self.visibility_timeout_s}"
            )
        return self

    @property
    def stall_after_s(self) -> float:
        return self.stall_s if self.stall_s is not None else self.task_time_limit_s + 60.0

    @property
    def heartbeat_ttl_s(self) -> int:
        return max(2, round(self.heartbeat_interval_s * self.heartbeat_ttl_factor))


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
