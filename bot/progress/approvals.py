"""Approval messages in threads: where each one is, and what happens when someone decides.

`bpfsleuth:slack:approval:<inv>:<cmd>` holds the posted message (channel, ts) and its view, so
a button press can update it and the progress consumer can mark it expired.
"""

from __future__ import annotations

import logging
from typing import cast

from pydantic import BaseModel
from slack_sdk.errors import SlackApiError

from bot.services import STATE_TTL_S, BotServices
from bot.store.threads import PREFIX
from bot.views.approval import ApprovalKey, approval_message
from bot.views.models import ApprovalState, ApprovalView

log = logging.getLogger(__name__)
# what the host's approver writes when nobody decided in time (worker.host.approver_redis)
HOST_GAVE_UP = "worker:timeout"


class PostedApproval(BaseModel):
    channel_id: str
    ts: str
    view: ApprovalView


def _key(investigation_id: str, command_id: str) -> str:
    return f"{PREFIX}:approval:{investigation_id}:{command_id}"


class ApprovalBoard:
    def __init__(self, services: BotServices) -> None:
        self.services = services

    def remember(self, posted: PostedApproval) -> None:
        key = _key(posted.view.investigation_id, posted.view.command_id)
        self.services.redis.set(key, posted.model_dump_json(), ex=STATE_TTL_S)

    def remember_posted(self, posted: PostedApproval) -> None:
        """Keep a just-posted request, then show a decision that was made meanwhile.

        A responder can click in the moment between the post and `remember`; their decision
        is recorded but finds no message to update. Checking after remembering closes that
        gap: whichever of the two comes second sees the other.
        """
        self.remember(posted)
        view = posted.view
        decided = self.services.gateway.decision(view.investigation_id, view.command_id)
        if decided is not None and decided.by == HOST_GAVE_UP:
            self._show(posted, "expired", None)
        elif decided is not None:
            self._show(
                posted,
                "approved" if decided.approved else "denied",
                decided.by.removeprefix("slack:"),
            )

    def get(self, investigation_id: str, command_id: str) -> PostedApproval | None:
        raw = cast(str | None, self.services.redis.get(_key(investigation_id, command_id)))
        return PostedApproval.model_validate_json(raw) if raw else None

    def _show(self, posted: PostedApproval, state: ApprovalState, by: str | None) -> None:
        view = posted.view.model_copy(update={"state": state, "decided_by": by})
        posted = posted.model_copy(update={"view": view})
        self.remember(posted)
        try:
            self.services.client.chat_update(
                channel=posted.channel_id, ts=posted.ts, **approval_message(view).as_kwargs()
            )
        except SlackApiError as exc:
            log.error("approval message %s not updated: %s", posted.ts, exc)

    def decide(self, key: ApprovalKey, *, approved: bool, by: str) -> str | None:
        """Record a responder's decision; returns what to tell them when it did not count."""
        posted = self.get(key.investigation_id, key.command_id)
        if posted is not None and posted.view.state != "pending":
            who = f" by <@{posted.view.decided_by}>" if posted.view.decided_by else ""
            return f"This request is already {posted.view.state}{who}."
        first = self.services.gateway.record_decision(
            key.investigation_id,
            key.command_id,
            approved=approved,
            by=f"slack:{by}",
            step=key.step,
            host=key.host,
        )
        if not first:
            decided = self.services.gateway.decision(key.investigation_id, key.command_id)
            if decided is not None and decided.by == HOST_GAVE_UP:
                self.expire(key.investigation_id, key.command_id)
                return "This request is already expired; the investigation went on without it."
            return "Someone decided on this request a moment before you; their decision stands."
        posted = self.get(key.investigation_id, key.command_id)  # read again: see remember_posted
        if posted is not None:
            self._show(posted, "approved" if approved else "denied", by)
        return None

    def expire(self, investigation_id: str, command_id: str) -> None:
        """The loop went on without a decision: show it, and take the buttons away."""
        posted = self.get(investigation_id, command_id)
        if posted is not None and posted.view.state == "pending":
            self._show(posted, "expired", None)
