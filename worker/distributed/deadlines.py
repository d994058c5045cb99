"""How long a step may take, and how long a host may wait for approvals within it."""

from __future__ import annotations

from worker.distributed.runtime import Runtime
from worker.loop.investigation import StepPlan
from worker.policy import evaluate
from worker.settings import ApprovalSettings

COMMAND_BUDGET_S = 2.0  # per command, on top of its timeout, when sizing a step's deadline
PROBE_SETUP_S = 10.0  # compile and attach (seconds with bcc, more on a loaded host)
APPROVAL_MARGIN_S = 15.0  # left of the task's soft limit after waiting for approvals


def step_deadline_s(rt: Runtime, plan: StepPlan) -> float:
    """How long a step may take: its longest probe, its commands, the waits for approvals,
    and a grace period."""
    return (
        probe_budget_s(plan)
        + command_budget_s(rt, plan)
        + approval_wait_s(rt, plan)
        + rt.dist.step_grace_s
    )


def approval_wait_s(rt: Runtime, plan: StepPlan) -> float:
    """The longest a host may wait for approvals in this plan: one wait per command the policy
    will not run on its own, cut so the whole step still fits in the task's soft time limit."""
    asking = sum(1 for c in plan.commands if evaluate(c.command).verdict == "needs_approval")
    if not asking:
        return 0.0
    rest = probe_budget_s(plan) + command_budget_s(rt, plan) + APPROVAL_MARGIN_S
    room = max(0.0, rt.dist.task_soft_time_limit_s - rest)
    return min(asking * ApprovalSettings().wait_s, room)


def probe_budget_s(plan: StepPlan) -> float:
    probes = max((program.duration for program in plan.ebpf_programs), default=0.0)
    if plan.ebpf_programs:
        probes += PROBE_SETUP_S  # bcc compiles each probe before it attaches
    return probes


def command_budget_s(rt: Runtime, plan: StepPlan) -> float:
    return len(plan.commands) * (rt.settings.command_timeout_s + COMMAND_BUDGET_S)
