"""The on-call handoff of a channel: gathered from the stored investigations, posted to Slack.

When a model that writes text is configured (Anthropic or an OpenAI-compatible endpoint, the
same settings as the workers), the summary is the model's (`worker.loop.handoff`, prompt
`prompts/handoff.md.j2`); otherwise, or when the model fails, it is built from the recorded
state by this module's template. It runs after the ack, in the bot process: the model call
takes seconds and the result goes straight to Slack.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.views.handoff import handoff_message
from bot.views.models import HandoffEntry, HandoffView
from bot.views.resolution import plan_steps
from worker.backends.factory import build_backend
from worker.loop.handoff import open_questions, write_handoff
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from bot.services import BotServices
    from worker.loop.investigation import Investigation

log = logging.getLogger(__name__)
MAX_TRIED = 12


def _status(inv: Investigation) -> str:
    if inv.status == "resolved" and inv.resolution is not None:
        return f"resolved ({inv.resolution.confidence} confidence)"
    if inv.status == "cancelled":
        return f"cancelled{': ' + inv.stop_reason if inv.stop_reason else ''}"
    if inv.status == "awaiting_results":
        return f"running: step {inv.step} waiting for results from {', '.join(inv.hosts)}"
    return f"running: deciding step {inv.step + 1}"


def _tried(inv: Investigation) -> list[str]:
    outcomes: dict[tuple[int, str], str] = {}
    for result in inv.results:
        for command in result.command_results.values():
            if command.ran:
                outcome = f"exit {command.exit_code}"
            else:
                outcome = (
                    f"not run ({command.verdict}{': ' + command.note if command.note else ''})"
                )
            outcomes[(result.step, command.id)] = f"{outcome} on {result.host}"
        for probe in result.ebpf_results.values():
            label = probe.program_name
            if probe.error:
                outcomes[(result.step, label)] = f"failed on {result.host}: {probe.error}"
            else:
                summary = f": {probe.summary}" if probe.summary else ""
                outcomes[(result.step, label)] = (
                    f"{probe.event_count} events on {result.host}{summary}"
                )
    lines: list[str] = []
    for plan in inv.plans:
        for cmd in plan.commands:
            lines.append(f"`{cmd.command}`: {outcomes.get((plan.step, cmd.id), 'pending')}")
        for program in plan.ebpf_programs:
            key = (plan.step, program.name)
            target = f"{program.type}:{program.target}"
            lines.append(f"probe {program.name} ({target}): {outcomes.get(key, 'pending')}")
    return lines[-MAX_TRIED:]


def entry_from_investigation(inv: Investigation, thread_ts: str | None = None) -> HandoffEntry:
    resolution = inv.resolution
    if resolution is not None:
        hypothesis, evidence = resolution.root_cause, resolution.ebpf_evidence
        next_steps = plan_steps(resolution.resolution_plan)
        confidence = resolution.confidence
    else:
        hypothesis = inv.plans[-1].reasoning if inv.plans else ""
        evidence = "; ".join(
            f"{p.program_name}: {p.summary}"
            for r in inv.results
            for p in r.ebpf_results.values()
            if p.summary
        )
        next_steps = ["wait for the running step, or ask in the thread"]
        confidence = None
    return HandoffEntry(
        investigation_id=inv.id,
        status=_status(inv),
        impact=f"{inv.symptom} (hosts: {', '.join(inv.hosts)})",
        tried=_tried(inv),
        hypothesis=hypothesis,
        evidence=evidence,
        confidence=confidence,
        next_steps=next_steps,
        open_questions=open_questions(inv),
        thread_ts=thread_ts,
    )


def model_handoff(investigations: list[Investigation], channel: str) -> str | None:
    """The model's handoff (worker.loop.handoff), or None when no text-writing model is set."""
    try:
        backend = build_backend(WorkerSettings())
    except (ValueError, RuntimeError) as exc:
        log.info("no model for the handoff (%s); using the template", exc)
        return None
    return write_handoff(investigations, backend, channel=channel)


def build_handoff(services: BotServices, channel_id: str, requested_by: str) -> HandoffView:
    entries: list[HandoffEntry] = []
    investigations: list[Investigation] = []
    for investigation_id in services.threads.in_channel(channel_id):
        inv = services.gateway.load(investigation_id)
        if inv is None:
            continue
        investigations.append(inv)
        thread = services.threads.get(investigation_id)
        entries.append(entry_from_investigation(inv, thread.thread_ts if thread else None))
    text = None
    if investigations:
        name = services.channel_name(channel_id) or channel_id
        text = model_handoff(investigations, f"#{name}")
    return HandoffView(
        channel_id=channel_id,
        entries=entries,
        requested_by=requested_by,
        source="model" if text else "template",
        model_text=text or "",
    )


def post_handoff(
    services: BotServices, *, channel_id: str, requested_by: str, thread_ts: str | None = None
) -> None:
    """Post the channel's handoff summary (in `thread_ts` when given)."""
    from slack_sdk.errors import SlackApiError

    view = build_handoff(services, channel_id, requested_by)
    message = handoff_message(view)
    try:
        services.client.chat_postMessage(
            channel=channel_id,
            thread_ts=thread_ts,
            unfurl_links=False,
            **message.as_kwargs(),
        )
    except SlackApiError as exc:
        log.error("handoff for %s not posted: %s", channel_id, exc)
