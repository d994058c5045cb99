"""The on-call handoff: each investigation's status, impact, what was tried, hypothesis, next."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import Block

from bot.views.blocks import (
    SlackMessage,
    context,
    divider,
    finish,
    header,
    section,
    sections_from_lines,
)
from bot.views.models import HandoffEntry, HandoffView
from bot.views.mrkdwn import escape, fit

MAX_ENTRIES = 8
MAX_ITEMS = 8


def _bullets(items: list[str], empty: str) -> str:
    if not items:
        return f"_{empty}_"
    shown = [f"• {escape(fit(item, 300))}" for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        shown.append(f"_…and {len(items) - MAX_ITEMS} more_")
    return "\n".join(shown)


def _entry_blocks(entry: HandoffEntry) -> list[Block]:
    confidence = f" ({entry.confidence} confidence)" if entry.confidence else ""
    hypothesis = escape(entry.hypothesis) if entry.hypothesis else "_none yet_"
    evidence = f"\n*Evidence:* {escape(entry.evidence)}" if entry.evidence else ""
    return [
        section(
            f"*`{escape(entry.investigation_id)}` — {escape(entry.status)}*\n"
            f"*Impact:* {escape(fit(entry.impact, 800))}"
        ),
        section(f"*What was tried*\n{_bullets(entry.tried, 'nothing yet')}"),
        section(f"*Current hypothesis*{confidence}\n{hypothesis}{evidence}"),
        section(
            f"*Next steps*\n{_bullets(entry.next_steps, 'none proposed')}\n"
            f"*Open questions*\n{_bullets(entry.open_questions, 'none')}"
        ),
    ]


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")


def markdown_to_mrkdwn(markdown: str) -> str:
    """The model's Markdown as Slack mrkdwn: escaped first, then bold, headings and bullets."""
    lines = []
    for line in escape(markdown).splitlines():
        heading = _HEADING.match(line)
        if heading:
            line = f"*{heading.group(1).strip('*')}*"
        else:
            line = _BULLET.sub(lambda m: f"{m.group(1)}• ", line)
        lines.append(_BOLD.sub(r"*\1*", line))
    return "\n".join(lines)


def _model_handoff(view: HandoffView) -> SlackMessage:
    blocks: list[Block] = [header(f"Handoff: {len(view.entries)} investigation(s)")]
    blocks += sections_from_lines(markdown_to_mrkdwn(view.model_text).splitlines())
    by = f"asked by <@{escape(view.requested_by)}> · " if view.requested_by else ""
    ids = ", ".join(f"`{escape(e.investigation_id)}`" for e in view.entries)
    blocks.append(context(f"{by}written by the model from {ids}"))
    return finish(f"Handoff: {view.model_text}", blocks)


def handoff_message(view: HandoffView) -> SlackMessage:
    if view.model_text and view.entries:
        return _model_handoff(view)
    if not view.entries:
        return finish(
            "No investigations in this channel to hand off.",
            [section(":clipboard: No investigations in this channel to hand off.")],
        )
    blocks: list[Block] = [header(f"Handoff: {len(view.entries)} investigation(s)")]
    for entry in view.entries[:MAX_ENTRIES]:
        blocks += [*_entry_blocks(entry), divider()]
    if len(view.entries) > MAX_ENTRIES:
        blocks.append(
            context(f"_{len(view.entries) - MAX_ENTRIES} older investigations not shown._")
        )
    by = f"asked by <@{escape(view.requested_by)}> · " if view.requested_by else ""
    source = "from the recorded state (no model configured for handoffs)"
    blocks.append(context(f"{by}{source}"))
    summary = "; ".join(
        f"{e.investigation_id} {e.status}: {e.hypothesis or e.impact}" for e in view.entries
    )
    return finish(f"Handoff: {summary}", blocks)
