"""The resolution card: root cause, confidence, numbered plan, eBPF evidence, and what it took."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.views.blocks import SlackMessage, context, divider, finish, header, section
from bot.views.models import ResolutionView
from bot.views.mrkdwn import escape, fit

HANDOFF_ACTION = "handoff_summary"
DIG_DEEPER_ACTION = "dig_deeper"
_CONFIDENCE_ICON = {
    "High": ":large_green_circle:",
    "Medium": ":large_yellow_circle:",
    "Low": ":red_circle:",
}
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
MAX_PLAN_STEPS = 20


def plan_steps(plan: str) -> list[str]:
    """The plan as a list of steps: one per line, existing numbering or bullets removed."""
    steps = [_NUMBERED.sub("", line).strip() for line in plan.splitlines()]
    return [step for step in steps if step]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f} min"


def resolution_message(view: ResolutionView) -> SlackMessage:
    steps = plan_steps(view.resolution_plan)
    shown = steps[:MAX_PLAN_STEPS]
    numbered = "\n".join(f"{i}. {escape(fit(s, 400))}" for i, s in enumerate(shown, 1))
    if len(steps) > len(shown):
        numbered += f"\n_…and {len(steps) - len(shown)} more steps_"
    icon = _CONFIDENCE_ICON[view.confidence]
    blocks: list[Block] = [header("Answer" if view.question else "Resolution")]
    if view.question:
        who = f"<@{escape(view.asked_by)}> asked: " if view.asked_by else "Question: "
        blocks.append(context(f"{who}{escape(fit(view.question, 500))}"))
    blocks += [
        section(f"*Root cause*\n{escape(view.root_cause)}"),
        section(f"*Confidence:* {icon} {view.confidence}"),
        section(f"*Resolution plan*\n{numbered}"),
    ]
    if view.ebpf_evidence:
        blocks.append(section(f"*eBPF evidence*\n{escape(view.ebpf_evidence)}"))
    meta = [
        f"hosts: {escape(', '.join(view.hosts) or 'default')}",
        f"{view.iterations} iteration{'s' if view.iterations != 1 else ''}",
        f"took {_duration(view.duration_s)}",
        f"id `{escape(view.investigation_id)}`",
    ]
    if view.synthesised:
        meta.append("answer assembled from the evidence (budget reached)")
    if view.stop_reason:
        meta.append(escape(fit(view.stop_reason, 200)))
    blocks += [
        divider(),
        context(" · ".join(meta)),
        ActionsBlock(
            block_id=f"resolution:{view.investigation_id}",
            elements=[
                ButtonElement(
                    text="Handoff summary",
                    action_id=HANDOFF_ACTION,
                    value=view.investigation_id,
                ),
                ButtonElement(
                    text="Dig deeper",
                    action_id=DIG_DEEPER_ACTION,
                    value=view.investigation_id,
                    style="primary",
                ),
            ],
        ),
    ]
    fallback = f"Root cause ({view.confidence} confidence): {view.root_cause}"
    return finish(fallback, blocks)
