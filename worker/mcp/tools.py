"""The MCP tools as plain typed functions: hosts, probes, flows, commands, and their audit.

Each function takes an `Asker` (who is calling, for the audit) and typed arguments, and returns a
pydantic model whose size is bounded like the loop's results (`worker.loop.bounds`). A request
that cannot run raises `ToolRefused` with a message fit for the caller, before anything runs.

Where things run: with no host (or this host's name), probes and commands run here, in the
process serving MCP, through the same runner (`probes.engine.runner`) and policy + executor
(`worker.host.executor.run_command`) the loop uses, and a flow runs here (`worker.flows.run`). On
another live host (the fleet in REDIS_URL, as for `bpfsleuth diagnose`), a probe or a command
runs as one plan step through that host's worker: the loop's `run_plan` task, join, step
deadline and audit (`worker.distributed.control.start_one_step`); a flow runs as a flow
investigation through Celery (`worker.distributed.follow.run_via_celery`), the way `bpfsleuth
diagnose --flow ... --via celery` does. A command the policy denies or would hold for approval
is refused here, before anything is sent.

Audit: every probe and command run (and every command refused by the policy) is one
`AuditEntry` with `asked_by="mcp:<client name>"`, appended to the Redis audit stream when
REDIS_URL reaches a Redis, else one JSON line in `BPFSLEUTH_MCP_AUDIT_LOG`; a run on another host
is recorded by that host's worker, like any plan step.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from probes.capabilities import detect_capabilities
from probes.catalog import load_catalog
from probes.engine.plan import availability
from probes.engine.runner import prepare, run_prepared
from probes.models import ParamValue, ProbeFilters, ProbeRequest
from probes.params import ProbeRequestError, validate_params
from probes.resolver import nearest_names
from worker.distributed.control import await_step, start_one_step
from worker.distributed.follow import FollowError, run_via_celery
from worker.distributed.registry import HostNotLive, Registry
from worker.distributed.runtime import runtime
from worker.distributed.store import AuditEntry, Store, StoreError
from worker.flows.loader import load_flows, unknown_flow_message
from worker.flows.run import run_flow as run_flow_here
from worker.host import executor
from worker.host.redact import redact
from worker.loop.bounds import ResultLimits, bound_command, bound_probe, cut
from worker.mcp.settings import McpSettings
from worker.policy import evaluate
from worker.protocol import (
    CommandRequest,
    CommandResult,
    EbpfProgramRequest,
    EbpfResult,
    PlanResult,
    Resolution,
)
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from probes.catalog import Catalog
    from probes.spec import ProbeSpec
    from worker.distributed.runtime import Runtime

log = logging.getLogger(__name__)
LINE_CHARS = 400
MAX_FINDINGS = 5
LOCAL_ALIASES = {"", "localhost", "local", "this"}


class ToolProblem(ValueError):
    """A call that did not give a result; `str()` says why, for the caller."""


class ToolRefused(ToolProblem):
    """A call that cannot run; nothing ran."""


class ToolFailed(ToolProblem):
    """A call that was sent but brought no result back (e.g. the host did not answer)."""


# ---------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------
class HostInfo(BaseModel):
    name: str
    this_host: bool = Field(description="The host serving this MCP server.")
    kernel: str = ""
    arch: str = ""
    last_seen_s: float | None = Field(default=None, description="Seconds since its heartbeat.")
    runs: list[str] = Field(description="Which tools can target it.")


class HostList(BaseModel):
    hosts: list[HostInfo]
    fleet: str = Field(description="Whether the live workers in Redis could be listed, and why.")


class ProbeInfo(BaseModel):
    name: str
    description: str
    overhead: str
    available: bool = Field(description="Whether it can run on this host.")
    reason: str = ""
    answers: list[str] = Field(default_factory=list)
    duration_default_s: float
    duration_max_s: float
    source: str


class ProbeList(BaseModel):
    probes: list[ProbeInfo]
    not_runnable: dict[str, str] = Field(
        default_factory=dict, description="Catalog entries that are broken or unapproved, and why."
    )


class ProbeDescription(BaseModel):
    name: str
    source: str
    spec: dict[str, Any]
    here: dict[str, Any] = Field(description="Whether and where it would attach on this host.")


class FlowInfo(BaseModel):
    name: str
    description: str
    categories: list[str]
    cues: list[str]
    steps: int
    source: str


class FlowList(BaseModel):
    flows: list[FlowInfo]
    broken: dict[str, str] = Field(default_factory=dict)


class FlowDescription(BaseModel):
    name: str
    description: str
    source: str
    steps: list[dict[str, Any]]


Via = Literal["local", "celery"]


class ProbeRun(BaseModel):
    host: str
    via: Via = Field(description="Run here, or through the host's worker (Celery).")
    result: EbpfResult = Field(description="Bounded and redacted like the loop's probe results.")
    run_id: str = Field(description="The audit entries' investigation_id.")
    audit: str = Field(description="Where this run was recorded.")


class CommandRun(BaseModel):
    host: str
    via: Via
    result: CommandResult = Field(description="Bounded and redacted like the loop's results.")
    run_id: str
    audit: str


class FlowOutput(BaseModel):
    name: str
    type: str
    line: str


class FlowFinding(BaseModel):
    analyzer: str
    score: float
    root_cause: str
    culprit: str = ""


class FlowRunResult(BaseModel):
    host: str
    flow: str
    via: Literal["local", "celery"]
    outputs: list[FlowOutput] = Field(default_factory=list)
    findings: list[FlowFinding] = Field(default_factory=list)
    resolution: Resolution | None = None
    investigation_id: str = ""
    audit: str = ""


# ---------------------------------------------------------------------------------------
# context: who asks, where the audit goes
# ---------------------------------------------------------------------------------------
@dataclass
class Toolbox:
    """What the tools share: settings, the local host name, and the audit sink."""

    settings: McpSettings = field(default_factory=McpSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    limits: ResultLimits = field(default_factory=ResultLimits)

    @property
    def host(self) -> str:
        return self.worker.host_name

    def is_here(self, host: str) -> bool:
        return host.strip().lower() in LOCAL_ALIASES or host == self.host

    def _redis(self) -> redis.Redis:
        timeout = self.settings.redis_probe_timeout_s
        return redis.Redis.from_url(
            self.worker.redis_url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout * 3,
            decode_responses=True,
        )

    def audit(self, entry: AuditEntry) -> str:
        """Record `entry` in Redis, or failing that in the local file; say where."""
        try:
            client = self._redis()
            try:
                Store(self.worker.redis_url, ttl_s=3600, client=client).audit(entry)
            finally:
                client.close()
            return f"redis audit stream ({self.worker.redis_url})"
        except (StoreError, redis.exceptions.RedisError) as exc:
            log.info("audit to Redis failed (%s); writing %s", exc, self.settings.audit_log)
        path = self.settings.audit_log
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(entry.model_dump_json() + "\n")
        except OSError as exc:
            log.error("audit entry lost (%s): %s", exc, entry.model_dump_json())
            return f"lost: {exc}"
        return f"local audit log {path}"


def new_call_id() -> str:
    return f"mcp-{uuid.uuid4().hex[:12]}"


def asker_name(client_name: str | None) -> str:
    name = (client_name or "unknown client").strip()[:64] or "unknown client"
    return f"mcp:{name}"


# ---------------------------------------------------------------------------------------
# hosts
# ---------------------------------------------------------------------------------------
def list_hosts(box: Toolbox) -> HostList:
    caps = detect_capabilities()
    hosts = [
        HostInfo(
            name=box.host,
            this_host=True,
            kernel=caps.kernel,
            arch=caps.arch,
            runs=["run_probe", "run_command", "run_flow"],
        )
    ]
    try:
        client = box._redis()
        try:
            live = Registry(client, box.worker.redis_url).live_hosts()
        finally:
            client.close()
        fleet = f"{len(live)} live worker host(s) in Redis ({box.worker.redis_url})"
    except (StoreError, redis.exceptions.RedisError) as exc:
        live = []
        fleet = f"{exc}; listing this host only"
    now = time.time()
    for record in live:
        if record.name == box.host:
            hosts[0].last_seen_s = round(record.age_s(now), 1)
            continue
        hosts.append(
            HostInfo(
                name=record.name,
                this_host=False,
                kernel=record.capabilities.kernel,
                arch=record.capabilities.arch,
                last_seen_s=round(record.age_s(now), 1),
                runs=["run_probe", "run_command", "run_flow"],
            )
        )
    return HostList(hosts=hosts, fleet=fleet)


def _fleet(box: Toolbox, host: str) -> Runtime:
    """The distributed runtime (the settings `bpfsleuth diagnose` uses), Redis answering."""
    rt = runtime()
    try:
        rt.store.ping()
    except StoreError as exc:
        raise ToolRefused(
            f"{host!r} is not this host ({box.host}) and the fleet cannot be reached: {exc}"
        ) from None
    return rt


def _one_step(
    box: Toolbox,
    asker: str,
    host: str,
    what: str,
    *,
    commands: list[CommandRequest] | None = None,
    ebpf_programs: list[EbpfProgramRequest] | None = None,
) -> tuple[str, PlanResult]:
    """Run one plan step on live `host` through its worker; its id and that host's result."""
    rt = _fleet(box, host)
    try:
        meta = start_one_step(
            rt, host, asked_by=asker, what=what, commands=commands, ebpf_programs=ebpf_programs
        )
    except HostNotLive as exc:
        raise ToolRefused(str(exc)) from None
    except StoreError as exc:
        raise ToolRefused(f"could not start the run on {host}: {exc}") from None
    try:
        outcome = await_step(rt, meta)
    except StoreError as exc:
        raise ToolFailed(f"lost the run on {host} ({meta.investigation_id}): {exc}") from None
    result = next(r for r in outcome.results if r.host == host)
    if host in outcome.missing_hosts:
        live = ", ".join(sorted(r.name for r in rt.registry.live_hosts())) or "none"
        raise ToolFailed(
            f"host {host} did not answer within {meta.deadline_s:.0f} s (its worker is stuck "
            f"or gone; live hosts now: {live}); run {meta.investigation_id}"
        )
    return meta.investigation_id, result


def _fleet_audit(box: Toolbox) -> str:
    return f"redis audit stream ({box.worker.redis_url}), by the host's worker"


# ---------------------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------------------
def list_probes(box: Toolbox) -> ProbeList:
    catalog = load_catalog()
    probes = []
    for name in catalog.names():
        spec = catalog.probes[name]
        here = availability(spec)
        probes.append(
            ProbeInfo(
                name=name,
                description=spec.description,
                overhead=spec.overhead,
                available=here.available,
                reason=here.reason,
                answers=list(spec.answers),
                duration_default_s=spec.duration.default,
                duration_max_s=spec.duration.max,
                source=catalog.source_of(name),
            )
        )
    return ProbeList(probes=probes, not_runnable={**catalog.broken, **catalog.blocked})


def describe_probe_spec(catalog: Catalog, name: str) -> ProbeSpec:
    """The catalog's spec of `name`, or `ToolRefused` saying why not (with the nearest names)."""
    spec = catalog.get(name)
    if spec is None:
        if name in catalog.blocked:
            raise ToolRefused(f"{name}: {catalog.blocked[name]}")
        near = nearest_names(name, catalog.names())
        raise ToolRefused(
            f"no probe named {name!r}" + (f"; nearest: {', '.join(near)}" if near else "")
        )
    return spec


def describe_probe(box: Toolbox, name: str) -> ProbeDescription:
    catalog = load_catalog()
    spec = describe_probe_spec(catalog, name)
    return ProbeDescription(
        name=name,
        source=catalog.source_of(name),
        spec=spec.model_dump(mode="json"),
        here=availability(spec).model_dump(mode="json"),
    )


def _redactor() -> Callable[[str], str]:
    redactor: Callable[[str], str] = redact
    return redactor


def run_probe(
    box: Toolbox,
    asker: str,
    *,
    probe: str,
    duration_s: float | None = None,
    host: str = "",
    pid: int | None = None,
    comm: str | None = None,
    params: dict[str, ParamValue] | None = None,
) -> ProbeRun:
    """Run one catalog probe for `duration_s` (its default when None), here or on `host`."""
    catalog = load_catalog()
    spec = describe_probe_spec(catalog, probe)
    try:
        request = ProbeRequest(
            probe=probe,
            label=probe,
            duration_s=duration_s if duration_s is not None else spec.duration.default,
            filters=ProbeFilters(pid=pid, comm=comm),
            params=params or {},
        )
        if box.is_here(host):
            prepared = prepare(request, catalog=catalog)
        else:
            # what the host checks too, less its kernel's part (that is the host's answer)
            if request.duration_s > spec.duration.max:
                raise ProbeRequestError(
                    f"probe {probe} runs at most {spec.duration.max:g}s, "
                    f"asked for {request.duration_s:g}s"
                )
            validate_params(spec, request.params)
            program = EbpfProgramRequest(
                name=probe,
                type="catalog",
                target=probe,
                duration=request.duration_s,
                filters=request.filters,
                params=request.params,
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ToolRefused(
            f"invalid request: {first['loc'][-1] if first['loc'] else ''}: {first['msg']}"
        ) from None
    except ProbeRequestError as exc:
        raise ToolRefused(f"cannot run: {exc}") from None
    if not box.is_here(host):
        run_id, plan_result = _one_step(
            box, asker, host, f"run_probe {probe} for {asker}", ebpf_programs=[program]
        )
        if not plan_result.ebpf_results:
            raise ToolFailed(f"{host}: " + ("; ".join(plan_result.notes) or "no probe result"))
        remote = next(iter(plan_result.ebpf_results.values()))
        return ProbeRun(
            host=host, via="celery", result=remote, run_id=run_id, audit=_fleet_audit(box)
        )
    here = box.host
    call_id = new_call_id()
    started = time.monotonic()
    raw = run_prepared([prepared])[0]
    result = bound_probe(EbpfResult.model_validate(raw.model_dump()), box.limits, _redactor())
    filters = request.filters.model_dump(exclude_none=True)
    argv = " ".join(
        [probe, f"duration={request.duration_s:g}s"]
        + [f"{k}={v}" for k, v in filters.items()]
        + [f"{k}={v}" for k, v in prepared.params.items()]
    )
    where = box.audit(
        AuditEntry(
            investigation_id=call_id,
            step=0,
            host=here,
            kind="probe",
            id=probe,
            argv=argv,
            verdict="allow",
            ran=result.error is None,
            error=result.error or "",
            duration_s=round(time.monotonic() - started, 3),
            asked_by=asker,
            approved_by="catalog",
        )
    )
    return ProbeRun(host=here, via="local", result=result, run_id=call_id, audit=where)


# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------
def run_command(
    box: Toolbox, asker: str, *, command: str, host: str = "", timeout_s: float | None = None
) -> CommandRun:
    """Run `command` through the policy and the executor, here or on live `host` (through its
    worker); refuse what the policy denies or would hold for approval, before it is sent."""
    call_id = new_call_id()
    try:
        request = CommandRequest(id=call_id, command=command)
    except ValidationError as exc:
        raise ToolRefused(f"invalid command: {exc.errors()[0]['msg']}") from None
    if not box.is_here(host):
        return _run_command_remote(box, asker, request, host=host, timeout_s=timeout_s)
    raw = executor.run_command(request, approved=False, timeout_s=timeout_s)
    result = bound_command(raw, box.limits, _redactor())
    where = box.audit(_command_audit_entry(call_id, box.host, asker, result))
    _refuse_unless_allowed(result, box.host)
    return CommandRun(host=box.host, via="local", result=result, run_id=call_id, audit=where)


def _command_audit_entry(
    call_id: str, host: str, asker: str, result: CommandResult, name: str | None = None
) -> AuditEntry:
    """A command run over MCP (`name`: a flow's step; else the call's id), approved by policy."""
    return AuditEntry.of_command(
        result,
        investigation_id=call_id,
        step=0,
        host=host,
        id=call_id if name is None else name,
        asked_by=asker,
        approved_by="policy" if result.verdict == "allow" else "",
    )


def _refuse_unless_allowed(result: CommandResult, host: str) -> None:
    if result.verdict == "deny":
        raise ToolRefused(f"denied by policy on {host}: {result.reason}; it did not run")
    if result.verdict != "allow":
        raise ToolRefused(
            f"needs approval on {host} ({result.reason}); approvals are not available over "
            "MCP, so it did not run: ask in Slack (/diagnose) where a responder can approve it"
        )


def _run_command_remote(
    box: Toolbox, asker: str, request: CommandRequest, *, host: str, timeout_s: float | None
) -> CommandRun:
    if timeout_s is not None:
        raise ToolRefused(
            f"timeout_s is for this host ({box.host}) only: on {host} the worker's own "
            "command timeout (BPFSLEUTH_COMMAND_TIMEOUT_S) applies; leave timeout_s out"
        )
    redact = _redactor()
    decision = evaluate(request.command)
    if decision.verdict != "allow":
        refused = CommandResult(
            id=request.id,
            command=redact(request.command),
            verdict=decision.verdict,
            reason=redact(decision.reason),
            note="refused over MCP before it was sent",
        )
        box.audit(_command_audit_entry(request.id, host, asker, refused))
        _refuse_unless_allowed(refused, host)
    run_id, plan_result = _one_step(
        box, asker, host, f"run_command for {asker}", commands=[request]
    )
    result = plan_result.command_results.get(request.id)
    if result is None:
        raise ToolFailed(f"{host}: " + ("; ".join(plan_result.notes) or "no command result"))
    if not result.ran and result.verdict != "allow":
        _refuse_unless_allowed(result, host)  # the host's policy saw more (e.g. a link)
    return CommandRun(
        host=host, via="celery", result=result, run_id=run_id, audit=_fleet_audit(box)
    )


# ---------------------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------------------
def list_flows(box: Toolbox) -> FlowList:
    flows = load_flows()
    return FlowList(
        flows=[
            FlowInfo(
                name=flow.name,
                description=flow.description,
                categories=list(flow.categories),
                cues=list(flow.cues),
                steps=len(flow.steps),
                source=flows.source_of(flow.name),
            )
            for flow in (flows.flows[n] for n in flows.names())
        ],
        broken=dict(flows.broken),
    )


def _flow(name: str) -> tuple[Any, str]:
    flows = load_flows()
    flow = flows.get(name)
    if flow is None:
        raise ToolRefused(unknown_flow_message(name, flows))
    return flow, flows.source_of(name)


def describe_flow(box: Toolbox, name: str) -> FlowDescription:
    flow, source = _flow(name)
    return FlowDescription(
        name=flow.name,
        description=flow.description,
        source=source,
        steps=[json.loads(step.model_dump_json(exclude_none=True)) for step in flow.steps],
    )


def run_flow(
    box: Toolbox, asker: str, *, flow: str, host: str = "", symptom: str = ""
) -> FlowRunResult:
    """Run a flow here, or on another live host through its Celery worker."""
    found, _source = _flow(flow)
    if not box.is_here(host):
        return _run_flow_remote(box, asker, flow=flow, host=host, symptom=symptom)

    started = time.monotonic()
    run = run_flow_here(found, host=box.host, symptom=symptom)
    outputs: list[FlowOutput] = []
    findings: list[FlowFinding] = []
    call_id = new_call_id()
    where = ""
    for name, saved in run.outputs.items():
        outputs.append(
            FlowOutput(name=name, type=saved.type, line=cut(saved.line(), LINE_CHARS)[0])
        )
        findings.extend(
            FlowFinding(
                analyzer=f.analyzer,
                score=f.score,
                root_cause=cut(f.root_cause, LINE_CHARS)[0],
                culprit=f.culprit[:200],
            )
            for f in saved.findings
        )
        entry = _flow_audit_entry(box, asker, call_id, name, saved)
        if entry is not None:
            where = box.audit(entry)
    findings.sort(key=lambda f: -f.score)
    log.info("flow %s ran here in %.1f s", flow, time.monotonic() - started)
    return FlowRunResult(
        host=box.host,
        flow=flow,
        via="local",
        outputs=outputs,
        findings=findings[:MAX_FINDINGS],
        investigation_id=call_id,
        audit=where,
    )


def _flow_audit_entry(
    box: Toolbox, asker: str, call_id: str, name: str, saved: Any
) -> AuditEntry | None:
    if saved.command is not None:
        command: CommandResult = saved.command
        return _command_audit_entry(call_id, box.host, asker, command, name)
    if saved.probe is not None:
        return AuditEntry.of_probe(
            saved.probe, investigation_id=call_id, step=0, host=box.host, id=name, asked_by=asker
        )
    return None


def _run_flow_remote(
    box: Toolbox, asker: str, *, flow: str, host: str, symptom: str
) -> FlowRunResult:
    try:
        inv = run_via_celery(
            symptom or f"run flow {flow}",
            [host],
            lambda _event: None,
            timeout_s=box.settings.flow_timeout_s,
            asked_by=asker,
            flow=flow,
        )
    except (HostNotLive, FollowError, StoreError) as exc:
        raise ToolRefused(str(exc)) from None
    return FlowRunResult(
        host=host,
        flow=flow,
        via="celery",
        resolution=inv.resolution,
        investigation_id=inv.id,
        audit=f"redis audit stream ({box.worker.redis_url}), by the host worker",
    )
