"""The host worker's approver: wait a bounded time for a decision a responder made in Slack.

The request itself reaches the thread as the `CommandVerdict(needs_approval)` progress event the
executor publishes before it asks (bot.progress.consumer renders it with Approve / Deny buttons).
The bot writes the decision once (SET NX) to `approval_key(investigation, command id)` as JSON
`{"approved": bool, "by": "slack:<user>", "at": <unix time>}`; this approver polls that key.

When nobody decides within the wait, the approver writes a denial itself with the same SET NX,
so a click that comes later finds the question closed instead of recording a decision nobody
acts on; if that write loses, a responder decided in the last moment and their decision stands.
"""

from __future__ import annotations

import logging
import time

import redis
from pydantic import BaseModel

from worker import keys
from worker.host.approver import ApprovalDecision, ApprovalRequest
from worker.settings import ApprovalSettings

log = logging.getLogger(__name__)
TIMEOUT_BY = "worker:timeout"


class StoredDecision(BaseModel):
    """What `approval_key` holds: the one definition of a decision, written by the bot (Slack
    buttons) and read here."""

    approved: bool
    by: str
    at: float


def approval_key(investigation_id: str, command_id: str) -> str:
    """Where the decision on one command is written once (SET NX) and read."""
    return keys.approval(investigation_id, command_id)


def read_decision(
    client: redis.Redis, investigation_id: str, command_id: str
) -> StoredDecision | None:
    raw = client.get(approval_key(investigation_id, command_id))
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return StoredDecision.model_validate_json(text)


class RedisApprover:
    """Polls for a responder's decision until `wait_s` passes, then denies."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        wait_s: float | None = None,
        budget_s: float | None = None,
        ttl_s: int = 7 * 24 * 3600,
        poll_s: float = 0.25,
    ) -> None:
        """`wait_s` bounds each request; `budget_s` (when given) bounds all of them together,
        so the waits of one step fit in the task's time limit."""
        self.client = client
        self.wait_s = wait_s if wait_s is not None else ApprovalSettings().wait_s
        self.budget_s = budget_s
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self._budget_ends = time.monotonic() + budget_s if budget_s is not None else None

    def decide(self, request: ApprovalRequest) -> ApprovalDecision:
        if not request.investigation_id:
            return ApprovalDecision(
                approved=False, by="auto-deny", note="no investigation to ask in"
            )
        wait_s = self.wait_s
        if self._budget_ends is not None:
            wait_s = min(wait_s, max(0.0, self._budget_ends - time.monotonic()))
        give_up = time.monotonic() + wait_s
        while True:
            found = self._read(request)
            if found is not None:
                return _answer(found)
            if time.monotonic() >= give_up:
                break
            time.sleep(min(self.poll_s, max(0.0, give_up - time.monotonic())))
        return self._close(request, wait_s)

    def _read(self, request: ApprovalRequest) -> StoredDecision | None:
        try:
            return read_decision(self.client, request.investigation_id, request.command_id)
        except redis.RedisError as exc:  # Redis blinked: keep waiting until the deadline
            log.warning("approval %s: cannot read the decision: %s", request.command_id, exc)
            return None

    def _close(self, request: ApprovalRequest, wait_s: float) -> ApprovalDecision:
        """Nobody decided in time: record that (first write wins), and go by what stands."""
        why = f"no decision within {wait_s:.0f} s"
        if wait_s < self.wait_s:
            why += " (this step's time for approvals ran out)"
        denial = StoredDecision(approved=False, by=TIMEOUT_BY, at=time.time())
        key = approval_key(request.investigation_id, request.command_id)
        try:
            first = self.client.set(key, denial.model_dump_json(), nx=True, ex=self.ttl_s)
            if not first:
                stored = read_decision(self.client, request.investigation_id, request.command_id)
                if stored is not None and stored.by != TIMEOUT_BY:
                    return _answer(stored)
        except redis.RedisError as exc:
            log.warning("approval %s: cannot record the timeout: %s", request.command_id, exc)
        return ApprovalDecision(approved=False, by=TIMEOUT_BY, note=why)


def _answer(stored: StoredDecision) -> ApprovalDecision:
    if stored.by == TIMEOUT_BY:
        return ApprovalDecision(approved=False, by=TIMEOUT_BY, note="the wait had already ended")
    verb = "approved" if stored.approved else "denied"
    return ApprovalDecision(approved=stored.approved, by=stored.by, note=f"{verb} in Slack")
