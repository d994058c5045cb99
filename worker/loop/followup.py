"""Follow-up questions in a thread ("why DNS?", "check db-1 too", "again with pid 4242").

`ask_followup` reopens the investigation with the question and a few more steps of budget; the
next `decide_next` sends the question (rendered with `followup.md.j2`) instead of a step prompt,
and the loop goes on as usual until a new resolution. The earlier resolution is kept.
"""

from __future__ import annotations

from worker.loop.investigation import FollowUp, Investigation
from worker.loop.prompts import FollowupContext, StepSummaryView, render_followup

FOLLOWUP_STEPS = 3
FOLLOWUP_WALL_S = 300.0
MAX_STEPS = 20  # Budgets.max_iterations' upper bound


def ask_followup(inv: Investigation, question: str, *, asked_by: str = "") -> Investigation:
    """Queue `question`. A finished investigation is reopened with FOLLOWUP_STEPS more steps,
    FOLLOWUP_WALL_S more seconds and half its token budget again."""
    inv.followups.append(FollowUp(question=question, asked_by=asked_by, after_step=inv.step))
    if inv.done:
        if inv.resolution is not None:
            inv.earlier_resolutions.append(inv.resolution)
        inv.resolution = None
        inv.resolution_source = None
        inv.finished_at = None
        inv.stop_reason = ""
        inv.status = "deciding"
        inv.budgets = inv.budgets.model_copy(
            update={
                "max_iterations": min(inv.step + FOLLOWUP_STEPS, MAX_STEPS),
                "max_wall_s": inv.elapsed_s + FOLLOWUP_WALL_S,
                "max_model_tokens": inv.token_usage.total + inv.budgets.max_model_tokens // 2,
            }
        )
    inv.touch()
    return inv


def _step_summaries(inv: Investigation) -> list[StepSummaryView]:
    summaries = []
    for plan in inv.plans:
        requested = [c.command for c in plan.commands] + [
            f"{p.type}:{p.target} {p.duration:g}s" for p in plan.ebpf_programs
        ]
        findings = []
        for result in inv.results_of(plan.step):
            for command in result.command_results.values():
                state = f"exit {command.exit_code}" if command.ran else "not run"
                findings.append(f"{result.host} {command.id}: {state}")
            for key, probe in result.ebpf_results.items():
                findings.append(f"{result.host} {key}: {probe.error or probe.summary}")
        summaries.append(
            StepSummaryView(
                step=plan.step, reasoning=plan.reasoning, requested=requested, findings=findings
            )
        )
    return summaries


def followup_prompt(inv: Investigation, followup: FollowUp) -> str:
    latest = inv.resolution or (inv.earlier_resolutions[-1] if inv.earlier_resolutions else None)
    return render_followup(
        FollowupContext(
            symptom=inv.symptom,
            hosts=inv.hosts,
            resolution=latest,
            steps=_step_summaries(inv),
            question=followup.question,
            asked_by=followup.asked_by,
        )
    )
