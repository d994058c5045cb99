"""Slash commands: `/diagnose`."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners.commands.diagnose import acknowledge_diagnose

COMMAND = "/diagnose"


def register(app: App) -> None:
    app.command(COMMAND)(acknowledge_diagnose)
