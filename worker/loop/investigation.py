"""The state of one investigation: everything the loop knows, serialisable as one JSON document.

It is the only thing passed between the loop's steps, so the steps can run in one process (the
CLI) or in separate Celery tasks with the state kept in Redis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from worker.backends.base import Reply, TokenUsage
from worker.protocol import CommandRequest, EbpfProgramRequest, PlanResult, Resolution
from worker.settings import WorkerSettings

Status = Literal["deciding", "awaiting_results", "resolved", "cancelled"]
ResolutionSource = Literal["model", "synthesised"]


def _now() -> datetime:
    return datetime.now(UTC)


class Budgets(BaseModel):
    max_iterations: int = Field(default=6, ge=1, le=20)
    max_wall_s: float = Field(default=600.0, gt=0)
    max_model_tokens: int = Field(default=200_000, gt=0)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Budgets:
        return cls(
            max_iterations=settings.max_iterations,
            max_wall_s=settings.max_wall_s,
            max_model_tokens=settings.max_model_tokens,
        )


class RepeatSkip(BaseModel):
    """A request identical to one already run: not run again, and the model is told."""

    kind: Literal["command", "ebpf_program"]
    id: str
    request: str
    first_step: int


class StepPlan(BaseModel):
    """What one step runs on every host: the model's request minus repeats."""

    investigation_id: str
    step: int
    reasoning: str = ""
    commands: list[CommandRequest] = Field(default_factory=list)
    ebpf_programs: list[EbpfProgramRequest] = Field(default_factory=list)
    repeats: list[RepeatSkip] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.commands and not self.ebpf_programs


class ModelTurnRecord(BaseModel):
    """One model step: the prompt, the reply (or why there is none) and what it cost."""

    step: int
    backend: str
    model: str = ""
    prompt: str
    final_demanded: bool = False
    final_reason: str = ""
    reply: Reply | None = None
    raw: str = ""
    call_id: str = ""
    repaired: bool = False
    repair_error: str | None = None
    error: str | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None


class FollowUp(BaseModel):
    """A question asked in the thread after (or during) the investigation."""

    question: str = Field(min_length=1, max_length=2000)
    asked_by: str = ""
    asked_at: datetime = Field(default_factory=_now)
    after_step: int = Field(description="The number of model steps taken when it was asked.")
    answered: bool = False


class Investigation(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    symptom: str = Field(min_length=1, max_length=4000)
    hosts: list[str] = Field(min_length=1)
    budgets: Budgets = Field(default_factory=Budgets)
    status: Status = "deciding"
    turns: list[ModelTurnRecord] = Field(default_factory=list)
    plans: list[StepPlan] = Field(default_factory=list)
    results: list[PlanResult] = Field(default_factory=list)
    resolution: Resolution | None = None
    resolution_source: ResolutionSource | None = None
    earlier_resolutions: list[Resolution] = Field(default_factory=list)
    followups: list[FollowUp] = Field(default_factory=list)
    flow: str | None = Field(
        default=None, description="Run this flow (named runbook) instead of asking a model."
    )
    one_step: bool = Field(
        default=False,
        description="One plan step asked for directly (MCP run_probe/run_command on another "
        "host): no model turn; the asker reads the step's results, the control side records "
        "them and ends the investigation.",
    )
    stop_reason: str = ""
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None

    @property
    def step(self) -> int:
        """The number of model steps taken so far."""
        return len(self.turns)

    @property
    def token_usage(self) -> TokenUsage:
        total = TokenUsage()
        for turn in self.turns:
            total = total + turn.usage
        return total

    @property
    def elapsed_s(self) -> float:
        """Wall time since creation (datetime based, so it survives a trip through Redis)."""
        return (_now() - self.created_at).total_seconds()

    @property
    def pending_plan(self) -> StepPlan | None:
        if self.status != "awaiting_results" or not self.plans:
            return None
        return self.plans[-1]

    @property
    def done(self) -> bool:
        return self.status in {"resolved", "cancelled"}

    @property
    def pending_followup(self) -> FollowUp | None:
        return next((f for f in self.followups if not f.answered), None)

    def results_of(self, step: int) -> list[PlanResult]:
        return [result for result in self.results if result.step == step]

    def touch(self) -> None:
        self.updated_at = _now()
