"""The bot's one door into the worker side: start, look up, and steer investigations.

Everything here is a Redis read or a Celery enqueue (through `worker.distributed`); nothing
runs a command or a probe. The runtime (Redis, the Celery app) is built on first use.
The approval contract is the host worker's (`worker.host.approver_redis`): the bot writes the
same `StoredDecision` at the same `approval_key` that the approver polls.
"""

from __future__ import annotations

import time
from functools import cached_property

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from worker.distributed.config import CONTROL_QUEUE, TASK_PREFIX
from worker.distributed.control import start_investigation
from worker.distributed.registry import HostNotLive, HostRow, host_rows
from worker.distributed.runtime import Runtime, build_runtime
from worker.distributed.store import (
    AuditEntry,
    InvestigationNotFound,
    StoredInvestigation,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from worker.host.approver_redis import StoredDecision, approval_key, read_decision
from worker.loop.followup import ask_followup
from worker.loop.investigation import Investigation
from worker.protocol import PlanResult
from worker.settings import WorkerSettings

FOLLOWUP_ATTEMPTS = 5  # saves that lost a race with a step landing, before "busy"
FOLLOWUP_RETRY_S = 0.05


class GatewayError(RuntimeError):
    """Something the person should be told (no such host, Redis away); message is for them."""


class WorkerGateway:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    @cached_property
    def runtime(self) -> Runtime:
        return build_runtime(WorkerSettings(REDIS_URL=self.redis_url))

    def warm_up(self) -> None:
        """Build the runtime and open the broker connection before the first request."""
        rt = self.runtime
        rt.store.ping()
        with rt.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)

    def live_hosts(self) -> list[HostRow]:
        try:
            records = self.runtime.registry.live_hosts()
        except StoreUnavailable as exc:
            raise GatewayError(f"Cannot reach Redis to list hosts: {exc}") from exc
        return host_rows(records)

    def start(self, symptom: str, hosts: list[str], asked_by: str, flow: str | None = None) -> str:
        """Store a new investigation and enqueue its first step; returns its id.

        With `flow`, the investigation runs that flow on the hosts instead of asking a model.
        """
        try:
            inv = start_investigation(self.runtime, symptom, hosts, asked_by=asked_by, flow=flow)
        except HostNotLive as exc:
            raise GatewayError(str(exc)) from exc
        except StoreError as exc:
            raise GatewayError(f"Cannot start: {exc}") from exc
        return inv.id

    def load(self, investigation_id: str) -> Investigation | None:
        try:
            return self.runtime.store.load(investigation_id).investigation
        except InvestigationNotFound:
            return None

    def decision(self, investigation_id: str, command_id: str) -> StoredDecision | None:
        """The decision recorded for a command, if any."""
        return read_decision(self.runtime.store.client, investigation_id, command_id)

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
        rt = self.runtime
        decision = StoredDecision(approved=approved, by=by, at=time.time()).model_dump_json()
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
        rt = self.runtime
        retrying = Retrying(
            stop=stop_after_attempt(FOLLOWUP_ATTEMPTS),
            wait=wait_fixed(FOLLOWUP_RETRY_S),
            retry=retry_if_exception_type(VersionConflict),
            reraise=True,
        )
        try:
            saved = retrying(self._queue_question, investigation_id, question, asked_by)
        except VersionConflict as exc:
            raise GatewayError("The investigation is busy; ask again in a moment.") from exc
        except InvestigationNotFound as exc:
            raise GatewayError(
                f"Investigation `{investigation_id}` is no longer stored; start a new one."
            ) from exc
        except StoreError as exc:
            raise GatewayError(f"Cannot continue the investigation: {exc}") from exc
        if saved.investigation.status == "deciding":
            rt.app.send_task(f"{TASK_PREFIX}advance", args=[investigation_id], queue=CONTROL_QUEUE)

    def _queue_question(
        self, investigation_id: str, question: str, asked_by: str
    ) -> StoredInvestigation:
        """One read-modify-write of the stored investigation (VersionConflict when it raced)."""
        store = self.runtime.store
        stored = store.load(investigation_id)
        inv = ask_followup(stored.investigation, question[:1900], asked_by=asked_by)
        return store.save(stored.model_copy(update={"investigation": inv}))
