"""The bot's one door into the worker side: start, look up, and steer investigations.

Everything here is a Redis read or a Celery enqueue (through `worker.distributed`); nothing
runs a command or a probe. Heavy imports (Celery) happen on first use.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import BaseModel

from bot.views.models import HostRow

if TYPE_CHECKING:
    from worker.distributed.registry import HostRecord
    from worker.distributed.runtime import Runtime
    from worker.loop.investigation import Investigation
    from worker.protocol import PlanResult


class ApprovalDecisionRecord(BaseModel):
    """What `approval_key` holds."""

    approved: bool
    by: str
    at: float


class GatewayError(RuntimeError):
    """Something the person should be told (no such host, Redis away); message is for them."""


def host_row(record: HostRecord, now: float | None = None) -> HostRow:
    caps = record.capabilities
    return HostRow(
        name=record.name,
        kernel=caps.kernel,
        program_types=[kind for kind, ok in sorted(caps.program_types.items()) if ok],
        missing=[kind for kind, ok in sorted(caps.program_types.items()) if not ok],
        last_seen_s=record.age_s(now),
    )


def approval_key(investigation_id: str, command_id: str) -> str:
    """Where a decision on one command waits for the host-side approver to read it.

    The contract with the host worker's approver (worker.host.approver seam): the value is JSON
    `{"approved": bool, "by": "slack:<user id>", "at": <unix time>}`, written once (SET NX, so
    the first decision stands) with the store's TTL; the approver polls the key until its own
    deadline and otherwise goes on without the command.
    """
    from worker.keys import PREFIX as KEY_PREFIX

    return f"{KEY_PREFIX}:approval:{investigation_id}:{command_id}"


class WorkerGateway:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    @cached_property
    def runtime(self) -> Runtime:
        from worker.distributed.runtime import build_runtime
        from worker.settings import WorkerSettings

        return build_runtime(WorkerSettings(REDIS_URL=self.redis_url))

    def warm_up(self) -> None:
        """Build the runtime and open the broker connection before the first request."""
        rt = self.runtime
        rt.store.ping()
        with rt.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)

    def live_hosts(self) -> list[HostRow]:
        from worker.distributed.store import StoreUnavailable

        try:
            records = self.runtime.registry.live_hosts()
        except StoreUnavailable as exc:
            raise GatewayError(f"Cannot reach Redis to list hosts: {exc}") from exc
        now = time.time()
        return [host_row(record, now) for record in records]

    def start(self, symptom: str, hosts: list[str], asked_by: str, flow: str | None = None) -> str:
        """Store a new investigation and enqueue its first step; returns its id.

        With `flow`, the investigation runs that flow on the hosts instead of asking a model.
        """
        from worker.distributed.control import start_investigation
        from worker.distributed.registry import HostNotLive
        from worker.distributed.store import StoreError

        try:
            inv = start_investigation(self.runtime, symptom, hosts, asked_by=asked_by, flow=flow)
        except HostNotLive as exc:
            raise GatewayError(str(exc)) from exc
        except StoreError as exc:
            raise GatewayError(f"Cannot start: {exc}") from exc
        return inv.id

    def load(self, investigation_id: str) -> Investigation | None:
        from worker.distributed.store import InvestigationNotFound

        try:
            return self.runtime.store.load(investigation_id).investigation
        except InvestigationNotFound:
            return None

    def decision(self, investigation_id: str, command_id: str) -> ApprovalDecisionRecord | None:
        """The decision recorded for a command, if any."""
        raw = self.runtime.store.client.get(approval_key(investigation_id, command_id))
        return ApprovalDecisionRecord.model_validate_json(str(raw)) if raw else None

    def record_decision(
        self,
        investigation_id: str,
        command_id: str,
        *,
        approved: bool,
        by: str,
        step: int,
        host: str,
    ) -> bool:
        """Write the decision where the host-side approver polls, and to the audit stream.

        Returns False when a decision was already recorded (the first one stands).
        """
        from worker.distributed.store import AuditEntry

        rt = self.runtime
        decision = ApprovalDecisionRecord(
            approved=approved, by=by, at=time.time()
        ).model_dump_json()
        first = bool(
            rt.store.client.set(
                approval_key(investigation_id, command_id), decision, nx=True, ex=rt.store.ttl_s
            )
        )
        if first:
            rt.store.audit(
                AuditEntry(
                    investigation_id=investigation_id,
                    step=step,
                    host=host,
                    kind="command",
                    id=command_id,
                    argv="",
                    verdict="approved" if approved else "denied",
                    ran=False,
                    approved_by=by if approved else "",
                    asked_by=by,
                    error="" if approved else f"denied by {by}",
                )
            )
        return first

    def step_results(self, investigation_id: str, step: int) -> list[PlanResult]:
        """The per-host results of a closed step (empty while it is open or when unknown)."""
        outcome = self.runtime.store.step_outcome(investigation_id, step)
        if outcome is not None:
            return outcome.results
        inv = self.load(investigation_id)
        return inv.results_of(step) if inv is not None else []

    def follow_up(self, investigation_id: str, question: str, *, asked_by: str) -> None:
        """Continue an investigation with a question from its thread.

        The question is queued on the stored investigation (`ask_followup` reopens a finished
        one with a few more steps); the next model turn answers it, from what is known or with
        a new step. When no step is in flight, an `advance` is enqueued to take that turn.
        """
        from worker.distributed.config import CONTROL_QUEUE, TASK_PREFIX
        from worker.distributed.store import InvestigationNotFound, StoreError, VersionConflict
        from worker.loop.followup import ask_followup

        rt = self.runtime
        for _attempt in range(5):
            try:
                stored = rt.store.load(investigation_id)
                inv = ask_followup(stored.investigation, question[:1900], asked_by=asked_by)
                saved = rt.store.save(stored.model_copy(update={"investigation": inv}))
            except VersionConflict:
                time.sleep(0.05)
                continue
            except InvestigationNotFound as exc:
                raise GatewayError(
                    f"Investigation `{investigation_id}` is no longer stored; start a new one."
                ) from exc
            except StoreError as exc:
                raise GatewayError(f"Cannot continue the investigation: {exc}") from exc
            if saved.investigation.status == "deciding":
                rt.app.send_task(
                    f"{TASK_PREFIX}advance", args=[investigation_id], queue=CONTROL_QUEUE
                )
            return
        raise GatewayError("The investigation is busy; ask again in a moment.")
