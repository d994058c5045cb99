"""Celery tasks of the distributed loop. Thin: validate the payload, call `worker.distributed`.

- `worker.tasks.advance(investigation_id)` on `control`: record a closed step, take one model
  turn, fan the next plan out (or finish).
- `worker.tasks.run_plan(investigation_id, step, host, plan)` on `host.<name>`: run one step's
  plan on this host and store its PlanResult; the last host (or the deadline) enqueues advance.

Step deadlines are not tasks: a scanner thread in each control worker closes late steps
(`worker.scanner.DeadlineScanner`; why in `worker.store`).

No task waits for another task's result (no `.get()`): the join lives in Redis (worker.store).
"""

from __future__ import annotations

import logging
from typing import Any

from worker.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="worker.tasks.advance", bind=True, max_retries=20)  # type: ignore[untyped-decorator]
def advance(self: Any, investigation_id: str) -> None:
    from worker.distributed import advance_investigation, runtime, wait_for_redis
    from worker.store import StoreUnavailable, VersionConflict

    try:
        advance_investigation(runtime(), investigation_id)
    except (StoreUnavailable, VersionConflict) as exc:
        # Redis away or a concurrent writer: try again; the step logic is idempotent. Wait for
        # Redis first, since the retry itself is a message to the same Redis.
        log.warning("advance %s: %s; retrying", investigation_id, exc)
        wait_for_redis(runtime())
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@app.task(name="worker.tasks.run_plan", bind=True, max_retries=20)  # type: ignore[untyped-decorator]
def run_plan(
    self: Any, investigation_id: str, step: int, host: str, plan: dict[str, Any], asked_by: str
) -> None:
    from worker.distributed import run_plan_here, runtime, wait_for_redis
    from worker.loop.investigation import StepPlan
    from worker.store import StoreUnavailable

    validated = StepPlan.model_validate(plan)
    try:
        run_plan_here(runtime(), investigation_id, step, host, validated, asked_by)
    except StoreUnavailable as exc:
        # only before the plan ran (after it, run_plan_here waits for Redis itself)
        log.warning("run_plan %s step %s: %s; retrying", investigation_id, step, exc)
        wait_for_redis(runtime())
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc
