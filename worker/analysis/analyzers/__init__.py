"""Analyzers: each reads the evidence of an investigation and states what it shows.

One module per analyzer; each registers itself with `@register`. An analyzer returns
`Finding`s with a score (how strongly the evidence points at this cause), the culprit named
(process and pid, port, path, host) and, while the case is still open, the `next` requests that
would confirm it (a listener check on the refused port, the open probe filtered to the pid that
fails, a profile of the CPU hog). The planner asks for those once, then resolves with the best
finding. Adding an analyzer = adding a module and naming it in `_MODULES` below.

Generic analyzers come first (`syscall_failures`: any errno on any object; `process_exits`:
crashes by signal, exit-code loops, spawn churn); each has the same shape: facts -> `score()`
(named thresholds) -> `render()`, and names its `subject` (process, objects, symptom themes) so
the planner can weigh the finding by its relevance to the symptom (`relevance`).

Scores (documented per analyzer in its module): >= 0.8 gives confidence High, >= 0.5 Medium,
anything lower Low. A confirmation that ran and agreed adds to the score; one that disagreed
lowers it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from pydantic import BaseModel, Field

from worker.analysis.relevance import Subject
from worker.backends.base import Evidence
from worker.protocol import CommandRequest, EbpfProgramRequest

logger = logging.getLogger(__name__)
HIGH = 0.8
MEDIUM = 0.5


class NextStep(BaseModel):
    """Requests that would confirm a finding, and why, in one sentence."""

    why: str
    commands: list[CommandRequest] = Field(default_factory=list)
    programs: list[EbpfProgramRequest] = Field(default_factory=list)

    def ids(self) -> set[str]:
        return {c.id for c in self.commands} | {p.name for p in self.programs}


class Finding(BaseModel):
    analyzer: str
    category: str = Field(default="", description="The symptom category it explains.")
    score: float = Field(ge=0, le=1, description=">= 0.8 High, >= 0.5 Medium, else Low.")
    root_cause: str
    resolution_plan: str
    ebpf_evidence: str = ""
    culprit: str = Field(default="", description="pid/comm, port, path or lock, when known.")
    next: NextStep | None = None
    subject: Subject | None = Field(
        default=None, description="What it is about, for the relevance to the symptom."
    )
    relevance: float = Field(
        default=1.0, ge=0, le=1, description="The factor the planner weighed the score by."
    )


AnalyzerFn = Callable[[Evidence], list[Finding]]
REGISTRY: dict[str, AnalyzerFn] = {}
_MODULES = (
    "syscall_failures",
    "process_exits",
    "sync_writers",
    "memory_growth",
    "file_locks",
    "busy_process",
    "connect_failures",
    "cpu_starvation",
    "lock_contention",
    "exec_storm",
    "dns_timeouts",
    "dns_answers",
    "oom_kill",
    "disk_latency",
    "memory_pressure",
    "retransmits",
    "probe_activity",
)


def register(name: str) -> Callable[[AnalyzerFn], AnalyzerFn]:
    def add(fn: AnalyzerFn) -> AnalyzerFn:
        REGISTRY[name] = fn
        return fn

    return add


def load_analyzers() -> dict[str, AnalyzerFn]:
    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return REGISTRY


def analyze(evidence: Evidence) -> list[Finding]:
    """Every analyzer's findings, strongest first."""
    findings: list[Finding] = []
    for name, fn in load_analyzers().items():
        try:
            findings.extend(fn(evidence))
        except Exception:  # one broken analyzer must not lose the investigation
            logger.exception("analyzer %s failed", name)
    return sorted(findings, key=lambda f: -f.score)
