"""A flow: a named runbook as data (YAML), a list of steps whose outputs are saved by name.

```yaml
name: network_debug
description: "Connects that fail, time out or reset: listeners, pending connects, outcomes."
categories: [network]        # symptom categories the offline planner picks it for
cues: ["payments api"]       # optional: words in a symptom that pick it too
steps:
  - id: listeners
    type: command
    run: "ss -tlnp"
    output: {saveAs: listeners}
  - id: tcp_connect
    type: sensor
    ref: ebpf.tcp_connect     # a catalog probe (the `ebpf.` prefix is optional)
    with: {duration: 3}       # duration, pid, comm; anything else is a probe parameter
    output: {saveAs: connects}
  - id: verdict
    type: analyse
    analyzers: [connect_failures]
    inputs: [connects, listeners]   # saved outputs (all earlier ones when empty)
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.models import MAX_PROBE_DURATION_S, ParamValue, ProbeFilters

FLOW_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
REF_PREFIX = "ebpf."
MAX_STEPS = 24
FILTER_KEYS = frozenset({"duration", "pid", "comm"})


class StepOutput(BaseModel):
    """Where a step's output is kept: `output: {saveAs: name}` (the seed's spelling)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    save_as: str = Field(alias="saveAs", pattern=_ID)


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=_ID)
    description: str = Field(default="", max_length=300)
    output: StepOutput | None = None

    @property
    def saved_as(self) -> str:
        return self.output.save_as if self.output else self.id


class SensorStep(_Step):
    """Run a catalog probe; `with` holds duration, pid/comm filters and probe parameters."""

    type: Literal["sensor"]
    ref: str = Field(min_length=1, max_length=80)
    with_: dict[str, ParamValue] = Field(default_factory=dict, alias="with")

    @field_validator("ref")
    @classmethod
    def _bare_ref(cls, value: str) -> str:
        return value.strip().removeprefix(REF_PREFIX)

    @field_validator("with_")
    @classmethod
    def _known_shapes(cls, value: dict[str, ParamValue]) -> dict[str, ParamValue]:
        duration = value.get("duration")
        if duration is not None and (
            isinstance(duration, bool | str) or not 0 < duration <= MAX_PROBE_DURATION_S
        ):
            raise ValueError(
                f"duration must be a number of seconds in (0, {MAX_PROBE_DURATION_S:g}]"
            )
        ProbeFilters.model_validate({k: value[k] for k in ("pid", "comm") if k in value})
        return value

    @property
    def probe(self) -> str:
        return self.ref

    @property
    def duration_s(self) -> float | None:
        value = self.with_.get("duration")
        return float(value) if isinstance(value, int | float) else None

    @property
    def filters(self) -> ProbeFilters:
        pid = self.with_.get("pid")
        comm = self.with_.get("comm")
        return ProbeFilters(
            pid=int(pid) if isinstance(pid, int) else None,
            comm=str(comm) if comm is not None else None,
        )

    @property
    def params(self) -> dict[str, ParamValue]:
        return {k: v for k, v in self.with_.items() if k not in FILTER_KEYS}


class CommandStep(_Step):
    """Run one read-only command through the policy and executor."""

    type: Literal["command"]
    run: str = Field(min_length=1, max_length=2000)


class AnalyseStep(_Step):
    """Run the offline planner's analyzers, by name, on saved outputs."""

    type: Literal["analyse"]
    analyzers: list[str] = Field(min_length=1)
    inputs: list[str] = Field(
        default_factory=list, description="saveAs names to analyse; all earlier ones when empty."
    )


FlowStep = Annotated[SensorStep | CommandStep | AnalyseStep, Field(discriminator="type")]


class Flow(BaseModel):
    """A named list of steps, validated; `path` is where it was read from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(min_length=10, max_length=200)
    categories: list[str] = Field(default_factory=list)
    cues: list[str] = Field(default_factory=list, max_length=20)
    triage: bool = Field(
        default=False, description="Run at the start of every offline investigation."
    )
    steps: list[FlowStep] = Field(min_length=1, max_length=MAX_STEPS)
    path: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not FLOW_NAME_RE.match(value):
            raise ValueError(f"flow name {value!r} must match {FLOW_NAME_RE.pattern}")
        return value

    @field_validator("cues")
    @classmethod
    def _cues_lower(cls, value: list[str]) -> list[str]:
        return [cue.strip().lower() for cue in value if cue.strip()]

    @model_validator(mode="after")
    def _ids_and_inputs(self) -> Flow:
        ids: set[str] = set()
        saved: set[str] = set()
        for step in self.steps:
            if step.id in ids:
                raise ValueError(f"step id {step.id!r} is used twice")
            ids.add(step.id)
            if isinstance(step, AnalyseStep):
                missing = [name for name in step.inputs if name not in saved]
                if missing:
                    raise ValueError(
                        f"step {step.id!r} analyses {', '.join(missing)}, which no earlier step "
                        "saves"
                    )
            if step.saved_as in saved:
                raise ValueError(f"step {step.id!r} saves as {step.saved_as!r}, already used")
            saved.add(step.saved_as)
        return self

    @property
    def sensors(self) -> list[SensorStep]:
        return [s for s in self.steps if isinstance(s, SensorStep)]

    @property
    def commands(self) -> list[CommandStep]:
        return [s for s in self.steps if isinstance(s, CommandStep)]

    @property
    def analyses(self) -> list[AnalyseStep]:
        return [s for s in self.steps if isinstance(s, AnalyseStep)]
