"""The offline runbook planner: step 1 triages by category, step 2 concludes from the evidence."""

from __future__ import annotations

from worker.models.base import Evidence, ModelAnswer, ModelRequest, TokenUsage
from worker.models.offline.analyzers import Finding, analyze
from worker.models.offline.categories import categorise
from worker.models.offline.runbooks import triage_plan
from worker.protocol import Confidence, Diagnostic, Resolution


def available_probes() -> set[str]:
    from probes.catalog import load_catalog

    return set(load_catalog().names())


def _confidence(score: float) -> Confidence:
    if score >= 0.8:
        return "High"
    if score >= 0.5:
        return "Medium"
    return "Low"


def triage(evidence: Evidence, probes: set[str]) -> Diagnostic | None:
    categories = categorise(evidence.symptom)
    commands, programs = triage_plan(categories, probes)
    if not commands and not programs:
        return None
    return Diagnostic(
        reasoning=(
            f"The symptom reads as {' and '.join(categories[:2])}. Triage: a baseline of "
            "load and busy processes, the category's commands, and the catalog probes that "
            "answer its usual questions."
        ),
        commands=commands,
        ebpf_programs=programs,
    )


def conclude(evidence: Evidence) -> Resolution:
    findings: list[Finding] = analyze(evidence)
    if not findings:
        return Resolution(
            root_cause=(
                "Not determined: the triage commands and probes showed nothing abnormal "
                f"for '{evidence.symptom[:200]}'."
            ),
            resolution_plan=(
                "1. Reproduce the symptom while re-running the investigation.\n"
                "2. Name the process (pid or comm) to narrow the probes."
            ),
            confidence="Low",
            ebpf_evidence="No probe reported activity related to the symptom.",
        )
    best = findings[0]
    others = [f.ebpf_evidence for f in findings[1:] if f.ebpf_evidence and f.score >= 0.4]
    return Resolution(
        root_cause=best.root_cause,
        resolution_plan=best.resolution_plan,
        confidence=_confidence(best.score),
        ebpf_evidence="\n".join([best.ebpf_evidence, *others])[:4000],
    )


class OfflineBackend:
    """A planner with the model interface: no network, no tokens, deterministic."""

    name = "offline"
    model = "runbook-planner"

    def __init__(self, probes: set[str] | None = None) -> None:
        self._probes = probes

    def ask(self, request: ModelRequest) -> ModelAnswer:
        reply: Diagnostic | Resolution | None = None
        if not request.history and not request.final:
            probes = self._probes if self._probes is not None else available_probes()
            reply = triage(request.evidence, probes)
        if reply is None:
            reply = conclude(request.evidence)
        return ModelAnswer(
            reply=reply,
            raw=reply.model_dump_json(),
            usage=TokenUsage(calls=1),
            model=self.model,
        )
