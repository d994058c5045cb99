"""Progress events: what the terminal, Celery and Slack render while an investigation runs.

One small discriminated union, emitted to a callback; every renderer shows the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from worker.loop.investigation import RepeatSkip, ResolutionSource
from worker.protocol import CommandRequest, EbpfProgramRequest, Resolution, Verdict


class _Event(BaseModel):
    investigation_id: str = ""
    step: int = 0


class StepStarted(_Event):
    kind: Literal["step_started"] = "step_started"
    reasoning: str = ""
    final: bool = False
    commands: list[CommandRequest] = Field(default_factory=list)
    ebpf_programs: list[EbpfProgramRequest] = Field(default_factory=list)
    repeats: list[RepeatSkip] = Field(default_factory=list)


class CommandVerdict(_Event):
    kind: Literal["command_verdict"] = "command_verdict"
    host: str = ""
    id: str
    command: str
    verdict: Verdict
    reason: str = ""


class CommandFinished(_Event):
    kind: Literal["command_finished"] = "command_finished"
    host: str = ""
    id: str
    ran: bool
    exit_code: int | None = None
    duration_s: float = 0.0
    note: str = ""


class ProbeStarted(_Event):
    kind: Literal["probe_started"] = "probe_started"
    host: str = ""
    name: str
    probe: str
    requested: str = Field(
        description="The request as the model wrote it, e.g. kprobe:tcp_connect."
    )
    attach_points: list[str] = Field(default_factory=list)
    duration_s: float
    ends_at: float | None = Field(
        default=None, description="Unix time it detaches; renderers count down to it."
    )


class ProbeRefused(_Event):
    kind: Literal["probe_refused"] = "probe_refused"
    host: str = ""
    name: str
    requested: str
    reason: str


class ProbeFinished(_Event):
    kind: Literal["probe_finished"] = "probe_finished"
    host: str = ""
    name: str
    event_count: int = 0
    summary: str = ""
    error: str | None = None


class Findings(_Event):
    kind: Literal["findings"] = "findings"
    host: str = ""
    lines: list[str] = Field(default_factory=list)


class Notice(_Event):
    kind: Literal["notice"] = "notice"
    message: str


class ResolutionReached(_Event):
    kind: Literal["resolution"] = "resolution"
    resolution: Resolution
    source: ResolutionSource
    stop_reason: str = ""


ProgressEvent = Annotated[
    StepStarted
    | CommandVerdict
    | CommandFinished
    | ProbeStarted
    | ProbeRefused
    | ProbeFinished
    | Findings
    | Notice
    | ResolutionReached,
    Field(discriminator="kind"),
]
EventSink = Callable[[ProgressEvent], None]


def ignore_events(event: ProgressEvent) -> None:
    """The default sink."""
