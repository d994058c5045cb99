"""`message.channels`: a mention can arrive here before (or instead of) `app_mention`.

Only messages that mention the bot are acted on; the channel+ts dedupe makes sure one message
is handled once whichever of the two events arrives first.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.chat.conversation import handle_mention
from bot.services import services_of


def acknowledge_message(ack: Ack) -> None:
    ack()


def handle_message(event: dict[str, Any], context: BoltContext) -> None:
    bot_user = context.bot_user_id
    if not bot_user or f"<@{bot_user}>" not in str(event.get("text") or ""):
        return
    handle_mention(services_of(context), event)
