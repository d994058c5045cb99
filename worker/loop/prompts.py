"""Prompts are Jinja2 files in `prompts/`; this module renders them from pydantic contexts.

StrictUndefined (a missing variable is an error, never an empty string), autoescape off (the
output is Markdown for a model, not HTML). Untrusted text (command output, probe results) is
passed through the `untrusted` filter, which stops it from closing the tags that frame it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from probes.capabilities import HostCapabilities
from worker.loop.bounds import compact_json
from worker.protocol import PlanResult, Resolution

_FRAME_TAGS = re.compile(r"<(/?)(untrusted|command|ebpf_result|stdout|stderr|results)\b", re.I)


def untrusted(text: str) -> str:
    """Text from a host, safe to put inside our framing tags: it cannot close or open one."""
    return _FRAME_TAGS.sub(lambda m: f"\u2039{m.group(1)}{m.group(2)}", text)


@lru_cache(maxsize=1)
def _environment() -> Any:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prompts", ""),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701  (Markdown for a model, never HTML)
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["untrusted"] = untrusted
    env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True)
    return env


def render(template: str, context: BaseModel) -> str:
    """Render `prompts/<template>` with the fields of `context` as variables."""
    fields = {name: getattr(context, name) for name in type(context).model_fields}
    text: str = _environment().get_template(template).render(**fields)
    return text.strip() + "\n"


# --- context models ---------------------------------------------------------------------------


class CatalogProbeView(BaseModel):
    name: str
    description: str
    answers: list[str] = Field(default_factory=list)
    attach: list[str] = Field(default_factory=list, description="Attach points, best first.")
    params: list[str] = Field(default_factory=list, description="'name (type): meaning' lines.")
    default_duration_s: float
    max_duration_s: float
    overhead: str


class HostView(BaseModel):
    name: str
    kernel: str
    arch: str = ""
    program_types: list[str] = Field(default_factory=list, description="Working program types.")
    missing_program_types: list[str] = Field(default_factory=list)
    tracepoint_count: int = 0
    tracepoint_categories: list[str] = Field(default_factory=list)

    @classmethod
    def from_capabilities(cls, caps: HostCapabilities, name: str | None = None) -> HostView:
        return cls(
            name=name or caps.hostname,
            kernel=caps.kernel,
            arch=caps.arch,
            program_types=sorted(k for k, ok in caps.program_types.items() if ok),
            missing_program_types=sorted(k for k, ok in caps.program_types.items() if not ok),
            tracepoint_count=caps.tracepoint_count,
            tracepoint_categories=caps.tracepoint_categories,
        )


class FlowView(BaseModel):
    """A flow as the model sees it: name, what it is for, what it runs."""

    name: str
    description: str
    runs: list[str] = Field(default_factory=list, description="Probe names; command ids.")


class SystemContext(BaseModel):
    hosts: list[HostView]
    catalog: list[CatalogProbeView]
    flows: list[FlowView] = Field(default_factory=list)
    reply_schema: str = Field(description="The reply JSON Schema, as JSON text.")
    max_steps: int


class CommandView(BaseModel):
    id: str
    command: str
    verdict: str
    ran: bool
    exit_code: int | None = None
    duration_s: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    note: str = ""
    stdout: str = ""
    stderr: str = ""


class ProbeView(BaseModel):
    key: str
    program_name: str
    probe: str = ""
    resolved_from: str = ""
    error: str | None = None
    compact: str = Field(description="The bounded result as compact JSON.")


class HostResultView(BaseModel):
    host: str
    step: int
    commands: list[CommandView] = Field(default_factory=list)
    probes: list[ProbeView] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def from_result(cls, result: PlanResult) -> HostResultView:
        return cls(
            host=result.host,
            step=result.step,
            commands=[
                CommandView(
                    id=c.id,
                    command=c.command,
                    verdict=c.verdict,
                    ran=c.ran,
                    exit_code=c.exit_code,
                    duration_s=round(c.duration_s, 3),
                    timed_out=c.timed_out,
                    truncated=c.truncated,
                    note=c.note or ("" if c.ran else c.reason),
                    stdout=c.stdout,
                    stderr=c.stderr,
                )
                for c in result.command_results.values()
            ],
            probes=[
                ProbeView(
                    key=key,
                    program_name=p.program_name,
                    probe=p.probe,
                    resolved_from=p.resolved_from,
                    error=p.error,
                    compact=compact_json(p),
                )
                for key, p in result.ebpf_results.items()
            ],
            notes=result.notes,
        )


class RepeatView(BaseModel):
    kind: str
    id: str
    request: str
    first_step: int


class StepContext(BaseModel):
    symptom: str
    hosts: list[str]
    step: int
    max_steps: int
    final: bool = False
    final_reason: str = ""
    results: list[HostResultView] = Field(default_factory=list)
    repeats: list[RepeatView] = Field(default_factory=list)
    previous_error: str | None = None
    tokens_left: int
    seconds_left: int


class StepSummaryView(BaseModel):
    step: int
    reasoning: str = ""
    requested: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)


class FollowupContext(BaseModel):
    symptom: str
    hosts: list[str]
    resolution: Resolution | None = None
    steps: list[StepSummaryView] = Field(default_factory=list)
    question: str
    asked_by: str = ""


class HandoffItemView(BaseModel):
    id: str
    symptom: str
    hosts: list[str]
    status: str
    started: str
    steps: int
    resolution: Resolution | None = None
    open_questions: list[str] = Field(default_factory=list)


class HandoffContext(BaseModel):
    channel: str = ""
    generated_at: str
    investigations: list[HandoffItemView]


def render_system(context: SystemContext) -> str:
    return render("system.md.j2", context)


def render_step(context: StepContext) -> str:
    return render("step.md.j2", context)


def render_followup(context: FollowupContext) -> str:
    return render("followup.md.j2", context)


def render_handoff(context: HandoffContext) -> str:
    return render("handoff.md.j2", context)
