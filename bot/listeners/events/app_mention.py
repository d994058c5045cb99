"""`app_mention`: someone wrote @bpfsleuth. Acked at once; handled after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.chat.conversation import handle_mention
from bot.services import services_of


def acknowledge_mention(ack: Ack) -> None:
    ack()


def handle_app_mention(event: dict[str, Any], context: BoltContext) -> None:
    handle_mention(services_of(context), event)
