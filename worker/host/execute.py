"""Host side of one step: run a plan's commands and probes here, and return a bounded result.

`execute_plan` is a plain function a Celery task can call on each host. The repeat guard has
already been applied (the plan holds only new requests); commands go through the policy and the
executor; probe requests through the resolver and the runner; everything is redacted and bounded
before it leaves this function.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from worker import metrics
from worker.host.approver import ApprovalDecision, ApprovalRequest, Approver, AutoDenyApprover
from worker.host.executor import run_command
from worker.host.probe_bridge import run_program_requests
from worker.host.redact import redact
from worker.loop.bounds import ResultLimits, bound_command, bound_probe
from worker.loop.events import (
    CommandFinished,
    CommandVerdict,
    EventSink,
    Findings,
    ignore_events,
)
from worker.loop.investigation import StepPlan
from worker.policy import evaluate
from worker.protocol import CommandRequest, CommandResult, EbpfResult, PlanResult, Verdict


@dataclass(frozen=True)
class ExecutionContext:
    """What a host needs to run a plan; built where the plan runs (CLI process, Celery worker)."""

    approver: Approver = field(default_factory=AutoDenyApprover)
    on_event: EventSink = ignore_events
    limits: ResultLimits = field(default_factory=ResultLimits)


def _redactor() -> Callable[[str], str]:
    redactor: Callable[[str], str] = redact
    return redactor


def _ask(
    request: CommandRequest, plan: StepPlan, host: str, reason: str, context: ExecutionContext
) -> ApprovalDecision:
    return context.approver.decide(
        ApprovalRequest(
            investigation_id=plan.investigation_id,
            step=plan.step,
            host=host,
            command_id=request.id,
            command=request.command,
            reason=reason,
        )
    )


def _verdict_event(
    request: CommandRequest, plan: StepPlan, host: str, verdict: Verdict, reason: str
) -> CommandVerdict:
    return CommandVerdict(
        investigation_id=plan.investigation_id,
        step=plan.step,
        host=host,
        id=request.id,
        command=request.command,
        verdict=verdict,
        reason=reason,
    )


def _run_one_command(
    request: CommandRequest, plan: StepPlan, host: str, context: ExecutionContext
) -> CommandResult:
    """Policy verdict, approval when needed, then the executor (which judges again itself)."""
    decision = evaluate(request.command)
    context.on_event(_verdict_event(request, plan, host, decision.verdict, decision.reason))
    answer: ApprovalDecision | None = None
    if decision.verdict == "needs_approval":
        answer = _ask(request, plan, host, decision.reason, context)
    result = run_command(request, approved=answer is not None and answer.approved)
    if result.verdict == "needs_approval" and not result.ran and answer is None:
        # the executor found more than the policy text showed (e.g. a secret behind a link)
        context.on_event(_verdict_event(request, plan, host, result.verdict, result.reason))
        answer = _ask(request, plan, host, result.reason, context)
        if answer.approved:
            result = run_command(request, approved=True)
    if answer is not None and not answer.approved:
        result = result.model_copy(
            update={
                "ran": False,
                "note": f"not run: needs approval and was not approved ({answer.by}: "
                f"{answer.note})",
            }
        )
    context.on_event(
        CommandFinished(
            investigation_id=plan.investigation_id,
            step=plan.step,
            host=host,
            id=request.id,
            ran=result.ran,
            exit_code=result.exit_code,
            duration_s=result.duration_s,
            note=result.note or ("" if result.ran else result.reason),
        )
    )
    metrics.command_finished(result)
    return result


COMMAND_THREADS = 4  # commands the policy allows outright run this many at a time


def _command_or_failure(
    request: CommandRequest, plan: StepPlan, host: str, context: ExecutionContext
) -> CommandResult:
    try:
        return _run_one_command(request, plan, host, context)
    except Exception as exc:  # one broken command must not lose the step
        return CommandResult(
            id=request.id,
            command=request.command,
            verdict="deny",
            note=f"not run: the executor failed ({type(exc).__name__}: {exc})",
        )


def _run_commands(plan: StepPlan, host: str, context: ExecutionContext) -> dict[str, CommandResult]:
    """Every command of the plan, results in the plan's order. The ones the policy allows
    outright run `COMMAND_THREADS` at a time (a step's dozen quick reads take as long as the
    slowest, `pidstat 1 1`, instead of their sum); any that needs an approval runs afterwards,
    one at a time, so approvals are asked in order."""
    allowed = [r for r in plan.commands if evaluate(r.command).verdict == "allow"]
    done: dict[str, CommandResult] = {}
    if len(allowed) > 1:
        with ThreadPoolExecutor(max_workers=COMMAND_THREADS) as pool:
            ran = pool.map(lambda r: _command_or_failure(r, plan, host, context), allowed)
            done.update({r.id: result for r, result in zip(allowed, ran, strict=True)})
    for request in plan.commands:
        if request.id not in done:
            done[request.id] = _command_or_failure(request, plan, host, context)
    return {r.id: done[r.id] for r in plan.commands}


def finding_lines(result: PlanResult) -> list[str]:
    """One line per command and probe: what a person skimming the progress wants to see."""
    lines = []
    for command in result.command_results.values():
        if command.ran:
            out_lines = len(command.stdout.splitlines())
            lines.append(
                f"{command.id}: exit {command.exit_code}, {out_lines} lines"
                + (" (timed out)" if command.timed_out else "")
            )
        else:
            lines.append(f"{command.id}: not run ({command.note or command.reason})")
    for key, probe in result.ebpf_results.items():
        text = f"error: {probe.error}" if probe.error else probe.summary
        lines.append(f"{key}: {text}")
    return lines


def execute_plan(plan: StepPlan, host: str, context: ExecutionContext | None = None) -> PlanResult:
    """Run `plan` on this host; return what the model may see (redacted, bounded)."""
    context = context or ExecutionContext()
    redact = _redactor()
    result = PlanResult(host=host, step=plan.step)
    for command_id, command_result in _run_commands(plan, host, context).items():
        result.command_results[command_id] = bound_command(command_result, context.limits, redact)
    if plan.ebpf_programs:
        try:
            probes: dict[str, EbpfResult] = run_program_requests(plan, host, context.on_event)
        except Exception as exc:  # the probe engine failed as a whole: say so, keep the rest
            probes = {}
            result.notes.append(f"eBPF programs not run: {type(exc).__name__}: {exc}")
        for key, probe_result in probes.items():
            result.ebpf_results[key] = bound_probe(probe_result, context.limits, redact)
    result.finished_at = datetime.now(UTC)
    context.on_event(
        Findings(
            investigation_id=plan.investigation_id,
            step=plan.step,
            host=host,
            lines=finding_lines(result),
        )
    )
    return result
