"""Fold the loop's ProgressEvents into what the thread shows. Pure: no Slack, no Redis.

`ThreadRender` is the whole rendering state of one investigation's thread (persisted by the
consumer so a restart resumes where it stopped); `apply` changes it for one event and returns
the `Effect`s the consumer must carry out against Slack, in order. Replaying an event already
applied (a restart between a post and the cursor save) posts nothing twice: a step that has its
message is updated, an approval already pending and a resolution already posted are skipped.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from bot.views.models import ApprovalView, CommandRow, ProbeRow, ResolutionView, StepView
from worker.loop.events import (
    CommandFinished,
    CommandVerdict,
    Findings,
    Notice,
    ProbeFinished,
    ProbeRefused,
    ProbeStarted,
    ProgressEvent,
    ResolutionReached,
    StepStarted,
)

MAX_FINDINGS = 40
MAX_NOTICES = 10


class StepMessage(BaseModel):
    view: StepView
    ts: str | None = None
    dirty: bool = False
    last_update: float = 0.0
    closed: bool = False


class Effect(BaseModel):
    """One thing to do in Slack for the thread."""

    kind: Literal[
        "post_step",
        "update_step",
        "close_step",
        "post_approval",
        "expire_approval",
        "post_notice",
        "post_resolution",
    ]
    step: int = 0
    approval: ApprovalView | None = None
    resolution: ResolutionView | None = None
    text: str = ""
    command_id: str = ""


class ThreadRender(BaseModel):
    investigation_id: str
    cursor: str = "0-0"
    steps: dict[int, StepMessage] = Field(default_factory=dict)
    pending_approvals: list[str] = Field(default_factory=list)
    resolved_steps: list[int] = Field(
        default_factory=list, description="Steps whose resolution card is posted (replay guard)."
    )

    def current(self, step: int) -> StepMessage | None:
        return self.steps.get(step)


def next_update_at(
    message: StepMessage, interval_s: float, countdown_s: float, now: float
) -> float | None:
    """When a step's message should next be updated (wall time), or None.

    A changed message: one interval after its last update (updates are throttled). A message
    whose probes are still tracing: every `countdown_s`, so the countdown moves even when no
    event arrives. A closed or unposted message: never.
    """
    if not message.ts or message.closed:
        return None
    if message.dirty:
        return message.last_update + interval_s
    tracing = any(
        p.ends_at is not None and p.ends_at > now and not p.finished for p in message.view.probes
    )
    if tracing:
        return message.last_update + max(interval_s, countdown_s)
    return None


def _claim_command(view: StepView, host: str, command_id: str, command: str) -> CommandRow:
    """The row of `command_id` on `host`: the planned one, or a new row for another host."""
    for row in view.commands:
        if row.id == command_id and row.host == host:
            return row
    for row in view.commands:
        if row.id == command_id and row.host == "":
            row.host = host
            return row
    row = CommandRow(id=command_id, command=command, host=host)
    view.commands.append(row)
    return row


def _claim_probe(view: StepView, host: str, name: str) -> ProbeRow:
    for row in view.probes:
        if row.name == name and row.host == host:
            return row
    for row in view.probes:
        if row.name == name and row.host == "":
            row.host = host
            return row
    template = next((row for row in view.probes if row.name == name), None)
    row = ProbeRow(name=name, host=host, requested=template.requested if template else "")
    view.probes.append(row)
    return row


def _close_open_steps(render: ThreadRender, before: int) -> list[Effect]:
    effects = []
    for number, message in sorted(render.steps.items()):
        if number < before and not message.closed:
            message.closed = True
            effects.append(Effect(kind="close_step", step=number))
    return effects


def _expire_pending(render: ThreadRender) -> list[Effect]:
    effects = [Effect(kind="expire_approval", command_id=c) for c in render.pending_approvals]
    render.pending_approvals = []
    return effects


def apply(
    render: ThreadRender,
    event: ProgressEvent,
    *,
    hosts: list[str],
    started_at: float,
    approval_timeout_s: float | None = None,
) -> list[Effect]:
    """Change `render` for `event`; return what to do in Slack."""
    step = event.step
    if isinstance(event, StepStarted):
        existing = render.steps.get(step)
        if existing is not None and existing.ts is not None:  # a replay: already posted
            existing.dirty = True
            return [Effect(kind="update_step", step=step)]
        effects = _close_open_steps(render, step) + _expire_pending(render)
        view = StepView(
            investigation_id=render.investigation_id,
            step=step,
            reasoning=event.reasoning,
            final=event.final,
            commands=[CommandRow(id=c.id, command=c.command) for c in event.commands],
            probes=[
                ProbeRow(
                    name=p.name,
                    requested=f"{p.type}:{p.target}",
                    duration_s=p.duration,
                )
                for p in event.ebpf_programs
            ],
            repeats=[f"{r.id} (step {r.first_step})" for r in event.repeats],
        )
        render.steps[step] = StepMessage(view=view)
        effects.append(Effect(kind="post_step", step=step))
        return effects
    if isinstance(event, ResolutionReached):
        effects = _close_open_steps(render, step + 1) + _expire_pending(render)
        if step in render.resolved_steps:
            return effects
        resolution = event.resolution
        effects.append(
            Effect(
                kind="post_resolution",
                step=step,
                resolution=ResolutionView(
                    investigation_id=render.investigation_id,
                    root_cause=resolution.root_cause,
                    resolution_plan=resolution.resolution_plan,
                    confidence=resolution.confidence,
                    ebpf_evidence=resolution.ebpf_evidence,
                    hosts=hosts,
                    iterations=step,
                    duration_s=max(0.0, time.time() - started_at),
                    synthesised=event.source == "synthesised",
                    stop_reason=event.stop_reason,
                ),
            )
        )
        return effects
    message = render.current(step)
    if message is None:
        if isinstance(event, Notice):
            return [Effect(kind="post_notice", step=step, text=event.message)]
        return []
    view = message.view
    effects = []
    if isinstance(event, CommandVerdict):
        row = _claim_command(view, event.host, event.id, event.command)
        row.verdict = event.verdict
        row.reason = event.reason
        if event.verdict == "needs_approval" and event.id not in render.pending_approvals:
            render.pending_approvals.append(event.id)
            effects.append(
                Effect(
                    kind="post_approval",
                    step=step,
                    approval=ApprovalView(
                        investigation_id=render.investigation_id,
                        step=step,
                        host=event.host,
                        command_id=event.id,
                        command=event.command,
                        reason=event.reason,
                        timeout_s=approval_timeout_s,
                    ),
                )
            )
    elif isinstance(event, CommandFinished):
        row = _claim_command(view, event.host, event.id, "")
        row.ran = event.ran
        row.exit_code = event.exit_code
        row.duration_s = event.duration_s
        row.note = event.note
        if event.id in render.pending_approvals:
            render.pending_approvals.remove(event.id)
            effects.append(Effect(kind="expire_approval", step=step, command_id=event.id))
    elif isinstance(event, ProbeStarted):
        probe = _claim_probe(view, event.host, event.name)
        probe.probe = event.probe
        probe.requested = event.requested or probe.requested
        probe.attach_points = list(event.attach_points)
        probe.duration_s = event.duration_s
        probe.ends_at = event.ends_at or time.time() + event.duration_s
    elif isinstance(event, ProbeRefused):
        probe = _claim_probe(view, event.host, event.name)
        probe.requested = event.requested or probe.requested
        probe.refused = True
        probe.error = event.reason
    elif isinstance(event, ProbeFinished):
        probe = _claim_probe(view, event.host, event.name)
        probe.finished = True
        probe.ends_at = None
        probe.event_count = event.event_count
        probe.summary = event.summary
        probe.error = event.error
    elif isinstance(event, Findings):
        prefix = f"{event.host}: " if len(hosts) > 1 and event.host else ""
        view.findings = (view.findings + [prefix + line for line in event.lines])[-MAX_FINDINGS:]
    elif isinstance(event, Notice):
        view.notices = [*view.notices, event.message][-MAX_NOTICES:]
    message.dirty = True
    effects.append(Effect(kind="update_step", step=step))
    return effects
