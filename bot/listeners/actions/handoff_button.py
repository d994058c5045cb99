"""The "Handoff summary" button on a resolution card: the channel's handoff, in that thread."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.chat.handoff import post_handoff
from bot.services import services_of


def acknowledge_handoff(ack: Ack) -> None:
    ack()


def handoff_from_button(body: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    investigation_id = str(body["actions"][0].get("value") or "")
    thread = services.threads.get(investigation_id)
    channel = (body.get("channel") or {}).get("id") or (thread.channel_id if thread else "")
    post_handoff(
        services,
        channel_id=channel,
        requested_by=str(body["user"]["id"]),
        thread_ts=thread.thread_ts if thread else None,
    )
