"""Custom probes: folders operators drop into `BPFSLEUTH_PROBE_PATH`, validated and approved.

Each directory of `BPFSLEUTH_PROBE_PATH` (colon-separated) holds `<name>/probe.yaml` and
`<name>/probe.bpf.c` in the built-in catalog's format, plus a `tables:` list that tells the
generic reader (`probes.custom.generic_reader`) what to report. A custom probe may not ship
Python: a reader runs as root in the probe process, and a generic reader driven by the YAML keeps
the whole probe reviewable as data plus verifier-checked C.

On load each folder is validated (schema with file:line from the YAML node marks, no shadowing
of a built-in name, parameter defaults typed and in bounds, attach points present on this host,
the C compiles and loads, `reads_user_memory` declared when the C reads user memory) and its
content hash checked against the approvals (`probes.custom.approval`). A broken folder is
reported as broken and never hides the built-in probes; a valid but unapproved one is listed as
such and refused, with the reason, by the runner and the resolver.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from probes.custom.approval import ApprovalStatus, approval_status, content_hash
from probes.custom.generic_reader import GenericReader, TableSpec, make_reader
from probes.engine.compile import CompileJob
from probes.engine.plan import plan_attach
from probes.engine.reader import RunInfo
from probes.models import ParamValue
from probes.params import ProbeRequestError, param_defines, validate_params
from probes.settings import probe_settings
from probes.spec import ProbeSpec

BUILTIN = "builtin"
COMPILE_TIMEOUT_S = 60.0
_USER_MEMORY_RE = re.compile(r"\bbpf_probe_read_user(_str)?\b")
_INT64_MAX = 2**63 - 1


class CustomProbeError(ValueError):
    """A custom probe that cannot be used; `str()` names the file and line."""


class CustomProbeSpec(ProbeSpec):
    """A custom probe's spec: the built-in format plus the tables its generic reader reports."""

    tables: list[TableSpec] = Field(min_length=1)
    reader: str = Field(default="generic", description="Always the generic reader.")

    @field_validator("reader")
    @classmethod
    def _generic_only(cls, value: str) -> str:
        if value != "generic":
            raise ValueError(
                "custom probes cannot ship a Python reader; declare `tables:` for the generic "
                "reader instead"
            )
        return value


class CustomProbe(BaseModel):
    """One folder of the probe path, as validated."""

    name: str
    directory: Path
    root: Path = Field(description="The BPFSLEUTH_PROBE_PATH entry it came from.")
    spec: CustomProbeSpec | None = None
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sha256: str = ""
    approval: ApprovalStatus | None = None

    @property
    def valid(self) -> bool:
        return self.spec is not None and not self.errors

    @property
    def runnable(self) -> bool:
        return self.valid and self.approval is not None and self.approval.approved


def probe_path() -> list[Path]:
    """The directories of BPFSLEUTH_PROBE_PATH, in order (empty entries ignored)."""
    return probe_settings().probe_dirs()


def _probe_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "probe.yaml").exists())


# --- YAML with line numbers -----------------------------------------------------------------
def _node_at(node: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """The deepest YAML node along a pydantic error location (the parent when a key is absent)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                return node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int:
    return _node_at(root, loc).start_mark.line + 1


def _where(path: Path, root: yaml.Node | None, loc: tuple[int | str, ...]) -> str:
    return f"{path}:{line_of(root, loc) if root is not None else 1}"


def _read_yaml(path: Path) -> tuple[yaml.Node, dict[str, Any]]:
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise CustomProbeError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    if node is None or not isinstance(raw, dict):
        raise CustomProbeError(f"{path}:1: probe.yaml must be a mapping")
    return node, raw


def _schema_errors(path: Path, node: yaml.Node, exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = ".".join(str(p) for p in loc) or "probe"
        message = error["msg"].removeprefix("Value error, ")
        out.append(f"{_where(path, node, loc)}: {field}: {message}")
    return out


# --- checks ---------------------------------------------------------------------------------
def _param_errors(path: Path, node: yaml.Node, spec: ProbeSpec) -> list[str]:
    errors = []
    for name, param in spec.params.items():
        where = _where(path, node, ("params", name, "default"))
        if param.type == "int":
            assert param.min is not None and param.max is not None
            if param.min > param.max:
                errors.append(f"{where}: params.{name}: min {param.min} is above max {param.max}")
            if max(abs(param.min), abs(param.max)) > _INT64_MAX:
                errors.append(f"{where}: params.{name}: bounds exceed a 64-bit integer")
            default = param.default
            if default is not None and (
                isinstance(default, bool | str) or not param.min <= default <= param.max
            ):
                errors.append(
                    f"{where}: params.{name}: default {default!r} is out of range "
                    f"[{param.min}, {param.max}]"
                )
        elif param.type == "choice" and param.default is not None:
            if param.default not in param.choices:
                errors.append(
                    f"{where}: params.{name}: default {param.default!r} is not one of "
                    f"{', '.join(param.choices)}"
                )
        elif param.type == "bool" and not isinstance(param.default, bool | None):
            errors.append(f"{where}: params.{name}: default must be true or false")
    return errors


def _default_params(spec: ProbeSpec) -> dict[str, ParamValue] | None:
    try:
        return validate_params(spec, {})
    except ProbeRequestError:
        return None


def _cflags(spec: ProbeSpec, params: dict[str, ParamValue]) -> tuple[list[str], str | None]:
    """The flags the runner would compile with (defaults, no filters), or why it cannot run."""
    plan = plan_attach(spec, params)
    if not plan.available:
        return [], plan.reason
    return [
        "-Wno-macro-redefined",
        "-Wno-unused-function",
        *param_defines(spec, params),
        *plan.defines,
    ], None


def _compile_cache_dir() -> Path:
    return probe_settings().cache_dir / "compile"


class CompileOutcome(BaseModel):
    ok: bool
    checked: bool = True
    error: str = ""
    line: int | None = None


def compile_probe(source: Path, cflags: list[str], sha256: str) -> CompileOutcome:
    """Compile and load the C once (in a child process), cached by content, flags and kernel."""
    if os.geteuid() != 0:
        return CompileOutcome(ok=True, checked=False, error="not compiled: needs root")
    key = hashlib.sha256(json.dumps([sha256, cflags, os.uname().release]).encode()).hexdigest()
    cache = _compile_cache_dir() / f"{key}.json"
    if cache.exists():
        try:
            return CompileOutcome.model_validate_json(cache.read_text())
        except (ValidationError, ValueError):
            pass
    job = CompileJob(source=str(source), cflags=cflags)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "probes.engine.compile"],
            input=job.model_dump_json(),
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_S,
            cwd=str(Path(__file__).resolve().parents[2]),
            check=False,
        )
        outcome = CompileOutcome.model_validate_json(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, ValidationError, ValueError) as exc:
        return CompileOutcome(ok=False, checked=False, error=f"compile check failed: {exc}")
    if outcome.checked:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(outcome.model_dump_json())
        except OSError:
            pass
    return outcome


def _user_memory_error(path: Path, node: yaml.Node, spec: ProbeSpec) -> str | None:
    if spec.reads_user_memory:
        return None
    for number, line in enumerate(spec.source_text().splitlines(), start=1):
        if _USER_MEMORY_RE.search(line):
            return (
                f"{spec.source_path}:{number}: the C reads user memory; declare "
                f"`reads_user_memory: true` in {path.name} (line "
                f"{line_of(node, ('reads_user_memory',))}) so approvers see it"
            )
    return None


def validate_custom_probe(
    directory: Path, root: Path, builtin_names: set[str], *, compile_c: bool = True
) -> CustomProbe:
    """Everything that can be checked about a custom probe folder, without running it."""
    probe = CustomProbe(name=directory.name, directory=directory, root=root)
    yaml_path = directory / "probe.yaml"
    probe.sha256 = content_hash(directory)
    python = sorted(p.name for p in directory.rglob("*.py"))
    if python:
        probe.errors.append(
            f"{directory / python[0]}:1: custom probes may not ship Python ({', '.join(python)}): "
            "their output is read by the generic reader from `tables:` in probe.yaml"
        )
    try:
        node, raw = _read_yaml(yaml_path)
    except CustomProbeError as exc:
        probe.errors.append(str(exc))
        return probe
    try:
        spec = CustomProbeSpec.model_validate({**raw, "directory": directory})
    except ValidationError as exc:
        probe.errors.extend(_schema_errors(yaml_path, node, exc))
        return probe
    if spec.name != directory.name:
        probe.errors.append(
            f"{_where(yaml_path, node, ('name',))}: name {spec.name!r} differs from the folder "
            f"{directory.name!r}"
        )
    if spec.name in builtin_names:
        probe.errors.append(
            f"{_where(yaml_path, node, ('name',))}: {spec.name!r} is the name of a built-in "
            "probe; a custom probe may not shadow it (rename the folder and `name:`)"
        )
    if not spec.source_path.is_file():
        where = _where(yaml_path, node, ("source",))
        probe.errors.append(f"{where}: {spec.source_path} is missing")
        return probe
    probe.errors.extend(_param_errors(yaml_path, node, spec))
    user_memory = _user_memory_error(yaml_path, node, spec)
    if user_memory:
        probe.errors.append(user_memory)
    params = _default_params(spec)
    if params is None:
        probe.warnings.append("attach points and C not checked: a parameter has no default")
    elif not probe.errors:
        cflags, unavailable = _cflags(spec, params)
        if unavailable:
            probe.errors.append(
                f"{_where(yaml_path, node, ('attach',))}: cannot attach on this host: {unavailable}"
            )
        elif compile_c:
            outcome = compile_probe(spec.source_path, cflags, probe.sha256)
            if not outcome.checked:
                probe.warnings.append(outcome.error)
            elif not outcome.ok:
                line = f":{outcome.line}" if outcome.line else ""
                probe.errors.append(f"{spec.source_path}{line}: {outcome.error}")
    probe.spec = spec
    if not probe.errors:
        probe.approval = approval_status(spec.name, directory, probe.sha256)
    return probe


def load_custom_probes(builtin_names: set[str], *, compile_c: bool = True) -> list[CustomProbe]:
    """Every folder of every BPFSLEUTH_PROBE_PATH entry, validated; later duplicates refused."""
    seen: dict[str, Path] = {}
    out = []
    for root in probe_path():
        for directory in _probe_dirs(root):
            probe = validate_custom_probe(directory, root, builtin_names, compile_c=compile_c)
            if directory.name in seen:
                probe.errors.append(
                    f"{directory / 'probe.yaml'}:1: a custom probe named {directory.name!r} is "
                    f"already loaded from {seen[directory.name]}"
                )
            else:
                seen[directory.name] = directory
            out.append(probe)
    return out


def find_custom_probe(name: str, builtin_names: set[str]) -> CustomProbe | None:
    for probe in load_custom_probes(builtin_names):
        if probe.name == name:
            return probe
    return None


def is_custom(spec: ProbeSpec) -> bool:
    return isinstance(spec, CustomProbeSpec)


def runnable_hash(spec: ProbeSpec) -> str:
    """The folder's current hash when it is approved now; else ProbeRequestError with why."""
    status = approval_status(spec.name, spec.directory)
    if not status.approved:
        raise ProbeRequestError(status.reason)
    return status.sha256


def load_verified_spec(directory: Path, sha256: str) -> CustomProbeSpec:
    """The spec of an approved folder, after checking its content is still what was approved."""
    now = content_hash(directory)
    if now != sha256:
        raise CustomProbeError(
            f"custom probe {directory.name} changed after it was checked "
            f"(sha256 {sha256[:12]} -> {now[:12]}); it needs a new approval"
        )
    raw = yaml.safe_load((directory / "probe.yaml").read_text())
    return CustomProbeSpec.model_validate({**raw, "directory": directory})


def custom_reader(spec: ProbeSpec, run: RunInfo) -> GenericReader:
    if not isinstance(spec, CustomProbeSpec):
        raise TypeError(f"{spec.name} is not a custom probe")
    return make_reader(spec.tables, run)
