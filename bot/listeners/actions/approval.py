"""Approve / Deny: only responders decide; the first decision stands and is audited."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, BoltContext

from bot.progress.approvals import ApprovalBoard
from bot.services import services_of
from bot.views.approval import APPROVE_ACTION, ApprovalKey
from bot.views.help import error_message

log = logging.getLogger(__name__)


def acknowledge_decision(ack: Ack) -> None:
    ack()


def decide(body: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    action = body["actions"][0]
    user = str(body["user"]["id"])
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    try:
        key = ApprovalKey.model_validate_json(str(action.get("value") or ""))
    except ValidationError:
        log.warning("approval button with a malformed value from %s", user)
        return

    def tell(text: str) -> None:
        if channel:
            message = error_message(text)
            services.client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())

    if not services.is_responder(user):
        tell(
            "Only responders can approve or deny commands (BPFSLEUTH_RESPONDERS). "
            "Ask one of them in the thread."
        )
        return
    approved = action.get("action_id") == APPROVE_ACTION
    outcome = ApprovalBoard(services).decide(key, approved=approved, by=user)
    if outcome is not None:
        tell(outcome)
