"""The control side of the distributed loop, as plain functions the Celery tasks and CLI call.

One investigation moves like this (docs/architecture.md §2, issue 5):

    start_investigation ──▶ advance ──decide_next──▶ dispatch_step ──▶ run_plan × hosts
           ▲                                              │ (deadline in a Redis zset)
           └───── advance ◀── last run_plan or the deadline scanner (exactly once, worker.store)

Every function here is idempotent under redelivery (acks_late): `advance` looks at the stored
state to find what is left to do (record a closed step, decide, or dispatch a decided plan);
`run_plan_here` does nothing when this host already answered or the step is closed; a step is
recorded only after it is closed, and closes exactly once.
"""

from __future__ import annotations

import getpass
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from worker import metrics
from worker.celery_config import (
    CONTROL_QUEUE,
    TASK_PREFIX,
    DistributedSettings,
    host_queue,
)
from worker.loop.events import Notice, ProgressEvent, ResolutionReached
from worker.loop.investigation import Budgets, Investigation, StepPlan
from worker.protocol import CommandRequest, CommandResult, EbpfProgramRequest, PlanResult
from worker.registry import HostNotLive, Registry
from worker.settings import WorkerSettings
from worker.store import (
    AuditEntry,
    InvestigationNotFound,
    StepMeta,
    StepOutcome,
    Store,
    StoreUnavailable,
    VersionConflict,
    connect,
)

if TYPE_CHECKING:
    from celery import Celery

    from probes.capabilities import HostCapabilities
    from worker.models.base import ModelBackend

log = logging.getLogger(__name__)
COMMAND_BUDGET_S = 2.0  # per command, on top of its timeout, when sizing a step's deadline
PROBE_SETUP_S = 10.0  # compile and attach (seconds with bcc, more on a loaded host)
APPROVAL_MARGIN_S = 15.0  # left of the task's soft limit after waiting for approvals


@dataclass
class Runtime:
    """What one process needs to drive or serve investigations."""

    settings: WorkerSettings
    dist: DistributedSettings
    store: Store
    registry: Registry
    app: Celery

    def publish(self, event: ProgressEvent) -> None:
        try:
            self.store.publish(event)
        except StoreUnavailable as exc:
            log.warning("progress event lost: %s", exc)


def build_runtime(
    settings: WorkerSettings | None = None, dist: DistributedSettings | None = None
) -> Runtime:
    from worker.celery_app import app, create_app

    if settings is not None or dist is not None:
        # explicit settings (tests, bench): an app of their own, not the env-built one
        settings = settings or WorkerSettings()
        dist = dist or DistributedSettings()
        app = create_app(settings, dist)
    settings = settings or WorkerSettings()
    dist = dist or DistributedSettings()
    client = connect(settings.redis_url)
    return Runtime(
        settings=settings,
        dist=dist,
        store=Store(settings.redis_url, ttl_s=dist.state_ttl_s, client=client),
        registry=Registry(client, settings.redis_url),
        app=app,
    )


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The process-wide runtime (built on first use, after BPFSLEUTH_HOST is set)."""
    return build_runtime()


# ---------------------------------------------------------------------------------------
# the loop's plain functions (worker.loop), imported where used
# ---------------------------------------------------------------------------------------
def _decide(rt: Runtime, inv: Investigation) -> Investigation:
    """One model turn, the system prompt built from the hosts' published capabilities; the
    loop emits its own events (step started, unusable reply, resolution)."""
    from worker.loop.steps import decide_next

    capabilities = _capabilities_in_play(rt, inv.hosts)
    system = _system_prompt(tuple(inv.hosts), inv.budgets.max_iterations, tuple(capabilities))
    backend = _flow_backend(inv.flow) if inv.flow else _backend(rt)  # a flow needs no model
    return decide_next(inv, backend, system_prompt=system, on_event=rt.publish)


_SYSTEM_PROMPTS: dict[tuple[object, ...], str] = {}
_SYSTEM_PROMPTS_MAX = 64


def _system_prompt(
    hosts: tuple[str, ...], max_steps: int, capabilities: tuple[HostCapabilities, ...]
) -> str:
    """The system prompt for these hosts as they last published themselves, rendered once.

    Rendering it costs a few ms per model turn; it changes only when a host re-measures.
    """
    from worker.loop.system_prompt import hosts_system_prompt

    key = (hosts, max_steps, tuple((c.hostname, c.measured_at) for c in capabilities))
    prompt = _SYSTEM_PROMPTS.get(key)
    if prompt is None:
        prompt = hosts_system_prompt(list(hosts), max_steps, list(capabilities))
        if len(_SYSTEM_PROMPTS) >= _SYSTEM_PROMPTS_MAX:
            _SYSTEM_PROMPTS.clear()
        _SYSTEM_PROMPTS[key] = prompt
    return prompt


def _flow_backend(flow: str) -> ModelBackend:
    from worker.flows.backend import FlowBackend

    return FlowBackend(flow)


def _backend(rt: Runtime) -> ModelBackend:
    if rt.dist.scripted_replies:
        from pathlib import Path

        from worker.scripted_backend import ScriptedBackend

        return ScriptedBackend.from_file(Path(rt.dist.scripted_replies))
    from worker.models import build_backend

    return build_backend(rt.settings)


def _record(inv: Investigation, step: int, results: list[PlanResult]) -> Investigation:
    from worker.loop.steps import record_results

    return record_results(inv, step, results)


def _execute(rt: Runtime, plan: StepPlan, host: str) -> PlanResult:
    """Run the plan here; a command that needs approval waits (bounded) for a responder's
    decision in Slack (worker.loop.approver_redis)."""
    from worker.loop.approver_redis import RedisApprover
    from worker.loop.execute import ExecutionContext, execute_plan

    approver = RedisApprover(
        rt.store.client, budget_s=_approval_wait_s(rt, plan), ttl_s=rt.store.ttl_s
    )
    context = ExecutionContext(approver=approver, on_event=rt.publish)
    return execute_plan(plan, host, context)


def _approval_wait_s(rt: Runtime, plan: StepPlan) -> float:
    """The longest a host may wait for approvals in this plan: one wait per command the policy
    will not run on its own, cut so the whole step still fits in the task's soft time limit."""
    from worker.loop.approver_redis import ApprovalSettings
    from worker.policy import evaluate

    asking = sum(1 for c in plan.commands if evaluate(c.command).verdict == "needs_approval")
    if not asking:
        return 0.0
    rest = _probe_budget_s(plan) + _command_budget_s(rt, plan) + APPROVAL_MARGIN_S
    room = max(0.0, rt.dist.task_soft_time_limit_s - rest)
    return min(asking * ApprovalSettings().wait_s, room)


def _capabilities_in_play(rt: Runtime, hosts: list[str]) -> list[HostCapabilities]:
    try:
        live = rt.registry.records(hosts)
    except StoreUnavailable:
        return []
    return [live[name].capabilities for name in hosts if name in live]


# ---------------------------------------------------------------------------------------
# starting, advancing, dispatching
# ---------------------------------------------------------------------------------------
def _origin_key(investigation_id: str) -> str:
    return Store.origin_key(investigation_id)


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
    _patiently(lambda: send_advance(rt, investigation_id), exceptions=_publish_errors())
    _patiently(lambda: rt.store.mark_advanced(investigation_id, step, time.time()))


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
        inv = _record(inv, pending.step, outcome.results)
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
    from worker.loop.steps import events_after_decision, resolve
    from worker.loop.synthesis import synthesise_resolution

    inv = resolve(inv, synthesise_resolution(inv, why), source="synthesised", why=why)
    for event in events_after_decision(inv):
        rt.publish(event)
    return inv


def step_deadline_s(rt: Runtime, plan: StepPlan) -> float:
    """How long a step may take: its longest probe, its commands, the waits for approvals,
    and a grace period."""
    return (
        _probe_budget_s(plan)
        + _command_budget_s(rt, plan)
        + _approval_wait_s(rt, plan)
        + rt.dist.step_grace_s
    )


def _probe_budget_s(plan: StepPlan) -> float:
    probes = max((program.duration for program in plan.ebpf_programs), default=0.0)
    if plan.ebpf_programs:
        probes += PROBE_SETUP_S  # bcc compiles each probe before it attaches
    return probes


def _command_budget_s(rt: Runtime, plan: StepPlan) -> float:
    return len(plan.commands) * (rt.settings.command_timeout_s + COMMAND_BUDGET_S)


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
    asked_by = str(rt.store.client.get(_origin_key(inv.id)) or "")
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


# ---------------------------------------------------------------------------------------
# host side
# ---------------------------------------------------------------------------------------
def run_plan_here(
    rt: Runtime, investigation_id: str, step: int, host: str, plan: StepPlan, asked_by: str
) -> PlanResult | None:
    """Run `plan` on this host unless it is stale or already answered; store the result."""
    me = rt.settings.host_name
    if host != me:
        log.error("run_plan for host %s reached the worker of host %s; not run", host, me)
        return None
    state = rt.store.step_state(investigation_id, step, me)
    if state == "open" and not rt.store.claim_host_run(
        investigation_id, step, me, f"{platform.node()}:{os.getpid()}"
    ):
        state = "running elsewhere"  # a duplicate run_plan (a control worker re-dispatched)
    if state != "open":
        log.info(
            "run_plan %s step %s on %s: step is %s; nothing to do",
            investigation_id,
            step,
            me,
            state,
        )
        return None
    started = time.monotonic()
    try:
        result = _execute(rt, plan, me)
    except Exception as exc:  # the step must go on without this host, not die with it
        from celery.exceptions import SoftTimeLimitExceeded

        why = (
            f"the step ran out of time on {me} (soft limit {rt.dist.task_soft_time_limit_s} s)"
            if isinstance(exc, SoftTimeLimitExceeded)
            else f"running the plan on {me} failed: {type(exc).__name__}: {exc}"
        )
        log.exception("run_plan %s step %s", investigation_id, step)
        result = PlanResult(host=me, step=step, notes=[why], finished_at=datetime.now(UTC))
    result = result.model_copy(update={"host": me, "step": step})
    if result.finished_at is None:
        result.finished_at = datetime.now(UTC)
    # The plan has run: never run it again because Redis blinked. Wait for Redis instead.
    _audit(rt, investigation_id, result, asked_by)
    outcome = _patiently(lambda: rt.store.record_result(investigation_id, result))
    log.info(
        "run_plan %s step %s on %s took %.2f s (join %s)",
        investigation_id,
        step,
        me,
        time.monotonic() - started,
        outcome,
    )
    if outcome == 1:
        advance_closed_step(rt, investigation_id, step)
    return result


def _approved_by(rt: Runtime, investigation_id: str, command: CommandResult) -> str:
    """Who let a command run: the policy, or the responder whose decision the host read."""
    if command.verdict == "allow":
        return "policy"
    if not command.ran:
        return ""
    from worker.loop.approver_redis import read_decision

    try:
        decision = read_decision(rt.store.client, investigation_id, command.id)
    except Exception as exc:  # the audit must not lose the entry over this lookup
        log.warning("audit %s %s: approver unknown: %s", investigation_id, command.id, exc)
        return "unknown approver"
    return decision.by if decision is not None and decision.approved else ""


def _audit(rt: Runtime, investigation_id: str, result: PlanResult, asked_by: str) -> None:
    entries: list[AuditEntry] = []
    for command in result.command_results.values():
        entries.append(
            AuditEntry(
                investigation_id=investigation_id,
                step=result.step,
                host=result.host,
                kind="command",
                id=command.id,
                argv=command.command,
                verdict=command.verdict,
                ran=command.ran,
                exit_code=command.exit_code,
                error=command.note if not command.ran else "",
                duration_s=command.duration_s,
                sandbox=command.sandbox,
                asked_by=asked_by,
                approved_by=_approved_by(rt, investigation_id, command),
            )
        )
    for key, probe in result.ebpf_results.items():
        entries.append(
            AuditEntry(
                investigation_id=investigation_id,
                step=result.step,
                host=result.host,
                kind="probe",
                id=key,
                argv=f"{probe.probe or probe.program_name} {probe.resolved_from}".strip(),
                verdict="allow",
                ran=probe.error is None,
                error=probe.error or "",
                duration_s=probe.duration_s,
                asked_by=asked_by,
                approved_by="catalog",
            )
        )
    try:
        _patiently(lambda: rt.store.audit(*entries))
    except StoreUnavailable as exc:
        for entry in entries:
            log.error("audit entry lost (%s): %s", exc, entry.model_dump_json())


T = TypeVar("T")
REDIS_PATIENCE_S = 60.0


def wait_for_redis(rt: Runtime, patience_s: float = REDIS_PATIENCE_S) -> bool:
    """Block until Redis answers (True) or `patience_s` passes (False)."""
    try:
        _patiently(rt.store.ping, patience_s)
    except StoreUnavailable:
        return False
    return True


def _publish_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    return (OperationalError, StoreUnavailable, ConnectionError, TimeoutError)


def _patiently(
    write: Callable[[], T],
    patience_s: float = REDIS_PATIENCE_S,
    exceptions: tuple[type[BaseException], ...] = (StoreUnavailable,),
) -> T:
    """Run a Redis write (or publish), retrying while Redis is unreachable for `patience_s`."""
    give_up = time.monotonic() + patience_s
    pause = 0.25
    while True:
        try:
            return write()
        except exceptions as exc:
            if time.monotonic() + pause > give_up:
                raise
            log.warning("Redis unavailable (%s); retrying in %.1f s", exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


# ---------------------------------------------------------------------------------------
# the CLI side: start through the broker and follow the progress stream
# ---------------------------------------------------------------------------------------
class FollowError(RuntimeError):
    """Following an investigation failed; the message is for the person at the terminal."""


def follow(
    rt: Runtime,
    investigation_id: str,
    on_event: Callable[[ProgressEvent], None],
    *,
    timeout_s: float,
    redis_patience_s: float = 60.0,
) -> Investigation:
    """Feed progress events to `on_event` until the investigation is done; return it.

    A Redis outage is reported once as a Notice and waited out for `redis_patience_s`; state
    lost in the outage (Redis restarted without persistence) is a `FollowError`.
    """
    after = "0-0"
    deadline = time.monotonic() + timeout_s
    outage_since: float | None = None
    last_check = 0.0
    resolution_seen = False
    while True:
        if time.monotonic() > deadline:
            raise FollowError(
                f"investigation {investigation_id} did not finish within {timeout_s:.0f} s; "
                "are the control and host workers running? (`bpfsleuth hosts`)"
            )
        try:
            # after the resolution event the final state is one write away: poll without
            # blocking (Redis times blocking reads out at its `hz` tick, 100 ms by default)
            if resolution_seen:
                time.sleep(0.005)
            block_ms = None if resolution_seen else 1000
            events = rt.store.read_progress(investigation_id, after, block_ms=block_ms)
            if outage_since is not None:
                on_event(
                    Notice(
                        investigation_id=investigation_id,
                        message=f"Redis is back after {time.monotonic() - outage_since:.1f} s",
                    )
                )
                outage_since = None
            for entry_id, event in events:
                after = entry_id
                on_event(event)
                resolution_seen = resolution_seen or isinstance(event, ResolutionReached)
            if resolution_seen or time.monotonic() - last_check > 2.0:
                last_check = time.monotonic()
                inv = rt.store.load(investigation_id).investigation
                if inv.done:
                    return inv
        except StoreUnavailable as exc:
            if outage_since is None:
                outage_since = time.monotonic()
                on_event(
                    Notice(
                        investigation_id=investigation_id,
                        message=f"lost Redis ({exc}); waiting up to {redis_patience_s:.0f} s",
                    )
                )
            elif time.monotonic() - outage_since > redis_patience_s:
                raise FollowError(
                    f"Redis at {rt.store.url} has been unreachable for {redis_patience_s:.0f} s; "
                    f"investigation {investigation_id} is stuck until it is back"
                ) from exc
            time.sleep(0.5)
        except InvestigationNotFound as exc:
            raise FollowError(str(exc)) from exc


def run_via_celery(
    symptom: str,
    hosts: list[str],
    on_event: Callable[[ProgressEvent], None],
    *,
    timeout_s: float | None = None,
    asked_by: str = "",
    budgets: Budgets | None = None,
    flow: str | None = None,
) -> Investigation:
    """`bpfsleuth diagnose --via celery`: start through the broker, follow, return the result.

    Raises `HostNotLive` (no worker for a named host) or `FollowError` with a clear message.
    """
    rt = runtime()
    try:
        rt.store.ping()
    except StoreUnavailable as exc:
        raise FollowError(str(exc)) from exc
    inv = start_investigation(rt, symptom, hosts, asked_by=asked_by, budgets=budgets, flow=flow)
    limit = timeout_s if timeout_s is not None else inv.budgets.max_wall_s + 120.0
    return follow(rt, inv.id, on_event, timeout_s=limit)


__all__ = [
    "FollowError",
    "HostNotLive",
    "Runtime",
    "advance_closed_step",
    "advance_investigation",
    "await_step",
    "build_runtime",
    "dispatch_step",
    "follow",
    "run_plan_here",
    "run_via_celery",
    "runtime",
    "send_advance",
    "start_investigation",
    "start_one_step",
    "wait_for_redis",
]
