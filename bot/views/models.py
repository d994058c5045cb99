"""What the views render: small pydantic models, independent of how the state was gathered."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Verdict = Literal["allow", "needs_approval", "deny"]
Confidence = Literal["High", "Medium", "Low"]
InvestigationStatus = Literal["running", "resolved", "cancelled", "failed"]
ApprovalState = Literal["pending", "approved", "denied", "expired"]


class InvestigationHeader(BaseModel):
    """The root message of an investigation in the channel."""

    investigation_id: str
    symptom: str
    hosts: list[str] = Field(default_factory=list)
    requested_by: str = ""
    status: InvestigationStatus = "running"
    step: int = 0
    root_cause: str = ""


class CommandRow(BaseModel):
    id: str
    command: str
    host: str = ""
    verdict: Verdict | None = None
    reason: str = ""
    ran: bool | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    note: str = ""


class ProbeRow(BaseModel):
    name: str
    requested: str = ""
    probe: str = ""
    host: str = ""
    attach_points: list[str] = Field(default_factory=list)
    duration_s: float | None = None
    ends_at: float | None = Field(default=None, description="Unix time the trace ends.")
    finished: bool = False
    refused: bool = False
    event_count: int | None = None
    summary: str = ""
    error: str | None = None


class StepView(BaseModel):
    """One step of the loop: what runs, why, and what came back so far."""

    investigation_id: str
    step: int
    reasoning: str = ""
    final: bool = False
    commands: list[CommandRow] = Field(default_factory=list)
    probes: list[ProbeRow] = Field(default_factory=list)
    repeats: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)
    outputs: str = Field(default="", description="Short outputs, shown inline when the step ends.")
    outputs_file: str | None = Field(default=None, description="Title of the uploaded outputs.")


class ResolutionView(BaseModel):
    investigation_id: str
    symptom: str = ""
    root_cause: str
    resolution_plan: str
    confidence: Confidence
    ebpf_evidence: str = ""
    hosts: list[str] = Field(default_factory=list)
    iterations: int = 0
    duration_s: float = 0.0
    synthesised: bool = False
    stop_reason: str = ""
    question: str = Field(default="", description="The follow-up this answers, if any.")
    asked_by: str = ""


class ApprovalView(BaseModel):
    investigation_id: str
    step: int = 0
    host: str = ""
    command_id: str
    command: str
    reason: str = ""
    state: ApprovalState = "pending"
    decided_by: str | None = None
    timeout_s: float | None = None


class HandoffEntry(BaseModel):
    investigation_id: str
    status: str
    impact: str
    tried: list[str] = Field(default_factory=list)
    hypothesis: str = ""
    evidence: str = ""
    confidence: Confidence | None = None
    next_steps: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    thread_ts: str | None = None


class HandoffView(BaseModel):
    channel_id: str
    entries: list[HandoffEntry] = Field(default_factory=list)
    source: Literal["model", "template"] = "template"
    model_text: str = Field(default="", description="The model's Markdown, when it wrote one.")
    requested_by: str = ""
