"""What a probe takes and what it returns.

These models are the probe engine's public contract. They know nothing of models, Celery or
Slack; `worker.protocol` embeds them in the JSON protocol spoken with the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

# A Linux comm is at most 15 bytes (TASK_COMM_LEN 16 with the NUL).
COMM_MAX_LEN = 15
PID_MAX = 4_194_304  # /proc/sys/kernel/pid_max upper bound on 64-bit kernels
MAX_PROBE_DURATION_S = 60.0
_COMM_RE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,14}$")

ParamValue = int | float | bool | str


class ProbeFilters(BaseModel):
    """Filters applied inside the kernel, before anything is counted."""

    model_config = ConfigDict(extra="forbid")

    pid: Annotated[int, Field(ge=1, le=PID_MAX)] | None = Field(
        default=None, description="Only events of this process (tgid)."
    )
    comm: str | None = Field(
        default=None,
        description="Only events of tasks whose comm is exactly this (max 15 printable ASCII).",
    )

    @field_validator("comm")
    @classmethod
    def _comm_is_a_comm(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > COMM_MAX_LEN:
            raise ValueError(
                f"comm is {len(value)} characters; a Linux comm is at most {COMM_MAX_LEN}"
            )
        if not _COMM_RE.match(value):
            raise ValueError("comm must be printable ASCII without leading space")
        return value


class ProbeRequest(BaseModel):
    """A request to run one catalog probe, after resolution (see `probes.resolver`)."""

    model_config = ConfigDict(extra="forbid")

    probe: str = Field(description="Catalog probe name, e.g. 'tcp_connect'.")
    label: str = Field(default="", description="Caller's name for this run (the model's 'name').")
    duration_s: float = Field(gt=0, le=MAX_PROBE_DURATION_S)
    filters: ProbeFilters = Field(default_factory=ProbeFilters)
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Typed parameters, validated against the probe spec."
    )


class HistogramBucket(BaseModel):
    """One log2 bucket: values in [low, high)."""

    low: float
    high: float
    count: int


class LatencyStats(BaseModel):
    """Percentiles computed from an in-kernel log2 histogram (values are bucket estimates)."""

    unit: Literal["ns", "us", "ms", "s", "bytes", "count"] = "us"
    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    histogram: list[HistogramBucket] = Field(default_factory=list)


class TopEntry(BaseModel):
    """One row of a top-N table: a key (process, path, lock, ...) and its numbers."""

    key: str
    count: int = 0
    value: float | None = Field(default=None, description="A second figure, e.g. total wait us.")
    labels: dict[str, str | int | float] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out an empty `value`/`labels`: results must stay a few hundred tokens."""
        data: dict[str, Any] = handler(self)
        if data.get("value") is None:
            data.pop("value", None)
        if not data.get("labels"):
            data.pop("labels", None)
        return data


class Aggregates(BaseModel):
    """Bounded aggregates: whatever the event rate, this stays a few hundred tokens."""

    totals: dict[str, int | float] = Field(default_factory=dict)
    top: dict[str, list[TopEntry]] = Field(default_factory=dict)
    latency: dict[str, LatencyStats] = Field(default_factory=dict)
    folded_stacks: list[str] = Field(
        default_factory=list, description="'frame;frame;frame count' lines (cpu_profile only)."
    )


class ProbeResult(BaseModel):
    """The result of one probe run; the seed's fields first, then ours."""

    model_config = ConfigDict(extra="forbid")

    program_name: str
    probe: str = ""
    event_count: int = 0
    events: list[dict[str, Any]] = Field(
        default_factory=list, description="A few sample events (bounded)."
    )
    summary: str = ""
    attach_points: list[str] = Field(default_factory=list)
    aggregates: Aggregates = Field(default_factory=Aggregates)
    dropped: int = 0
    duration_s: float = 0.0
    compile_s: float = 0.0
    resolved_from: str = Field(
        default="", description="The request as asked, e.g. kprobe:tcp_connect."
    )
    error: str | None = None
    warnings: list[str] = Field(
        default_factory=list, description="Optional parts that did not attach, early stops."
    )
