"""Load flows: the built-in ones (`worker/flows/*.yaml`) and the operators' (`BPFSLEUTH_FLOW_PATH`).

Each file is validated against the flow models and against this host's world: every sensor's
`ref` is a probe of the catalog (built-in or approved custom) with parameters it accepts and a
duration within its max; every command is one the policy allows; every analyzer exists. A flow
that fails is refused with an error naming its file (and line), the step id and, for a missing
probe, the nearest probes; it never hides the other flows. An operator flow may not take a
built-in flow's name.
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml
from cachetools import LRUCache, cached
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probes.catalog import Catalog, load_catalog
from probes.custom.loader import line_of
from probes.params import ProbeRequestError, validate_params
from probes.resolver import nearest_names
from worker.analysis.analyzers import load_analyzers
from worker.flows.models import AnalyseStep, CommandStep, Flow, SensorStep
from worker.policy import evaluate
from worker.settings import FlowSettings

BUILTIN_DIR = Path(__file__).resolve().parent
FLOW_PATH_ENV = "BPFSLEUTH_FLOW_PATH"
BUILTIN = "builtin"


class FlowError(ValueError):
    """A flow that cannot be used; `str()` names the file, the step and what is wrong."""


class FlowSet(BaseModel):
    """Every valid flow by name, the files that failed and why, and where each came from."""

    model_config = ConfigDict(frozen=True)

    flows: dict[str, Flow] = Field(default_factory=dict)
    broken: dict[str, str] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.flows)

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def source_of(self, name: str) -> str:
        return self.sources.get(name, BUILTIN)

    def __contains__(self, name: object) -> bool:
        return name in self.flows


def flow_path() -> list[Path]:
    value = FlowSettings().flow_path
    return [Path(part).expanduser() for part in value.split(":") if part.strip()]


def _flow_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _read(path: Path) -> tuple[yaml.Node, dict[str, object]]:
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise FlowError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    if node is None or not isinstance(raw, dict):
        raise FlowError(f"{path}:1: a flow file must be a mapping")
    return node, raw


def _step_line(node: yaml.Node, index: int, key: str | None = None) -> int:
    loc: tuple[int | str, ...] = ("steps", index) if key is None else ("steps", index, key)
    return line_of(node, loc)


def _check_sensor(step: SensorStep, catalog: Catalog) -> str | None:
    spec = catalog.get(step.probe)
    if spec is None:
        if step.probe in catalog.blocked:
            return f"probe {step.probe!r} may not run: {catalog.blocked[step.probe]}"
        near = nearest_names(step.probe, catalog.names())
        hint = f"; nearest probes: {', '.join(near)}" if near else ""
        return f"probe {step.probe!r} is not in the catalog{hint}"
    duration = step.duration_s
    if duration is not None and duration > spec.duration.max:
        return f"duration {duration:g}s is above {spec.name}'s max of {spec.duration.max:g}s"
    try:
        validate_params(spec, step.params)
    except ProbeRequestError as exc:
        return str(exc)
    return None


def _check_command(step: CommandStep) -> str | None:
    decision = evaluate(step.run)
    if decision.verdict != "allow":
        return f"command {step.run!r} is not allowed to run unattended: {decision.reason}"
    return None


def _check_analyse(step: AnalyseStep, analyzers: set[str]) -> str | None:
    unknown = [name for name in step.analyzers if name not in analyzers]
    if unknown:
        near = {n for u in unknown for n in nearest_names(u, sorted(analyzers))}
        hint = f"; nearest: {', '.join(sorted(near))}" if near else ""
        return f"no analyzer named {', '.join(unknown)}{hint}"
    return None


def analyzer_names() -> set[str]:
    return set(load_analyzers())


def builtin_flows() -> list[Flow]:
    """The package's flows as data, by name, without checks against this host (planner data)."""
    flows = []
    for path in _flow_files(BUILTIN_DIR):
        _, raw = _read(path)
        flows.append(Flow.model_validate({**raw, "path": path}))
    return flows


def load_flow_file(path: Path, catalog: Catalog | None = None) -> Flow:
    """Read and check one flow file, or raise FlowError naming the file, line and step."""
    catalog = catalog or load_catalog()
    node, raw = _read(path)
    try:
        flow = Flow.model_validate({**raw, "path": path})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        where = ".".join(str(p) for p in loc) or "flow"
        message = error["msg"].removeprefix("Value error, ")
        raise FlowError(f"{path}:{line_of(node, loc)}: {where}: {message}") from None
    if flow.name != path.stem:
        raise FlowError(f"{path}:1: flow name {flow.name!r} differs from the file name")
    analyzers = analyzer_names() if flow.analyses else set()
    for index, step in enumerate(flow.steps):
        if isinstance(step, SensorStep):
            problem = _check_sensor(step, catalog)
        elif isinstance(step, CommandStep):
            problem = _check_command(step)
        else:
            problem = _check_analyse(step, analyzers)
        if problem:
            line = _step_line(node, index)
            raise FlowError(f"{path}:{line}: flow {flow.name}, step {step.id!r}: {problem}")
    return flow


def _load_from(
    files: list[Path], source: str, catalog: Catalog, into: dict[str, Flow], broken: dict[str, str]
) -> dict[str, str]:
    sources: dict[str, str] = {}
    for path in files:
        try:
            flow = load_flow_file(path, catalog)
        except FlowError as exc:
            broken[path.stem if path.stem not in into else f"{path.stem} ({path})"] = str(exc)
            sources.setdefault(path.stem, source)
            continue
        except Exception as exc:  # one bad file must not hide the others
            broken[path.stem] = f"{path}:1: {type(exc).__name__}: {exc}"
            continue
        if flow.name in into:
            broken[f"{flow.name} ({path})"] = (
                f"{path}:1: a flow named {flow.name!r} is already loaded from "
                f"{into[flow.name].path}; pick another name"
            )
            continue
        into[flow.name] = flow
        sources[flow.name] = source
    return sources


def _fingerprint(catalog: Catalog) -> str:
    parts = [FlowSettings().flow_path, ",".join(catalog.names())]
    for root in [BUILTIN_DIR, *flow_path()]:
        for path in _flow_files(root):
            stat = path.stat()
            parts.append(f"{path}:{stat.st_mtime_ns}:{stat.st_size}")
    return "\n".join(parts)


def load_flows(catalog: Catalog | None = None) -> FlowSet:
    """Built-in flows, then each BPFSLEUTH_FLOW_PATH folder's; cached until a file changes."""
    catalog = catalog or load_catalog()
    return _load_flows(catalog, _fingerprint(catalog))


@cached(LRUCache(maxsize=1), key=lambda _catalog, fingerprint: fingerprint, lock=threading.Lock())
def _load_flows(catalog: Catalog, fingerprint: str) -> FlowSet:
    """The flows as of `fingerprint` (the files' paths, times and sizes, and the catalog)."""
    flows: dict[str, Flow] = {}
    broken: dict[str, str] = {}
    sources = _load_from(_flow_files(BUILTIN_DIR), BUILTIN, catalog, flows, broken)
    for root in flow_path():
        sources.update(_load_from(_flow_files(root), str(root), catalog, flows, broken))
    return FlowSet(flows=flows, broken=broken, sources=sources)


def flow_problem(name: str) -> str | None:
    """Why the model's flow cannot run here (unknown or broken), or None: the check the model
    backends hand the reply parser (`worker.protocol.FlowCheck`)."""
    try:
        flows = load_flows()
    except Exception as exc:  # flows unreadable: the loop will say so when it expands
        return f"flows cannot be loaded here ({type(exc).__name__}: {exc})"
    return None if name in flows else unknown_flow_message(name, flows)


def unknown_flow_message(name: str, flows: FlowSet) -> str:
    if name in flows.broken:
        return f"flow {name!r} is broken: {flows.broken[name]}"
    near = nearest_names(name, flows.names())
    hint = f"; nearest: {', '.join(near)}" if near else f"; flows: {', '.join(flows.names())}"
    return f"no flow named {name!r}{hint}"
