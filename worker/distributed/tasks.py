"""Celery tasks of the distributed loop. Thin: validate the payload, call the plain functions.

- `worker.tasks.advance(investigation_id)` on `control`: record a closed step, take one model
  turn, fan the next plan out (or finish) (`worker.distributed.control`).
- `worker.tasks.run_plan(investigation_id, step, host, plan)` on `host.<name>`: run one step's
  plan on this host and store its PlanResult; the last host (or the deadline) enqueues advance
  (`worker.distributed.host`).

The task names (`worker.tasks.*`) are wire names and stay what they were. The tasks are shared
tasks: the app that consumes them (`worker.distributed.app`, or `bpfsleuth worker`'s) includes
this module, and nothing here imports an app. Each task reads the settings from the app that
runs it.

Step deadlines are not tasks: a scanner thread in each control worker closes late steps
(`worker.distributed.scanner`; why in `worker.distributed.store`). No task waits for another
task's result (no `.get()`): the join lives in Redis.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from worker.distributed.control import advance_investigation
from worker.distributed.host import run_plan_here
from worker.distributed.runtime import runtime_of, wait_for_redis
from worker.distributed.store import StoreUnavailable, VersionConflict
from worker.loop.investigation import StepPlan

log = logging.getLogger(__name__)
MAX_RETRIES = 20
RETRY_BACKOFF_MAX_S = 30


def _countdown(retries: int) -> int:
    """Celery's exponential backoff (the one `retry_backoff` uses): 1, 2, 4 ... 30 s."""
    return int(
        get_exponential_backoff_interval(
            factor=1, retries=retries, maximum=RETRY_BACKOFF_MAX_S, full_jitter=False
        )
    )


@shared_task(name="worker.tasks.advance", bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def advance(self: Any, investigation_id: str) -> None:
    rt = runtime_of(self.app)
    try:
        advance_investigation(rt, investigation_id)
    except (StoreUnavailable, VersionConflict) as exc:
        # Redis away or a concurrent writer: try again; the step logic is idempotent. Wait for
        # Redis first, since the retry itself is a message to the same Redis.
        log.warning("advance %s: %s; retrying", investigation_id, exc)
        wait_for_redis(rt)
        raise self.retry(exc=exc, countdown=_countdown(self.request.retries)) from exc


@shared_task(name="worker.tasks.run_plan", bind=True, max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def run_plan(
    self: Any, investigation_id: str, step: int, host: str, plan: dict[str, Any], asked_by: str
) -> None:
    rt = runtime_of(self.app)
    validated = StepPlan.model_validate(plan)
    try:
        run_plan_here(rt, investigation_id, step, host, validated, asked_by)
    except StoreUnavailable as exc:
        # only before the plan ran (after it, run_plan_here waits for Redis itself)
        log.warning("run_plan %s step %s: %s; retrying", investigation_id, step, exc)
        wait_for_redis(rt)
        raise self.retry(exc=exc, countdown=_countdown(self.request.retries)) from exc
