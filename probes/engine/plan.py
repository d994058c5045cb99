"""Which attach points a probe will use on this host, and the -D defines that tell its C."""

from __future__ import annotations

from pydantic import BaseModel, Field

from probes.capabilities import HostCapabilities, cached_capabilities
from probes.engine.tracefs import tracepoint_exists, tracepoint_fields, tracepoint_offsets
from probes.models import ParamValue
from probes.params import ProbeRequestError, validate_params
from probes.spec import AttachPoint, ProbeSpec

_PROGRAM_TYPE = {
    "tracepoint": "tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "uprobe": "uprobe",
    "uretprobe": "uprobe",
    "perf_event": "perf_event",
}


class AttachChoice(BaseModel):
    """An attach point picked for a role, with its concrete target."""

    role: str
    kind: str
    target: str
    fn: str | None = None
    required: bool = True
    sample_freq: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.target}"


class AttachPlan(BaseModel):
    available: bool
    reason: str = ""
    chosen: list[AttachChoice] = Field(default_factory=list)
    skipped: list[str] = Field(
        default_factory=list, description="Optional roles left out, and why."
    )
    defines: list[str] = Field(default_factory=list)


def _macro(*parts: str) -> str:
    return "_".join(p.upper() for p in parts)


def _point_problem(point: AttachPoint, target: str, caps: HostCapabilities | None) -> str | None:
    """Why this point cannot be used here, or None when it can."""
    ptype = _PROGRAM_TYPE[point.kind]
    if caps is not None and caps.program_types and not caps.supports(ptype):
        return f"{point.kind} programs are not supported on this kernel"
    if point.kind == "tracepoint":
        category, _, name = target.partition(":")
        if not tracepoint_exists(category, name):
            return f"tracepoint {category}:{name} does not exist"
        needed = set(point.fields) | set(point.offset_fields)
        missing = sorted(needed - tracepoint_fields(category, name))
        if missing:
            return f"tracepoint {category}:{name} lacks field(s) {', '.join(missing)}"
    return None


def _point_defines(point: AttachPoint, target: str) -> list[str]:
    if point.kind != "tracepoint":
        return [f"-DHAVE_{_macro(point.kind, point.fn or target)}=1"]
    category, _, name = target.partition(":")
    defines = [f"-DHAVE_TP_{_macro(category, name)}=1"]
    present = tracepoint_fields(category, name)
    defines += [
        f"-DHAVE_FIELD_{_macro(category, name, field)}=1"
        for field in point.optional_fields
        if field in present
    ]
    offsets = tracepoint_offsets(category, name)
    defines += [
        f"-DTPOFF_{_macro(category, name, field)}={offsets[field][0]}"
        for field in point.offset_fields
    ]
    return defines


def plan_attach(
    spec: ProbeSpec,
    params: dict[str, ParamValue],
    caps: HostCapabilities | None = None,
    *,
    use_cache: bool = True,
) -> AttachPlan:
    """Per role, the first attach point this host has; unavailable if a required role has none."""
    if caps is None and use_cache:
        caps = cached_capabilities()
    plan = AttachPlan(available=True)
    switches_on: set[str] = set()  # switched-on parameters with a role this host has
    missing: dict[str, list[str]] = {}  # switched-on parameters' roles this host lacks
    for group in spec.attach:
        switch = group.switch if group.switch and params.get(group.switch) is True else None
        problems = []
        for point in group.any_of:
            target = str(params[point.target_param]) if point.target_param else point.target
            problem = _point_problem(point, target, caps)
            if problem is not None:
                problems.append(problem)
                continue
            freq = point.sample_freq
            if point.sample_freq_param is not None:
                freq = int(params[point.sample_freq_param])
            plan.chosen.append(
                AttachChoice(
                    role=group.role,
                    kind=point.kind,
                    target=target,
                    fn=point.fn,
                    required=group.required,
                    sample_freq=freq,
                )
            )
            plan.defines += _point_defines(point, target)
            if switch:
                switches_on.add(switch)
            break
        else:
            why = "; ".join(problems)
            if group.required:
                return AttachPlan(available=False, reason=f"{group.role}: {why}")
            plan.skipped.append(f"{group.role}: {why}")
            if switch:
                missing.setdefault(switch, []).append(f"{group.role}: {why}")
    if missing and not switches_on:
        # every switch that is on lacks its roles here: such a run would trace nothing
        needs = "; ".join(f"{name} needs {', '.join(why)}" for name, why in missing.items())
        return AttachPlan(available=False, reason=f"nothing to trace here: {needs}")
    return plan


class Availability(BaseModel):
    """Whether a probe can run on this host with its defaults, and what it would attach to."""

    probe: str
    available: bool
    reason: str = ""
    attach_points: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


def availability(spec: ProbeSpec, caps: HostCapabilities | None = None) -> Availability:
    """Can `spec` run here with default parameters? (A probe whose target is a required
    parameter, like the generic tracepoint probe, is checked for its program type only.)"""
    if caps is None:
        caps = cached_capabilities()
    needs_target = any(p.type == "tracepoint" and p.default is None for p in spec.params.values())
    if needs_target:
        kinds = {point.kind for group in spec.attach for point in group.any_of}
        missing = [
            k
            for k in sorted(kinds)
            if caps is not None and caps.program_types and not caps.supports(_PROGRAM_TYPE[k])
        ]
        if missing:
            return Availability(
                probe=spec.name, available=False, reason=f"no {', '.join(missing)} programs"
            )
        return Availability(probe=spec.name, available=True, reason="any existing tracepoint")
    try:
        params = validate_params(spec, {})
    except ProbeRequestError as exc:
        return Availability(probe=spec.name, available=False, reason=str(exc))
    plan = plan_attach(spec, params, caps)
    return Availability(
        probe=spec.name,
        available=plan.available,
        reason=plan.reason,
        attach_points=[c.label for c in plan.chosen],
        skipped=plan.skipped,
    )
