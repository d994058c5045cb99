"""A flow as one diagnostic step: its commands and eBPF program requests (analyses are local)."""

from __future__ import annotations

from worker.flows.models import Flow, SensorStep
from worker.protocol import (
    MAX_COMMANDS_PER_STEP,
    MAX_PROGRAMS_PER_STEP,
    CommandRequest,
    Diagnostic,
    EbpfProgramRequest,
)

DEFAULT_DURATION_S = 3.0


def sensor_request(step: SensorStep) -> EbpfProgramRequest:
    return EbpfProgramRequest(
        name=step.id,
        type="catalog",
        target=step.probe,
        duration=max(1.0, step.duration_s or DEFAULT_DURATION_S),
        filters=step.filters,
        params=step.params,
        description=step.description,
    )


def flow_requests(flow: Flow) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    commands = [
        CommandRequest(id=step.id, command=step.run, description=step.description)
        for step in flow.commands
    ]
    return commands, [sensor_request(step) for step in flow.sensors]


def merge_requests(
    diagnostic: Diagnostic, flow: Flow
) -> tuple[list[CommandRequest], list[EbpfProgramRequest]]:
    """The diagnostic's own requests plus the flow's, first of each id kept, within step caps."""
    commands = {c.id: c for c in diagnostic.commands}
    programs = {p.name: p for p in diagnostic.ebpf_programs}
    flow_commands, flow_programs = flow_requests(flow)
    for command in flow_commands:
        if len(commands) < MAX_COMMANDS_PER_STEP:
            commands.setdefault(command.id, command)
    for program in flow_programs:
        if len(programs) < MAX_PROGRAMS_PER_STEP:
            programs.setdefault(program.name, program)
    return list(commands.values()), list(programs.values())
