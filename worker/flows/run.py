"""Run a flow on this host: sensors concurrently, commands, analyses on the saved outputs.

Steps run in stages: the sensor and command steps between two analyse steps form one stage. A
stage's sensors run together in one `probes.engine.runner.run_probes` call (one child per probe, in
parallel) while its commands run through the policy and executor (`worker.host.executor`), so the
commands see the same moment the probes trace. An analyse step then calls the offline planner's
analyzers by name on the saved outputs it names. Outputs are redacted and bounded like a plan's.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from probes.engine.runner import run_probes
from probes.models import ProbeRequest
from worker.analysis.analyzers import Finding, load_analyzers
from worker.backends.base import Evidence
from worker.flows.expand import sensor_request
from worker.flows.models import AnalyseStep, CommandStep, Flow, SensorStep
from worker.host.executor import run_command
from worker.host.redact import redact
from worker.loop.bounds import ResultLimits, bound_command, bound_probe
from worker.protocol import CommandRequest, CommandResult, EbpfResult, PlanResult

StepKind = Literal["sensor", "command", "analyse"]


class SavedOutput(BaseModel):
    """One step's output, under its `saveAs` name."""

    step: str
    type: StepKind
    command: CommandResult | None = None
    probe: EbpfResult | None = None
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if self.command is not None:
            if not self.command.ran:
                return f"not run: {self.command.note or self.command.reason}"
            lines = len(self.command.stdout.splitlines())
            return f"exit {self.command.exit_code}, {lines} lines"
        if self.probe is not None:
            return f"error: {self.probe.error}" if self.probe.error else self.probe.summary
        if not self.findings:
            return "nothing stands out"
        best = self.findings[0]
        return f"{best.analyzer} ({best.score:.2f}): {best.root_cause}"


class FlowRun(BaseModel):
    """A flow's run on one host: every saved output, in step order."""

    flow: str
    host: str
    symptom: str = ""
    outputs: dict[str, SavedOutput] = Field(default_factory=dict)
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    def plan_result(self, names: list[str] | None = None) -> PlanResult:
        """The saved command and probe outputs (all, or `names`) as a plan's result."""
        result = PlanResult(host=self.host, step=1)
        for name, saved in self.outputs.items():
            if names and name not in names:
                continue
            if saved.command is not None:
                result.command_results[saved.step] = saved.command
            if saved.probe is not None:
                result.ebpf_results[saved.step] = saved.probe
        return result

    @property
    def findings(self) -> list[Finding]:
        found = [f for saved in self.outputs.values() for f in saved.findings]
        return sorted(found, key=lambda f: -f.score)


FlowEventSink = Callable[[str, SavedOutput], None]


def _stages(flow: Flow) -> list[list[SensorStep | CommandStep] | AnalyseStep]:
    stages: list[list[SensorStep | CommandStep] | AnalyseStep] = []
    current: list[SensorStep | CommandStep] = []
    for step in flow.steps:
        if isinstance(step, AnalyseStep):
            if current:
                stages.append(current)
                current = []
            stages.append(step)
        else:
            current.append(step)
    if current:
        stages.append(current)
    return stages


def _run_sensors(steps: list[SensorStep], redact: Callable[[str], str]) -> list[SavedOutput]:
    requests = []
    for step in steps:
        program = sensor_request(step)
        requests.append(
            ProbeRequest(
                probe=step.probe,
                label=step.id,
                duration_s=program.duration,
                filters=step.filters,
                params=step.params,
            )
        )
    limits = ResultLimits()
    out = []
    for step, result in zip(steps, run_probes(requests), strict=True):
        probe = EbpfResult.model_validate({**result.model_dump(), "program_name": step.id})
        out.append(
            SavedOutput(step=step.id, type="sensor", probe=bound_probe(probe, limits, redact))
        )
    return out


def _traced(steps: list[SensorStep], redact: Callable[[str], str]) -> list[SavedOutput]:
    try:
        return _run_sensors(steps, redact)
    except Exception as exc:  # the probe engine failed as a whole: say so for each step
        error = f"probes not run: {type(exc).__name__}: {exc}"
        return [SavedOutput(step=s.id, type="sensor", error=error) for s in steps]


def _run_command(step: CommandStep, redact: Callable[[str], str]) -> SavedOutput:
    request = CommandRequest(id=step.id, command=step.run, description=step.description)
    try:
        result = run_command(request)
    except Exception as exc:  # one broken command must not lose the flow
        return SavedOutput(step=step.id, type="command", error=f"{type(exc).__name__}: {exc}")
    return SavedOutput(
        step=step.id, type="command", command=bound_command(result, ResultLimits(), redact)
    )


def _analyse(step: AnalyseStep, run: FlowRun, symptom: str) -> SavedOutput:
    registry = load_analyzers()
    evidence = Evidence(
        symptom=symptom,
        hosts=[run.host],
        step=2,
        max_steps=2,
        results=[run.plan_result(step.inputs or None)],
    )
    findings: list[Finding] = []
    errors = []
    for name in step.analyzers:
        try:
            findings.extend(registry[name](evidence))
        except Exception as exc:  # one broken analyzer must not lose the others
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return SavedOutput(
        step=step.id,
        type="analyse",
        findings=sorted(findings, key=lambda f: -f.score),
        error="; ".join(errors) or None,
    )


def run_flow(
    flow: Flow, *, host: str = "", symptom: str = "", on_output: FlowEventSink | None = None
) -> FlowRun:
    """Run every step of `flow` here and return the saved outputs."""
    run = FlowRun(flow=flow.name, host=host or socket.gethostname(), symptom=symptom)
    names = {step.id: step.saved_as for step in flow.steps}

    def save(saved: SavedOutput) -> None:
        run.outputs[names[saved.step]] = saved
        if on_output is not None:
            on_output(names[saved.step], saved)

    for stage in _stages(flow):
        if isinstance(stage, AnalyseStep):
            save(_analyse(stage, run, symptom or flow.description))
            continue
        sensors = [s for s in stage if isinstance(s, SensorStep)]
        box: dict[str, list[SavedOutput]] = {}

        thread = threading.Thread(
            target=lambda steps=sensors, into=box: into.update(sensors=_traced(steps, redact)),
            daemon=True,
        )
        if sensors:
            thread.start()
        for step in stage:
            if isinstance(step, CommandStep):
                save(_run_command(step, redact))
        if sensors:
            thread.join()
            for saved in box.get("sensors", []):
                save(saved)
    ordered = {
        step.saved_as: run.outputs[step.saved_as]
        for step in flow.steps
        if step.saved_as in run.outputs
    }
    run.outputs = ordered
    run.finished_at = datetime.now(UTC)
    return run
