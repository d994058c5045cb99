"""The control side of the distributed loop: start, advance, dispatch (the control queue).

One investigation moves like this (docs/architecture.md §2, issue 5):

    start_investigation ──▶ advance ──decide_next──▶ dispatch_step ──▶ run_plan × hosts
           ▲                                              │ (deadline in a Redis zset)
           └───── advance ◀── last run_plan or the deadline scanner (exactly once, store)

Every function here is idempotent under redelivery (acks_late): `advance` looks at the stored
state to find what is left to do (record a closed step, decide, or dispatch a decided plan); a
step is recorded only after it is closed, and closes exactly once. The host side is
`worker.distributed.host`.
"""

from __future__ import annotations

import getpass
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from cachetools import LRUCache, cached

from probes.capabilities import HostCapabilities
from worker import keys, metrics
from worker.backends.base import ModelBackend
from worker.backends.factory import build_backend
from worker.backends.scripted import ScriptedBackend
from worker.distributed.config import CONTROL_QUEUE, TASK_PREFIX, host_queue
from worker.distributed.deadlines import step_deadline_s
from worker.distributed.runtime import PUBLISH_ERRORS, Runtime, patiently
from worker.distributed.store import (
    InvestigationNotFound,
    StepMeta,
    StepOutcome,
    StoreUnavailable,
    VersionConflict,
)
from worker.flows.backend import FlowBackend
from worker.loop.events import Notice
from worker.loop.investigation import Budgets, Investigation, StepPlan
from worker.loop.steps import decide_next, events_after_decision, record_results, resolve
from worker.loop.synthesis import synthesise_resolution
from worker.loop.system_prompt import hosts_system_prompt
from worker.protocol import CommandRequest, EbpfProgramRequest, PlanResult

log = logging.getLogger(__name__)


def _decide(rt: Runtime, inv: Investigation) -> Investigation:
    """One model turn, the system prompt built from the hosts' published capabilities; the
    loop emits its own events (step started, unusable reply, resolution)."""
    capabilities = _capabilities_in_play(rt, inv.hosts)
    system = _system_prompt(tuple(inv.hosts), inv.budgets.max_iterations, tuple(capabilities))
    backend = FlowBackend(inv.flow) if inv.flow else _backend(rt)  # a flow needs no model
    return decide_next(inv, backend, system_prompt=system, on_event=rt.publish)


def _prompt_key(
    hosts: tuple[str, ...], max_steps: int, capabilities: tuple[HostCapabilities, ...]
) -> tuple[object, ...]:
    return (hosts, max_steps, tuple((c.hostname, c.measured_at) for c in capabilities))


@cached(LRUCache(maxsize=64), key=_prompt_key)
def _system_prompt(
    hosts: tuple[str, ...], max_steps: int, capabilities: tuple[HostCapabilities, ...]
) -> str:
    """The system prompt for these hosts as they last published themselves, rendered once.

    Rendering it costs a few ms per model turn; it changes only when a host re-measures.
    """
    return hosts_system_prompt(list(hosts), max_steps, list(capabilities))


def _backend(rt: Runtime) -> ModelBackend:
    if rt.dist.scripted_replies:
        return ScriptedBackend.from_file(Path(rt.dist.scripted_replies))
    return build_backend(rt.settings)


def _capabilities_in_play(rt: Runtime, hosts: list[str]) -> list[HostCapabilities]:
    try:
        live = rt.registry.records(hosts)
    except StoreUnavailable:
        return []
    return [live[name].capabilities for name in hosts if name in live]


def start_investigation(
    rt: Runtime,
    symptom: str,
    hosts: list[str],
    *,
    asked_by: str = "",
    budgets: Budgets | None = None,
    flow: str | None = None,
) -> Investigation:
    """Check the hosts are live, store a new investigation, enqueue its first `advance`.

    With `flow`, the investigation runs that flow (worker.flows.backend) instead of a model.
    """
    rt.registry.require_live(hosts)
    inv = Investigation(
        symptom=symptom,
        hosts=hosts,
        budgets=budgets or Budgets.from_settings(rt.settings),
        flow=flow,
    )
    # stored, who asked, and watched (the control workers' scanners time the checks): one trip
    rt.store.start(inv, asked_by=asked_by or f"cli:{getpass.getuser()}", watch_at=time.time())
    send_advance(rt, inv.id)
    metrics.investigation_started(inv)
    return inv


def send_advance(rt: Runtime, investigation_id: str) -> None:
    rt.app.send_task(
        f"{TASK_PREFIX}advance", args=[investigation_id], queue=CONTROL_QUEUE, ignore_result=True
    )


def advance_closed_step(rt: Runtime, investigation_id: str, step: int) -> None:
    """Enqueue the advance of a step this process just closed, and say so in the step.

    If the broker refuses for a minute, the step stays un-advanced and the deadline scanner
    sends the advance when the step's deadline comes (the close and the send are not atomic).
    """
    patiently(lambda: send_advance(rt, investigation_id), exceptions=PUBLISH_ERRORS)
    patiently(lambda: rt.store.mark_advanced(investigation_id, step, time.time()))


def advance_investigation(rt: Runtime, investigation_id: str) -> None:
    """Do what is left for this investigation: record a closed step, decide, dispatch."""
    try:
        stored = rt.store.load(investigation_id)
    except InvestigationNotFound as exc:
        log.error("advance: %s", exc)
        return
    inv = stored.investigation
    if inv.done:
        return
    pending = inv.pending_plan
    if pending is not None:
        meta = rt.store.step_meta(inv.id, pending.step)
        if meta is None or not meta.dispatched:
            # decided and saved, then the worker died before the fan-out finished
            dispatch_step(rt, inv, pending)
            return
        outcome = rt.store.step_outcome(inv.id, pending.step)
        if outcome is None:
            return  # not closed yet: a stray advance; the join will send the real one
        for host in outcome.missing_hosts:
            rt.publish(
                Notice(
                    investigation_id=inv.id,
                    step=pending.step,
                    message=f"host {host} did not answer within {meta.deadline_s:.0f} s; "
                    "going on with what the other hosts sent",
                )
            )
        inv = record_results(inv, pending.step, outcome.results)
        metrics.step_closed(meta, outcome)
    turns_before = len(inv.turns)
    if inv.one_step:
        inv = _end_one_step(inv)  # no model: the asker read the step's results from the join
    else:
        try:
            inv = _decide(rt, inv)
        except Exception as exc:  # a bug below us must end the investigation, not strand it
            log.exception("advance %s: deciding failed", inv.id)
            inv = _end_on_error(rt, inv, f"the control worker failed: {type(exc).__name__}: {exc}")
    try:
        stored = rt.store.save(stored.model_copy(update={"investigation": inv}))
    except VersionConflict:
        log.warning("advance %s: another advance wrote first; dropping this one", inv.id)
        return
    inv = stored.investigation
    metrics.model_turns(inv, turns_before)
    if pending is not None:
        rt.store.mark_recorded(inv.id, pending.step)
    plan = inv.pending_plan
    if plan is not None:
        dispatch_step(rt, inv, plan)
    elif inv.done:
        log.info("investigation %s finished (%s)", inv.id, inv.stop_reason)
        if not inv.one_step:
            metrics.investigation_finished(inv)
    else:
        # the model's reply was unusable and the loop asks again: that is another turn
        send_advance(rt, inv.id)


def _end_one_step(inv: Investigation) -> Investigation:
    """A one-step investigation ends once its step is recorded (no resolution: no model)."""
    if inv.pending_plan is None and not inv.done:
        inv.status = "resolved"
        inv.stop_reason = "one step run directly; its results were returned to the asker"
        inv.finished_at = datetime.now(UTC)
        inv.touch()
    return inv


def _end_on_error(rt: Runtime, inv: Investigation, why: str) -> Investigation:
    """Finish with what the evidence supports (confidence Low), and tell the watchers."""
    inv = resolve(inv, synthesise_resolution(inv, why), source="synthesised", why=why)
    for event in events_after_decision(inv):
        rt.publish(event)
    return inv


def dispatch_step(rt: Runtime, inv: Investigation, plan: StepPlan) -> None:
    """Open the step's join, schedule its deadline, send `run_plan` to each host's queue."""
    deadline_s = step_deadline_s(rt, plan)
    meta = StepMeta(
        investigation_id=inv.id,
        step=plan.step,
        hosts=list(inv.hosts),
        deadline_s=deadline_s,
        deadline_at=time.time() + deadline_s,
    )
    if not rt.store.open_step(meta):
        meta = rt.store.step_meta(inv.id, plan.step) or meta
    asked_by = str(rt.store.client.get(keys.origin(inv.id)) or "")
    remaining = max(1.0, meta.deadline_at - time.time())
    rt.store.schedule_deadline(inv.id, plan.step, meta.deadline_at)
    try:
        live = set(rt.registry.records(meta.hosts))
    except StoreUnavailable:
        live = set(meta.hosts)
    payload = plan.model_dump(mode="json")
    for host in meta.hosts:
        if host not in live:
            _record_absent_host(rt, inv.id, plan.step, host)
            continue
        rt.app.send_task(
            f"{TASK_PREFIX}run_plan",
            args=[inv.id, plan.step, host, payload, asked_by],
            queue=host_queue(host),
            expires=remaining + rt.dist.plan_expiry_margin_s,
            ignore_result=True,
        )
    rt.store.mark_dispatched(meta)


def _record_absent_host(rt: Runtime, investigation_id: str, step: int, host: str) -> None:
    message = f"host {host} has no live worker (no heartbeat); nothing was run there"
    rt.publish(Notice(investigation_id=investigation_id, step=step, message=message))
    result = PlanResult(host=host, step=step, notes=[message], finished_at=datetime.now(UTC))
    if rt.store.record_result(investigation_id, result) == 1:
        advance_closed_step(rt, investigation_id, step)


# ---------------------------------------------------------------------------------------
# one step asked for directly (MCP run_probe / run_command on another host)
# ---------------------------------------------------------------------------------------
ONE_STEP = 1
STEP_POLL_S = 0.1


def start_one_step(
    rt: Runtime,
    host: str,
    *,
    asked_by: str,
    what: str,
    commands: list[CommandRequest] | None = None,
    ebpf_programs: list[EbpfProgramRequest] | None = None,
) -> StepMeta:
    """Run one plan on `host` without a model: a one-step investigation whose plan is given,
    dispatched like any step (the host's `run_plan` task, the join, the step deadline, the
    audit with `asked_by`). Raises `HostNotLive` (naming the live hosts) before anything runs.
    Wait for it with `await_step`."""
    rt.registry.require_live([host])
    inv = Investigation(symptom=what, hosts=[host], one_step=True, status="awaiting_results")
    plan = StepPlan(
        investigation_id=inv.id,
        step=ONE_STEP,
        reasoning=what,
        commands=commands or [],
        ebpf_programs=ebpf_programs or [],
    )
    inv.plans.append(plan)
    rt.store.start(inv, asked_by=asked_by, watch_at=time.time())
    dispatch_step(rt, inv, plan)
    meta = rt.store.step_meta(inv.id, ONE_STEP)
    if meta is None:  # dispatch_step opened it; only a vanished Redis key gets here
        raise StoreUnavailable(f"step {ONE_STEP} of {inv.id} vanished from Redis at {rt.store.url}")
    return meta


def await_step(rt: Runtime, meta: StepMeta) -> StepOutcome:
    """The step's outcome once every host answered or its deadline passed (then this process
    closes it, as a control worker's scanner would, and enqueues the advance that records it)."""
    while True:
        outcome = rt.store.step_outcome(meta.investigation_id, meta.step)
        if outcome is not None:
            return outcome
        if time.time() >= meta.deadline_at:
            if rt.store.close_at_deadline(meta.investigation_id, meta.step):
                advance_closed_step(rt, meta.investigation_id, meta.step)
                continue
            if rt.store.step_meta(meta.investigation_id, meta.step) is None:
                raise InvestigationNotFound(
                    f"step {meta.step} of {meta.investigation_id} vanished from Redis at "
                    f"{rt.store.url} (restarted without persistence?)"
                )
        time.sleep(STEP_POLL_S)
