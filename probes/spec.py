"""The probe spec: what `probes/catalog/<name>/probe.yaml` says, validated.

A spec is data about a probe: where it attaches (in order of preference, with fallbacks), the
typed parameters it accepts (with bounds), what it outputs, how long it may run, what it costs,
and which requests (`kprobe:tcp_connect`, `syscalls/sys_enter_connect`, ...) it answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.models import MAX_PROBE_DURATION_S, ParamValue
from probes.requests import normalise_answer

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFINE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,47}$")
C_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
TRACEPOINT_TARGET_RE = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+$")
MAX_RUNTIME_PARAMS = 16  # BS_MAX_PARAMS in common.h

AttachKind = Literal["tracepoint", "raw_tracepoint", "uprobe", "uretprobe", "perf_event"]
Overhead = Literal["low", "medium", "high"]


class AttachPoint(BaseModel):
    """One place a probe can attach.

    `target` forms: tracepoint `category:name`; raw_tracepoint `name`; uprobe/uretprobe
    `library:symbol` (library as bcc resolves it, e.g. `c`); perf_event `software:cpu_clock`.
    `fn` is the C function to attach explicitly; leave it empty for bcc `TRACEPOINT_PROBE`
    functions, which bcc attaches by itself when the program loads.
    """

    model_config = ConfigDict(extra="forbid")

    kind: AttachKind
    target: str = ""
    target_param: str | None = Field(
        default=None, description="Take the target from this (validated) parameter instead."
    )
    fn: str | None = None
    fields: list[str] = Field(
        default_factory=list, description="Tracepoint fields the C reads; all must exist."
    )
    optional_fields: list[str] = Field(
        default_factory=list,
        description="Fields used when present; each defines HAVE_FIELD_<CAT>_<NAME>_<F>.",
    )
    offset_fields: list[str] = Field(
        default_factory=list,
        description="Fields read raw from the record (types bcc cannot declare, e.g. an enum "
        "missing from the headers): each defines TPOFF_<CAT>_<NAME>_<F>=<offset> from tracefs.",
    )
    sample_freq: int | None = Field(default=None, ge=1, le=10_000)
    sample_freq_param: str | None = None

    @field_validator("fn")
    @classmethod
    def _fn_is_ident(cls, value: str | None) -> str | None:
        if value is not None and not C_IDENT_RE.match(value):
            raise ValueError(f"fn {value!r} is not a C identifier")
        return value

    @model_validator(mode="after")
    def _target_shape(self) -> AttachPoint:
        if self.target_param is not None:
            if self.fn is None:
                raise ValueError("an attach point whose target is a parameter needs fn")
            return self
        if self.kind == "tracepoint" and not TRACEPOINT_TARGET_RE.match(self.target):
            raise ValueError(f"tracepoint target {self.target!r} must be category:name")
        if self.kind in ("uprobe", "uretprobe", "raw_tracepoint", "perf_event") and not self.fn:
            raise ValueError(f"a {self.kind} attach point needs fn")
        if self.kind in ("uprobe", "uretprobe") and ":" not in self.target:
            raise ValueError(f"{self.kind} target {self.target!r} must be library:symbol")
        return self

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else f"{self.kind}:<{self.target_param}>"

    def tracepoint_parts(self) -> tuple[str, str]:
        category, _, name = self.target.partition(":")
        return category, name


class AttachGroup(BaseModel):
    """One role of the probe; the first attach point of `any_of` that this host has is used."""

    model_config = ConfigDict(extra="forbid")

    role: str
    any_of: list[AttachPoint] = Field(min_length=1)
    required: bool = True
    switch: str | None = Field(
        default=None,
        description="The bool parameter that turns this role's tracing on. A run whose every "
        "switch that is on lacks its roles on this host would trace nothing: it is refused.",
    )


class ParamSpec(BaseModel):
    """A typed parameter. It reaches the C only as a validated number: with `runtime: true`
    written into the `bs_config` map at each run (its macro reads it: `bs_param(<slot>)`), else
    as `-D<define>=<number>` (a different value compiles a different object)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "bool", "choice", "tracepoint"]
    description: str
    default: int | bool | str | None = None
    min: int | None = None
    max: int | None = None
    choices: list[str] = Field(default_factory=list)
    define: str | None = Field(default=None, description="C macro name; none for tracepoint.")
    runtime: bool = Field(
        default=False,
        description="A run-time map value (any value, one compiled object); false for values "
        "the program's shape depends on (array sizes, `#if`, which programs exist).",
    )

    @field_validator("define")
    @classmethod
    def _define_is_macro(cls, value: str | None) -> str | None:
        if value is not None and not DEFINE_RE.match(value):
            raise ValueError(f"define {value!r} must match {DEFINE_RE.pattern}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "int" and (self.min is None or self.max is None):
            raise ValueError("an int parameter needs min and max")
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice parameter needs choices")
        if self.type in ("int", "bool", "choice") and self.define is None:
            raise ValueError(f"a {self.type} parameter needs a define")
        if self.runtime and self.define is None:
            raise ValueError("a runtime parameter needs a define (the macro that reads it)")
        return self


class DurationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: float = Field(gt=0, le=MAX_PROBE_DURATION_S)
    max: float = Field(gt=0, le=MAX_PROBE_DURATION_S)

    @model_validator(mode="after")
    def _default_within_max(self) -> DurationSpec:
        if self.default > self.max:
            raise ValueError("default duration is above max")
        return self


class ProbeSpec(BaseModel):
    """A catalog probe, as its `probe.yaml` describes it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(min_length=10, max_length=200, description="One line, for the model.")
    attach: list[AttachGroup] = Field(min_length=1)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    output: dict[str, str] = Field(default_factory=dict, description="Output field -> meaning.")
    duration: DurationSpec
    overhead: Overhead
    reads_user_memory: bool = Field(
        default=False,
        description="The C copies memory of the traced processes (paths, queries, argv): data "
        "that may hold secrets. Shown when a custom probe is approved.",
    )
    answers: list[str] = Field(default_factory=list)
    answer_params: dict[str, dict[str, ParamValue]] = Field(
        default_factory=dict,
        description="Parameters to use when answering a given request (keys are answers).",
    )
    source: str = "probe.bpf.c"
    reader: str = Field(default="reader", description="Python module next to the spec.")
    directory: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"probe name {value!r} must match {NAME_RE.pattern}")
        return value

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("description must be one line")
        return value.strip()

    @field_validator("answers")
    @classmethod
    def _answers_normalised(cls, value: list[str]) -> list[str]:
        return [normalise_answer(item) for item in value]

    @field_validator("answer_params")
    @classmethod
    def _answer_params_normalised(
        cls, value: dict[str, dict[str, ParamValue]]
    ) -> dict[str, dict[str, ParamValue]]:
        return {normalise_answer(key): params for key, params in value.items()}

    @model_validator(mode="after")
    def _runtime_slots_fit(self) -> ProbeSpec:
        count = sum(1 for param in self.params.values() if param.runtime)
        if count > MAX_RUNTIME_PARAMS:
            raise ValueError(
                f"{count} runtime parameters; the config map holds {MAX_RUNTIME_PARAMS}"
            )
        return self

    @model_validator(mode="after")
    def _params_referenced_exist(self) -> ProbeSpec:
        for key in self.answer_params:
            if key not in self.answers:
                raise ValueError(f"answer_params names {key!r}, which is not in answers")
        for group in self.attach:
            for point in group.any_of:
                for ref in (point.target_param, point.sample_freq_param):
                    if ref is not None and ref not in self.params:
                        raise ValueError(f"attach point refers to unknown parameter {ref!r}")
            if group.switch is not None and (
                group.switch not in self.params or self.params[group.switch].type != "bool"
            ):
                raise ValueError(
                    f"role {group.role!r}: switch {group.switch!r} is no bool parameter"
                )
        return self

    @property
    def source_path(self) -> Path:
        return self.directory / self.source

    def source_text(self) -> str:
        return self.source_path.read_text()


def load_spec(directory: Path) -> ProbeSpec:
    """Read and validate `directory/probe.yaml`; the folder name must be the probe's name."""
    raw = yaml.safe_load((directory / "probe.yaml").read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{directory}/probe.yaml is not a mapping")
    spec = ProbeSpec.model_validate({**raw, "directory": directory})
    if spec.name != directory.name:
        raise ValueError(
            f"{directory}/probe.yaml names {spec.name!r}, folder is {directory.name!r}"
        )
    if not spec.source_path.exists():
        raise ValueError(f"{spec.source_path} is missing")
    return spec
