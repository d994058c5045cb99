"""The host side of the distributed loop: run one step's plan here, store it, audit it.

`run_plan_here` does nothing when this host already answered or the step is closed, so a
redelivered `run_plan` never runs a plan twice; once the plan has run, Redis blinking is waited
out rather than running it again.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import UTC, datetime

from celery.exceptions import SoftTimeLimitExceeded

from worker.distributed.control import advance_closed_step
from worker.distributed.deadlines import approval_wait_s
from worker.distributed.runtime import Runtime, patiently
from worker.distributed.store import AuditEntry, StoreUnavailable
from worker.host.approver_redis import RedisApprover, read_decision
from worker.host.execute import ExecutionContext, execute_plan
from worker.loop.investigation import StepPlan
from worker.protocol import CommandResult, PlanResult

log = logging.getLogger(__name__)


def run_plan_here(
    rt: Runtime, investigation_id: str, step: int, host: str, plan: StepPlan, asked_by: str
) -> PlanResult | None:
    """Run `plan` on this host unless it is stale or already answered; store the result."""
    me = rt.settings.host_name
    if host != me:
        log.error("run_plan for host %s reached the worker of host %s; not run", host, me)
        return None
    state = rt.store.step_state(investigation_id, step, me)
    if state == "open" and not rt.store.claim_host_run(
        investigation_id, step, me, f"{platform.node()}:{os.getpid()}"
    ):
        state = "running elsewhere"  # a duplicate run_plan (a control worker re-dispatched)
    if state != "open":
        log.info(
            "run_plan %s step %s on %s: step is %s; nothing to do",
            investigation_id,
            step,
            me,
            state,
        )
        return None
    started = time.monotonic()
    try:
        result = _execute(rt, plan, me)
    except Exception as exc:  # the step must go on without this host, not die with it
        why = (
            f"the step ran out of time on {me} (soft limit {rt.dist.task_soft_time_limit_s} s)"
            if isinstance(exc, SoftTimeLimitExceeded)
            else f"running the plan on {me} failed: {type(exc).__name__}: {exc}"
        )
        log.exception("run_plan %s step %s", investigation_id, step)
        result = PlanResult(host=me, step=step, notes=[why], finished_at=datetime.now(UTC))
    result = result.model_copy(update={"host": me, "step": step})
    if result.finished_at is None:
        result.finished_at = datetime.now(UTC)
    # The plan has run: never run it again because Redis blinked. Wait for Redis instead.
    _audit(rt, investigation_id, result, asked_by)
    outcome = patiently(lambda: rt.store.record_result(investigation_id, result))
    log.info(
        "run_plan %s step %s on %s took %.2f s (join %s)",
        investigation_id,
        step,
        me,
        time.monotonic() - started,
        outcome,
    )
    if outcome == 1:
        advance_closed_step(rt, investigation_id, step)
    return result


def _approved_by(rt: Runtime, investigation_id: str, command: CommandResult) -> str:
    """Who let a command run: the policy, or the responder whose decision the host read."""
    if command.verdict == "allow":
        return "policy"
    if not command.ran:
        return ""
    try:
        decision = read_decision(rt.store.client, investigation_id, command.id)
    except Exception as exc:  # the audit must not lose the entry over this lookup
        log.warning("audit %s %s: approver unknown: %s", investigation_id, command.id, exc)
        return "unknown approver"
    return decision.by if decision is not None and decision.approved else ""


def _audit(rt: Runtime, investigation_id: str, result: PlanResult, asked_by: str) -> None:
    entries: list[AuditEntry] = []
    for command in result.command_results.values():
        entries.append(
            AuditEntry.of_command(
                command,
                investigation_id=investigation_id,
                step=result.step,
                host=result.host,
                sandbox=command.sandbox,
                asked_by=asked_by,
                approved_by=_approved_by(rt, investigation_id, command),
            )
        )
    for key, probe in result.ebpf_results.items():
        entries.append(
            AuditEntry.of_probe(
                probe,
                investigation_id=investigation_id,
                step=result.step,
                host=result.host,
                id=key,
                asked_by=asked_by,
            )
        )
    try:
        patiently(lambda: rt.store.audit(*entries))
    except StoreUnavailable as exc:
        for entry in entries:
            log.error("audit entry lost (%s): %s", exc, entry.model_dump_json())


def _execute(rt: Runtime, plan: StepPlan, host: str) -> PlanResult:
    """Run the plan here; a command that needs approval waits (bounded) for a responder's
    decision in Slack (worker.host.approver_redis)."""
    approver = RedisApprover(
        rt.store.client, budget_s=approval_wait_s(rt, plan), ttl_s=rt.store.ttl_s
    )
    context = ExecutionContext(approver=approver, on_event=rt.publish)
    return execute_plan(plan, host, context)
