"""A command or probe identical to one already run is not run again; the model is told so."""

from __future__ import annotations

import json
import shlex

from worker.loop.investigation import RepeatSkip, StepPlan
from worker.protocol import CommandRequest, Diagnostic, EbpfProgramRequest


def command_key(request: CommandRequest) -> str:
    """Two commands are identical when their words are (spacing and quoting aside)."""
    try:
        return " ".join(shlex.split(request.command))
    except ValueError:
        return " ".join(request.command.split())


def program_key(request: EbpfProgramRequest) -> str:
    """Two programs are identical when everything but their name and description is."""
    return json.dumps(
        {
            "type": request.type,
            "target": request.target.strip(),
            "duration": request.duration,
            "filters": request.filters.model_dump(exclude_none=True),
            "params": request.params,
        },
        sort_keys=True,
    )


def program_label(request: EbpfProgramRequest) -> str:
    return f"{request.type}:{request.target}"


def guard_repeats(diagnostic: Diagnostic, earlier: list[StepPlan], plan: StepPlan) -> StepPlan:
    """Fill `plan` with the diagnostic's requests, moving repeats of `earlier` to `plan.repeats`.

    Requests repeated within one diagnostic run once too.
    """
    seen_commands: dict[str, int] = {}
    seen_programs: dict[str, int] = {}
    for past in earlier:
        for command in past.commands:
            seen_commands.setdefault(command_key(command), past.step)
        for program in past.ebpf_programs:
            seen_programs.setdefault(program_key(program), past.step)
    for command in diagnostic.commands:
        key = command_key(command)
        if key in seen_commands:
            plan.repeats.append(
                RepeatSkip(
                    kind="command",
                    id=command.id,
                    request=command.command,
                    first_step=seen_commands[key],
                )
            )
            continue
        seen_commands[key] = plan.step
        plan.commands.append(command)
    for program in diagnostic.ebpf_programs:
        key = program_key(program)
        if key in seen_programs:
            plan.repeats.append(
                RepeatSkip(
                    kind="ebpf_program",
                    id=program.name,
                    request=program_label(program),
                    first_step=seen_programs[key],
                )
            )
            continue
        seen_programs[key] = plan.step
        plan.ebpf_programs.append(program)
    return plan
