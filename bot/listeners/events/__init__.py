"""Events API: mentions of the bot (as `app_mention` and as `message.channels`)."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners.events.app_mention import acknowledge_mention, handle_app_mention
from bot.listeners.events.message import acknowledge_message, handle_message


def register(app: App) -> None:
    app.event("app_mention")(ack=acknowledge_mention, lazy=[handle_app_mention])
    app.event("message")(ack=acknowledge_message, lazy=[handle_message])
