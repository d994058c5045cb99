"""One step of the live thread: what runs and why, updated in place as results arrive."""

from __future__ import annotations

import time

from slack_sdk.models.blocks import Block

from bot.views.blocks import SlackMessage, context, finish, section, sections_from_lines
from bot.views.models import CommandRow, ProbeRow, StepView
from bot.views.mrkdwn import code_block, escape, fit, inline_code, quote

_VERDICT_TEXT = {"allow": "allowed", "needs_approval": "needs approval", "deny": "denied"}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def command_line(row: CommandRow) -> str:
    where = f" on *{escape(row.host)}*" if row.host else ""
    head = f"{inline_code(row.command, 300)}{where}"
    if row.ran is True:
        icon = ":white_check_mark:" if row.exit_code == 0 else ":warning:"
        detail = f"exit {row.exit_code}" if row.exit_code is not None else "ran"
        if row.duration_s is not None:
            detail += f" in {_seconds(row.duration_s)}"
    elif row.ran is False:
        icon = ":no_entry:" if row.verdict == "deny" else ":heavy_minus_sign:"
        detail = "not run" + (f": {escape(fit(row.note, 200))}" if row.note else "")
    elif row.verdict == "needs_approval":
        icon, detail = ":raised_hand:", "waiting for approval"
    elif row.verdict == "deny":
        icon, detail = ":no_entry:", "denied by policy"
    else:
        icon, detail = ":hourglass_flowing_sand:", "running" if row.verdict else "planned"
    verdict = f"{_VERDICT_TEXT[row.verdict]}" if row.verdict else ""
    reason = f" ({escape(fit(row.reason, 160))})" if row.reason and row.verdict != "allow" else ""
    parts = [p for p in (verdict + reason, detail) if p]
    return f"{icon} {head} — {'; '.join(parts)}"


def probe_line(row: ProbeRow, now: float) -> str:
    name = escape(row.probe or row.name)
    asked = (
        f" (asked `{escape(fit(row.requested, 80))}`)"
        if row.requested and row.requested != row.probe
        else ""
    )
    where = f" on *{escape(row.host)}*" if row.host else ""
    attach = (
        f" via {', '.join(inline_code(a, 80) for a in row.attach_points[:4])}"
        if row.attach_points
        else ""
    )
    duration = f", {_seconds(row.duration_s)}" if row.duration_s is not None else ""
    head = f":bee: probe *{name}*{asked}{where}{attach}{duration}"
    if row.refused:
        why = escape(fit(row.error or "", 300))
        return f":no_entry: probe *{name}*{asked}{where} — refused: {why}"
    if row.error:
        return f":x: {head.removeprefix(':bee: ')} — failed: {escape(fit(row.error, 300))}"
    if row.finished:
        count = f"{row.event_count} events" if row.event_count is not None else "done"
        summary = f": {escape(fit(row.summary, 400))}" if row.summary else ""
        return f"{head} — {count}{summary}"
    if row.ends_at is not None:
        left = max(0.0, row.ends_at - now)
        return f"{head} — tracing, {left:.0f}s left" if left else f"{head} — reading results"
    return f"{head} — starting"


def step_message(view: StepView, *, now: float | None = None) -> SlackMessage:
    now = time.time() if now is None else now
    title = f"*Step {view.step}*" + (" (final answer requested)" if view.final else "")
    blocks: list[Block] = [
        section(title + ("\n" + quote(view.reasoning, 2600) if view.reasoning else ""))
    ]
    lines = [command_line(c) for c in view.commands] + [probe_line(p, now) for p in view.probes]
    blocks += sections_from_lines(lines)
    if view.repeats:
        blocks.append(context("Already run, not repeated: " + escape(", ".join(view.repeats))))
    if view.findings:
        findings = ["*Key findings*"] + [f"• {escape(fit(line, 500))}" for line in view.findings]
        blocks += sections_from_lines(findings)
    if view.notices:
        blocks.append(context(*(escape(fit(n, 500)) for n in view.notices[-5:])))
    if view.outputs:
        blocks.append(section("*Outputs*\n" + code_block(view.outputs, 2900)))
    if view.outputs_file:
        blocks.append(context(f":page_facing_up: Full outputs: {escape(view.outputs_file)}"))
    running = sum(1 for c in view.commands if c.ran is None and c.verdict != "deny") + sum(
        1 for p in view.probes if not (p.finished or p.refused or p.error)
    )
    state = f"{running} still running" if running else "done"
    fallback = (
        f"Step {view.step}: {len(view.commands)} commands, {len(view.probes)} probes ({state})"
    )
    return finish(fallback, blocks, cut_note="full outputs are in the file")
