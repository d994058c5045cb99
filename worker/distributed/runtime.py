"""What one process needs to drive or serve investigations, and patience with Redis."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from kombu.exceptions import OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
)

from worker.distributed.config import BpfsleuthApp, create_app
from worker.distributed.registry import Registry
from worker.distributed.store import Store, StoreUnavailable, connect
from worker.loop.events import ProgressEvent
from worker.settings import DistributedSettings, WorkerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
REDIS_PATIENCE_S = 60.0
# a publish to the broker fails with any of these while Redis is away
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    StoreUnavailable,
    ConnectionError,
    TimeoutError,
)


@dataclass
class Runtime:
    """What one process needs to drive or serve investigations."""

    settings: WorkerSettings
    dist: DistributedSettings
    store: Store
    registry: Registry
    app: BpfsleuthApp

    def publish(self, event: ProgressEvent) -> None:
        try:
            self.store.publish(event)
        except StoreUnavailable as exc:
            log.warning("progress event lost: %s", exc)


def build_runtime(
    settings: WorkerSettings | None = None,
    dist: DistributedSettings | None = None,
    *,
    app: BpfsleuthApp | None = None,
) -> Runtime:
    """A runtime for these settings (default: the environment's), sending through `app` (default:
    an app of its own for these settings, not made the current app)."""
    if app is not None:
        settings, dist = settings or app.settings, dist or app.dist
    settings = settings or WorkerSettings()
    dist = dist or DistributedSettings()
    app = app or create_app(settings, dist, set_as_current=False)
    client = connect(settings.redis_url)
    return Runtime(
        settings=settings,
        dist=dist,
        store=Store(settings.redis_url, ttl_s=dist.state_ttl_s, client=client),
        registry=Registry(client, settings.redis_url),
        app=app,
    )


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The process-wide runtime of a client (the CLI, the bot), from the environment."""
    return build_runtime()


@lru_cache(maxsize=4)
def runtime_of(app: BpfsleuthApp) -> Runtime:
    """The runtime of a worker process, from the settings its Celery app was built with."""
    return build_runtime(app=app)


def wait_for_redis(rt: Runtime, patience_s: float = REDIS_PATIENCE_S) -> bool:
    """Block until Redis answers (True) or `patience_s` passes (False)."""
    try:
        patiently(rt.store.ping, patience_s)
    except StoreUnavailable:
        return False
    return True


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    pause = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("Redis unavailable (%s); retrying in %.1f s", exc, pause)


def patiently(
    write: Callable[[], T],
    patience_s: float = REDIS_PATIENCE_S,
    exceptions: tuple[type[BaseException], ...] = (StoreUnavailable,),
) -> T:
    """Run a Redis write (or publish), retrying while Redis is unreachable for `patience_s`:
    pauses of 0.25 s doubling up to 5 s, never past the patience; then the last error."""
    retrying = Retrying(
        retry=retry_if_exception_type(exceptions),
        wait=wait_exponential(multiplier=0.25, min=0.25, max=5.0),
        stop=stop_before_delay(patience_s),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(write)
