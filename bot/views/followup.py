"""An answer to a question asked in an investigation's thread."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.views.blocks import SlackMessage, context, finish, sections_from_lines
from bot.views.models import FollowUpView
from bot.views.mrkdwn import escape


def followup_message(view: FollowUpView) -> SlackMessage:
    who = f"<@{escape(view.asked_by)}> " if view.asked_by else ""
    blocks: list[Block] = list(sections_from_lines(escape(view.answer).splitlines() or [" "]))
    note = (
        "gathering more evidence in a new step" if view.new_step else "answered from what is known"
    )
    blocks.append(context(f"{who}asked: {escape(view.question[:200])} · {note}"))
    return finish(view.answer, blocks)
