"""Block actions: Approve / Deny on approval requests; Handoff and Dig deeper on resolutions."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners.actions.approval import acknowledge_decision, decide
from bot.listeners.actions.dig_deeper import acknowledge_dig_deeper, dig_deeper
from bot.listeners.actions.handoff_button import acknowledge_handoff, handoff_from_button
from bot.views.approval import APPROVE_ACTION, DENY_ACTION
from bot.views.resolution import DIG_DEEPER_ACTION, HANDOFF_ACTION


def register(app: App) -> None:
    app.action(APPROVE_ACTION)(ack=acknowledge_decision, lazy=[decide])
    app.action(DENY_ACTION)(ack=acknowledge_decision, lazy=[decide])
    app.action(HANDOFF_ACTION)(ack=acknowledge_handoff, lazy=[handoff_from_button])
    app.action(DIG_DEEPER_ACTION)(ack=acknowledge_dig_deeper, lazy=[dig_deeper])
