"""The "Dig deeper" button: the investigation goes on with a step that tests its conclusion."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.gateway import GatewayError
from bot.services import services_of
from bot.views.help import error_message

DIG_DEEPER_QUESTION = (
    "Dig deeper: run a new step that gathers the evidence to confirm or rule out this root "
    "cause, and look for a second contributing cause."
)


def acknowledge_dig_deeper(ack: Ack) -> None:
    ack()


def dig_deeper(body: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    investigation_id = str(body["actions"][0].get("value") or "")
    user = str(body["user"]["id"])
    try:
        services.gateway.follow_up(investigation_id, DIG_DEEPER_QUESTION, asked_by=f"slack:{user}")
    except GatewayError as exc:
        channel = (body.get("channel") or {}).get("id")
        if channel:
            message = error_message(str(exc))
            services.client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
        return
    services.threads.wake(investigation_id)
