"""The JSON protocol between the model, the workers and the bot (docs/architecture.md §2).

Model -> worker: a `Diagnostic` (commands and eBPF programs to run) or a `Resolution`.
Worker -> model: a `PlanResult` (command results and eBPF results, keyed like the seed).

Everything the model writes is untrusted: these models bound every field, and
`parse_model_reply` turns any text into exactly one of them or a short, precise error that can
be sent back to the model for one repair.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from probes.models import MAX_PROBE_DURATION_S, ParamValue, ProbeFilters, ProbeResult

Verdict = Literal["allow", "needs_approval", "deny"]
Confidence = Literal["High", "Medium", "Low"]
ProgramType = Literal["tracepoint", "kprobe", "kretprobe", "uprobe", "catalog"]

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_FLOW_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_COMMANDS_PER_STEP = 12
MAX_PROGRAMS_PER_STEP = 8


class CommandRequest(BaseModel):
    """One shell-like command the model wants run; it only ever runs through the policy."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=_ID_PATTERN, description="Short unique id, e.g. 'db_connections'.")
    command: str = Field(min_length=1, max_length=2000, description="e.g. 'ss -tlnp | grep :5432'")
    description: str = Field(default="", max_length=500)


class EbpfProgramRequest(BaseModel):
    """An eBPF program request in the seed's form; the probe resolver maps it to a catalog probe."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=_ID_PATTERN, description="Caller's name for this run.")
    type: ProgramType = Field(description="tracepoint|kprobe|kretprobe|uprobe|catalog")
    target: str = Field(
        min_length=1,
        max_length=128,
        description="Kernel function (kprobe), category/name (tracepoint) or a catalog probe.",
    )
    duration: float = Field(ge=1, le=MAX_PROBE_DURATION_S, description="Seconds, 1-60.")
    filters: ProbeFilters = Field(default_factory=ProbeFilters)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    description: str = Field(default="", max_length=500)

    @field_validator("filters", mode="before")
    @classmethod
    def _null_filters(cls, value: Any) -> Any:
        return {} if value is None else value


class Diagnostic(BaseModel):
    """The model asks for more evidence."""

    model_config = ConfigDict(extra="ignore")

    response_type: Literal["diagnostic"] = "diagnostic"
    reasoning: str = Field(default="", max_length=4000)
    commands: list[CommandRequest] = Field(default_factory=list, max_length=MAX_COMMANDS_PER_STEP)
    ebpf_programs: list[EbpfProgramRequest] = Field(
        default_factory=list, max_length=MAX_PROGRAMS_PER_STEP
    )
    flow: str | None = Field(
        default=None,
        pattern=_FLOW_PATTERN,
        description="A flow (named runbook) to run: its commands and probes join this step's.",
    )

    @model_validator(mode="after")
    def _asks_for_something_unique(self) -> Diagnostic:
        if not self.commands and not self.ebpf_programs and not self.flow:
            raise ValueError(
                "a diagnostic must request at least one command, eBPF program or flow; "
                "to finish, send a resolution instead"
            )
        for kind, ids in (
            ("command id", [c.id for c in self.commands]),
            ("eBPF program name", [p.name for p in self.ebpf_programs]),
        ):
            seen: set[str] = set()
            for item in ids:
                if item in seen:
                    raise ValueError(f"{kind} {item!r} is used twice; ids must be unique")
                seen.add(item)
        return self


class Resolution(BaseModel):
    """The model's final answer."""

    model_config = ConfigDict(extra="ignore")

    response_type: Literal["resolution"] = "resolution"
    root_cause: str = Field(min_length=1, max_length=4000)
    resolution_plan: str = Field(min_length=1, max_length=6000)
    confidence: Confidence
    ebpf_evidence: str = Field(default="", max_length=4000)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence_any_case(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"high", "medium", "low"}:
            return value.strip().capitalize()
        return value


ModelReply = Annotated[Diagnostic | Resolution, Field(discriminator="response_type")]
_REPLY_ADAPTER: TypeAdapter[Diagnostic | Resolution] = TypeAdapter(ModelReply)


class CommandResult(BaseModel):
    """What happened to one requested command."""

    id: str
    command: str
    verdict: Verdict
    reason: str = ""
    ran: bool = False
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    timed_out: bool = False
    duration_s: float = 0.0
    note: str = Field(default="", description="Why it did not run, when it did not.")
    sandbox: str = Field(
        default="",
        description="Sandbox layers the command ran under, e.g. "
        "`seccomp+landlock(abi 7)+caps(dac_read_search)+rlimits+nnp`; `none` when not run.",
    )


class EbpfResult(ProbeResult):
    """The seed's eBPF result plus attach point used, aggregates, dropped count and error."""


class PlanResult(BaseModel):
    """Everything one host saw for one step; keys as in the seed (`<name>_<ts>` for eBPF)."""

    host: str = ""
    step: int = 0
    command_results: dict[str, CommandResult] = Field(default_factory=dict)
    ebpf_results: dict[str, EbpfResult] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None


class ReplyError(ValueError):
    """A model reply that is not exactly one valid protocol object; `str()` is fit for the model."""


_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_MAX_ERRORS_SHOWN = 4


def _balanced_end(text: str, start: int) -> int:
    """Index just past the brace that closes the one at `start` (strings respected), or len."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


class _Scan(BaseModel):
    objects: list[Any] = Field(default_factory=list)
    syntax_error: str | None = None


def _json_objects(text: str) -> _Scan:
    """Every top-level JSON object in `text`, in order (prose and fences around them ignored).

    An object nested in a larger, broken one is not taken for the reply: the broken one's
    syntax error is reported instead.
    """
    decoder = json.JSONDecoder()
    scan = _Scan()
    index = 0
    while True:
        start = text.find("{", index)
        if start < 0:
            return scan
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if scan.syntax_error is None:
                scan.syntax_error = (
                    f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                )
            index = _balanced_end(text, start)
            continue
        if isinstance(value, dict):
            scan.objects.append(value)
        index = end


def _candidates(text: str) -> _Scan:
    fenced = [m.group(1) for m in _FENCE_RE.finditer(text)]
    scans = [_json_objects(block) for block in fenced]
    if any(scan.objects for scan in scans):
        return _Scan(
            objects=[obj for scan in scans for obj in scan.objects],
            syntax_error=next((s.syntax_error for s in scans if s.syntax_error), None),
        )
    return _json_objects(text)


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"diagnostic", "resolution"} and not out:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "reply"


def format_validation_error(exc: ValidationError) -> str:
    """A short, precise description of what is wrong, one clause per field."""
    parts = []
    for error in exc.errors()[:_MAX_ERRORS_SHOWN]:
        where = _format_location(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    more = len(exc.errors()) - _MAX_ERRORS_SHOWN
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _infer_response_type(obj: dict[str, Any]) -> dict[str, Any]:
    if "response_type" in obj:
        return obj
    if "root_cause" in obj:
        return {**obj, "response_type": "resolution"}
    if "commands" in obj or "ebpf_programs" in obj or "flow" in obj:
        return {**obj, "response_type": "diagnostic"}
    return obj


FlowCheck = Callable[[str], str | None]
"""Why a flow the model named cannot run here (unknown or broken), or None: the flows package
supplies one (`worker.flows.loader.flow_problem`); the protocol itself knows no flows."""


def parse_model_object(obj: Any, flow_check: FlowCheck | None = None) -> Diagnostic | Resolution:
    """Validate an already-decoded object (e.g. a tool call's input). With `flow_check`, a
    diagnostic naming a flow that cannot run here is refused too (the check belongs to parsing
    the model's text only: stored replies stay valid when flows change)."""
    if not isinstance(obj, dict):
        raise ReplyError(f"expected a JSON object, got {type(obj).__name__}")
    obj = _infer_response_type(obj)
    kind = obj.get("response_type")
    if kind not in {"diagnostic", "resolution"}:
        raise ReplyError(
            f"response_type must be 'diagnostic' or 'resolution', got {kind!r}"
            if "response_type" in obj
            else "missing response_type ('diagnostic' or 'resolution')"
        )
    try:
        reply = _REPLY_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise ReplyError(f"invalid {kind}: {format_validation_error(exc)}") from None
    if isinstance(reply, Diagnostic) and reply.flow is not None and flow_check is not None:
        problem = flow_check(reply.flow)
        if problem:
            raise ReplyError(f"invalid diagnostic: flow: {problem}")
    return reply


def parse_model_reply(text: str, flow_check: FlowCheck | None = None) -> Diagnostic | Resolution:
    """Exactly one protocol object out of a model's reply, or a `ReplyError`.

    Code fences and prose around the object are tolerated; zero or several objects are not.
    """
    if not text or not text.strip():
        raise ReplyError("empty reply; reply with exactly one JSON object")
    scan = _candidates(text)
    objects = scan.objects
    if not objects:
        raise ReplyError(
            scan.syntax_error or "no JSON object found; reply with exactly one JSON object"
        )
    if len(objects) > 1:
        raise ReplyError(
            f"found {len(objects)} JSON objects; reply with exactly one "
            "(a diagnostic or a resolution)"
        )
    return parse_model_object(objects[0], flow_check)


def reply_json_schema() -> dict[str, Any]:
    """JSON Schema of what the model may send (tool input / structured output)."""
    return _REPLY_ADAPTER.json_schema()


def protocol_json_schema() -> dict[str, Any]:
    """JSON Schema of the whole protocol: model replies and the results sent back."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "bpfsleuth protocol",
        "model_reply": reply_json_schema(),
        "plan_result": PlanResult.model_json_schema(),
    }
