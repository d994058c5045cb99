"""Judging one run, and the totals over a suite.

- correct: every ground-truth group is named (one of its terms) in both `root_cause` and
  `ebpf_evidence` (the matching of tests/scenarios: whole tokens, so pid 12 is not pid 123).
- named: correct and said with High or Medium confidence.
- recall: the share of the culprit's identifying facts present in what the model was shown
  (every step's prompt, as the loop recorded it).
- blamed_noise: a noise process named in the root cause.
"""

from __future__ import annotations

import statistics

from pydantic import BaseModel

from bench.eval.timing import StepTiming
from tests.support.workloads.scenarios import Truth
from worker.loop.investigation import Investigation


class RunScore(BaseModel):
    scenario: str
    area: str
    mode: str
    seed: int
    symptom: str
    named: bool
    correct: bool
    confidence: str
    recall: float
    iterations: int
    wall_s: float
    facts_missing: list[list[str]] = []
    missing_in_root_cause: list[list[str]] = []
    missing_in_evidence: list[list[str]] = []
    blamed_noise: bool = False
    root_cause: str = ""
    ebpf_evidence: str = ""
    drawn: dict[str, str] = {}
    noise: dict[str, str] = {}
    note: str = ""
    error: str = ""
    steps: list[StepTiming] = []


def shown_text(inv: Investigation) -> str:
    """Everything the model was shown: each step's prompt (the system prompt holds no evidence)."""
    return "\n".join(turn.prompt for turn in inv.turns)


def score(
    inv: Investigation,
    truth: Truth,
    facts: Truth,
    *,
    noise_comms: list[str] | None = None,
) -> dict[str, object]:
    resolution = inv.resolution
    root_cause = resolution.root_cause if resolution else ""
    evidence = resolution.ebpf_evidence if resolution else ""
    missing_rc = truth.missing(root_cause)
    missing_ev = truth.missing(evidence)
    correct = resolution is not None and not missing_rc and not missing_ev
    confidence = resolution.confidence if resolution else ""
    missing_facts = facts.missing(shown_text(inv))
    recall = 1.0 if not facts.groups else 1 - len(missing_facts) / len(facts.groups)
    return {
        "named": correct and confidence in {"High", "Medium"},
        "correct": correct,
        "confidence": confidence,
        "recall": round(recall, 3),
        "iterations": inv.step,
        "facts_missing": [list(g) for g in missing_facts],
        "missing_in_root_cause": [list(g) for g in missing_rc],
        "missing_in_evidence": [list(g) for g in missing_ev],
        "blamed_noise": any(Truth.named(c, root_cause) for c in noise_comms or []),
        "root_cause": root_cause,
        "ebpf_evidence": evidence,
    }


def rate(hits: int, total: int) -> float | None:
    return round(hits / total, 3) if total else None


def totals(runs: list[RunScore]) -> dict[str, object]:
    def of(mode: str) -> list[RunScore]:
        return [r for r in runs if r.mode == mode]

    quiet, noisy = of("quiet"), of("noise")
    high = [r for r in runs if r.confidence == "High"]
    medium = [r for r in runs if r.confidence == "Medium"]
    ok = [r for r in runs if not r.error]
    return {
        "runs": len(runs),
        "errors": len(runs) - len(ok),
        "named_quiet": f"{sum(r.named for r in quiet)}/{len(quiet)}",
        "named_quiet_rate": rate(sum(r.named for r in quiet), len(quiet)),
        "named_noise": f"{sum(r.named for r in noisy)}/{len(noisy)}",
        "named_noise_rate": rate(sum(r.named for r in noisy), len(noisy)),
        "evidence_recall": round(statistics.mean(r.recall for r in ok), 3) if ok else None,
        "full_recall_runs": f"{sum(r.recall == 1.0 for r in ok)}/{len(ok)}",
        "median_wall_s": round(statistics.median(r.wall_s for r in ok), 2) if ok else None,
        "median_iterations": statistics.median(r.iterations for r in ok) if ok else None,
        "high_right": f"{sum(r.correct for r in high)}/{len(high)}",
        "high_right_rate": rate(sum(r.correct for r in high), len(high)),
        "medium_right": f"{sum(r.correct for r in medium)}/{len(medium)}",
        "medium_right_rate": rate(sum(r.correct for r in medium), len(medium)),
        "low": sum(r.confidence == "Low" for r in runs),
        "blamed_noise": sum(r.blamed_noise for r in noisy),
    }
