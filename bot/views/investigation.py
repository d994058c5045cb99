"""The investigation's root message in the channel (its thread holds everything else)."""

from __future__ import annotations

from bot.views.blocks import SlackMessage, context, finish, section
from bot.views.models import InvestigationHeader
from bot.views.mrkdwn import escape, fit

_STATUS = {
    "running": ":mag: Investigating",
    "resolved": ":white_check_mark: Resolved",
    "cancelled": ":no_entry_sign: Cancelled",
    "failed": ":x: Failed",
}


def root_message(view: InvestigationHeader) -> SlackMessage:
    hosts = ", ".join(view.hosts) or "default hosts"
    status = _STATUS[view.status]
    lines = [f"*{status}:* {fit(escape(view.symptom), 2000)}"]
    if view.root_cause:
        lines.append(f"*Root cause:* {fit(escape(view.root_cause), 800)}")
    meta = [f"hosts: {escape(hosts)}", f"id `{escape(view.investigation_id)}`"]
    if view.requested_by:
        meta.insert(0, f"asked by <@{escape(view.requested_by)}>")
    if view.step:
        meta.append(f"step {view.step}")
    blocks = [section("\n".join(lines)), context(" · ".join(meta) + " · details in the thread")]
    return finish(f"{status}: {view.symptom} ({hosts})", blocks)
