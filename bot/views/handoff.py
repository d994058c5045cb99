"""The on-call handoff: each investigation's status, impact, what was tried, hypothesis, next."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.views.blocks import SlackMessage, context, divider, finish, header, section
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


def handoff_message(view: HandoffView) -> SlackMessage:
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
    source = "written by the model" if view.source == "model" else "from the recorded state"
    blocks.append(context(f"{by}{source}"))
    summary = "; ".join(
        f"{e.investigation_id} {e.status}: {e.hypothesis or e.impact}" for e in view.entries
    )
    return finish(f"Handoff: {summary}", blocks)
