"""Listeners, one per file, registered per group (commands, events, actions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.listeners import actions, commands, events

if TYPE_CHECKING:
    from slack_bolt import App


def register_listeners(app: App) -> None:
    commands.register(app)
    events.register(app)
    actions.register(app)
