"""The loop as plain functions: decide the next step, record a step's results.

`decide_next` and `record_results` take and return the whole `Investigation`, so each can be a
separate Celery task with the state in Redis; `execute_plan` (in `execute`) runs on the hosts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from worker.backends.base import (
    Evidence,
    ModelAnswer,
    ModelBackend,
    ModelError,
    ModelRequest,
    ModelUnavailable,
    PriorExchange,
)
from worker.flows.backend import FlowBackend
from worker.loop.events import EventSink, Notice, ProgressEvent, ResolutionReached, StepStarted
from worker.loop.flow_expansion import expand_flow
from worker.loop.followup import followup_prompt
from worker.loop.investigation import Investigation, ModelTurnRecord, ResolutionSource, StepPlan
from worker.loop.prompts import HostResultView, RepeatView, StepContext, render_step
from worker.loop.repeat_guard import guard_repeats
from worker.loop.synthesis import synthesise_resolution
from worker.loop.system_prompt import hosts_system_prompt
from worker.protocol import Diagnostic, PlanResult, Resolution

if TYPE_CHECKING:
    from probes.capabilities import HostCapabilities

TOKEN_HEADROOM = 1.5  # the next step is assumed to cost this times the last one
MIN_PROBE_S = 1.0
WALL_MARGIN_S = 5.0  # left for the final model step after the probes


def _now() -> datetime:
    return datetime.now(UTC)


def final_step_reason(inv: Investigation) -> str:
    """Why the next step must be the last one, or "" when it need not."""
    step = inv.step + 1
    budgets = inv.budgets
    if step >= budgets.max_iterations:
        return f"step {step} of at most {budgets.max_iterations}"
    if inv.elapsed_s >= budgets.max_wall_s:
        return f"the wall-time budget of {budgets.max_wall_s:g} s is spent"
    used = inv.token_usage.total
    last = inv.turns[-1].usage.total if inv.turns else 0
    if used + last * TOKEN_HEADROOM >= budgets.max_model_tokens:
        return f"the model-token budget ({budgets.max_model_tokens}) is nearly spent"
    return ""


def _delivered_steps(inv: Investigation) -> set[int]:
    """Steps whose results a model reply has already seen (a failed turn's prompt was lost)."""
    delivered: set[int] = set()
    for turn in inv.turns:
        if turn.reply is not None:
            delivered.update(plan.step for plan in inv.plans if plan.step < turn.step)
    return delivered


def step_context(inv: Investigation, final_reason: str) -> StepContext:
    delivered = _delivered_steps(inv)
    undelivered = [plan for plan in inv.plans if plan.step not in delivered]
    results: list[PlanResult] = [r for plan in undelivered for r in inv.results_of(plan.step)]
    last_turn = inv.turns[-1] if inv.turns else None
    return StepContext(
        symptom=inv.symptom,
        hosts=inv.hosts,
        step=inv.step + 1,
        max_steps=inv.budgets.max_iterations,
        final=bool(final_reason),
        final_reason=final_reason,
        results=[HostResultView.from_result(r) for r in results],
        repeats=[
            RepeatView(**repeat.model_dump()) for plan in undelivered for repeat in plan.repeats
        ],
        previous_error=last_turn.error
        if last_turn is not None and last_turn.reply is None
        else None,
        tokens_left=max(inv.budgets.max_model_tokens - inv.token_usage.total, 0),
        seconds_left=max(int(inv.budgets.max_wall_s - inv.elapsed_s), 0),
    )


def _history(inv: Investigation) -> list[PriorExchange]:
    return [
        PriorExchange(prompt=turn.prompt, reply=turn.reply, call_id=turn.call_id)
        for turn in inv.turns
        if turn.reply is not None
    ]


def resolve(
    inv: Investigation, resolution: Resolution, *, source: ResolutionSource, why: str
) -> Investigation:
    inv.resolution = resolution
    inv.resolution_source = source
    inv.stop_reason = why
    inv.status = "resolved"
    inv.finished_at = _now()
    inv.touch()
    return inv


def decide_next(
    inv: Investigation,
    backend: ModelBackend,
    *,
    system_prompt: str | None = None,
    host_capabilities: list[HostCapabilities] | None = None,
    on_event: EventSink | None = None,
) -> Investigation:
    """Ask the model for the next step and record its turn: a pending plan or the resolution.

    The system prompt is `system_prompt`, else rendered from `host_capabilities` (the hosts'
    published capabilities), else from this machine's. `on_event` gets a StepStarted for a new
    plan, a Notice for an unusable reply, and ResolutionReached at the end.
    """
    if inv.done or inv.status == "awaiting_results":
        return inv
    if system_prompt is None:
        system_prompt = hosts_system_prompt(
            inv.hosts, inv.budgets.max_iterations, host_capabilities or []
        )
    inv = _decide(inv, backend, system_prompt)
    if on_event is not None:
        for event in events_after_decision(inv):
            on_event(event)
    return inv


def events_after_decision(inv: Investigation) -> list[ProgressEvent]:
    """What a decision shows the people watching: the new plan, a retry, or the resolution."""
    events: list[ProgressEvent] = []
    last = inv.turns[-1] if inv.turns else None
    if last is not None and last.error and not inv.done:
        events.append(
            Notice(
                investigation_id=inv.id,
                step=last.step,
                message=f"model reply unusable, asking again: {last.error}",
            )
        )
    plan = inv.pending_plan
    if plan is not None and last is not None:
        events.append(
            StepStarted(
                investigation_id=inv.id,
                step=plan.step,
                reasoning=plan.reasoning,
                final=last.final_demanded,
                commands=plan.commands,
                ebpf_programs=plan.ebpf_programs,
                repeats=plan.repeats,
            )
        )
    if inv.resolution is not None and inv.resolution_source is not None:
        events.append(
            ResolutionReached(
                investigation_id=inv.id,
                step=inv.step,
                resolution=inv.resolution,
                source=inv.resolution_source,
                stop_reason=inv.stop_reason,
            )
        )
    return events


def _decide(inv: Investigation, backend: ModelBackend, system_prompt: str) -> Investigation:
    if inv.flow is not None:  # a flow run: the flow answers, not a model
        backend = FlowBackend(inv.flow)
    if inv.token_usage.total >= inv.budgets.max_model_tokens:
        why = f"the model-token budget ({inv.budgets.max_model_tokens}) is spent"
        return resolve(inv, synthesise_resolution(inv, why), source="synthesised", why=why)
    final_reason = final_step_reason(inv)
    context = step_context(inv, final_reason)
    followup = inv.pending_followup
    if followup is not None:
        prompt = followup_prompt(inv, followup) + "\n" + render_step(context)
    else:
        prompt = render_step(context)
    turn = ModelTurnRecord(
        step=context.step,
        backend=backend.name,
        prompt=prompt,
        final_demanded=bool(final_reason),
        final_reason=final_reason,
    )
    inv.turns.append(turn)
    try:
        answer = backend.ask(_model_request(inv, system_prompt, prompt, context.step, final_reason))
    except ModelError as exc:
        return _after_model_error(inv, turn, exc, final_reason)
    if followup is not None:
        followup.answered = True
    _record_answer(turn, answer)
    return _apply_reply(inv, answer.reply, context.step, final_reason)


def _model_request(
    inv: Investigation, system_prompt: str, prompt: str, step: int, final_reason: str
) -> ModelRequest:
    return ModelRequest(
        system=system_prompt,
        history=_history(inv),
        prompt=prompt,
        final=bool(final_reason),
        evidence=Evidence(
            symptom=inv.symptom,
            hosts=inv.hosts,
            step=step,
            max_steps=inv.budgets.max_iterations,
            results=inv.results,
        ),
    )


def _after_model_error(
    inv: Investigation, turn: ModelTurnRecord, exc: ModelError, final_reason: str
) -> Investigation:
    """Record the failed turn; conclude from the evidence if the model is gone or this was the
    last step, else leave the investigation to ask again."""
    turn.error = str(exc)
    turn.usage = exc.usage
    turn.raw = exc.raw
    turn.finished_at = _now()
    inv.touch()
    if isinstance(exc, ModelUnavailable) or final_reason:
        why = (
            f"the model was unavailable ({exc})"
            if isinstance(exc, ModelUnavailable)
            else f"the last allowed step ({final_reason}) gave no valid reply: {exc}"
        )
        return resolve(inv, synthesise_resolution(inv, why), source="synthesised", why=why)
    return inv


def _record_answer(turn: ModelTurnRecord, answer: ModelAnswer) -> None:
    turn.reply = answer.reply
    turn.raw = answer.raw
    turn.call_id = answer.call_id
    turn.usage = answer.usage
    turn.model = answer.model
    turn.repaired = answer.repaired
    turn.repair_error = answer.repair_error
    turn.finished_at = _now()


def _apply_reply(
    inv: Investigation, reply: Diagnostic | Resolution, step: int, final_reason: str
) -> Investigation:
    """A resolution ends the investigation; a diagnostic becomes the pending plan (unless the
    last step allowed none, which ends it with what the evidence supports)."""
    if reply.response_type == "resolution":
        return resolve(inv, reply, source="model", why="the model resolved")
    if final_reason:
        why = f"the model still asked for more evidence at its last step ({final_reason})"
        return resolve(inv, synthesise_resolution(inv, why), source="synthesised", why=why)
    plan = StepPlan(investigation_id=inv.id, step=step, reasoning=reply.reasoning)
    requests = expand_flow(reply)  # a named flow's commands and probes join the step
    inv.plans.append(fit_to_wall_time(guard_repeats(requests, inv.plans, plan), inv))
    inv.status = "awaiting_results"
    inv.touch()
    return inv


def fit_to_wall_time(plan: StepPlan, inv: Investigation) -> StepPlan:
    """Probes no longer than the wall time left (at least MIN_PROBE_S), so a step cannot
    overrun the investigation's budget by a minute-long probe."""
    left = inv.budgets.max_wall_s - inv.elapsed_s
    cap = max(MIN_PROBE_S, left - WALL_MARGIN_S)
    for program in plan.ebpf_programs:
        if program.duration > cap:
            program.duration = cap
    return plan


def record_results(inv: Investigation, step: int, results: list[PlanResult]) -> Investigation:
    """Close step `step` with the results of one or many hosts, then go back to deciding.

    Idempotent: a step already closed, or a (host, step) already recorded, changes nothing. A
    host of the investigation with no result gets an empty one saying so, for the model.
    """
    plan = inv.pending_plan
    if plan is None or plan.step != step:
        return inv
    have = {(r.host, r.step) for r in inv.results}
    for result in results:
        stamped = result.model_copy(update={"step": step})
        if (stamped.host, step) not in have:
            inv.results.append(stamped)
            have.add((stamped.host, step))
    for host in inv.hosts:
        if (host, step) not in have:
            inv.results.append(
                PlanResult(
                    host=host,
                    step=step,
                    notes=[f"host {host} sent no result for this step: nothing is known from it"],
                    finished_at=_now(),
                )
            )
    inv.status = "deciding"
    inv.touch()
    return inv
