"""Analyzers: each reads the evidence of an investigation and states what it shows.

One module per analyzer; each registers itself with `@register`. An analyzer returns
`Finding`s with a score (how strongly the evidence points at this cause) and the culprit named;
the planner resolves with the best one. Adding an analyzer = adding a module and importing it in
`_MODULES` below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, Field

from worker.models.base import Evidence


class Finding(BaseModel):
    analyzer: str
    score: float = Field(ge=0, le=1, description=">= 0.8 High, >= 0.5 Medium, else Low.")
    root_cause: str
    resolution_plan: str
    ebpf_evidence: str = ""
    culprit: str = Field(default="", description="pid/comm, port, path or lock, when known.")


class Analyzer(Protocol):
    name: str

    def __call__(self, evidence: Evidence) -> list[Finding]: ...


AnalyzerFn = Callable[[Evidence], list[Finding]]
REGISTRY: dict[str, AnalyzerFn] = {}
_MODULES = ("busy_process", "connect_failures", "probe_activity")


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
    findings = [f for fn in load_analyzers().values() for f in fn(evidence)]
    return sorted(findings, key=lambda f: -f.score)
