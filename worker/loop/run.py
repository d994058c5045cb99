"""The loop in one process (the CLI): decide, run on each host, record, until resolved."""

from __future__ import annotations

from collections.abc import Callable

from worker.backends.base import ModelBackend
from worker.host.execute import ExecutionContext, execute_plan
from worker.loop.events import EventSink, ignore_events
from worker.loop.investigation import Budgets, Investigation, StepPlan
from worker.loop.steps import decide_next, record_results
from worker.loop.system_prompt import local_system_prompt
from worker.protocol import PlanResult

PlanRunner = Callable[[StepPlan, str], PlanResult]


def run_investigation(
    symptom: str,
    hosts: list[str],
    backend: ModelBackend,
    *,
    budgets: Budgets | None = None,
    context: ExecutionContext | None = None,
    on_event: EventSink | None = None,
    system_prompt: str | None = None,
    run_plan: PlanRunner | None = None,
) -> Investigation:
    """Investigate `symptom` until a resolution (the model's, or synthesised from the evidence).

    Every host's plan runs on this machine through `execute_plan` unless `run_plan` sends it
    elsewhere. Ctrl-C (KeyboardInterrupt) propagates after the investigation is marked
    cancelled: the probe runner detaches on the way out and the caller chooses the exit.
    """
    inv = Investigation(symptom=symptom, hosts=hosts, budgets=budgets or Budgets())
    return continue_investigation(
        inv,
        backend,
        context=context,
        on_event=on_event,
        system_prompt=system_prompt,
        run_plan=run_plan,
    )


def continue_investigation(
    inv: Investigation,
    backend: ModelBackend,
    *,
    context: ExecutionContext | None = None,
    on_event: EventSink | None = None,
    system_prompt: str | None = None,
    run_plan: PlanRunner | None = None,
) -> Investigation:
    """Drive `inv` (new, or reopened by a follow-up) to its next resolution, in process."""
    emit = on_event or (context.on_event if context is not None else ignore_events)
    context = context or ExecutionContext(on_event=emit)
    system = system_prompt or local_system_prompt(inv.hosts, inv.budgets.max_iterations)

    def run_here(plan: StepPlan, host: str) -> PlanResult:
        return execute_plan(plan, host, context)

    runner = run_plan or run_here
    try:
        while not inv.done:
            plan = inv.pending_plan
            if plan is None:
                inv = decide_next(inv, backend, system_prompt=system, on_event=emit)
                continue
            results = [runner(plan, host) for host in inv.hosts]
            inv = record_results(inv, plan.step, results)
    except KeyboardInterrupt:
        inv.status = "cancelled"
        inv.stop_reason = "interrupted"
        inv.touch()
        raise
    return inv
