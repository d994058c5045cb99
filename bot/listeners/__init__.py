"""Listeners, one per file, registered per group (commands, events, actions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App


def register_listeners(app: App) -> None:
    from bot.listeners import actions, commands, events

    commands.register(app)
    events.register(app)
    actions.register(app)
